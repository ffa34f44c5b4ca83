//! The crash workload: a seeded, deterministic sequence of writes to every store, and the
//! [`Writer`] that applies it to any backend.
//!
//! The crash writer process applies it to the backend under test and acknowledges each
//! operation; the test applies the same sequence to the in-memory reference backend (the
//! model) and so knows exactly what every store must hold after any prefix of it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book,
    CallEventOutput, CallOrderKey, ChainPos, Durability, EventOutputs, InboundInterCall, InterCall,
    InterCallOutputKey, LedgerStore, LyquidId, ManualClock, OpenError, OpenOptions, SegmentId,
    SegmentLogStore, SessionId, SideEffectKey, SideEffectKind, SideEffectStore, StateError,
    StateSnapshot, StateStore, StoreEngine, Timestamp, Transaction, TxId,
};

use crate::dump::SideEffectKeys;
use crate::failure::OrFail;
use crate::rng::Rng;
use crate::{Failure, records};

/// The state partition the workload writes.
pub const STATE_PARTITION: &str = "crash-state";
/// The ledger clock stands at `CLOCK_BASE + 1000 * i` µs while operation `i` runs.
pub const CLOCK_BASE: u64 = 1_700_000_000_000_000;

/// Which store an operation writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreKind {
    /// [`StoreEngine`].
    Engine,
    /// [`StateStore`].
    State,
    /// [`LedgerStore`].
    Ledger,
    /// [`SegmentLogStore`].
    Segments,
    /// [`SideEffectStore`].
    SideEffects,
}

/// One write of the workload. Every operation succeeds on a correct backend (rejected
/// drafts inside a `CommitBatch` are positional results, not failures).
#[derive(Debug, Clone)]
pub enum Op {
    /// `put_batch`.
    EnginePut(Vec<(Vec<u8>, Vec<u8>)>),
    /// `delete_batch`.
    EngineDelete(Vec<Vec<u8>>),
    /// `prune_batch_log`.
    EnginePrune(u64),
    /// `StateStore::put` (durable at the next flush).
    StatePut(Vec<u8>, Vec<u8>),
    /// `StateStore::delete`.
    StateDelete(Vec<u8>),
    /// `StateStore::clear`.
    StateClear,
    /// `StateStore::flush`.
    StateFlush,
    /// `register_asset`.
    RegisterAsset(AssetDef),
    /// `open_account`.
    OpenAccount(AccountDef, AccountCfg),
    /// `commit` of a valid draft (or a retry of a used idempotency key).
    Commit(Transaction),
    /// `commit_batch`, some drafts of which are rejected.
    CommitBatch(Vec<Transaction>),
    /// `append`.
    Append(SessionId, SegmentId, Vec<u8>),
    /// `append_trace`.
    AppendTrace(SessionId, SegmentId, Vec<u8>),
    /// `create_segment`.
    CreateSegment(SessionId, SegmentId, Vec<Vec<u8>>),
    /// `write_outputs` (new slots, or an exact replay).
    WriteOutputs(BTreeMap<SideEffectKey, EventOutputs>),
    /// `upsert_inter_call_output` (new, or an exact replay).
    UpsertCallOutput(InterCallOutputKey, CallEventOutput),
    /// `append_inbound_inter_calls` (new records, or an exact replay).
    AppendInbound(Vec<InboundInterCall>),
}

impl Op {
    /// The store this operation writes.
    pub fn store(&self) -> StoreKind {
        match self {
            Op::EnginePut(_) | Op::EngineDelete(_) | Op::EnginePrune(_) => StoreKind::Engine,
            Op::StatePut(..) | Op::StateDelete(_) | Op::StateClear | Op::StateFlush => {
                StoreKind::State
            }
            Op::RegisterAsset(_) | Op::OpenAccount(..) | Op::Commit(_) | Op::CommitBatch(_) => {
                StoreKind::Ledger
            }
            Op::Append(..) | Op::AppendTrace(..) | Op::CreateSegment(..) => StoreKind::Segments,
            Op::WriteOutputs(_) | Op::UpsertCallOutput(..) | Op::AppendInbound(_) => {
                StoreKind::SideEffects
            }
        }
    }
}

/// The fixed names the workload uses.
#[derive(Debug, Clone)]
pub struct Names {
    /// `USD` and `EUR`.
    pub assets: [AssetId; 2],
    /// `shop`, then `treasury`.
    pub books: [Book; 2],
    /// shop's cash (floor 0) and sales, treasury's bank and loan.
    pub accounts: [AccountId; 4],
    /// Three segments, the first two of session 0, the third of session 1.
    pub segments: [(SessionId, SegmentId); 3],
    /// Two lyquids.
    pub lyquids: [LyquidId; 2],
}

impl Names {
    /// The names (all valid; an error would mean the naming rules changed).
    pub fn new() -> Result<Self, Failure> {
        let account = |book: &str, path: &str| AccountId::new(book, path).or_fail("account id");
        let s0 = SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        let s1 = SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
        let seg = |n: u128| SegmentId::from_u128(0x0191_0000_0000_7000_8000_0000_0000_0000 + n);
        Ok(Names {
            assets: [
                AssetId::new("USD").or_fail("asset id")?,
                AssetId::new("EUR").or_fail("asset id")?,
            ],
            books: [
                Book::new("shop").or_fail("book")?,
                Book::new("treasury").or_fail("book")?,
            ],
            accounts: [
                account("shop", "assets:cash")?,
                account("shop", "income:sales")?,
                account("treasury", "assets:bank")?,
                account("treasury", "liabilities:loan")?,
            ],
            segments: [(s0, seg(1)), (s0, seg(2)), (s1, seg(3))],
            lyquids: [LyquidId([0x11; 20]), LyquidId([0x22; 20])],
        })
    }

    /// Every book a dump reads: the system book and the workload's two.
    pub fn all_books(&self) -> Vec<Book> {
        let mut books = vec![Book::system()];
        books.extend(self.books.iter().cloned());
        books
    }
}

/// A deterministic transaction id: `n` within the run of `seed`.
pub fn txid(seed: u64, n: u64) -> TxId {
    // TxId wraps a UUID; SegmentId offers the same UUID built from a number.
    TxId(SegmentId::from_u128((u128::from(seed) << 64) | u128::from(n)).0)
}

struct Gen {
    rng: Rng,
    seed: u64,
    names: Names,
    engine_seq: u64,
    cash: i64,
    tx_count: u64,
    sale_keys: Vec<(String, u64)>,
    record_n: u64,
    block: u64,
    outputs: Vec<BTreeMap<SideEffectKey, EventOutputs>>,
    call_outputs: Vec<(InterCallOutputKey, CallEventOutput)>,
    inbound: Vec<Vec<InboundInterCall>>,
}

/// Generates `len` operations from `seed`: the same sequence in every process.
///
/// The first six set up the ledger (two assets, four accounts); after that the stores are
/// written in a random mix.
pub fn generate(seed: u64, len: usize) -> Result<Vec<Op>, Failure> {
    let names = Names::new()?;
    let mut g = Gen {
        rng: Rng::new(seed),
        seed,
        names,
        engine_seq: 0,
        cash: 0,
        tx_count: 0,
        sale_keys: Vec::new(),
        record_n: 0,
        block: 1,
        outputs: Vec::new(),
        call_outputs: Vec::new(),
        inbound: Vec::new(),
    };
    let mut ops = g.setup();
    while ops.len() < len {
        let roll = g.rng.below(100);
        let op = match roll {
            0..30 => g.engine_op(),
            30..55 => g.state_op(),
            55..75 => g.ledger_op(),
            75..90 => g.segment_op(),
            _ => g.side_effect_op(),
        };
        ops.push(op);
    }
    ops.truncate(len);
    Ok(ops)
}

impl Gen {
    fn setup(&mut self) -> Vec<Op> {
        let n = &self.names;
        let mut ops = vec![
            Op::RegisterAsset(AssetDef {
                id: n.assets[0].clone(),
                precision: 2,
                name: "US dollar".into(),
            }),
            Op::RegisterAsset(AssetDef {
                id: n.assets[1].clone(),
                precision: 2,
                name: "Euro".into(),
            }),
        ];
        let defs = [
            (0, 0, AccountKind::Asset, Some(0)),
            (1, 0, AccountKind::Income, None),
            (2, 1, AccountKind::Asset, None),
            (3, 1, AccountKind::Liability, None),
        ];
        for (account, asset, kind, floor) in defs {
            let mut cfg = AccountCfg::for_kind(kind);
            cfg.min_balance = floor;
            ops.push(Op::OpenAccount(
                AccountDef {
                    id: n.accounts[account].clone(),
                    asset: n.assets[asset].clone(),
                    kind,
                },
                cfg,
            ));
        }
        ops
    }

    fn record(&mut self, writer: u32) -> Vec<u8> {
        self.record_n += 1;
        let pad = if self.rng.percent(5) {
            self.rng.between(4096, 65536) as usize
        } else {
            self.rng.below(200) as usize
        };
        records::encode(writer, self.record_n, pad)
    }

    fn engine_key(&mut self) -> Vec<u8> {
        format!("k/{:02}", self.rng.below(48)).into_bytes()
    }

    fn engine_op(&mut self) -> Op {
        let roll = self.rng.below(100);
        if roll < 4 && self.engine_seq > 2 {
            let back = self.rng.below(8);
            return Op::EnginePrune(self.engine_seq.saturating_sub(back));
        }
        self.engine_seq += 1;
        if roll < 25 {
            let keys = (0..self.rng.between(1, 4))
                .map(|_| self.engine_key())
                .collect();
            Op::EngineDelete(keys)
        } else {
            let pairs = (0..self.rng.between(1, 8))
                .map(|_| (self.engine_key(), self.record(0)))
                .collect();
            Op::EnginePut(pairs)
        }
    }

    fn state_op(&mut self) -> Op {
        let key = format!("s/{:02}", self.rng.below(32)).into_bytes();
        match self.rng.below(100) {
            0..55 => Op::StatePut(key, self.record(1)),
            55..75 => Op::StateDelete(key),
            75..77 => Op::StateClear,
            _ => Op::StateFlush,
        }
    }

    fn draft(&mut self, book: usize) -> Transaction {
        self.tx_count += 1;
        let mut tx = Transaction::new(self.names.books[book].clone());
        tx.id = txid(self.seed, self.tx_count);
        tx
    }

    fn sale(&mut self) -> Transaction {
        let amount = self.rng.between(1, 5000);
        let n = &self.names;
        let (cash, sales, usd) = (
            n.accounts[0].clone(),
            n.accounts[1].clone(),
            n.assets[0].clone(),
        );
        let key = format!("sale-{}", self.tx_count + 1);
        let tx = self
            .draft(0)
            .debit(&cash, &usd, amount)
            .credit(&sales, &usd, amount)
            .with_idempotency_key(key.clone())
            .with_metadata("kind", "sale");
        self.cash += amount as i64;
        self.sale_keys.push((key, amount));
        tx
    }

    /// A retry of an earlier sale's idempotency key, with a fresh transaction id.
    fn retry(&mut self) -> Option<Transaction> {
        if self.sale_keys.is_empty() {
            return None;
        }
        let (key, amount) =
            self.sale_keys[self.rng.below(self.sale_keys.len() as u64) as usize].clone();
        let n = &self.names;
        let (cash, sales, usd) = (
            n.accounts[0].clone(),
            n.accounts[1].clone(),
            n.assets[0].clone(),
        );
        Some(
            self.draft(0)
                .debit(&cash, &usd, amount)
                .credit(&sales, &usd, amount)
                .with_idempotency_key(key),
        )
    }

    /// A refund, rejected by the cash floor when it exceeds the cash.
    fn refund(&mut self) -> Transaction {
        let amount = self.rng.between(1, 8000);
        let n = &self.names;
        let (cash, sales, usd) = (
            n.accounts[0].clone(),
            n.accounts[1].clone(),
            n.assets[0].clone(),
        );
        let tx = self
            .draft(0)
            .credit(&cash, &usd, amount)
            .debit(&sales, &usd, amount);
        if amount as i64 <= self.cash {
            self.cash -= amount as i64;
        }
        tx
    }

    fn loan(&mut self) -> Transaction {
        let amount = self.rng.between(1, 1_000_000);
        let n = &self.names;
        let (bank, loan, eur) = (
            n.accounts[2].clone(),
            n.accounts[3].clone(),
            n.assets[1].clone(),
        );
        self.draft(1)
            .debit(&bank, &eur, amount)
            .credit(&loan, &eur, amount)
    }

    fn unbalanced(&mut self) -> Transaction {
        let n = &self.names;
        let (cash, sales, usd) = (
            n.accounts[0].clone(),
            n.accounts[1].clone(),
            n.assets[0].clone(),
        );
        self.draft(0).debit(&cash, &usd, 5).credit(&sales, &usd, 4)
    }

    fn ledger_op(&mut self) -> Op {
        match self.rng.below(100) {
            0..35 => Op::Commit(self.sale()),
            35..50 => Op::Commit(self.loan()),
            50..58 => match self.retry() {
                Some(tx) => Op::Commit(tx),
                None => Op::Commit(self.sale()),
            },
            _ => {
                let drafts = (0..self.rng.between(2, 6))
                    .map(|_| match self.rng.below(100) {
                        0..35 => self.sale(),
                        35..60 => self.refund(),
                        60..80 => self.loan(),
                        80..90 => self.retry().unwrap_or_else(|| self.unbalanced()),
                        _ => self.unbalanced(),
                    })
                    .collect();
                Op::CommitBatch(drafts)
            }
        }
    }

    fn segment_op(&mut self) -> Op {
        let which = self.rng.below(3) as usize;
        let (session, segment) = self.names.segments[which];
        match self.rng.below(100) {
            0..75 => Op::Append(session, segment, self.record(10 + which as u32)),
            75..90 => Op::AppendTrace(session, segment, self.record(20 + which as u32)),
            _ => {
                let entries = (0..self.rng.below(4))
                    .map(|_| self.record(10 + which as u32))
                    .collect();
                Op::CreateSegment(session, segment, entries)
            }
        }
    }

    fn payload(&mut self) -> Bytes {
        Bytes::from(self.record(30))
    }

    fn side_effect_op(&mut self) -> Op {
        let roll = self.rng.below(100);
        let replay = self.rng.percent(25);
        match roll {
            0..50 => {
                if replay && let Some(map) = self.pick(&self.outputs.clone()) {
                    return Op::WriteOutputs(map);
                }
                self.block += 1;
                let mut map = BTreeMap::new();
                for i in 0..self.rng.between(1, 3) {
                    let key = SideEffectKey {
                        lyquid: self.names.lyquids[(i % 2) as usize],
                        pos: ChainPos::new(self.block, i as u32),
                        kind: [
                            SideEffectKind::Event,
                            SideEffectKind::Call,
                            SideEffectKind::Timer,
                        ][self.rng.below(3) as usize],
                    };
                    let outputs = (0..self.rng.below(4)).map(|_| self.payload()).collect();
                    map.insert(key, EventOutputs(outputs));
                }
                self.outputs.push(map.clone());
                Op::WriteOutputs(map)
            }
            50..75 => {
                if replay && let Some((key, out)) = self.pick(&self.call_outputs.clone()) {
                    return Op::UpsertCallOutput(key, out);
                }
                self.block += 1;
                let key = InterCallOutputKey {
                    callee: self.names.lyquids[self.rng.below(2) as usize],
                    pos: ChainPos::new(self.block, 0),
                    inter_call_seq: self.rng.below(3) as u32,
                };
                let out = if self.rng.percent(30) {
                    None
                } else {
                    Some(self.payload())
                };
                self.call_outputs.push((key, out.clone()));
                Op::UpsertCallOutput(key, out)
            }
            _ => {
                if replay && let Some(records) = self.pick(&self.inbound.clone()) {
                    return Op::AppendInbound(records);
                }
                self.block += 1;
                let records: Vec<InboundInterCall> = (0..self.rng.between(1, 3))
                    .map(|i| InboundInterCall {
                        callee: self.names.lyquids[self.rng.below(2) as usize],
                        order_key: CallOrderKey {
                            pos: ChainPos::new(self.block, 1),
                            seq: i as u32,
                        },
                        call: InterCall {
                            caller: self.names.lyquids[0],
                            pos: ChainPos::new(self.block, 0),
                            payload: self.payload(),
                        },
                    })
                    .collect();
                self.inbound.push(records.clone());
                Op::AppendInbound(records)
            }
        }
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.rng.below(items.len() as u64) as usize].clone())
        }
    }
}

/// Every side-effect key and callee the operations touch, in first-touch order.
pub fn side_effect_keys(ops: &[Op]) -> SideEffectKeys {
    let mut keys = SideEffectKeys::default();
    for op in ops {
        match op {
            Op::WriteOutputs(map) => {
                for key in map.keys() {
                    if !keys.outputs.contains(key) {
                        keys.outputs.push(*key);
                    }
                }
            }
            Op::UpsertCallOutput(key, _) if !keys.call_outputs.contains(key) => {
                keys.call_outputs.push(*key);
            }
            Op::AppendInbound(records) => {
                for r in records {
                    if !keys.callees.contains(&r.callee) {
                        keys.callees.push(r.callee);
                    }
                }
            }
            _ => {}
        }
    }
    keys
}

/// How many times a test reopens a released directory that still reports `Locked`, 10 ms
/// apart (see [`open_released`]).
pub const RELEASE_RETRIES: u32 = 200;

/// Opens `B` at `location` (for the embedded backends the directory), retrying for up to
/// two seconds while the directory reports `Locked`.
///
/// For directories whose last holder is known to be gone (dropped, or a killed and reaped
/// process): the holder's lock can outlive it briefly in a child process that this
/// multi-threaded test process is forking at that moment, which holds a copy of the lock
/// file's descriptor until it execs. A holder that really keeps the lock still fails. A
/// server backend never answers `Locked`: it is simply opened.
pub fn open_released<B: Backend>(
    location: &B::Location,
    options: OpenOptions,
) -> Result<B, OpenError> {
    let mut tries = 0;
    loop {
        match B::open(location, options.clone()) {
            Err(OpenError::Locked { .. }) if tries < RELEASE_RETRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// A backend with every store of the workload open, applying operations one by one.
pub struct Writer<B: Backend> {
    /// The backend.
    pub backend: B,
    /// Its engine.
    pub engine: Arc<B::Engine>,
    /// Its ledger.
    pub ledger: Arc<B::Ledger>,
    /// Its segment log.
    pub segments: Arc<B::Segments>,
    /// Its side-effect store.
    pub side_effects: Arc<B::SideEffects>,
    /// The workload's state partition.
    pub state: B::State,
    /// The state as of the last flush: what survives a crash.
    pub flushed_state: StateSnapshot,
    clock: Arc<ManualClock>,
}

impl<B: Backend> Writer<B> {
    /// Opens `B` at `location` (for the embedded backends the directory) with `durability`
    /// and a manual clock, and takes every store.
    pub fn open(location: &B::Location, durability: Durability) -> Result<Self, Failure> {
        Self::open_waiting(location, durability, Duration::ZERO).map(|(writer, _)| writer)
    }

    /// [`open`](Self::open), waiting up to `within` for the workload's state partition
    /// while another owner holds it (`PartitionInUse`: on a shared backend, an owner in
    /// another process that died and whose session the server has not ended yet). Returns
    /// the writer and how long the partition took to become free.
    pub fn open_waiting(
        location: &B::Location,
        durability: Durability,
        within: Duration,
    ) -> Result<(Self, Duration), Failure> {
        let clock = Arc::new(ManualClock::new(Timestamp::from_micros(CLOCK_BASE)));
        let options = OpenOptions::default()
            .durability(durability)
            .clock(clock.clone());
        let backend = open_released::<B>(location, options)
            .or_fail(format!("opening {} at {location:?}", B::NAME))?;
        let started = Instant::now();
        let state = loop {
            match backend.state_store(STATE_PARTITION) {
                Err(StateError::PartitionInUse { .. }) if started.elapsed() < within => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                other => break other.or_fail("opening the state partition")?,
            }
        };
        let waited = started.elapsed();
        let flushed_state = state.snapshot().or_fail("state snapshot")?;
        let writer = Writer {
            engine: backend.engine(),
            ledger: backend.ledger(),
            segments: backend.segment_log(),
            side_effects: backend.side_effects(),
            backend,
            state,
            flushed_state,
            clock,
        };
        Ok((writer, waited))
    }

    /// Applies operation number `index`.
    pub fn apply(&mut self, index: usize, op: &Op) -> Result<(), Failure> {
        self.clock
            .set(Timestamp::from_micros(CLOCK_BASE + 1000 * index as u64));
        let what = || format!("operation {index} ({:?})", op.store());
        match op {
            Op::EnginePut(pairs) => {
                let pairs: Vec<(&[u8], &[u8])> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
                    .collect();
                self.engine.put_batch(&pairs).or_fail(what())?;
            }
            Op::EngineDelete(keys) => {
                let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                self.engine.delete_batch(&keys).or_fail(what())?;
            }
            Op::EnginePrune(cutoff) => {
                self.engine.prune_batch_log(*cutoff).or_fail(what())?;
            }
            Op::StatePut(k, v) => self.state.put(k, v).or_fail(what())?,
            Op::StateDelete(k) => self.state.delete(k).or_fail(what())?,
            Op::StateClear => self.state.clear().or_fail(what())?,
            Op::StateFlush => {
                self.state.flush().or_fail(what())?;
                self.flushed_state = self.state.snapshot().or_fail(what())?;
            }
            Op::RegisterAsset(def) => self.ledger.register_asset(def).or_fail(what())?,
            Op::OpenAccount(def, cfg) => self.ledger.open_account(def, cfg).or_fail(what())?,
            Op::Commit(tx) => {
                self.ledger.commit(tx).or_fail(what())?;
            }
            Op::CommitBatch(txs) => {
                self.ledger.commit_batch(txs).or_fail(what())?;
            }
            Op::Append(session, segment, entry) => {
                self.segments
                    .append(*session, *segment, entry)
                    .or_fail(what())?;
            }
            Op::AppendTrace(session, segment, entry) => {
                self.segments
                    .append_trace(*session, *segment, entry)
                    .or_fail(what())?;
            }
            Op::CreateSegment(session, segment, entries) => {
                let entries: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
                self.segments
                    .create_segment(*session, *segment, &entries)
                    .or_fail(what())?;
            }
            Op::WriteOutputs(map) => self.side_effects.write_outputs(map).or_fail(what())?,
            Op::UpsertCallOutput(key, out) => self
                .side_effects
                .upsert_inter_call_output(key, out)
                .or_fail(what())?,
            Op::AppendInbound(records) => self
                .side_effects
                .append_inbound_inter_calls(records)
                .or_fail(what())?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_operations() {
        let a = generate(7, 300).unwrap();
        let b = generate(7, 300).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.len(), 300);
        for kind in [
            StoreKind::Engine,
            StoreKind::State,
            StoreKind::Ledger,
            StoreKind::Segments,
            StoreKind::SideEffects,
        ] {
            assert!(
                a.iter().any(|op| op.store() == kind),
                "{kind:?} never written"
            );
        }
    }

    #[test]
    fn the_workload_runs_cleanly_on_the_reference_backend() {
        let ops = generate(11, 400).unwrap();
        let mut writer =
            Writer::<store_mem::MemBackend>::open(Path::new(""), Durability::Immediate).unwrap();
        for (i, op) in ops.iter().enumerate() {
            writer.apply(i, op).unwrap();
        }
        let names = Names::new().unwrap();
        for book in &names.books {
            let counts = crate::invariants::ledger_book(&*writer.ledger, book, true).unwrap();
            assert!(counts.transactions > 0, "no transaction in {book}");
        }
        assert!(crate::invariants::engine_log(&*writer.engine).unwrap() > 0);
        assert!(crate::invariants::segments_whole(&*writer.segments).unwrap() > 0);
    }
}
