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
             known_bug_hits={} completed_runs={} killed_while_opening={} reopen_kills={} \
             reopen_kills_while_opening={} acknowledged_checked={} seed={seed}",
            B::NAME,
            report.kill_points,
            report.known_bug_hits,
            report.completed_runs,
            report.killed_while_opening,
            report.reopen_kills,
            report.reopen_kills_while_opening,
            report.acknowledged_checked
        ),
        Err(failure) => panic!("{failure}"),
    }
}

const FIRST_OPEN_KILLS: usize = 20;

fn first_open_test<B: Backend>() {
    let seed = run_seed();
    let exe = Path::new(env!("CARGO_BIN_EXE_crash_writer"));
    match crash::first_open_kills::<B>(exe, scaled_usize(FIRST_OPEN_KILLS), seed) {
        Ok(r) => eprintln!(
            "RELIABILITY-FIGURES first-open backend={} survived_while_opening={} \
             survived_after_open={} known_bug_hits={} seed={seed}",
            B::NAME,
            r.survived_while_opening,
            r.survived_after_open,
            r.known_bug_hits
        ),
        Err(failure) => panic!("{failure}"),
    }
}

/// One state of the known creation bug (`reliability::crash::creation_bug`): a `SIGKILL`
/// inside the first open, after store-kit wrote the marker's temporary file and before it
/// renamed it, leaves the lock file and `.STORE.tmp`, and every backend then refuses the
/// directory as `ForeignData`. Found by the random kill points (`RELIABILITY_SCALE=5`,
/// sqlite, Immediate, kill point 12 of seed 1795318227342119305); the directory must open
/// again.
fn leftover_marker<B: Backend>() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(".store-lock"), b"").unwrap();
    let marker = format!("store-workspace backend={} format=1\n", B::NAME);
    std::fs::write(
        dir.join(crash::marker_temp_name()),
        &marker.as_bytes()[..10],
    )
    .unwrap();
    assert!(crash::leftover_marker_temp_file(&dir));
    if let Err(e) = B::open(&dir, store_api::OpenOptions::default()) {
        panic!(
            "{}: a directory left by a kill inside the first open does not open: {e}",
            B::NAME
        );
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

            #[test]
            fn survives_sigkill_while_creating_the_database() {
                super::first_open_test::<$ty>();
            }

            #[test]
            #[ignore = "known creation bug: store-kit's prepare_dir refuses a directory holding \
                        its own leftover .STORE.tmp (a kill between write and rename)"]
            fn opens_after_a_kill_between_marker_write_and_rename() {
                super::leftover_marker::<$ty>();
            }
        }
    };
}

reliability::for_each_persistent_backend!(crash_tests);
