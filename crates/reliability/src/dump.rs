//! Comparable pictures of what each store holds, read through the public traits only.
//!
//! Two backends hold the same data exactly when their dumps are equal; the crash tests
//! compare a recovered backend's dumps with the reference model's, the stress tests take
//! them for the final check.

use bytes::Bytes;
use store_api::{
    AccountId, BalanceSnapshot, Book, CallEventOutput, EventOutputs, InboundInterCall,
    InterCallOutputKey, LedgerError, LedgerEvent, LedgerStore, LyquidId, Mutation, SegmentError,
    SegmentId, SegmentLogStore, Sequenced, SessionId, SideEffectKey, SideEffectStore, StoreEngine,
    TrialBalanceRow,
};

use crate::Failure;
use crate::failure::OrFail;

/// Everything an engine holds: the sequence counter, every key, and the retained log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineDump {
    /// `current_sequence()`.
    pub seq: u64,
    /// Every `(key, value)`, ascending.
    pub entries: Vec<(Bytes, Bytes)>,
    /// `oldest_retained_batch()`.
    pub oldest: Option<u64>,
    /// Every retained batch, by sequence number.
    pub batches: Vec<(u64, Vec<Mutation>)>,
}

/// Dumps an engine.
pub fn engine<E: StoreEngine + ?Sized>(engine: &E) -> Result<EngineDump, Failure> {
    let seq = engine.current_sequence();
    let entries = engine
        .range_scan(b"", b"", usize::MAX, true)
        .or_fail("engine range_scan of everything")?;
    let oldest = engine
        .oldest_retained_batch()
        .or_fail("engine oldest_retained_batch")?;
    let mut batches = Vec::new();
    if let Some(first) = oldest {
        for s in first..=seq {
            if let Some(batch) = engine.get_batch(s).or_fail(format!("get_batch({s})"))? {
                batches.push((s, batch));
            }
        }
    }
    Ok(EngineDump {
        seq,
        entries,
        oldest,
        batches,
    })
}

/// One book: its events and its trial balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookDump {
    /// The book.
    pub book: Book,
    /// Every event, ascending.
    pub events: Vec<Sequenced<LedgerEvent>>,
    /// The all-time trial balance.
    pub trial_balance: Vec<TrialBalanceRow>,
}

/// What a ledger holds for a set of books and accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerDump {
    /// Per book.
    pub books: Vec<BookDump>,
    /// Per account: its balance, or `None` when it is not open.
    pub balances: Vec<(AccountId, Option<BalanceSnapshot>)>,
}

/// Dumps `books` and `accounts` of a ledger.
pub fn ledger<L: LedgerStore + ?Sized>(
    ledger: &L,
    books: &[Book],
    accounts: &[AccountId],
) -> Result<LedgerDump, Failure> {
    let mut dump = LedgerDump::default();
    for book in books {
        let events = ledger
            .read_events(book, None, usize::MAX)
            .or_fail(format!("read_events({book})"))?;
        let trial_balance = ledger
            .trial_balance(book, None)
            .or_fail(format!("trial_balance({book})"))?;
        dump.books.push(BookDump {
            book: book.clone(),
            events,
            trial_balance,
        });
    }
    for account in accounts {
        let balance = match ledger.balance(account, None) {
            Ok(b) => Some(b),
            Err(LedgerError::UnknownAccount { .. }) => None,
            Err(e) => return Err(Failure(format!("balance({account}): {e}"))),
        };
        dump.balances.push((account.clone(), balance));
    }
    Ok(dump)
}

/// One segment as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentState {
    /// Its session.
    pub session: SessionId,
    /// Its id.
    pub segment: SegmentId,
    /// `exists()`.
    pub exists: bool,
    /// `read_all()`, or `None` when not found.
    pub entries: Option<Vec<Bytes>>,
    /// `read_traces()`.
    pub traces: Vec<Bytes>,
}

/// What a segment log holds for a set of segments, with its listings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentDump {
    /// `list_sessions()`.
    pub sessions: Vec<SessionId>,
    /// `list_segments()` of each listed session.
    pub listings: Vec<(SessionId, Vec<SegmentId>)>,
    /// Each segment asked for.
    pub segments: Vec<SegmentState>,
}

/// Dumps a segment log's listings and the given `(session, segment)` pairs.
pub fn segments<S: SegmentLogStore + ?Sized>(
    log: &S,
    known: &[(SessionId, SegmentId)],
) -> Result<SegmentDump, Failure> {
    let sessions = log.list_sessions().or_fail("list_sessions")?;
    let mut listings = Vec::new();
    for &session in &sessions {
        listings.push((
            session,
            log.list_segments(session).or_fail("list_segments")?,
        ));
    }
    let mut states = Vec::new();
    for &(session, segment) in known {
        let exists = log.exists(session, segment).or_fail("exists")?;
        let entries = match log.read_all(session, segment) {
            Ok(entries) => Some(entries),
            Err(SegmentError::NotFound { .. }) => None,
            Err(e) => return Err(Failure(format!("read_all({segment}): {e}"))),
        };
        let traces = log.read_traces(session, segment).or_fail("read_traces")?;
        states.push(SegmentState {
            session,
            segment,
            exists,
            entries,
            traces,
        });
    }
    Ok(SegmentDump {
        sessions,
        listings,
        segments: states,
    })
}

/// The keys of a side-effect store a dump reads.
#[derive(Debug, Clone, Default)]
pub struct SideEffectKeys {
    /// Output slots.
    pub outputs: Vec<SideEffectKey>,
    /// Inter-call output slots.
    pub call_outputs: Vec<InterCallOutputKey>,
    /// Callees whose inbound queues are read whole.
    pub callees: Vec<LyquidId>,
}

/// What a side-effect store holds for a set of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SideEffectDump {
    /// Each output slot.
    pub outputs: Vec<(SideEffectKey, Option<EventOutputs>)>,
    /// Each inter-call output slot.
    pub call_outputs: Vec<(InterCallOutputKey, Option<CallEventOutput>)>,
    /// Each callee's whole inbound queue.
    pub inbound: Vec<(LyquidId, Vec<InboundInterCall>)>,
}

/// Dumps the given keys of a side-effect store.
pub fn side_effects<S: SideEffectStore + ?Sized>(
    store: &S,
    keys: &SideEffectKeys,
) -> Result<SideEffectDump, Failure> {
    let mut dump = SideEffectDump::default();
    for key in &keys.outputs {
        dump.outputs
            .push((*key, store.read_outputs(key).or_fail("read_outputs")?));
    }
    for key in &keys.call_outputs {
        dump.call_outputs.push((
            *key,
            store
                .read_inter_call_output(key)
                .or_fail("read_inter_call_output")?,
        ));
    }
    for callee in &keys.callees {
        let calls = store
            .read_inbound_inter_calls(callee, None, None, usize::MAX)
            .or_fail("read_inbound_inter_calls")?;
        dump.inbound.push((*callee, calls));
    }
    Ok(dump)
}

/// The first `max` characters of `value`'s `Debug` form, for failure reports.
pub fn brief<T: std::fmt::Debug>(value: &T, max: usize) -> String {
    let text = format!("{value:?}");
    if text.len() <= max {
        text
    } else {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}… ({} chars)", &text[..cut], text.len())
    }
}
