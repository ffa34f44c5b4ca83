//! Follower kills: a follower process killed with `SIGKILL` at random moments while a
//! PostgreSQL leader keeps writing, restarted each time, on every embedded backend as the
//! follower (`RELIABILITY_SCALE × 5` kills each); and leader kills: an embedded leader's
//! process, with its follower inside, killed at random moments (`RELIABILITY_SCALE × 4`
//! each, two pairs). See `reliability::follow_kill`; set `RELIABILITY_SEED` to replay a
//! run. The PostgreSQL leader is a throwaway server (`store_postgres::scratch`), or the
//! one `STORE_TEST_POSTGRES_URL` names.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use reliability::follow_kill;
use reliability::rng::run_seed;
use reliability::scale::scaled_usize;
use store::BackendKind;

const KILLS: usize = 5;

fn follower_kills(kind: BackendKind) {
    let seed = run_seed();
    let exe = Path::new(env!("CARGO_BIN_EXE_follow_child"));
    let location = store_postgres::scratch::fresh_location().unwrap();
    let leader_url = location.to_string();
    let started = Instant::now();
    match follow_kill::run(exe, &leader_url, kind, scaled_usize(KILLS), seed) {
        Ok(r) => eprintln!(
            "RELIABILITY-FIGURES follower-kill follower={kind} kills={} before_ready={} \
             unfinished_copies_resynced={} while_tailing={} resumes_checked={} \
             relaxed_taken_back={} applied_before_kills={} final_sequence={} seconds={:.1} \
             seed={seed}",
            r.kills,
            r.kills_before_ready,
            r.unfinished_copies_resynced,
            r.kills_while_tailing,
            r.resumes_checked,
            r.relaxed_taken_back,
            r.applied_before_kills,
            r.final_sequence,
            started.elapsed().as_secs_f64()
        ),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn redb_follower() {
    follower_kills(BackendKind::Redb);
}

#[test]
fn lmdb_follower() {
    follower_kills(BackendKind::Lmdb);
}

#[test]
fn sled_follower() {
    follower_kills(BackendKind::Sled);
}

#[test]
fn sqlite_follower() {
    follower_kills(BackendKind::Sqlite);
}

const LEADER_KILLS: usize = 4;

/// The leader's process (with its follower inside: an embedded leader is followed from
/// its own process) killed at random moments.
fn leader_kills(leader: BackendKind, follower: BackendKind) {
    let seed = run_seed();
    let exe = Path::new(env!("CARGO_BIN_EXE_follow_child"));
    let started = Instant::now();
    match follow_kill::leader_kills(exe, leader, follower, scaled_usize(LEADER_KILLS), seed) {
        Ok(r) => eprintln!(
            "RELIABILITY-FIGURES leader-kill leader={leader} follower={follower} kills={} \
             unfinished_copies_resynced={} acknowledged={} follower_behind={} \
             resumes_checked={} final_sequence={} seconds={:.1} seed={seed}",
            r.kills,
            r.unfinished_copies_resynced,
            r.acknowledged,
            r.follower_behind,
            r.resumes_checked,
            r.final_sequence,
            started.elapsed().as_secs_f64()
        ),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn redb_leader_killed_with_a_sqlite_follower() {
    leader_kills(BackendKind::Redb, BackendKind::Sqlite);
}

#[test]
fn sled_leader_killed_with_an_lmdb_follower() {
    leader_kills(BackendKind::Sled, BackendKind::Lmdb);
}
