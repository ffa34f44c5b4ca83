//! Concurrency stress: many threads writing and reading every store of one backend at once.
//!
//! Readers run while writers write and assert, on every read, what must hold at every
//! moment: no torn engine batch (`get_many` and `range_scan` of keys always written
//! together agree), sequence numbers never going back, balanced books, segments growing
//! by whole entries only, side-effect slots all-or-nothing. After the writers finish,
//! the totals are checked: engine sequence numbers are exactly `1..=n`, each idempotency
//! key (retried by two threads at once) committed once, every append is in its segment
//! once and in order, every state partition reads back as written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, ChainPos,
    Committed, EventOutputs, LedgerStore, LyquidId, SegmentId, SegmentLogStore, SessionId,
    SideEffectKey, SideEffectKind, SideEffectStore, StateStore, StoreEngine, Transaction,
};

use crate::failure::OrFail;
use crate::workload::txid;
use crate::{Failure, ensure, invariants, records};

/// How much each kind of thread does. [`StressConfig::scaled`] multiplies the defaults.
#[derive(Debug, Clone, Copy)]
pub struct StressConfig {
    /// Engine writer threads.
    pub engine_writers: usize,
    /// Batches per engine writer.
    pub engine_batches: usize,
    /// Ledger committing threads (the group-commit target is 64).
    pub ledger_threads: usize,
    /// Commits per ledger thread.
    pub ledger_commits: usize,
    /// Threads appending to one shared segment.
    pub segment_writers: usize,
    /// Appends per segment writer.
    pub segment_appends: usize,
    /// Side-effect writer threads.
    pub side_effect_writers: usize,
    /// Slots per side-effect writer.
    pub side_effect_slots: usize,
    /// State partitions, one owner thread each.
    pub state_owners: usize,
    /// Writes per state owner (a flush every eight).
    pub state_writes: usize,
}

impl StressConfig {
    /// The default amounts times `scale`.
    pub fn scaled(scale: usize) -> Self {
        StressConfig {
            engine_writers: 4,
            engine_batches: 40 * scale,
            ledger_threads: 64,
            ledger_commits: 6 * scale,
            segment_writers: 4,
            segment_appends: 40 * scale,
            side_effect_writers: 4,
            side_effect_slots: 30 * scale,
            state_owners: 4,
            state_writes: 80 * scale,
        }
    }
}

/// What a stress run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct StressReport {
    /// Calls made by writer threads.
    pub writes: u64,
    /// Calls made by reader threads, each checked.
    pub reads: u64,
    /// Threads that ran at once.
    pub threads: usize,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    reads: AtomicU64,
}

impl Counters {
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
}

const GROUP: usize = 8;

fn shared_key(i: usize) -> Vec<u8> {
    format!("shared/{i}").into_bytes()
}

/// Which writer threads of a run one process runs: writer `i` of each kind is its when
/// `i % parts == part`. Two processes on one store of a shared backend run parts 0 and 1
/// of 2, so the thread pairs that retry the same idempotency keys (or write the same
/// side-effect slots) do so from both processes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This process's part, `0..parts`.
    pub part: usize,
    /// How many processes share the writers.
    pub parts: usize,
}

impl Share {
    /// Every writer, in one process.
    pub const WHOLE: Share = Share { part: 0, parts: 1 };

    /// Whether writer `i` (of any kind) is this process's.
    fn mine(self, i: usize) -> bool {
        i % self.parts == self.part
    }
}

/// What the writer threads wrote, indexed by writer (empty for another process's writer),
/// for the checks of the totals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Written {
    /// Each engine writer's sequence numbers, in its order.
    pub engine: Vec<Vec<u64>>,
    /// Each segment writer's append indices, in its order.
    pub segments: Vec<Vec<u64>>,
    /// Each ledger committer's receipts: `(commit number, receipt)`, in its order.
    pub receipts: Vec<Vec<(usize, Committed)>>,
}

impl Written {
    /// Nothing written yet, by the writers `cfg` runs.
    fn empty(cfg: StressConfig) -> Self {
        Written {
            engine: vec![Vec::new(); cfg.engine_writers],
            segments: vec![Vec::new(); cfg.segment_writers],
            receipts: vec![Vec::new(); cfg.ledger_threads],
        }
    }

    /// One line per write: `engine <writer> <seq>`, `segment <writer> <index>`,
    /// `receipt <thread> <commit> <seq> <txid> <µs>`; [`add_text`](Written::add_text) reads it.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (w, seqs) in self.engine.iter().enumerate() {
            for seq in seqs {
                text.push_str(&format!("engine {w} {seq}\n"));
            }
        }
        for (w, indices) in self.segments.iter().enumerate() {
            for index in indices {
                text.push_str(&format!("segment {w} {index}\n"));
            }
        }
        for (t, receipts) in self.receipts.iter().enumerate() {
            for (j, r) in receipts {
                text.push_str(&format!(
                    "receipt {t} {j} {} {} {}\n",
                    r.seq,
                    r.txid,
                    r.at.as_micros()
                ));
            }
        }
        text
    }

    /// What [`Written::to_text`] wrote, added to `self` (another process's writers).
    pub fn add_text(&mut self, text: &str) -> Result<(), Failure> {
        for line in text.lines() {
            let bad = || Failure(format!("a stress result line {line:?} is not understood"));
            let words: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| -> Result<u64, Failure> {
                words.get(i).and_then(|w| w.parse().ok()).ok_or_else(bad)
            };
            let slot = |list_len: usize| -> Result<usize, Failure> {
                let i = number(1)? as usize;
                if i < list_len { Ok(i) } else { Err(bad()) }
            };
            match (words.first().copied(), words.len()) {
                (Some("engine"), 3) => {
                    let w = slot(self.engine.len())?;
                    self.engine[w].push(number(2)?);
                }
                (Some("segment"), 3) => {
                    let w = slot(self.segments.len())?;
                    self.segments[w].push(number(2)?);
                }
                (Some("receipt"), 6) => {
                    let t = slot(self.receipts.len())?;
                    let receipt = Committed {
                        seq: number(3)?,
                        txid: words[4].parse().map_err(|_| bad())?,
                        at: store_api::Timestamp::from_micros(number(5)?),
                    };
                    self.receipts[t].push((number(2)? as usize, receipt));
                }
                _ => return Err(bad()),
            }
        }
        Ok(())
    }
}

/// Runs every stress section on `backend` at once and checks the totals.
pub fn run<B: Backend>(backend: &B, cfg: StressConfig) -> Result<StressReport, Failure> {
    let (report, written) = run_share(backend, cfg, Share::WHOLE)?;
    check_totals(backend, cfg, &written)?;
    Ok(report)
}

/// Runs this process's `share` of the writers, and every reader, on `backend` at once;
/// each thread checks what it checks while it runs (the readers their invariants, the
/// state owners their partitions read back). Returns what the writers wrote, for
/// [`check_totals`] once every share has run. Sets up the ledger first (idempotent: the
/// other share's process does the same).
pub fn run_share<B: Backend>(
    backend: &B,
    cfg: StressConfig,
    share: Share,
) -> Result<(StressReport, Written), Failure> {
    let counters = Counters::default();
    let writers_done = AtomicBool::new(false);
    let ledger = LedgerFixture::new()?;
    ledger.set_up(&*backend.ledger())?;
    let mut states = Vec::new();
    for i in (0..cfg.state_owners).filter(|i| share.mine(*i)) {
        states.push((
            i,
            backend
                .state_store(&format!("stress-{i}"))
                .or_fail("opening a state partition")?,
        ));
    }
    let readers = 5;
    let mine = |n: usize| (0..n).filter(|i| share.mine(*i)).count();
    let threads = mine(cfg.engine_writers)
        + mine(cfg.ledger_threads)
        + mine(cfg.segment_writers)
        + mine(cfg.side_effect_writers)
        + states.len()
        + readers;

    let segment_ids = stress_segment();
    let (results, written) = thread::scope(|s| {
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        let c = &counters;
        let done = &writers_done;
        let ledger = &ledger;
        // Engine writers: all eight shared keys in every batch, with this batch's record.
        let engine_seqs: Vec<_> = (0..cfg.engine_writers)
            .filter(|w| share.mine(*w))
            .map(|w| {
                let engine = backend.engine();
                let handle = s.spawn(move || -> Result<Vec<u64>, Failure> {
                    let mut seqs = Vec::new();
                    for i in 0..cfg.engine_batches {
                        let value = engine_value(w, i);
                        let keys: Vec<Vec<u8>> = (0..GROUP).map(shared_key).collect();
                        let pairs: Vec<(&[u8], &[u8])> = keys
                            .iter()
                            .map(|k| (k.as_slice(), value.as_slice()))
                            .collect();
                        let seq = engine.put_batch(&pairs).or_fail("stress put_batch")?;
                        c.wrote();
                        seqs.push(seq);
                    }
                    Ok(seqs)
                });
                (w, handle)
            })
            .collect();
        readers.push(s.spawn(move || engine_reader(&*backend.engine(), c, done)));
        let committers: Vec<_> = (0..cfg.ledger_threads)
            .filter(|t| share.mine(*t))
            .map(|t| {
                let l = backend.ledger();
                (
                    t,
                    s.spawn(move || ledger.committer(&*l, t, cfg.ledger_commits, c)),
                )
            })
            .collect();
        readers.push(s.spawn(move || ledger.reader(&*backend.ledger(), c, done)));
        let seg_writers: Vec<_> = (0..cfg.segment_writers)
            .filter(|w| share.mine(*w))
            .map(|w| {
                let log = backend.segment_log();
                let handle = s.spawn(move || -> Result<Vec<u64>, Failure> {
                    let mut indices = Vec::new();
                    for i in 0..cfg.segment_appends {
                        let entry = records::encode(w as u32, i as u64, (i * 7) % 300);
                        let index = log
                            .append(segment_ids.0, segment_ids.1, &entry)
                            .or_fail("stress append")?;
                        c.wrote();
                        indices.push(index);
                    }
                    Ok(indices)
                });
                (w, handle)
            })
            .collect();
        readers
            .push(s.spawn(move || segment_reader(&*backend.segment_log(), segment_ids, c, done)));
        for w in (0..cfg.side_effect_writers).filter(|w| share.mine(*w)) {
            let store = backend.side_effects();
            writers.push(s.spawn(move || side_effect_writer(&*store, w, cfg.side_effect_slots, c)));
        }
        readers.push(s.spawn(move || {
            side_effect_reader(&*backend.side_effects(), cfg.side_effect_slots, c, done)
        }));
        for (i, state) in states {
            writers.push(s.spawn(move || state_owner(state, i, cfg.state_writes, c)));
        }
        readers.push(s.spawn(move || {
            // The engine's sequence never goes back while writers run, and the batch it
            // names is always in the log already.
            let engine = backend.engine();
            let mut last = 0;
            while !done.load(Ordering::Acquire) {
                let now = engine.current_sequence();
                ensure!(
                    now >= last,
                    "current_sequence went back from {last} to {now}"
                );
                if now > 0 {
                    let batch = engine.get_batch(now).or_fail("stress get_batch")?;
                    ensure!(
                        batch.is_some(),
                        "current_sequence is {now} but batch {now} is not in the log"
                    );
                }
                last = now;
                c.read();
                thread::yield_now();
            }
            Ok(())
        }));

        let mut results = Vec::new();
        let mut written = Written::empty(cfg);
        for (w, h) in engine_seqs {
            match join(h) {
                Ok(seqs) => written.engine[w] = seqs,
                Err(f) => results.push(Err(f)),
            }
        }
        for (w, h) in seg_writers {
            match join(h) {
                Ok(indices) => written.segments[w] = indices,
                Err(f) => results.push(Err(f)),
            }
        }
        for (t, h) in committers {
            match join(h) {
                Ok(r) => written.receipts[t] = r,
                Err(f) => results.push(Err(f)),
            }
        }
        for h in writers {
            results.push(join(h));
        }
        done.store(true, Ordering::Release);
        for h in readers {
            results.push(join(h));
        }
        (results, written)
    });
    for r in results {
        r?;
    }
    Ok((
        StressReport {
            writes: counters.writes.load(Ordering::Relaxed),
            reads: counters.reads.load(Ordering::Relaxed),
            threads,
        },
        written,
    ))
}

/// Checks the totals once every share of a run has written: engine sequence numbers
/// exactly `1..=n` with each batch the one its writer wrote, each idempotency key
/// committed once, every append in its segment once and in order, the ledger's book and
/// balances, and every state partition reopened as its owner flushed it.
pub fn check_totals<B: Backend>(
    backend: &B,
    cfg: StressConfig,
    written: &Written,
) -> Result<(), Failure> {
    check_pair_receipts(&written.receipts)?;
    check_engine_totals(&*backend.engine(), &written.engine, cfg)?;
    check_segment_totals(
        &*backend.segment_log(),
        stress_segment(),
        &written.segments,
        cfg,
    )?;
    LedgerFixture::new()?.check_totals(&*backend.ledger(), cfg)?;
    for i in 0..cfg.state_owners {
        check_state_reopened(backend, i, cfg.state_writes)?;
    }
    Ok(())
}

/// The session and segment every segment writer appends to.
fn stress_segment() -> (SessionId, SegmentId) {
    (
        SessionId::from_u128(0xA),
        SegmentId::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
    )
}

/// The value engine writer `w` puts under every shared key in its batch `i`.
fn engine_value(w: usize, i: usize) -> Vec<u8> {
    records::encode(w as u32, i as u64, i % 40)
}

fn join<T>(h: thread::ScopedJoinHandle<'_, Result<T, Failure>>) -> Result<T, Failure> {
    h.join()
        .unwrap_or_else(|_| Err(Failure::new("a stress thread panicked")))
}

fn engine_reader<E: StoreEngine + ?Sized>(
    engine: &E,
    c: &Counters,
    done: &AtomicBool,
) -> Result<(), Failure> {
    let keys: Vec<Vec<u8>> = (0..GROUP).map(shared_key).collect();
    let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    while !done.load(Ordering::Acquire) {
        let got = engine.get_many(&key_refs).or_fail("stress get_many")?;
        let values: BTreeSet<Option<Bytes>> = got.into_iter().map(|(_, v)| v).collect();
        ensure!(
            values.len() == 1,
            "get_many saw a torn batch: {} different values across keys written together",
            values.len()
        );
        let scanned = engine
            .range_scan(b"shared/", b"shared/\xff", GROUP + 1, true)
            .or_fail("stress range_scan")?;
        ensure!(
            scanned.is_empty() || scanned.len() == GROUP,
            "range_scan saw {} of the {GROUP} keys written together",
            scanned.len()
        );
        let scanned: BTreeSet<&Bytes> = scanned.iter().map(|(_, v)| v).collect();
        ensure!(
            scanned.len() <= 1,
            "range_scan saw a torn batch: {} different values across keys written together",
            scanned.len()
        );
        c.read();
        c.read();
    }
    Ok(())
}

fn check_engine_totals<E: StoreEngine + ?Sized>(
    engine: &E,
    per_writer: &[Vec<u64>],
    cfg: StressConfig,
) -> Result<(), Failure> {
    let mut seqs: Vec<u64> = per_writer.iter().flatten().copied().collect();
    seqs.sort_unstable();
    let n = (cfg.engine_writers * cfg.engine_batches) as u64;
    ensure!(
        seqs == (1..=n).collect::<Vec<_>>(),
        "{n} concurrent batches did not get exactly the sequence numbers 1..={n}"
    );
    for (w, writer) in per_writer.iter().enumerate() {
        for pair in writer.windows(2) {
            ensure!(
                pair[0] < pair[1],
                "one thread's batches got decreasing sequence numbers"
            );
        }
        for (i, seq) in writer.iter().enumerate() {
            let value = engine_value(w, i);
            let batch = engine
                .get_batch(*seq)
                .or_fail("get_batch")?
                .ok_or_else(|| Failure(format!("batch {seq} is missing")))?;
            ensure!(
                batch.len() == GROUP
                    && batch.iter().all(|m| matches!(m, store_api::Mutation::Put { value: v, .. } if v.as_ref() == value.as_slice())),
                "batch {seq} in the log is not the batch that got that number"
            );
        }
    }
    ensure!(
        engine.current_sequence() == n,
        "current_sequence is not {n}"
    );
    invariants::engine_log(engine)?;
    Ok(())
}

struct LedgerFixture {
    book: Book,
    usd: AssetId,
    cash: AccountId,
    sales: AccountId,
}

impl LedgerFixture {
    /// The stress book's asset and accounts (nothing opened yet).
    fn new() -> Result<Self, Failure> {
        Ok(LedgerFixture {
            book: Book::new("stress").or_fail("book")?,
            usd: AssetId::new("USD").or_fail("asset id")?,
            cash: AccountId::new("stress", "assets:cash").or_fail("account id")?,
            sales: AccountId::new("stress", "income:sales").or_fail("account id")?,
        })
    }

    /// Registers the asset and opens the accounts (idempotent: a second process on the
    /// same store does it again and changes nothing).
    fn set_up<L: LedgerStore + ?Sized>(&self, ledger: &L) -> Result<(), Failure> {
        ledger
            .register_asset(&AssetDef {
                id: self.usd.clone(),
                precision: 2,
                name: "US dollar".into(),
            })
            .or_fail("register_asset")?;
        for (id, kind) in [
            (&self.cash, AccountKind::Asset),
            (&self.sales, AccountKind::Income),
        ] {
            let def = AccountDef {
                id: id.clone(),
                asset: self.usd.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .or_fail("open_account")?;
        }
        Ok(())
    }

    /// Thread pairs (`t`, `t ^ 1`) commit the same idempotency keys with different
    /// transaction ids at about the same time: each key must commit once, and both
    /// threads must get the same receipt. Every fourth commit goes through
    /// `commit_batch`.
    fn draft(&self, t: usize, j: usize) -> Transaction {
        let key_no = (t / 2) * 10_000 + j;
        let amount = (key_no % 997 + 1) as u64;
        let mut tx = Transaction::new(self.book.clone())
            .debit(&self.cash, &self.usd, amount)
            .credit(&self.sales, &self.usd, amount)
            .with_idempotency_key(format!("key-{key_no}"));
        tx.id = txid(0x57, (t * 10_000 + j) as u64);
        tx
    }

    fn committer<L: LedgerStore + ?Sized>(
        &self,
        ledger: &L,
        t: usize,
        commits: usize,
        c: &Counters,
    ) -> Result<Vec<(usize, Committed)>, Failure> {
        let mut receipts = Vec::new();
        for j in 0..commits {
            let tx = self.draft(t, j);
            let receipt = if j % 4 == 3 {
                let mut results = ledger.commit_batch(&[tx]).or_fail("stress commit_batch")?;
                results
                    .pop()
                    .ok_or_else(|| Failure::new("commit_batch returned no result"))?
                    .or_fail("stress commit_batch draft")?
            } else {
                ledger.commit(&tx).or_fail("stress commit")?
            };
            c.wrote();
            receipts.push((j, receipt));
        }
        Ok(receipts)
    }

    fn reader<L: LedgerStore + ?Sized>(
        &self,
        ledger: &L,
        c: &Counters,
        done: &AtomicBool,
    ) -> Result<(), Failure> {
        let mut last_events = 0;
        while !done.load(Ordering::Acquire) {
            let counts = invariants::ledger_book(ledger, &self.book, false)?;
            ensure!(
                counts.events >= last_events,
                "the book lost events while commits ran: {last_events} then {}",
                counts.events
            );
            last_events = counts.events;
            c.read();
        }
        Ok(())
    }

    fn check_totals<L: LedgerStore + ?Sized>(
        &self,
        ledger: &L,
        cfg: StressConfig,
    ) -> Result<(), Failure> {
        let counts = invariants::ledger_book(ledger, &self.book, true)?;
        let keys = (cfg.ledger_threads.div_ceil(2) * cfg.ledger_commits) as u64;
        ensure!(
            counts.transactions == keys,
            "{} transactions posted for {keys} distinct idempotency keys (lost or duplicated)",
            counts.transactions
        );
        let expected: i64 = (0..cfg.ledger_threads.div_ceil(2))
            .flat_map(|p| (0..cfg.ledger_commits).map(move |j| ((p * 10_000 + j) % 997 + 1) as i64))
            .sum();
        let cash = ledger.balance(&self.cash, None).or_fail("balance")?;
        ensure!(
            cash.amount == expected,
            "cash balance {} after concurrent commits, expected {expected}",
            cash.amount
        );
        Ok(())
    }
}

/// Threads `t` and `t ^ 1` committed the same idempotency keys: they must hold the same
/// receipts, and no two keys may share a sequence number.
fn check_pair_receipts(receipts: &[Vec<(usize, Committed)>]) -> Result<(), Failure> {
    let mut seqs = BTreeSet::new();
    for (t, mine) in receipts.iter().enumerate() {
        if let Some(theirs) = receipts.get(t ^ 1) {
            ensure!(
                mine == theirs,
                "threads {t} and {} retried the same idempotency keys concurrently but got \
                 different receipts (a key committed twice)",
                t ^ 1
            );
        }
        if t % 2 == 0 {
            for (_, r) in mine {
                ensure!(seqs.insert(r.seq), "two idempotency keys got seq {}", r.seq);
            }
        }
    }
    Ok(())
}

/// Appends of one shared segment, read while they run: the segment only grows, by whole
/// entries, and each read is a prefix of the next.
fn segment_reader<S: SegmentLogStore + ?Sized>(
    log: &S,
    (session, segment): (SessionId, SegmentId),
    c: &Counters,
    done: &AtomicBool,
) -> Result<(), Failure> {
    let mut last: Vec<Bytes> = Vec::new();
    while !done.load(Ordering::Acquire) {
        let entries = match log.read_all(session, segment) {
            Ok(entries) => entries,
            Err(store_api::SegmentError::NotFound { .. }) if last.is_empty() => Vec::new(),
            Err(e) => return Err(Failure(format!("stress read_all: {e}"))),
        };
        ensure!(
            entries.len() >= last.len() && entries[..last.len()] == last[..],
            "a segment read is not an extension of the previous read ({} then {} entries)",
            last.len(),
            entries.len()
        );
        for (i, e) in entries.iter().enumerate().skip(last.len()) {
            ensure!(
                records::decode(e).is_some(),
                "segment entry {i} read while appends ran is not whole"
            );
        }
        last = entries;
        c.read();
    }
    Ok(())
}

fn check_segment_totals<S: SegmentLogStore + ?Sized>(
    log: &S,
    (session, segment): (SessionId, SegmentId),
    indices: &[Vec<u64>],
    cfg: StressConfig,
) -> Result<(), Failure> {
    let n = (cfg.segment_writers * cfg.segment_appends) as u64;
    let mut all: Vec<u64> = indices.iter().flatten().copied().collect();
    all.sort_unstable();
    ensure!(
        all == (0..n).collect::<Vec<_>>(),
        "{n} concurrent appends did not return exactly the indices 0..{n}"
    );
    let entries = log.read_all(session, segment).or_fail("read_all")?;
    ensure!(
        entries.len() as u64 == n,
        "{} entries after {n} appends",
        entries.len()
    );
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let (writer, k) = records::decode(e)
            .ok_or_else(|| Failure(format!("entry {i} is not one whole record")))?;
        let expected = next.entry(writer).or_insert(0);
        ensure!(
            k == *expected,
            "writer {writer}'s appends are out of order or lost: entry {i} is its #{k}, expected #{expected}"
        );
        *expected += 1;
    }
    for (w, idx) in indices.iter().enumerate() {
        for (k, &index) in idx.iter().enumerate() {
            let entry = &entries[index as usize];
            ensure!(
                records::decode(entry) == Some((w as u32, k as u64)),
                "append #{k} of writer {w} returned index {index}, which holds another entry"
            );
        }
    }
    invariants::segments_whole(log)?;
    Ok(())
}

fn slot(i: usize) -> (SideEffectKey, EventOutputs) {
    let key = SideEffectKey {
        lyquid: LyquidId([0x33; 20]),
        pos: ChainPos::new(i as u64 + 1, 0),
        kind: SideEffectKind::Event,
    };
    let outputs = (0..3)
        .map(|k| Bytes::from(records::encode(k, i as u64, i % 50)))
        .collect();
    (key, EventOutputs(outputs))
}

/// Writers `w` and `w ^ 1` write the same slots (identical content, a concurrent replay);
/// each call holds two slots, so atomicity matters to readers.
fn side_effect_writer<S: SideEffectStore + ?Sized>(
    store: &S,
    w: usize,
    slots: usize,
    c: &Counters,
) -> Result<(), Failure> {
    let base = (w / 2) * slots * 2;
    for i in 0..slots {
        let mut map = BTreeMap::new();
        for j in [base + 2 * i, base + 2 * i + 1] {
            let (k, v) = slot(j);
            map.insert(k, v);
        }
        store.write_outputs(&map).or_fail("stress write_outputs")?;
        c.wrote();
    }
    Ok(())
}

fn side_effect_reader<S: SideEffectStore + ?Sized>(
    store: &S,
    slots: usize,
    c: &Counters,
    done: &AtomicBool,
) -> Result<(), Failure> {
    let mut i = 0usize;
    while !done.load(Ordering::Acquire) {
        let j = i % (slots * 2).max(1);
        let (key, expected) = slot(j);
        let (pair_key, _) = slot(j ^ 1);
        let got = store.read_outputs(&key).or_fail("stress read_outputs")?;
        ensure!(
            got.is_none() || got.as_ref() == Some(&expected),
            "read_outputs returned outputs that were never written for slot {j}"
        );
        if got.is_some() {
            ensure!(
                store
                    .read_outputs(&pair_key)
                    .or_fail("read_outputs")?
                    .is_some(),
                "slot {j} is visible but the slot written with it in one call is not"
            );
        }
        c.read();
        i += 1;
    }
    Ok(())
}

fn state_owner<S: StateStore>(
    mut state: S,
    i: usize,
    writes: usize,
    c: &Counters,
) -> Result<(), Failure> {
    for n in 0..writes {
        let key = format!("k{}", n % 17).into_bytes();
        if n % 5 == 4 {
            state.delete(&key).or_fail("stress state delete")?;
        } else {
            state
                .put(&key, &records::encode(i as u32, n as u64, 3))
                .or_fail("stress state put")?;
        }
        if n % 8 == 7 {
            state.flush().or_fail("stress state flush")?;
        }
        c.wrote();
    }
    state.flush().or_fail("stress state flush")?;
    let expected = expected_state(i, writes);
    let found = state.snapshot().or_fail("snapshot")?.into_entries();
    ensure!(
        found == expected,
        "state partition {i} does not read back as written"
    );
    Ok(())
}

fn expected_state(i: usize, writes: usize) -> Vec<(Bytes, Bytes)> {
    let mut map = BTreeMap::new();
    for n in 0..writes {
        let key = Bytes::from(format!("k{}", n % 17).into_bytes());
        if n % 5 == 4 {
            map.remove(&key);
        } else {
            map.insert(key, Bytes::from(records::encode(i as u32, n as u64, 3)));
        }
    }
    map.into_iter().collect()
}

fn check_state_reopened<B: Backend>(backend: &B, i: usize, writes: usize) -> Result<(), Failure> {
    let state = backend
        .state_store(&format!("stress-{i}"))
        .or_fail("reopening a state partition")?;
    let found = state.snapshot().or_fail("snapshot")?.into_entries();
    ensure!(
        found == expected_state(i, writes),
        "state partition {i} reopened after concurrent flushes differs from what was flushed"
    );
    Ok(())
}

/// Opens `B` on a fresh location (its scratch location under `root`), runs [`run`], and
/// reopens it to check the ledger and the engine once more after a clean close.
pub fn run_fresh<B: Backend>(
    root: &std::path::Path,
    cfg: StressConfig,
) -> Result<StressReport, Failure> {
    use std::borrow::Borrow;
    let location = B::scratch_location(&root.join("db")).or_fail("making a scratch location")?;
    let backend = B::open(location.borrow(), store_api::OpenOptions::default())
        .or_fail("opening the backend")?;
    let report = run(&backend, cfg)?;
    drop(backend);
    if B::capabilities().persistent {
        reopen_checks::<B>(location.borrow(), cfg)?;
    }
    Ok(report)
}

/// Reopens the store after a run and checks the engine, the ledger and the segments once
/// more.
fn reopen_checks<B: Backend>(location: &B::Location, cfg: StressConfig) -> Result<(), Failure> {
    let again = B::open(location, store_api::OpenOptions::default()).or_fail("reopening")?;
    let n = (cfg.engine_writers * cfg.engine_batches) as u64;
    ensure!(
        again.engine().current_sequence() == n,
        "after reopening, current_sequence is {} instead of {n}",
        again.engine().current_sequence()
    );
    invariants::engine_log(&*again.engine())?;
    let book = Book::new("stress").or_fail("book")?;
    invariants::ledger_book(&*again.ledger(), &book, true)?;
    invariants::segments_whole(&*again.segment_log())?;
    Ok(())
}

/// The longest the split run waits for the other process to open the store, or to finish.
const OTHER_PROCESS_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// On a shared backend: one run with its writers split across two processes on one
/// store. This process opens a fresh store, starts `exe` (the `crash_writer` binary,
/// `crash_writer stress`) on it for share 1 of 2, and runs share 0 once the other process
/// has opened the store; every reader runs in both. Once both are done it checks the
/// totals of the whole run over what both wrote, then reopens the store as [`run_fresh`]
/// does.
pub fn run_split<B: Backend<Location: crate::site::Site>>(
    exe: &std::path::Path,
    root: &std::path::Path,
    cfg: StressConfig,
    scale: usize,
) -> Result<StressReport, Failure> {
    use crate::site::Site;
    use std::borrow::Borrow;
    use std::process::{Command, Stdio};
    let location = B::scratch_location(&root.join("db")).or_fail("making a scratch location")?;
    let backend = B::open(location.borrow(), store_api::OpenOptions::default())
        .or_fail("opening the backend")?;
    LedgerFixture::new()?.set_up(&*backend.ledger())?;
    let results = root.join("other-share.txt");
    let mut child = Command::new(exe)
        .arg("stress")
        .arg(B::NAME)
        .arg(Borrow::<B::Location>::borrow(&location).to_arg()?)
        .arg(scale.to_string())
        .arg(&results)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .or_fail("starting crash_writer stress")?;
    let outcome = (|| {
        let lines = crate::crash::read_lines(&mut child)?;
        match lines.recv_timeout(OTHER_PROCESS_WAIT) {
            Ok(line) if line == "ready" => {}
            other => {
                return Err(Failure(format!(
                    "the other process did not open the store: {other:?}"
                )));
            }
        }
        let (mine, mut written) = run_share(&backend, cfg, Share { part: 0, parts: 2 })?;
        let deadline = std::time::Instant::now() + OTHER_PROCESS_WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().or_fail("waiting for the other process")? {
                break status;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the other process did not finish its share within {OTHER_PROCESS_WAIT:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        if !status.success() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            return Err(Failure(format!(
                "the other process failed its share ({status}): {err}"
            )));
        }
        let text = std::fs::read_to_string(&results).or_fail("reading the other share")?;
        let mut lines = text.lines();
        let theirs: (u64, u64, usize) = lines
            .next()
            .and_then(|head| {
                let mut w = head.strip_prefix("report ")?.split(' ');
                Some((
                    w.next()?.parse().ok()?,
                    w.next()?.parse().ok()?,
                    w.next()?.parse().ok()?,
                ))
            })
            .ok_or_else(|| Failure::new("the other share's results have no report line"))?;
        written.add_text(&lines.collect::<Vec<_>>().join("\n"))?;
        let report = StressReport {
            writes: mine.writes + theirs.0,
            reads: mine.reads + theirs.1,
            threads: mine.threads + theirs.2,
        };
        Ok((report, written))
    })();
    if outcome.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let (report, written) = outcome?;
    check_totals(&backend, cfg, &written)?;
    drop(backend);
    reopen_checks::<B>(location.borrow(), cfg)?;
    Ok(report)
}

/// The other process of [`run_split`] (`crash_writer stress`): opens `location`, says
/// `ready` on `out`, runs share 1 of 2, and writes its report and what its writers wrote
/// to `results` (`report <writes> <reads> <threads>`, then [`Written::to_text`]).
pub fn run_other_share<B: Backend>(
    location: &B::Location,
    scale: usize,
    results: &std::path::Path,
    ready: impl FnOnce() -> Result<(), Failure>,
) -> Result<(), Failure> {
    let backend = B::open(location, store_api::OpenOptions::default())
        .or_fail(format!("opening {} at {location:?}", B::NAME))?;
    ready()?;
    let (report, written) = run_share(
        &backend,
        StressConfig::scaled(scale),
        Share { part: 1, parts: 2 },
    )?;
    let text = format!(
        "report {} {} {}\n{}",
        report.writes,
        report.reads,
        report.threads,
        written.to_text()
    );
    std::fs::write(results, text).or_fail("writing the share's results")
}
