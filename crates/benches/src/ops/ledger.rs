//! `LedgerStore` operations on a book of [`LEDGER_ACCOUNTS`](crate::workloads::LEDGER_ACCOUNTS) accounts preloaded with
//! [`LEDGER_PRELOAD`] two-posting transactions, and the concurrent-commit run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_api::{Backend, Committed, Durability, LedgerError, LedgerStore, Transaction};

use crate::backends::{Fixture, options};
use crate::error::{BenchError, Context};
use crate::measure::{Bench, Samples};
use crate::ops::Workload;
use crate::workloads::{COMMIT_BATCH, LEDGER_PRELOAD, LedgerSpec, PAGE, Rng};

/// A backend (durability `Immediate`) whose ledger holds the dataset of [`load`].
pub fn fixture<B: Backend>() -> Result<Fixture<B>, BenchError> {
    fixture_with(Durability::Immediate)
}

/// A backend opened with `durability` whose ledger holds the dataset of [`load`]
/// (`Relaxed` leaves the fsync out of every write: what is left is the ledger's own work
/// and the engine's).
pub fn fixture_with<B: Backend>(durability: Durability) -> Result<Fixture<B>, BenchError> {
    Fixture::loaded(options(durability), |b: &B| load(&*b.ledger()))
}

/// Registers the asset, opens the accounts and commits [`LEDGER_PRELOAD`] drafts in
/// batches of [`COMMIT_BATCH`].
pub fn load<L: LedgerStore + ?Sized>(ledger: &L) -> Result<(), BenchError> {
    let spec = LedgerSpec::new().context("building the ledger spec")?;
    ledger
        .register_asset(&spec.asset)
        .context("LedgerStore::register_asset")?;
    for (def, cfg) in spec.account_defs() {
        ledger
            .open_account(&def, &cfg)
            .context("LedgerStore::open_account")?;
    }
    let mut rng = Rng::new(0x1ED6E0);
    let mut left = LEDGER_PRELOAD;
    while left > 0 {
        let n = left.min(COMMIT_BATCH as u64);
        let drafts: Vec<Transaction> = (0..n).map(|_| spec.draft(&mut rng)).collect();
        check_batch(ledger.commit_batch(&drafts))?;
        left -= n;
    }
    Ok(())
}

/// Fails unless every draft of a `commit_batch` was committed.
fn check_batch(
    result: Result<Vec<Result<Committed, LedgerError>>, LedgerError>,
) -> Result<(), BenchError> {
    for draft in result.context("LedgerStore::commit_batch")? {
        draft.context("a commit_batch draft was rejected")?;
    }
    Ok(())
}

/// A `LedgerStore` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOp {
    /// `commit` of one two-posting draft.
    Commit,
    /// `commit_batch` of 1000 two-posting drafts.
    CommitBatch,
    /// `balance` of a random account, now.
    Balance,
    /// `account_history` page of 100 transactions of a random account.
    AccountHistory,
}

impl LedgerOp {
    /// Every single-threaded operation, in report order.
    pub const ALL: [LedgerOp; 4] = [
        LedgerOp::Commit,
        LedgerOp::CommitBatch,
        LedgerOp::Balance,
        LedgerOp::AccountHistory,
    ];

    /// The workload of this operation; `mode` names the durability mode.
    pub fn workload(self, mode: &str) -> Workload {
        let (op, param, calls_per_sample, items_per_call) = match self {
            LedgerOp::Commit => ("commit", mode.to_owned(), 1, 1),
            LedgerOp::CommitBatch => (
                "commit_batch",
                format!("{COMMIT_BATCH} drafts, {mode}"),
                1,
                COMMIT_BATCH as u64,
            ),
            LedgerOp::Balance => ("balance", String::new(), 10, 1),
            LedgerOp::AccountHistory => ("account_history", format!("{PAGE} txs"), 1, PAGE as u64),
        };
        Workload {
            store: "LedgerStore",
            op,
            param,
            calls_per_sample,
            items_per_call,
        }
    }
}

/// The workload of `threads` threads committing concurrently.
pub fn concurrent_workload(threads: usize, mode: &str) -> Workload {
    Workload {
        store: "LedgerStore",
        op: "concurrent commit",
        param: format!(
            "{threads} thread{}, {mode}",
            if threads == 1 { "" } else { "s" }
        ),
        calls_per_sample: 1,
        items_per_call: 1,
    }
}

/// The thread counts of the concurrent-commit workload.
pub const THREADS: [usize; 3] = [1, 8, 64];

/// A ledger loaded by [`load`], and the operations on it.
pub struct LedgerBench<L: LedgerStore + ?Sized> {
    ledger: Arc<L>,
    spec: LedgerSpec,
    rng: Rng,
    drafts: Vec<Transaction>,
}

impl<L: LedgerStore + ?Sized> LedgerBench<L> {
    /// Benchmarks `ledger`, loaded by [`load`].
    pub fn new(ledger: Arc<L>) -> Result<Self, BenchError> {
        Ok(LedgerBench {
            ledger,
            spec: LedgerSpec::new().context("building the ledger spec")?,
            rng: Rng::new(0x1ED6E1),
            drafts: Vec::new(),
        })
    }
}

impl<L: LedgerStore + ?Sized> Bench for LedgerBench<L> {
    type Op = LedgerOp;

    /// Draws the next sample's drafts (fresh ids), untimed.
    fn prepare(&mut self, op: LedgerOp) -> Result<(), BenchError> {
        self.drafts.clear();
        let n = match op {
            LedgerOp::Commit => 1,
            LedgerOp::CommitBatch => COMMIT_BATCH,
            LedgerOp::Balance | LedgerOp::AccountHistory => 0,
        };
        for _ in 0..n {
            self.drafts.push(self.spec.draft(&mut self.rng));
        }
        Ok(())
    }

    #[inline]
    fn run(&mut self, op: LedgerOp) -> Result<(), BenchError> {
        match op {
            LedgerOp::Commit => {
                let tx = match self.drafts.pop() {
                    Some(tx) => tx,
                    None => self.spec.draft(&mut self.rng),
                };
                black_box(self.ledger.commit(&tx).context("LedgerStore::commit")?);
            }
            LedgerOp::CommitBatch => check_batch(self.ledger.commit_batch(&self.drafts))?,
            LedgerOp::Balance => {
                let account = self.spec.account(&mut self.rng);
                black_box(
                    self.ledger
                        .balance(account, None)
                        .context("LedgerStore::balance")?,
                );
            }
            LedgerOp::AccountHistory => {
                let account = self.spec.account(&mut self.rng).clone();
                let page = self
                    .ledger
                    .account_history(&account, 0, PAGE)
                    .context("LedgerStore::account_history")?;
                if page.len() < PAGE {
                    return Err(BenchError::msg(format!(
                        "account_history returned {} postings, expected at least {PAGE}",
                        page.len()
                    )));
                }
                black_box(page);
            }
        }
        Ok(())
    }
}

/// `threads` threads each committing single drafts until `time` has passed or `per_thread`
/// commits are done (whichever comes first, with at least one commit each).
///
/// The samples are every commit's latency; `elapsed` is the wall time of the whole run, so
/// `calls / elapsed` is the aggregate throughput.
pub fn concurrent_commits<L: LedgerStore + ?Sized>(
    ledger: &Arc<L>,
    threads: usize,
    per_thread: u64,
    time: Duration,
) -> Result<Samples, BenchError> {
    let spec = LedgerSpec::new().context("building the ledger spec")?;
    concurrent_calls(threads, per_thread, time, |rng| {
        let tx = spec.draft(rng);
        let began = Instant::now();
        ledger.commit(&tx).context("LedgerStore::commit")?;
        Ok(began.elapsed())
    })
}

/// `threads` threads each making calls until `time` has passed or `per_thread` calls are
/// done (whichever comes first, with at least one call each). A call draws what it needs
/// from its thread's generator (seeded by the thread and the thread count, the same for
/// every store measured) and returns the latency of its timed part.
///
/// The samples are every call's latency; `elapsed` is the wall time of the whole run, so
/// `calls / elapsed` is the aggregate throughput.
pub fn concurrent_calls<C>(
    threads: usize,
    per_thread: u64,
    time: Duration,
    call: C,
) -> Result<Samples, BenchError>
where
    C: Fn(&mut Rng) -> Result<Duration, BenchError> + Sync,
{
    let start = Instant::now();
    let deadline = start + time;
    let results: Vec<Result<Vec<f64>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let call = &call;
                scope.spawn(move || {
                    let mut rng = Rng::new(0xC0C0 + t as u64 + (threads as u64) * 1000);
                    let mut latencies = Vec::new();
                    while latencies.is_empty()
                        || (Instant::now() < deadline && (latencies.len() as u64) < per_thread)
                    {
                        latencies.push(call(&mut rng)?.as_nanos() as f64);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::msg("a calling thread panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut samples = Samples {
        elapsed,
        ..Samples::default()
    };
    for latencies in results {
        let latencies = latencies?;
        samples.calls += latencies.len() as u64;
        samples.per_call_ns.extend(latencies);
    }
    Ok(samples)
}
