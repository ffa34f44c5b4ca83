//! Server kills: the PostgreSQL server itself stopped (`pg_ctl stop -m immediate`) or its
//! postmaster killed with `SIGKILL` while six threads of one backend write every store,
//! then started again, several times over.
//!
//! The test owns its server ([`ThrowawayServer`], not the one the other tests of its binary
//! share). The backend is opened once, `Immediate`, with a `connect_timeout` of
//! [`CONNECT_TIMEOUT`]; every thread loops on one kind of write:
//!
//! - two engine writers: `put_batch` of one new key each time;
//! - two ledger committers: sales with an idempotency key each; a commit that failed is
//!   retried with the same transaction (same id, same key) until it is acknowledged, so
//!   each sale is committed exactly once whatever an outage did to its first attempt;
//! - one segment appender: self-checking records to one segment;
//! - one state-partition owner: a new key, then `flush`; when a flush fails (the owner's
//!   connection died with the server) the handle is dropped and the partition opened again.
//!
//! Checked while it runs: no call panics; every error is
//! `StorageErrorKind::Unavailable`; no call takes longer than [`CALL_BOUND`] (the
//! documented bound is the `connect_timeout`, plus slack for a loaded machine); every
//! outage gives the writers errors; after every restart each thread gets acknowledgements
//! again from the same backend, without reopening it. Checked at the end, on the same
//! backend and on a new instance: every acknowledged write is there (each engine batch
//! under its number, each sale, each segment entry at its index, each flushed state key),
//! the cash balance is exactly the sum of the sales, the batch log is contiguous, the book
//! balanced, the segment whole.
//!
//! The scratch server runs with `fsync=off`: an immediate stop or a killed postmaster
//! loses nothing the server wrote to the kernel, so the test proves that what the server
//! acknowledged under `synchronous_commit = on` is replayed from its WAL at the restart
//! (crash recovery), not that it reached the disk (an operating-system crash would need
//! `fsync`, which these tests do not cover).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, Durability,
    LedgerStore, Mutation, OpenOptions, SegmentId, SegmentLogStore, SessionId, StateStore,
    StorageErrorKind, StoreEngine, StoreError, Transaction,
};
use store_postgres::PostgresBackend;
use store_postgres::PostgresLocation;
use store_postgres::scratch::ThrowawayServer;

use crate::failure::OrFail;
use crate::workload::txid;
use crate::{Failure, ensure, invariants, records};

/// The `connect_timeout` of the backend's location: how long a call may wait for a
/// connection while the server is gone.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest any call may take: [`CONNECT_TIMEOUT`] and slack for the loaded 2-core
/// machine.
pub const CALL_BOUND: Duration = Duration::from_secs(8);

/// How long the server stays down: longer than [`CONNECT_TIMEOUT`], so that a call waiting
/// for a connection gives up while it is gone.
pub const OUTAGE: Duration = Duration::from_millis(1500);

/// How long every thread may take to get acknowledgements again after a restart.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(60);

/// Acknowledgements each thread must get between two outages (and at the start).
const PROGRESS: u64 = 5;

/// How the server is taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// `pg_ctl stop -m immediate`.
    ImmediateStop,
    /// `SIGKILL` of the postmaster.
    PostmasterKill,
}

/// What a server-kill run did.
#[derive(Debug, Clone, Default)]
pub struct ServerKillReport {
    /// The outages, in order.
    pub outages: Vec<Outage>,
    /// Acknowledged engine batches, sales, appends and state flushes, all checked.
    pub acknowledged: [u64; 4],
    /// Errors the writers got (all `Unavailable`).
    pub unavailable: u64,
    /// The longest call.
    pub longest_call: Duration,
    /// The longest restart (`pg_ctl start`, retried while a killed postmaster's backends
    /// linger; includes the crash recovery).
    pub longest_restart: Duration,
    /// The longest time, after a restart, until every thread was acknowledged again.
    pub longest_recovery: Duration,
}

/// Counters one writer thread shares with the test.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unavailable: AtomicU64,
    longest_call_us: AtomicU64,
}

impl Tally {
    /// Runs `call`, timed and with panics caught: `Ok(Some(v))` when acknowledged,
    /// `Ok(None)` when refused as `Unavailable`, a failure for any other error, a panic or
    /// a call longer than [`CALL_BOUND`].
    fn call<T, E: StoreError>(
        &self,
        what: &str,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<Option<T>, Failure> {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(call))
            .map_err(|_| Failure(format!("{what} panicked")))?;
        let took = started.elapsed();
        self.longest_call_us.fetch_max(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        ensure!(
            took <= CALL_BOUND,
            "{what} took {took:?}, more than {CALL_BOUND:?}"
        );
        match result {
            Ok(value) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Ok(Some(value))
            }
            Err(e) if e.storage_kind() == Some(StorageErrorKind::Unavailable) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(Failure(format!(
                "{what} failed with an error other than Unavailable: {}",
                store_api::error_chain(&e)
            ))),
        }
    }
}

/// What one thread had acknowledged.
enum Acks {
    /// `(sequence number, key, value)` of each batch.
    Engine(Vec<(u64, Vec<u8>, Vec<u8>)>),
    /// Each sale, with its amount.
    Ledger(Vec<(Transaction, u64)>),
    /// `(index, record number)` of each append.
    Segment(Vec<(u64, u64)>),
    /// The keys of each acknowledged flush.
    State(Vec<Vec<u8>>),
}

fn usd() -> Result<AssetId, Failure> {
    AssetId::new("USD").or_fail("asset id")
}

fn cash() -> Result<AccountId, Failure> {
    AccountId::new("shop", "assets:cash").or_fail("account id")
}

fn sales() -> Result<AccountId, Failure> {
    AccountId::new("shop", "income:sales").or_fail("account id")
}

fn session() -> SessionId {
    SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00aa)
}

fn segment() -> SegmentId {
    SegmentId::from_u128(0x0191_0000_0000_7000_8000_0000_0000_00aa)
}

const PARTITION: &str = "owner";
/// The record writer number of the appender's entries.
const APPENDER: u32 = 100;

fn engine_writer(
    backend: &PostgresBackend,
    t: u32,
    tally: &Tally,
    stop: &AtomicBool,
) -> Result<Acks, Failure> {
    let engine = backend.engine();
    let mut acks = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("e/{t}/{n:06}").into_bytes();
        let value = records::encode(t, n, 16);
        if let Some(seq) = tally.call("put_batch", || {
            engine.put_batch(&[(key.as_slice(), value.as_slice())])
        })? {
            acks.push((seq, key, value));
        }
        n += 1;
    }
    Ok(Acks::Engine(acks))
}

fn ledger_writer(
    backend: &PostgresBackend,
    t: u32,
    seed: u64,
    tally: &Tally,
    stop: &AtomicBool,
) -> Result<Acks, Failure> {
    let ledger = backend.ledger();
    let (cash, sales, usd) = (cash()?, sales()?, usd()?);
    let mut acks = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let amount = 1 + (seed.wrapping_add(n * 7919) % 1000);
        let mut tx = Transaction::new(Book::new("shop").or_fail("book")?)
            .debit(&cash, &usd, amount)
            .credit(&sales, &usd, amount)
            .with_idempotency_key(format!("sale-{t}-{n}"));
        tx.id = txid(seed ^ u64::from(t), n);
        // The same transaction until it is acknowledged, even once `stop` is set: a failed
        // attempt may have committed, and only its retry says so.
        let started = Instant::now();
        loop {
            if tally.call("commit", || ledger.commit(&tx))?.is_some() {
                break;
            }
            ensure!(
                started.elapsed() < RECOVERY_BOUND,
                "sale {t}-{n} was not acknowledged within {RECOVERY_BOUND:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        acks.push((tx, amount));
    }
    Ok(Acks::Ledger(acks))
}

fn segment_writer(
    backend: &PostgresBackend,
    tally: &Tally,
    stop: &AtomicBool,
) -> Result<Acks, Failure> {
    let log = backend.segment_log();
    let mut acks = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let entry = records::encode(APPENDER, n, 32);
        if let Some(index) = tally.call("append", || log.append(session(), segment(), &entry))? {
            acks.push((index, n));
        }
        n += 1;
    }
    Ok(Acks::Segment(acks))
}

fn state_writer(
    backend: &PostgresBackend,
    tally: &Tally,
    stop: &AtomicBool,
) -> Result<Acks, Failure> {
    let mut acks = Vec::new();
    let mut handle = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(state) = handle.as_mut() else {
            handle = tally.call("state_store", || backend.state_store(PARTITION))?;
            if handle.is_none() {
                thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        let key = format!("s/{n:06}").into_bytes();
        n += 1;
        state.put(&key, b"v").or_fail("a state put (in memory)")?;
        if tally.call("flush", || state.flush())?.is_some() {
            acks.push(key);
        } else {
            // The owner's connection died with the server, and with it the partition's
            // lock: the handle is done for (its flushes fail); take the partition again.
            handle = None;
        }
    }
    Ok(Acks::State(acks))
}

/// Sums of the tallies: acknowledgements per thread, and errors.
fn oks(tallies: &[Arc<Tally>]) -> Vec<u64> {
    tallies
        .iter()
        .map(|t| t.ok.load(Ordering::Relaxed))
        .collect()
}

fn errors(tallies: &[Arc<Tally>]) -> u64 {
    tallies
        .iter()
        .map(|t| t.unavailable.load(Ordering::Relaxed))
        .sum()
}

/// Waits until every thread got [`PROGRESS`] acknowledgements more than `since`; a
/// failure after [`RECOVERY_BOUND`] or as soon as a thread has ended (failed).
fn wait_progress(
    tallies: &[Arc<Tally>],
    since: &[u64],
    threads: &[thread::JoinHandle<Result<Acks, Failure>>],
) -> Result<Duration, Failure> {
    let started = Instant::now();
    loop {
        let now = oks(tallies);
        if now.iter().zip(since).all(|(n, s)| *n >= s + PROGRESS) {
            return Ok(started.elapsed());
        }
        if threads.iter().any(thread::JoinHandle::is_finished) {
            return Err(Failure::new("a writer thread ended early"));
        }
        ensure!(
            started.elapsed() < RECOVERY_BOUND,
            "the writers were not all acknowledged again within {RECOVERY_BOUND:?}: \
             acknowledgements {since:?} then {now:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `outages` outages (alternately an immediate stop and a postmaster kill) on a
/// server of its own; `seed` varies the sales. See the [module docs](self).
pub fn run(outages: usize, seed: u64) -> Result<ServerKillReport, Failure> {
    let server = ThrowawayServer::start().map_err(Failure)?;
    let result = run_on(&server, outages, seed);
    result.map_err(|f| Failure(format!("{f}\nserver log (end):\n{}", server.log_tail())))
}

fn run_on(
    server: &ThrowawayServer,
    outages: usize,
    seed: u64,
) -> Result<ServerKillReport, Failure> {
    let scratch = server.fresh_location().or_fail("a scratch schema")?;
    let location: PostgresLocation = format!(
        "{scratch}&connect_timeout={}",
        CONNECT_TIMEOUT.as_secs().max(1)
    )
    .parse()
    .or_fail("the location with a connect_timeout")?;
    let immediate = || OpenOptions::default().durability(Durability::Immediate);
    let backend = Arc::new(PostgresBackend::open(&location, immediate()).or_fail("opening")?);
    let ledger = backend.ledger();
    ledger
        .register_asset(&AssetDef {
            id: usd()?,
            precision: 2,
            name: "US dollar".into(),
        })
        .or_fail("register_asset")?;
    for (id, kind) in [
        (cash()?, AccountKind::Asset),
        (sales()?, AccountKind::Income),
    ] {
        let def = AccountDef {
            id,
            asset: usd()?,
            kind,
        };
        ledger
            .open_account(&def, &AccountCfg::for_kind(kind))
            .or_fail("open_account")?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Tally>> = (0..6).map(|_| Arc::new(Tally::default())).collect();
    let mut threads = Vec::new();
    for (i, tally) in tallies.iter().enumerate() {
        let (backend, tally, stop) = (Arc::clone(&backend), Arc::clone(tally), Arc::clone(&stop));
        threads.push(thread::spawn(move || {
            let t = u32::try_from(i).unwrap_or(0);
            match i {
                0 | 1 => engine_writer(&backend, t, &tally, &stop),
                2 | 3 => ledger_writer(&backend, t, seed, &tally, &stop),
                4 => segment_writer(&backend, &tally, &stop),
                _ => state_writer(&backend, &tally, &stop),
            }
        }));
    }

    let mut report = ServerKillReport::default();
    let mut outcome = Ok(());
    let mut mark = vec![0; tallies.len()];
    for i in 0..outages {
        let kind = if i % 2 == 0 {
            Outage::ImmediateStop
        } else {
            Outage::PostmasterKill
        };
        let step = (|| -> Result<(), Failure> {
            let recovered = wait_progress(&tallies, &mark, &threads)
                .map_err(|f| f.context(format!("before outage {i}")))?;
            if i > 0 {
                report.longest_recovery = report.longest_recovery.max(recovered);
            }
            let errors_before = errors(&tallies);
            match kind {
                Outage::ImmediateStop => server.stop_immediate().map_err(Failure)?,
                Outage::PostmasterKill => {
                    server.kill_postmaster().map_err(Failure)?;
                }
            }
            thread::sleep(OUTAGE);
            let errors_during = errors(&tallies) - errors_before;
            ensure!(
                errors_during > 0,
                "outage {i} ({kind:?}): no writer got an error in {OUTAGE:?}"
            );
            let restart = server.start_again(RECOVERY_BOUND).map_err(Failure)?;
            report.longest_restart = report.longest_restart.max(restart);
            report.outages.push(kind);
            mark = oks(&tallies);
            Ok(())
        })();
        if let Err(f) = step {
            outcome = Err(f.context(format!("outage {i} ({kind:?})")));
            break;
        }
    }
    if outcome.is_ok() {
        outcome = wait_progress(&tallies, &mark, &threads)
            .map(|recovered| {
                if outages > 0 {
                    report.longest_recovery = report.longest_recovery.max(recovered);
                }
            })
            .map_err(|f| f.context("after the last restart"));
    }
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(Ok(a)) => acks.push(a),
            Ok(Err(f)) => outcome = outcome.and(Err(f)),
            Err(_) => outcome = outcome.and(Err(Failure::new("a writer thread panicked"))),
        }
    }
    outcome?;
    report.unavailable = errors(&tallies);
    report.longest_call = Duration::from_micros(
        tallies
            .iter()
            .map(|t| t.longest_call_us.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0),
    );

    check(&backend, &acks, &mut report).map_err(|f| f.context("on the same backend"))?;
    drop(backend);
    let fresh = PostgresBackend::open(&location, immediate()).or_fail("opening again")?;
    check(&fresh, &acks, &mut report).map_err(|f| f.context("on a new backend instance"))?;
    Ok(report)
}

/// Every acknowledged write is there, and the invariants hold.
fn check(
    backend: &PostgresBackend,
    acks: &[Acks],
    report: &mut ServerKillReport,
) -> Result<(), Failure> {
    let engine = backend.engine();
    let ledger = backend.ledger();
    let log = backend.segment_log();
    let state = backend
        .state_store(PARTITION)
        .or_fail("opening the state partition")?;
    let entries = log.read_all(session(), segment()).or_fail("read_all")?;
    let mut counts = [0u64; 4];
    let mut total = 0u64;
    for a in acks {
        match a {
            Acks::Engine(batches) => {
                for (seq, key, value) in batches {
                    let stored = engine.get(key).or_fail("get")?;
                    ensure!(
                        stored.as_deref() == Some(value.as_slice()),
                        "the acknowledged batch {seq} is lost: {} holds {stored:?}",
                        String::from_utf8_lossy(key)
                    );
                    let logged = engine.get_batch(*seq).or_fail("get_batch")?;
                    let expected = vec![Mutation::Put {
                        key: Bytes::from(key.clone()),
                        value: Bytes::from(value.clone()),
                    }];
                    ensure!(
                        logged.as_ref() == Some(&expected),
                        "batch {seq} of the log is {logged:?}, not the acknowledged batch"
                    );
                }
                counts[0] += batches.len() as u64;
            }
            Acks::Ledger(sales) => {
                for (tx, amount) in sales {
                    ensure!(
                        ledger.transaction(&tx.id).or_fail("transaction")?.is_some(),
                        "the acknowledged sale {:?} is lost",
                        tx.idempotency_key
                    );
                    total += amount;
                }
                counts[1] += sales.len() as u64;
            }
            Acks::Segment(appends) => {
                for (index, n) in appends {
                    let found = usize::try_from(*index)
                        .ok()
                        .and_then(|i| entries.get(i))
                        .and_then(|e| records::decode(e));
                    ensure!(
                        found == Some((APPENDER, *n)),
                        "the acknowledged append {n} is not at its index {index}: {found:?}"
                    );
                }
                counts[2] += appends.len() as u64;
            }
            Acks::State(keys) => {
                for key in keys {
                    ensure!(
                        state.contains(key).or_fail("state contains")?,
                        "the acknowledged flush of {} is lost",
                        String::from_utf8_lossy(key)
                    );
                }
                counts[3] += keys.len() as u64;
            }
        }
    }
    let balance = ledger.balance(&cash()?, None).or_fail("balance")?;
    ensure!(
        u64::try_from(balance.amount).ok() == Some(total),
        "the cash balance is {balance:?}, the acknowledged sales sum to {total}"
    );
    invariants::engine_log(&*engine)?;
    invariants::ledger_book(&*ledger, &Book::new("shop").or_fail("book")?, true)?;
    invariants::segments_whole(&*log)?;
    report.acknowledged = counts;
    Ok(())
}
