//! Crash recovery by process kill, for every persistent backend and both durability modes.
//!
//! Each test runs `RELIABILITY_SCALE × 6` kill points (see `reliability::crash`); set
//! `RELIABILITY_SEED` to replay a run.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use reliability::crash;
use reliability::rng::run_seed;
use reliability::scale::scaled_usize;
use store_api::{Backend, Durability};

const KILL_POINTS: usize = 6;

fn crash_test<B: Backend>(durability: Durability) {
    let seed = run_seed();
    let exe = Path::new(env!("CARGO_BIN_EXE_crash_writer"));
    let points = scaled_usize(KILL_POINTS);
    match crash::run::<B>(exe, durability, points, seed) {
        Ok(report) => eprintln!(
            "RELIABILITY-FIGURES crash backend={} durability={durability:?} kill_points={} \
             completed_runs={} killed_while_opening={} reopen_kills={} \
             reopen_kills_while_opening={} acknowledged_checked={} seed={seed}",
            B::NAME,
            report.kill_points,
            report.completed_runs,
            report.killed_while_opening,
            report.reopen_kills,
            report.reopen_kills_while_opening,
            report.acknowledged_checked
        ),
        Err(failure) => panic!("{failure}"),
    }
}

macro_rules! crash_tests {
    ($name:ident, $ty:ty) => {
        mod $name {
            #[test]
            fn survives_sigkill_with_immediate_durability() {
                super::crash_test::<$ty>(store_api::Durability::Immediate);
            }

            #[test]
            fn survives_sigkill_with_relaxed_durability() {
                super::crash_test::<$ty>(store_api::Durability::Relaxed);
            }
        }
    };
}

reliability::for_each_persistent_backend!(crash_tests);
