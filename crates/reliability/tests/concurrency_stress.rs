//! Concurrency stress on every backend (the in-memory one included, and PostgreSQL on a
//! throwaway server, through its scratch location): many threads writing and reading
//! every store at once, 64 of them committing to the ledger.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reliability::scale::scale;
use reliability::stress::{self, StressConfig};
use store_api::Backend;

fn stress_test<B: Backend>() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let cfg = StressConfig::scaled(scale() as usize);
    match stress::run_fresh::<B>(root.path(), cfg) {
        Ok(report) => eprintln!(
            "RELIABILITY-FIGURES stress backend={} threads={} writes={} checked_reads={}",
            B::NAME,
            report.threads,
            report.writes,
            report.reads
        ),
        Err(failure) => panic!("{} stress: {failure}", B::NAME),
    }
}

macro_rules! stress_tests {
    ($name:ident, $ty:ty) => {
        mod $name {
            #[test]
            fn every_store_under_concurrent_writers_and_readers() {
                super::stress_test::<$ty>();
            }
        }
    };
}

reliability::for_each_backend!(stress_tests);
stress_tests!(postgres, ::store_postgres::PostgresBackend);

/// The PostgreSQL backend is shared: one stress run with its writers split across this
/// process and a `crash_writer stress` process on one schema, every invariant checked over
/// what both wrote.
#[test]
fn postgres_writers_split_across_two_processes() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_crash_writer"));
    let root = tempfile::tempdir().expect("a temporary directory");
    let scale = scale() as usize;
    match stress::run_split::<store_postgres::PostgresBackend>(
        exe,
        root.path(),
        StressConfig::scaled(scale),
        scale,
    ) {
        Ok(report) => eprintln!(
            "RELIABILITY-FIGURES stress-two-processes backend=postgres threads={} writes={} \
             checked_reads={}",
            report.threads, report.writes, report.reads
        ),
        Err(failure) => panic!("postgres stress across two processes: {failure}"),
    }
}
