//! A backend under differential test: it applies [`Op`]s and answers with comparable
//! [`Outcome`]s.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, Backend, Book, CallOrderKey,
    ChainPos, Durability, EventOutputs, InboundInterCall, InputError, InterCall,
    InterCallOutputKey, LedgerStore, LocationBuf, LyquidId, ManualClock, Mutation, OpenOptions,
    Posting, SegmentId, SegmentLogStore, SessionId, SideEffectKey, SideEffectKind, SideEffectStore,
    StateError, StateSnapshot, StateStore, StoreEngine, Timestamp, Transaction,
};

use super::ops::{Blob, CallSlot, Change, Draft, Inbound, Op, Slot};
use super::outcome::{self, Outcome, outcome};
use crate::Failure;
use crate::failure::OrFail;
use crate::workload::txid;

/// Where every subject's clock starts, in µs.
pub const CLOCK_START: u64 = 1_000_000;
const TX_SEED: u64 = 0xD1FF;
/// The partition a reopen takes again.
const REOPENED_PARTITION: &str = "p1";

/// A backend that applies operations: the object-safe face of [`Subject`].
pub trait AnySubject {
    /// The backend's name.
    fn name(&self) -> &'static str;
    /// Applies `op` and returns its comparable outcome.
    fn apply(&mut self, op: &Op) -> Outcome;
}

/// One backend, its open state handles, and its clock.
pub struct Subject<B: Backend> {
    backend: Option<B>,
    location: LocationBuf<B>,
    options: OpenOptions,
    clock: Arc<ManualClock>,
    states: BTreeMap<String, B::State>,
}

impl<B: Backend> Subject<B> {
    /// Opens `B` at `location` (ignored by the in-memory backend) with durability
    /// `Relaxed` and a manual clock at [`CLOCK_START`].
    pub fn open(location: &B::Location) -> Result<Self, Failure> {
        Self::open_with(location, Durability::Relaxed)
    }

    /// Opens `B` at `location` with `durability` and a manual clock at [`CLOCK_START`].
    pub fn open_with(location: &B::Location, durability: Durability) -> Result<Self, Failure> {
        Self::open_adjusted(location, |options| options.durability(durability))
    }

    /// Opens the store `B` holds at `location` read-only (contract §1.3), with a manual
    /// clock at [`CLOCK_START`]; a reopen is read-only too.
    pub fn open_read_only(location: &B::Location) -> Result<Self, Failure> {
        Self::open_adjusted(location, |options| options.read_only(true))
    }

    fn open_adjusted(
        location: &B::Location,
        adjust: impl FnOnce(OpenOptions) -> OpenOptions,
    ) -> Result<Self, Failure> {
        let clock = Arc::new(ManualClock::new(Timestamp::from_micros(CLOCK_START)));
        let options = adjust(OpenOptions::default().clock(clock.clone()));
        let backend = B::open(location, options.clone()).or_fail(format!("opening {}", B::NAME))?;
        Ok(Subject {
            backend: Some(backend),
            location: location.to_owned(),
            options,
            clock,
            states: BTreeMap::new(),
        })
    }

    /// The open backend.
    pub fn backend(&self) -> Option<&B> {
        self.backend.as_ref()
    }

    /// Drops every state handle (unflushed writes are lost), closes and reopens a
    /// persistent backend, and takes partition `p1` again.
    fn reopen(&mut self) -> Outcome {
        self.states.clear();
        if B::capabilities().persistent {
            self.backend = None;
            match B::open(self.location.borrow(), self.options.clone()) {
                Ok(b) => self.backend = Some(b),
                Err(e) => return format!("Err(reopen {})", outcome::open(&e)),
            }
        }
        let Some(backend) = self.backend.as_ref() else {
            return "Err(closed)".into();
        };
        match backend.state_store(REOPENED_PARTITION) {
            Ok(handle) => {
                let len = handle.len();
                self.states.insert(REOPENED_PARTITION.to_owned(), handle);
                format!("Ok(reopened, {REOPENED_PARTITION} holds {len})")
            }
            Err(e) => format!("Err(reopen {})", outcome::state(&e)),
        }
    }
}

fn lyquid(n: u8) -> LyquidId {
    LyquidId([n.wrapping_add(1); 20])
}

fn session(n: u8) -> SessionId {
    SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(n))
}

fn segment(n: u8) -> SegmentId {
    SegmentId::from_u128(0x0191_0000_0000_7000_8000_0000_0000_0000 + u128::from(n))
}

fn side_key(s: &Slot) -> SideEffectKey {
    SideEffectKey {
        lyquid: lyquid(s.lyquid),
        pos: ChainPos::new(s.block, 0),
        kind: SideEffectKind::from_tag(s.kind).unwrap_or(SideEffectKind::Event),
    }
}

fn call_key(s: &CallSlot) -> InterCallOutputKey {
    InterCallOutputKey {
        callee: lyquid(s.callee),
        pos: ChainPos::new(s.block, 0),
        inter_call_seq: s.seq,
    }
}

fn inbound(r: &Inbound) -> InboundInterCall {
    InboundInterCall {
        callee: lyquid(r.callee),
        order_key: CallOrderKey {
            pos: ChainPos::new(r.order_block, 0),
            seq: r.order_seq,
        },
        call: InterCall {
            caller: lyquid(9),
            pos: ChainPos::new(r.call_block, 0),
            payload: r.payload.0.clone(),
        },
    }
}

/// A listing cursor built from a raw name, or the name error its constructor gives.
fn optional<T>(
    raw: Option<&str>,
    make: impl FnOnce(String) -> Result<T, InputError>,
) -> Result<Option<T>, InputError> {
    raw.map(|raw| make(raw.to_owned())).transpose()
}

fn name_err(e: &InputError) -> Outcome {
    format!("Err(Name({e:?}))")
}

/// Builds a draft into a transaction, or the name error its constructor gives.
pub fn transaction(d: &Draft) -> Result<Transaction, InputError> {
    let book = Book::new(d.book.as_str())?;
    let mut tx = Transaction::new(book.clone());
    tx.id = txid(TX_SEED, d.id);
    for p in &d.postings {
        let account = AccountId::new(p.book.as_deref().unwrap_or(&d.book), &p.path)?;
        tx.postings.push(Posting {
            account,
            asset: AssetId::new(p.asset.as_str())?,
            amount: p.amount,
            direction: p.direction,
        });
    }
    tx.idempotency_key = d.idempotency_key.clone();
    tx.metadata = d.metadata.iter().cloned().collect();
    Ok(tx)
}

fn slices(blobs: &[Blob]) -> Vec<&[u8]> {
    blobs.iter().map(|b| b.0.as_ref()).collect()
}

impl<B: Backend> AnySubject for Subject<B> {
    fn name(&self) -> &'static str {
        B::NAME
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        if let Op::Reopen = op {
            return self.reopen();
        }
        let Some(backend) = self.backend.as_ref() else {
            return "Err(closed)".into();
        };
        match op {
            Op::Close => match backend.close() {
                Ok(()) => "Ok(closed)".into(),
                Err(e) => format!("Err(close {:?})", e.kind()),
            },
            Op::Put(pairs) => {
                let pairs: Vec<(&[u8], &[u8])> = pairs
                    .iter()
                    .map(|(k, v)| (k.0.as_ref(), v.0.as_ref()))
                    .collect();
                outcome(&backend.engine().put_batch(&pairs), outcome::engine)
            }
            Op::Delete(keys) => outcome(
                &backend.engine().delete_batch(&slices(keys)),
                outcome::engine,
            ),
            Op::Get(k) => outcome(&backend.engine().get(&k.0), outcome::engine),
            Op::GetMany(keys) => {
                outcome(&backend.engine().get_many(&slices(keys)), outcome::engine)
            }
            Op::Scan {
                start,
                end,
                limit,
                forward,
            } => outcome(
                &backend
                    .engine()
                    .range_scan(&start.0, &end.0, *limit, *forward),
                outcome::engine,
            ),
            Op::GetBatch(seq) => outcome(&backend.engine().get_batch(*seq), outcome::engine),
            Op::OldestBatch => outcome(&backend.engine().oldest_retained_batch(), outcome::engine),
            Op::Prune(cutoff) => {
                outcome(&backend.engine().prune_batch_log(*cutoff), outcome::engine)
            }
            Op::CurrentSeq => format!("Ok({})", backend.engine().current_sequence()),
            Op::WriteBatch(changes) => {
                let mutations: Vec<Mutation> = changes.iter().map(Change::mutation).collect();
                outcome(&backend.engine().write_batch(&mutations), outcome::engine)
            }
            Op::ApplyBatch { offset, changes } => {
                let engine = backend.engine();
                let seq = engine.current_sequence().saturating_add_signed(*offset);
                let mutations: Vec<Mutation> = changes.iter().map(Change::mutation).collect();
                outcome(&engine.apply_batch(seq, &mutations), outcome::engine)
            }
            Op::ReapplyBatch { back } => {
                let engine = backend.engine();
                let seq = engine.current_sequence().saturating_sub(*back);
                let logged = match engine.get_batch(seq) {
                    Ok(logged) => logged,
                    Err(e) => return format!("Err({})", outcome::engine(&e)),
                };
                let mutations = logged.unwrap_or_else(|| {
                    vec![Mutation::Put {
                        key: Bytes::from_static(b"reapplied"),
                        value: Bytes::new(),
                    }]
                });
                outcome(&engine.apply_batch(seq, &mutations), outcome::engine)
            }

            Op::OpenPartition(name) => match backend.state_store(name) {
                Ok(handle) => {
                    if self.states.contains_key(name) {
                        "Ok(second handle on a held partition)".into()
                    } else {
                        self.states.insert(name.clone(), handle);
                        "Ok(opened)".into()
                    }
                }
                Err(e) => format!("Err({})", outcome::state(&e)),
            },
            Op::ClosePartition(name) => format!("Ok({})", self.states.remove(name).is_some()),
            Op::StateCopy { from, to } => {
                let Some(source) = self.states.get(from) else {
                    return "no handle".into();
                };
                let bytes = match source.snapshot() {
                    Ok(s) => s.to_bytes(),
                    Err(e) => return format!("Err({})", outcome::state(&e)),
                };
                let Some(target) = self.states.get_mut(to) else {
                    return "no handle".into();
                };
                let result = StateSnapshot::from_bytes(&bytes)
                    .map_err(StateError::from)
                    .and_then(|s| target.restore(&s));
                outcome(&result, outcome::state)
            }
            Op::StateRestoreBytes(name, bytes) => {
                let Some(target) = self.states.get_mut(name) else {
                    return "no handle".into();
                };
                let result = StateSnapshot::from_bytes(bytes)
                    .map_err(StateError::from)
                    .and_then(|s| target.restore(&s));
                outcome(&result, outcome::state)
            }
            Op::StatePut(p, k, v) | Op::StateGetOrInsert(p, k, v) => {
                let Some(s) = self.states.get_mut(p) else {
                    return "no handle".into();
                };
                if let Op::StatePut(..) = op {
                    outcome(&s.put(&k.0, &v.0), outcome::state)
                } else {
                    outcome(&s.get_or_insert(&k.0, &v.0), outcome::state)
                }
            }
            Op::StateDelete(p, k) => match self.states.get_mut(p) {
                Some(s) => outcome(&s.delete(&k.0), outcome::state),
                None => "no handle".into(),
            },
            Op::StateGet(p, k) => match self.states.get(p) {
                Some(s) => outcome(&s.get(&k.0), outcome::state),
                None => "no handle".into(),
            },
            Op::StateContains(p, k) => match self.states.get(p) {
                Some(s) => outcome(&s.contains(&k.0), outcome::state),
                None => "no handle".into(),
            },
            Op::StateLen(p) => match self.states.get(p) {
                Some(s) => format!("Ok({}, empty={})", s.len(), s.is_empty()),
                None => "no handle".into(),
            },
            Op::StateSize(p) => match self.states.get(p) {
                Some(s) => format!("Ok({})", s.size_bytes()),
                None => "no handle".into(),
            },
            Op::StatePrefix(p, k) => match self.states.get(p) {
                Some(s) => outcome(&s.prefix_scan(&k.0), outcome::state),
                None => "no handle".into(),
            },
            Op::StateRange(p, a, b) => match self.states.get(p) {
                Some(s) => outcome(&s.range_scan(a.0.as_ref()..b.0.as_ref()), outcome::state),
                None => "no handle".into(),
            },
            Op::StateClear(p) => match self.states.get_mut(p) {
                Some(s) => outcome(&s.clear(), outcome::state),
                None => "no handle".into(),
            },
            Op::StateFlush(p) => match self.states.get_mut(p) {
                Some(s) => outcome(&s.flush(), outcome::state),
                None => "no handle".into(),
            },
            Op::ListPartitions { after, limit } => outcome(
                &backend.list_partitions(after.as_deref(), *limit),
                outcome::state,
            ),

            Op::RegisterAsset {
                id,
                precision,
                name,
            } => match AssetId::new(id.as_str()) {
                Ok(id) => outcome(
                    &backend.ledger().register_asset(&AssetDef {
                        id,
                        precision: *precision,
                        name: name.clone(),
                    }),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::OpenAccount {
                book,
                path,
                asset,
                kind,
                min_balance,
            } => {
                let ids =
                    AccountId::new(book, path).and_then(|a| Ok((a, AssetId::new(asset.as_str())?)));
                match ids {
                    Ok((id, asset)) => {
                        let mut cfg = AccountCfg::for_kind(*kind);
                        cfg.min_balance = *min_balance;
                        let def = AccountDef {
                            id,
                            asset,
                            kind: *kind,
                        };
                        outcome(&backend.ledger().open_account(&def, &cfg), outcome::ledger)
                    }
                    Err(e) => name_err(&e),
                }
            }
            Op::Commit(d) => match transaction(d) {
                Ok(tx) => outcome(&backend.ledger().commit(&tx), outcome::ledger),
                Err(e) => name_err(&e),
            },
            Op::CommitBatch(drafts) => {
                let txs: Result<Vec<Transaction>, InputError> =
                    drafts.iter().map(transaction).collect();
                match txs {
                    Ok(txs) => match backend.ledger().commit_batch(&txs) {
                        Ok(results) => {
                            let each: Vec<Outcome> = results
                                .iter()
                                .map(|r| outcome(r, outcome::ledger))
                                .collect();
                            format!("Ok({each:?})")
                        }
                        Err(e) => format!("Err({})", outcome::ledger(&e)),
                    },
                    Err(e) => name_err(&e),
                }
            }
            Op::Balance { book, path, as_of } => match AccountId::new(book, path) {
                Ok(id) => outcome(
                    &backend
                        .ledger()
                        .balance(&id, as_of.map(Timestamp::from_micros)),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::Account { book, path } => match AccountId::new(book, path) {
                Ok(id) => outcome(&backend.ledger().account(&id), outcome::ledger),
                Err(e) => name_err(&e),
            },
            Op::Asset(id) => match AssetId::new(id.as_str()) {
                Ok(id) => outcome(&backend.ledger().asset(&id), outcome::ledger),
                Err(e) => name_err(&e),
            },
            Op::TxLookup(n) => outcome(
                &backend.ledger().transaction(&txid(TX_SEED, *n)),
                outcome::ledger,
            ),
            Op::History {
                book,
                path,
                after,
                limit,
            } => match AccountId::new(book, path) {
                Ok(id) => outcome(
                    &backend.ledger().account_history(&id, *after, *limit),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::Trial { book, as_of } => match Book::new(book.as_str()) {
                Ok(b) => outcome(
                    &backend
                        .ledger()
                        .trial_balance(&b, as_of.map(Timestamp::from_micros)),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::Events { book, after, limit } => match Book::new(book.as_str()) {
                Ok(b) => outcome(
                    &backend.ledger().read_events(&b, *after, *limit),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::ListBooks { after, limit } => match optional(after.as_deref(), Book::new) {
                Ok(after) => outcome(
                    &backend.ledger().list_books(after.as_ref(), *limit),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::ListAssets { after, limit } => match optional(after.as_deref(), AssetId::new) {
                Ok(after) => outcome(
                    &backend.ledger().list_assets(after.as_ref(), *limit),
                    outcome::ledger,
                ),
                Err(e) => name_err(&e),
            },
            Op::ListAccounts { book, after, limit } => {
                let args = Book::new(book.as_str())
                    .and_then(|b| Ok((b, optional(after.as_deref(), AccountPath::new)?)));
                match args {
                    Ok((book, after)) => outcome(
                        &backend
                            .ledger()
                            .list_accounts(&book, after.as_ref(), *limit),
                        outcome::ledger,
                    ),
                    Err(e) => name_err(&e),
                }
            }
            Op::AdvanceClock(us) => {
                self.clock.advance(*us);
                "Ok(clock)".into()
            }
            Op::SetClock(us) => {
                self.clock.set(Timestamp::from_micros(*us));
                "Ok(clock)".into()
            }

            Op::Append {
                session: s,
                segment: g,
                entry,
            } => outcome(
                &backend
                    .segment_log()
                    .append(session(*s), segment(*g), &entry.0),
                outcome::segment,
            ),
            Op::Trace {
                session: s,
                segment: g,
                entry,
            } => outcome(
                &backend
                    .segment_log()
                    .append_trace(session(*s), segment(*g), &entry.0),
                outcome::segment,
            ),
            Op::ReadAll {
                session: s,
                segment: g,
            } => outcome(
                &backend.segment_log().read_all(session(*s), segment(*g)),
                outcome::segment,
            ),
            Op::ReadTraces {
                session: s,
                segment: g,
            } => outcome(
                &backend.segment_log().read_traces(session(*s), segment(*g)),
                outcome::segment,
            ),
            Op::EntryCount {
                session: s,
                segment: g,
            } => outcome(
                &backend
                    .segment_log()
                    .read_entry_count(session(*s), segment(*g)),
                outcome::segment,
            ),
            Op::Exists {
                session: s,
                segment: g,
            } => outcome(
                &backend.segment_log().exists(session(*s), segment(*g)),
                outcome::segment,
            ),
            Op::CreateSegment {
                session: s,
                segment: g,
                entries,
            } => outcome(
                &backend
                    .segment_log()
                    .create_segment(session(*s), segment(*g), &slices(entries)),
                outcome::segment,
            ),
            Op::Truncate {
                session: s,
                segment: g,
                len,
            } => outcome(
                &backend
                    .segment_log()
                    .truncate(session(*s), segment(*g), *len),
                outcome::segment,
            ),
            Op::ListSessions => outcome(&backend.segment_log().list_sessions(), outcome::segment),
            Op::ListSegments(s) => outcome(
                &backend.segment_log().list_segments(session(*s)),
                outcome::segment,
            ),
            Op::ListSessionsPage { after, limit } => outcome(
                &backend
                    .segment_log()
                    .list_sessions_page(after.map(session).as_ref(), *limit),
                outcome::segment,
            ),
            Op::ListSegmentsPage {
                session: s,
                after,
                limit,
            } => outcome(
                &backend.segment_log().list_segments_page(
                    session(*s),
                    after.map(segment).as_ref(),
                    *limit,
                ),
                outcome::segment,
            ),
            Op::LookupSession(g) => outcome(
                &backend.segment_log().lookup_session_of(segment(*g)),
                outcome::segment,
            ),

            Op::WriteOutputs(slots) => {
                let map: BTreeMap<SideEffectKey, EventOutputs> = slots
                    .iter()
                    .map(|(s, outs)| {
                        (
                            side_key(s),
                            EventOutputs(outs.iter().map(|b| b.0.clone()).collect()),
                        )
                    })
                    .collect();
                outcome(
                    &backend.side_effects().write_outputs(&map),
                    outcome::side_effect,
                )
            }
            Op::ReadOutputs(s) => outcome(
                &backend.side_effects().read_outputs(&side_key(s)),
                outcome::side_effect,
            ),
            Op::UpsertCallOutput(s, out) => {
                let out: Option<Bytes> = out.as_ref().map(|b| b.0.clone());
                outcome(
                    &backend
                        .side_effects()
                        .upsert_inter_call_output(&call_key(s), &out),
                    outcome::side_effect,
                )
            }
            Op::ReadCallOutput(s) => outcome(
                &backend.side_effects().read_inter_call_output(&call_key(s)),
                outcome::side_effect,
            ),
            Op::AppendInbound(records) => {
                let records: Vec<InboundInterCall> = records.iter().map(inbound).collect();
                outcome(
                    &backend.side_effects().append_inbound_inter_calls(&records),
                    outcome::side_effect,
                )
            }
            Op::ReadInbound {
                callee,
                from,
                until,
                limit,
            } => {
                let from = from.map(|(block, seq)| CallOrderKey {
                    pos: ChainPos::new(block, 0),
                    seq,
                });
                outcome(
                    &backend.side_effects().read_inbound_inter_calls(
                        &lyquid(*callee),
                        from.as_ref(),
                        until.map(|block| ChainPos::new(block, 0)),
                        *limit,
                    ),
                    outcome::side_effect,
                )
            }
            Op::ListOutputKeys { after, limit } => outcome(
                &backend
                    .side_effects()
                    .list_output_keys(after.as_ref().map(side_key).as_ref(), *limit),
                outcome::side_effect,
            ),
            Op::ListCallOutputKeys { after, limit } => outcome(
                &backend
                    .side_effects()
                    .list_inter_call_output_keys(after.as_ref().map(call_key).as_ref(), *limit),
                outcome::side_effect,
            ),
            Op::ListCallees { after, limit } => outcome(
                &backend
                    .side_effects()
                    .list_inbound_callees(after.map(lyquid).as_ref(), *limit),
                outcome::side_effect,
            ),
            // Handled before the backend is borrowed.
            Op::Reopen => "Ok(reopened)".into(),
        }
    }
}
