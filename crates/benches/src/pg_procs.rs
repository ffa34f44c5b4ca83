//! PostgreSQL ledger commits from several processes at once: [`PROCESSES`] child processes
//! of [`THREADS_PER_PROCESS`] threads each (64 threads in all), every one committing
//! single durable drafts to the same schema, for the store (a `PostgresBackend` per
//! process) and for the raw-SQL baseline ([`RawLedger`] per process).
//!
//! The children are the report binary itself, started with [`WORKER_ARG`] (so that
//! `cargo run --bin report` builds everything the run needs): each opens the schema with a
//! pool of [`POOL_PER_PROCESS`] connections, warms up (every thread commits once), waits
//! for the start time the parent gave all of them, commits for the run's time, and prints
//! its commit latencies and the time it ran as one JSON line. The parent adds the commits
//! up and divides them by the longest child's time: the aggregate throughput of the four
//! processes.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use store::postgres::scratch::URL_VAR;
use store::postgres::{PostgresBackend, PostgresLocation};
use store_api::{Backend, Durability};

use crate::backends::options;
use crate::error::{BenchError, Context};
use crate::measure::Samples;
use crate::ops::Workload;
use crate::ops::ledger::concurrent_commits;
use crate::raw::postgres::RawLedger;

/// How many processes commit at once.
pub const PROCESSES: usize = 4;

/// How many threads commit in each process.
pub const THREADS_PER_PROCESS: usize = 16;

/// The connection pool of each process's store or raw ledger: one per thread.
pub const POOL_PER_PROCESS: u32 = 16;

/// The first argument that makes the report binary a worker of this run.
pub const WORKER_ARG: &str = "--pg-ledger-worker";

/// The shortest timed run: a quarter second is too short for four processes to overlap
/// well, so the quick report's budget is stretched to this.
pub const MIN_RUN_TIME: Duration = Duration::from_secs(1);

/// How long after spawning the children their timed run starts: time to start, connect
/// and warm up.
const START_DELAY: Duration = Duration::from_secs(4);

/// What commits in the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `PostgresBackend`'s `LedgerStore::commit`.
    Store,
    /// The raw-SQL baseline ([`RawLedger::commit`]).
    Raw,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::Store => "store",
            Side::Raw => "raw",
        }
    }

    fn parse(word: &str) -> Option<Side> {
        match word {
            "store" => Some(Side::Store),
            "raw" => Some(Side::Raw),
            _ => None,
        }
    }
}

/// What one worker reports.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerResult {
    /// Every commit's latency, in nanoseconds.
    latencies_ns: Vec<f64>,
    /// The time the timed run took, in nanoseconds.
    elapsed_ns: u64,
}

/// The workload of the multi-process run; `mode` names the durability mode.
pub fn workload(mode: &str) -> Workload {
    Workload {
        store: "LedgerStore",
        op: "concurrent commit",
        param: format!(
            "{} threads in {PROCESSES} processes, {mode}",
            PROCESSES * THREADS_PER_PROCESS
        ),
        calls_per_sample: 1,
        items_per_call: 1,
    }
}

/// The timed run of the report's `budget_time`: at least [`MIN_RUN_TIME`].
pub fn run_time(budget_time: Duration) -> Duration {
    budget_time.max(MIN_RUN_TIME)
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Runs [`PROCESSES`] workers of `side` on `location` (a schema the caller loaded) for
/// `time`, and gathers their commits: every latency, and the longest worker's time as the
/// run's wall time.
pub fn run(side: Side, location: &PostgresLocation, time: Duration) -> Result<Samples, BenchError> {
    let exe = std::env::current_exe().context("finding the report binary")?;
    let start_at = unix_ms() + START_DELAY.as_millis();
    let mut children = Vec::with_capacity(PROCESSES);
    for _ in 0..PROCESSES {
        let child = Command::new(&exe)
            .arg(WORKER_ARG)
            .arg(side.word())
            .arg(location.to_string())
            .arg(time.as_millis().to_string())
            .arg(start_at.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a ledger worker process")?;
        children.push(child);
    }
    let mut samples = Samples::default();
    let mut failure = None;
    for child in children {
        let out = child
            .wait_with_output()
            .context("waiting for a ledger worker process")?;
        if !out.status.success() {
            failure.get_or_insert(BenchError::msg(format!(
                "a {} ledger worker process failed ({})",
                side.word(),
                out.status
            )));
            continue;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or("");
        let result: WorkerResult =
            serde_json::from_str(line).context("reading a ledger worker's result")?;
        samples.calls += result.latencies_ns.len() as u64;
        samples.per_call_ns.extend(result.latencies_ns);
        samples.elapsed = samples.elapsed.max(Duration::from_nanos(result.elapsed_ns));
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(samples),
    }
}

/// The location a worker opens: the schema of `url`, on the server of `STORE_TEST_POSTGRES_URL`
/// when it is set (its URL may carry a password, which a location's text never shows), with
/// a pool of [`POOL_PER_PROCESS`].
fn worker_location(url: &str) -> Result<PostgresLocation, BenchError> {
    let given: PostgresLocation = url.parse().context("parsing the worker's location")?;
    let location = match std::env::var(URL_VAR) {
        Ok(base) if !base.trim().is_empty() => base
            .trim()
            .parse::<PostgresLocation>()
            .context("parsing STORE_TEST_POSTGRES_URL")?
            .with_schema(given.schema())
            .context("the worker's schema")?,
        _ => given,
    };
    Ok(location.with_pool_size(POOL_PER_PROCESS))
}

/// A worker process: `args` are what follows [`WORKER_ARG`] (side, location, run time in
/// ms, start time in Unix ms). Prints its [`WorkerResult`] as one JSON line on stdout.
pub fn worker(args: &[String]) -> Result<(), BenchError> {
    let [side, url, ms, start_at] = args else {
        return Err(BenchError::msg(format!(
            "{WORKER_ARG} needs: store|raw LOCATION RUN_MS START_UNIX_MS"
        )));
    };
    let side = Side::parse(side).ok_or_else(|| BenchError::msg(format!("bad side {side:?}")))?;
    let location = worker_location(url)?;
    let time = Duration::from_millis(ms.parse().context("parsing the run time")?);
    let start_at: u128 = start_at.parse().context("parsing the start time")?;
    let wait_until_start = || {
        let now = unix_ms();
        if start_at > now {
            std::thread::sleep(Duration::from_millis((start_at - now) as u64));
        }
    };
    let samples = match side {
        Side::Store => {
            let backend = PostgresBackend::open(&location, options(Durability::Immediate))
                .context("opening the store")?;
            let ledger = backend.ledger();
            concurrent_commits(&ledger, THREADS_PER_PROCESS, 1, Duration::ZERO)?;
            wait_until_start();
            concurrent_commits(&ledger, THREADS_PER_PROCESS, u64::MAX, time)?
        }
        Side::Raw => {
            let ledger = RawLedger::attach(location)?;
            ledger.concurrent_commits(THREADS_PER_PROCESS, 1, Duration::ZERO)?;
            wait_until_start();
            ledger.concurrent_commits(THREADS_PER_PROCESS, u64::MAX, time)?
        }
    };
    let result = WorkerResult {
        latencies_ns: samples.per_call_ns,
        elapsed_ns: samples.elapsed.as_nanos() as u64,
    };
    let line = serde_json::to_string(&result).context("encoding the worker's result")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").context("writing the worker's result")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_round_trip_and_the_run_time_has_a_floor() {
        for side in [Side::Store, Side::Raw] {
            assert_eq!(Side::parse(side.word()), Some(side));
        }
        assert_eq!(Side::parse("other"), None);
        assert_eq!(run_time(Duration::from_millis(250)), MIN_RUN_TIME);
        assert_eq!(run_time(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(
            workload("durable").param,
            "64 threads in 4 processes, durable"
        );
    }

    #[test]
    fn a_worker_refuses_missing_arguments() {
        let e = worker(&["store".to_owned()]).unwrap_err();
        assert!(e.to_string().contains(WORKER_ARG), "{e}");
    }
}
