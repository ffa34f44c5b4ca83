//! The report's `LedgerStore` workloads alone, for quick before/after comparisons of the
//! ledger's write path: the same fixture, operations and sampling as the report, without
//! the other stores' minutes.
//!
//! ```text
//! cargo run --release -p benches --bin ledger -- [--backends mem,lmdb] [--ops commit_batch]
//!     [--ms 250] [--samples N] [--relaxed]
//! ```
//! `--backends` keeps the named backends (default: every enabled one), `--ops` the named
//! workloads (`commit`, `commit_batch`, `balance`, `account_history`, `concurrent`; default:
//! all), `--ms` is the timed budget per workload (default: the quick report's 250 ms) and
//! `--samples N` takes exactly `N` samples per single-threaded workload (for profilers);
//! `--relaxed` opens the backends with `Durability::Relaxed` (no fsync per write) instead of
//! the report's `Immediate`.
//! One line per workload goes to stdout: backend, workload, p50, p99, items per second.

use std::process::ExitCode;
use std::time::Duration;

use benches::BenchError;
use benches::backends::{BackendVisitor, durability_word, for_each_backend};
use benches::measure::{Budget, Samples, measure};
use benches::ops::Workload;
use benches::ops::ledger::{
    LedgerBench, LedgerOp, THREADS, concurrent_commits, concurrent_workload, fixture_with,
};
use benches::raw::RawOpener;
use benches::report::stats::Summary;
use benches::report::{fmt_ns, fmt_rate};
use store_api::{Backend, Durability};

const USAGE: &str = "usage: ledger [--backends a,b] [--ops a,b] [--ms N] [--samples N] [--relaxed]\n\
  --backends  backends to run (default: every enabled one)\n\
  --ops       commit, commit_batch, balance, account_history, concurrent (default: all)\n\
  --ms        timed budget per workload in milliseconds (default 250)\n\
  --samples   exactly N samples per single-threaded workload\n\
  --relaxed   open the backends with Durability::Relaxed (default: Immediate)";

struct Args {
    backends: Option<Vec<String>>,
    ops: Option<Vec<String>>,
    budget: Budget,
    durability: Durability,
}

fn list(value: Option<String>, flag: &str) -> Result<Vec<String>, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a comma-separated list"))?;
    Ok(value.split(',').map(str::to_owned).collect())
}

fn number(value: Option<String>, flag: &str) -> Result<u64, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a number"))
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        backends: None,
        ops: None,
        budget: Budget::QUICK,
        durability: Durability::Immediate,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--backends" => args.backends = Some(list(argv.next(), "--backends")?),
            "--ops" => args.ops = Some(list(argv.next(), "--ops")?),
            "--ms" => args.budget.time = Duration::from_millis(number(argv.next(), "--ms")?),
            "--samples" => {
                let n = usize::try_from(number(argv.next(), "--samples")?)
                    .map_err(|_| "--samples is too large".to_owned())?;
                args.budget.min_samples = n.max(1);
                args.budget.max_samples = n.max(1);
                args.budget.time = Duration::ZERO;
                args.budget.warm_up = Duration::ZERO;
            }
            "--relaxed" => args.durability = Durability::Relaxed,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

fn op_name(op: LedgerOp) -> &'static str {
    match op {
        LedgerOp::Commit => "commit",
        LedgerOp::CommitBatch => "commit_batch",
        LedgerOp::Balance => "balance",
        LedgerOp::AccountHistory => "account_history",
    }
}

struct Runner<'a> {
    args: &'a Args,
}

impl Runner<'_> {
    fn wants(&self, op: &str) -> bool {
        self.args
            .ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|o| o == op))
    }

    fn print(backend: &str, workload: &Workload, samples: &Samples) {
        let summary = Summary::of(&samples.per_call_ns);
        let secs = samples.elapsed.as_secs_f64();
        let items = samples.calls as f64 * workload.items_per_call as f64;
        let rate = if secs > 0.0 { items / secs } else { 0.0 };
        println!(
            "{backend:<7} {:<40} p50 {:>9}  p99 {:>9}  {:>9} items  ({} samples)",
            workload.label(),
            fmt_ns(summary.p50),
            fmt_ns(summary.p99),
            fmt_rate(rate),
            samples.per_call_ns.len()
        );
    }
}

impl BackendVisitor for Runner<'_> {
    fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
        if let Some(names) = &self.args.backends
            && !names.iter().any(|n| n == B::NAME)
        {
            return Ok(());
        }
        let mode = durability_word(self.args.durability);
        let fixture = fixture_with::<B>(self.args.durability)?;
        let ledger = fixture.backend().ledger();
        let mut bench = LedgerBench::new(ledger.clone())?;
        for op in LedgerOp::ALL {
            if !self.wants(op_name(op)) {
                continue;
            }
            let workload = op.workload(mode);
            let samples = measure(&mut bench, op, workload.calls_per_sample, self.args.budget)?;
            Self::print(B::NAME, &workload, &samples);
        }
        if self.wants("concurrent") {
            let budget = self.args.budget;
            let time = budget.time.max(Duration::from_millis(100));
            for threads in THREADS {
                let per_thread = (Budget::QUICK.max_samples / threads).max(1) as u64;
                concurrent_commits(&ledger, threads, 1, Budget::QUICK.warm_up)?;
                let samples = concurrent_commits(&ledger, threads, per_thread, time)?;
                Self::print(B::NAME, &concurrent_workload(threads, mode), &samples);
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let run =
        parse_args().map(|args| args.map(|args| for_each_backend(&mut Runner { args: &args })));
    match run {
        Ok(Some(Ok(()))) => ExitCode::SUCCESS,
        Ok(Some(Err(e))) => {
            eprintln!("ledger: {e}");
            ExitCode::FAILURE
        }
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
