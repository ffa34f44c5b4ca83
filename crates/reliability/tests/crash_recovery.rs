//! Crash recovery by process kill, for every persistent backend and both durability modes,
//! and client kills on PostgreSQL (a fresh schema per kill point on this binary's
//! throwaway server: the writer process is killed, a new process must take the state
//! partition it owned, and every store is checked as for the embedded backends).
//!
//! Each test runs `RELIABILITY_SCALE × 6` kill points (see `reliability::crash`); set
//! `RELIABILITY_SEED` to replay a run.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use reliability::crash;
use reliability::rng::run_seed;
use reliability::scale::scaled_usize;
use reliability::site::Site;
use store_api::{Backend, Durability, StateStore, StoreEngine};

const KILL_POINTS: usize = 6;

fn crash_test<B: Backend<Location: Site>>(durability: Durability) {
    let seed = run_seed();
    let exe = Path::new(env!("CARGO_BIN_EXE_crash_writer"));
    let points = scaled_usize(KILL_POINTS);
    let started = std::time::Instant::now();
    match crash::run::<B>(exe, durability, points, seed) {
        Ok(report) => eprintln!(
            "RELIABILITY-FIGURES crash backend={} durability={durability:?} kill_points={} \
             completed_runs={} killed_while_opening={} reopen_kills={} \
             reopen_kills_while_opening={} acknowledged_checked={} unacknowledged_applied={} takeovers={} \
             takeover_owners_killed={} longest_partition_wait_ms={:.1} \
             longest_release_ms={:.1} seconds={:.1} seed={seed}",
            B::NAME,
            report.kill_points,
            report.completed_runs,
            report.killed_while_opening,
            report.reopen_kills,
            report.reopen_kills_while_opening,
            report.acknowledged_checked,
            report.unacknowledged_applied,
            report.takeovers,
            report.takeover_owners_killed,
            report.longest_partition_wait.as_secs_f64() * 1000.0,
            report.longest_release.as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64()
        ),
        Err(failure) => panic!("{failure}"),
    }
}

const FIRST_OPEN_KILLS: usize = 20;

fn first_open_test<B: Backend<Location: Site>>() {
    let seed = run_seed();
    let exe = Path::new(env!("CARGO_BIN_EXE_crash_writer"));
    match crash::first_open_kills::<B>(exe, scaled_usize(FIRST_OPEN_KILLS), seed) {
        Ok(r) => eprintln!(
            "RELIABILITY-FIGURES first-open backend={} survived_while_opening={} \
             survived_after_open={} seed={seed}",
            B::NAME,
            r.survived_while_opening,
            r.survived_after_open
        ),
        Err(failure) => panic!("{failure}"),
    }
}

/// A `SIGKILL` inside the first open, after store-kit wrote the marker's temporary file
/// and before it renamed it, leaves the lock file and `.STORE.tmp`: the directory is still
/// fresh and must open. Found by the random kill points (`RELIABILITY_SCALE=5`, sqlite,
/// Immediate, kill point 12 of seed 1795318227342119305), when every backend refused it as
/// `ForeignData`.
fn leftover_marker<B: Backend<Location = Path>>() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(store_kit::dir::LOCK_FILE), b"").unwrap();
    let marker = format!("store-workspace backend={} format=1 creating\n", B::NAME);
    std::fs::write(
        dir.join(store_kit::dir::MARKER_TEMP_FILE),
        &marker.as_bytes()[..10],
    )
    .unwrap();
    let backend = B::open(&dir, store_api::OpenOptions::default()).unwrap_or_else(|e| {
        panic!(
            "{}: a directory left by a kill inside the first open does not open: {e}",
            B::NAME
        )
    });
    assert_eq!(backend.engine().put_batch(&[(b"k", b"v")]).unwrap(), 1);
    assert!(!dir.join(store_kit::dir::MARKER_TEMP_FILE).exists());
}

/// A kill inside the first open after the engine wrote its files, before the marker turned
/// *ready*, leaves a *creating* marker beside them: the next open must create the database
/// again. Simulated on a directory that was used and closed, then given a creating marker:
/// it must open (every file the backend ever writes is declared in its layout, else it
/// would be refused as foreign) and be empty, since a creation that never finished never
/// acknowledged a write.
fn unfinished_creation<B: Backend<Location = Path>>() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    {
        let backend = B::open(&dir, store_api::OpenOptions::default()).unwrap();
        backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
        let mut state = backend.state_store("p").unwrap();
        state.put(b"a", b"1").unwrap();
        state.flush().unwrap();
    }
    let marker = format!("store-workspace backend={} format=1 creating\n", B::NAME);
    std::fs::write(dir.join(store_kit::dir::MARKER_FILE), &marker).unwrap();
    // The first holder was just dropped: `open_released` rides out the moment a child
    // process being spawned by another test still holds a copy of its lock.
    let reopened =
        reliability::workload::open_released::<B>(&dir, store_api::OpenOptions::default());
    let backend = reopened.unwrap_or_else(|e| {
        panic!(
            "{}: a directory whose creation did not finish does not open: {e}",
            B::NAME
        )
    });
    assert_eq!(backend.engine().current_sequence(), 0);
    assert_eq!(backend.engine().get(b"k").unwrap(), None);
    assert!(backend.state_store("p").unwrap().is_empty());
    drop(backend);
    let ready = format!("store-workspace backend={} format=1\n", B::NAME);
    assert_eq!(
        std::fs::read_to_string(dir.join(store_kit::dir::MARKER_FILE)).unwrap(),
        ready
    );
}

/// A *creating* marker beside a file the backend does not declare is not ours to clean:
/// the open is refused as foreign data and nothing is removed.
fn unfinished_creation_with_a_foreign_file<B: Backend<Location = Path>>() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let marker = format!("store-workspace backend={} format=1 creating\n", B::NAME);
    std::fs::write(dir.join(store_kit::dir::MARKER_FILE), &marker).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    match B::open(&dir, store_api::OpenOptions::default()) {
        Err(store_api::OpenError::ForeignData { .. }) => {}
        Err(e) => panic!("{}: expected ForeignData, got {e}", B::NAME),
        Ok(_) => panic!("{}: opened a directory holding a foreign file", B::NAME),
    }
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read_to_string(dir.join(store_kit::dir::MARKER_FILE)).unwrap(),
        marker
    );
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
            fn opens_after_a_kill_between_marker_write_and_rename() {
                super::leftover_marker::<$ty>();
            }

            #[test]
            fn recreates_a_database_whose_creation_did_not_finish() {
                super::unfinished_creation::<$ty>();
            }

            #[test]
            fn refuses_a_foreign_file_beside_an_unfinished_creation() {
                super::unfinished_creation_with_a_foreign_file::<$ty>();
            }
        }
    };
}

reliability::for_each_persistent_backend!(crash_tests);

/// PostgreSQL: client processes killed mid-write. The directory tests (markers, foreign
/// files) have no counterpart on a server; a first open is one transaction.
mod postgres {
    use store_postgres::PostgresBackend;

    #[test]
    fn survives_sigkill_of_clients_with_immediate_durability() {
        super::crash_test::<PostgresBackend>(store_api::Durability::Immediate);
    }

    #[test]
    fn survives_sigkill_of_clients_with_relaxed_durability() {
        super::crash_test::<PostgresBackend>(store_api::Durability::Relaxed);
    }

    #[test]
    fn survives_sigkill_while_creating_the_schema() {
        super::first_open_test::<PostgresBackend>();
    }
}
