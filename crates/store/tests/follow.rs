//! The follower library (`swapstore::replicate`) on pairs of backends: the first copy of every
//! store, tailing a leader that keeps writing, restarts of either side (resumed, nothing
//! copied again), a leader that pruned what the follower needs, a diverged or unfinished
//! follower, and the stop handle. The `store-migrate --follow` binary is tested in
//! `cli_follow.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::borrow::Borrow;
use std::cell::RefCell;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Opened, populate, relaxed};
use store_lmdb::LmdbBackend;
use store_mem::MemBackend;
use store_redb::RedbBackend;
use store_sled::SledBackend;
use store_sqlite::SqliteBackend;
use swapstore::migrate::{self, NoProgress, Plan, Progress, StoreCheck};
use swapstore::replicate::{
    Ended, FollowError, FollowOptions, FollowProgress, FollowStatus, Follower, Start, StopHandle,
};
use swapstore::{Backend, Bytes, LocationBuf, Mutation, StoreEngine, Stores};
use tempfile::TempDir;

/// `per_pair!(test)`: the test for a leader and a follower on different backends, every
/// persistent backend on each side at least once, and `mem` on each side.
macro_rules! per_pair {
    ($test:ident) => {
        mod $test {
            use super::*;

            #[test]
            fn redb_to_sqlite() {
                $test::<RedbBackend, SqliteBackend>();
            }

            #[test]
            fn sqlite_to_lmdb() {
                $test::<SqliteBackend, LmdbBackend>();
            }

            #[test]
            fn lmdb_to_sled() {
                $test::<LmdbBackend, SledBackend>();
            }

            #[test]
            fn sled_to_redb() {
                $test::<SledBackend, RedbBackend>();
            }

            #[test]
            fn mem_to_redb() {
                $test::<MemBackend, RedbBackend>();
            }

            #[test]
            fn sqlite_to_mem() {
                $test::<SqliteBackend, MemBackend>();
            }
        }
    };
}

/// A follower's place: a fresh location of backend `F` in its own temporary directory.
struct Place<F: Backend> {
    _dir: TempDir,
    location: LocationBuf<F>,
}

impl<F: Backend> Place<F> {
    fn fresh() -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("store-follow-{}-", F::NAME))
            .tempdir()
            .unwrap();
        let location = F::scratch_location(&dir.path().join("follower")).unwrap();
        Place {
            _dir: dir,
            location,
        }
    }

    fn start(&self, leader: &Stores) -> Result<Follower, FollowError> {
        Follower::start_as::<F>(leader, self.location.borrow(), relaxed(), &NoProgress)
    }

    fn path(&self) -> &Path {
        use swapstore::StoreLocation;
        let location: &F::Location = self.location.borrow();
        location.dir().unwrap()
    }
}

fn caught_up() -> FollowOptions {
    FollowOptions {
        until_caught_up: true,
        ..FollowOptions::default()
    }
}

/// Batch `i` of the writes made after `populate`: a put of two keys and a delete, mixed, so
/// the follower must apply each batch as logged.
fn batch(i: u64) -> Vec<Mutation> {
    vec![
        Mutation::Put {
            key: Bytes::from(format!("w/{:03}", i % 97)),
            value: Bytes::from(i.to_be_bytes().to_vec()),
        },
        Mutation::Put {
            key: Bytes::from(format!("x/{i}")),
            value: Bytes::new(),
        },
        Mutation::Delete {
            key: Bytes::from(format!("x/{}", i.saturating_sub(3))),
        },
    ]
}

fn write(engine: &dyn StoreEngine, batches: std::ops::Range<u64>) {
    for i in batches {
        engine.write_batch(&batch(i)).unwrap();
    }
}

/// Every key, and the log entry of every batch both retain, are equal on both engines,
/// and so are the sequence numbers.
fn same_engine(leader: &dyn StoreEngine, follower: &dyn StoreEngine) {
    assert_eq!(follower.current_sequence(), leader.current_sequence());
    assert_eq!(
        follower.range_scan(b"", b"", usize::MAX, true).unwrap(),
        leader.range_scan(b"", b"", usize::MAX, true).unwrap()
    );
    let oldest = follower.oldest_retained_batch().unwrap().unwrap_or(1);
    for seq in oldest..=leader.current_sequence() {
        assert_eq!(
            follower.get_batch(seq).unwrap(),
            leader.get_batch(seq).unwrap(),
            "batch {seq}"
        );
    }
}

/// Every store of the follower matches the leader's, as `store-migrate --verify-only`
/// compares them.
fn same_stores(leader: &Stores, follower: &Stores) {
    let checks = migrate::verify(leader, follower, &Plan::default(), &NoProgress).unwrap();
    assert!(checks.iter().all(StoreCheck::matches), "{checks:#?}");
}

/// A populated leader of `L` and a new follower of `F`: the first copy takes every store,
/// then the follower tails 300 batches the leader writes while it runs, and is stopped
/// once it has them all.
fn follows_while_the_leader_writes<L: Backend, F: Backend>() {
    let leader = Opened::<L>::fresh(relaxed());
    populate(&leader.stores);
    let place = Place::<F>::fresh();
    let follower = place.start(&leader.stores).unwrap();
    match follower.start_report() {
        Start::Copied { at, copied } => {
            assert_eq!(*at, 6);
            assert_eq!(copied.len(), 5);
        }
        other => panic!("a new follower must copy, got {other:?}"),
    }
    same_stores(&leader.stores, follower.stores());

    let stop = StopHandle::new();
    let leader_engine = leader.stores.engine();
    let outcome = std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            follower.run(
                leader_engine.as_ref(),
                &FollowOptions::default(),
                &stop,
                &NoProgress,
            )
        });
        write(leader_engine.as_ref(), 0..300);
        let deadline = Instant::now() + Duration::from_secs(60);
        while follower.stores().engine().current_sequence() < 306 {
            assert!(Instant::now() < deadline, "the follower did not catch up");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.stop();
        running.join().unwrap()
    });
    let outcome = outcome.unwrap();
    assert_eq!(outcome.ended, Ended::Stopped);
    assert_eq!((outcome.started_at, outcome.at), (6, 306));
    assert_eq!(outcome.applied, 300);
    same_engine(leader_engine.as_ref(), follower.stores().engine().as_ref());
    same_stores(&leader.stores, follower.stores());
}

per_pair!(follows_while_the_leader_writes);

/// The follower restarts (dropped and started again), then the leader restarts (closed
/// and reopened): each time the follower resumes after its last batch, copying nothing.
#[test]
fn restarts_of_either_side_resume_without_a_copy() {
    let mut leader = Opened::<RedbBackend>::fresh(relaxed());
    populate(&leader.stores);
    let place = Place::<SqliteBackend>::fresh();
    let follower = place.start(&leader.stores).unwrap();
    follower
        .run(
            leader.stores.engine().as_ref(),
            &caught_up(),
            &StopHandle::new(),
            &NoProgress,
        )
        .unwrap();

    // The follower restarts while the leader writes on.
    drop(follower);
    write(leader.stores.engine().as_ref(), 0..40);
    let follower = place.start(&leader.stores).unwrap();
    assert_eq!(follower.start_report(), &Start::Resumed { at: 6 });
    let outcome = follower
        .run(
            leader.stores.engine().as_ref(),
            &caught_up(),
            &StopHandle::new(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(outcome.ended, Ended::CaughtUp);
    assert_eq!(
        (outcome.started_at, outcome.at, outcome.applied),
        (6, 46, 40)
    );

    // The leader restarts; the same follower goes on with the reopened leader.
    leader = leader.reopen();
    write(leader.stores.engine().as_ref(), 40..75);
    let outcome = follower
        .run(
            leader.stores.engine().as_ref(),
            &caught_up(),
            &StopHandle::new(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!((outcome.started_at, outcome.at), (46, 81));

    // Both restart: still resumed, and everything matches.
    drop(follower);
    leader = leader.reopen();
    write(leader.stores.engine().as_ref(), 75..80);
    let follower = place.start(&leader.stores).unwrap();
    assert_eq!(follower.start_report(), &Start::Resumed { at: 81 });
    follower
        .run(
            leader.stores.engine().as_ref(),
            &caught_up(),
            &StopHandle::new(),
            &NoProgress,
        )
        .unwrap();
    same_engine(
        leader.stores.engine().as_ref(),
        follower.stores().engine().as_ref(),
    );
    same_stores(&leader.stores, follower.stores());
}

/// The leader prunes batches the follower has not applied: the follower stops with
/// `Pruned` naming the missing numbers, applies nothing past its own, and keeps refusing
/// on every later run; a resync (a new follower) copies the pruned data as base batches.
#[test]
fn a_pruned_leader_stops_the_follower_with_the_missing_numbers() {
    let leader = Opened::<RedbBackend>::fresh(relaxed());
    let engine = leader.stores.engine();
    write(engine.as_ref(), 0..10);
    let place = Place::<SqliteBackend>::fresh();
    let follower = place.start(&leader.stores).unwrap();
    assert_eq!(follower.stores().engine().current_sequence(), 10);

    write(engine.as_ref(), 10..20);
    assert_eq!(engine.prune_batch_log(16).unwrap(), 15);
    let run = || {
        follower.run(
            engine.as_ref(),
            &caught_up(),
            &StopHandle::new(),
            &NoProgress,
        )
    };
    let err = run().unwrap_err();
    match &err {
        FollowError::Pruned {
            follower_at: 10,
            first_missing: 11,
            last_missing: 15,
            oldest_retained: Some(16),
        } => {}
        other => panic!("expected Pruned 11..=15, got {other:?}"),
    }
    assert!(err.needs_resync());
    let text = err.to_string();
    assert!(
        text.contains("batches 11..=15") && text.contains("resync"),
        "{text}"
    );
    assert_eq!(follower.stores().engine().current_sequence(), 10);

    // Everything pruned: the missing range runs to the leader's last batch.
    engine.prune_batch_log(u64::MAX).unwrap();
    match run() {
        Err(FollowError::Pruned {
            first_missing: 11,
            last_missing: 20,
            oldest_retained: None,
            ..
        }) => {}
        other => panic!("expected Pruned 11..=20, got {other:?}"),
    }
    assert_eq!(follower.stores().engine().current_sequence(), 10);

    // The resync: a new follower copies what the pruned batches left.
    let resynced = Place::<SqliteBackend>::fresh();
    let follower = resynced.start(&leader.stores).unwrap();
    same_engine(engine.as_ref(), follower.stores().engine().as_ref());
}

/// Records what a follower reports.
#[derive(Default)]
struct Recorder {
    applied: RefCell<Vec<u64>>,
    statuses: RefCell<Vec<FollowStatus>>,
    stop_after: Option<(usize, StopHandle)>,
}

impl Progress for Recorder {}

impl FollowProgress for Recorder {
    fn applied(&self, seq: u64) {
        let mut applied = self.applied.borrow_mut();
        applied.push(seq);
        if let Some((count, stop)) = &self.stop_after
            && applied.len() == *count
        {
            stop.stop();
        }
    }

    fn status(&self, status: &FollowStatus) {
        self.statuses.borrow_mut().push(*status);
    }
}

/// A stop requested while the follower works through a backlog takes effect after the
/// batch in progress; one requested while it waits ends the wait within the wait slice.
#[test]
fn a_stop_request_ends_the_run_after_the_batch_in_progress() {
    let leader = Opened::<MemBackend>::fresh(relaxed());
    let engine = leader.stores.engine();
    let place = Place::<RedbBackend>::fresh();
    let follower = place.start(&leader.stores).unwrap();
    write(engine.as_ref(), 0..100);

    let stop = StopHandle::new();
    let recorder = Recorder {
        stop_after: Some((37, stop.clone())),
        ..Recorder::default()
    };
    let outcome = follower
        .run(engine.as_ref(), &FollowOptions::default(), &stop, &recorder)
        .unwrap();
    assert_eq!(outcome.ended, Ended::Stopped);
    assert_eq!((outcome.at, outcome.leader_at), (37, 100));
    assert_eq!(*recorder.applied.borrow(), (1..=37).collect::<Vec<_>>());
    let last = *recorder.statuses.borrow().last().unwrap();
    assert_eq!((last.applied, last.leader, last.behind()), (37, 100, 63));

    // Caught up and waiting: the stop ends the wait.
    let stop = StopHandle::new();
    let options = FollowOptions {
        wait_slice: Duration::from_millis(50),
        ..FollowOptions::default()
    };
    let waited = std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            let started = Instant::now();
            let outcome = follower.run(engine.as_ref(), &options, &stop, &NoProgress);
            (outcome, started.elapsed())
        });
        while follower.stores().engine().current_sequence() < 100 {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(100));
        let asked = Instant::now();
        stop.stop();
        let (outcome, _) = running.join().unwrap();
        (outcome.unwrap(), asked.elapsed())
    });
    let (outcome, after_stop) = waited;
    assert_eq!((outcome.ended, outcome.at), (Ended::Stopped, 100));
    assert!(after_stop < Duration::from_secs(5), "{after_stop:?}");
}

/// A follower written by someone else is refused before anything is applied: ahead of
/// its leader, or holding another batch under the leader's number.
#[test]
fn a_diverged_follower_is_refused() {
    let leader = Opened::<SledBackend>::fresh(relaxed());
    let engine = leader.stores.engine();
    write(engine.as_ref(), 0..5);
    let place = Place::<LmdbBackend>::fresh();
    let follower = place.start(&leader.stores).unwrap();
    follower
        .stores()
        .engine()
        .put_batch(&[(b"mine", b"1")])
        .unwrap();
    drop(follower);

    match place.start(&leader.stores) {
        Err(err @ FollowError::AheadOfLeader { .. }) => {
            assert!(err.needs_resync());
            assert!(matches!(
                err,
                FollowError::AheadOfLeader {
                    follower_at: 6,
                    leader_at: 5
                }
            ));
        }
        other => panic!("expected AheadOfLeader, got {other:?}"),
    }
    // The leader writes its own batch 6: now both hold a batch 6, and they differ.
    write(engine.as_ref(), 5..6);
    match place.start(&leader.stores) {
        Err(FollowError::Diverged { seq: 6 }) => {}
        other => panic!("expected Diverged at 6, got {other:?}"),
    }
}

/// A follower directory whose first copy never finished (its `MIGRATING` marker is there,
/// as a kill during the copy leaves it) is refused and left as it is.
#[test]
fn an_unfinished_first_copy_is_refused() {
    let leader = Opened::<MemBackend>::fresh(relaxed());
    write(leader.stores.engine().as_ref(), 0..3);
    let place = Place::<SqliteBackend>::fresh();
    drop(place.start(&leader.stores).unwrap());
    let marker = place.path().join(migrate::MIGRATING_FILE);
    std::fs::write(&marker, "follower's first copy from mem started at 0\n").unwrap();
    match place.start(&leader.stores) {
        Err(err @ FollowError::UnfinishedCopy { .. }) => {
            assert!(err.needs_resync());
            let text = err.to_string();
            assert!(
                text.contains("never finished") && text.contains("resync"),
                "{text}"
            );
        }
        other => panic!("expected UnfinishedCopy, got {other:?}"),
    }
    assert!(marker.exists());
}

/// A first copy leaves no marker behind, and a follower of an empty leader copies nothing
/// and then follows from batch 1.
#[test]
fn an_empty_leader_is_followed_from_its_first_batch() {
    let leader = Opened::<LmdbBackend>::fresh(relaxed());
    let place = Place::<SledBackend>::fresh();
    let follower = place.start(&leader.stores).unwrap();
    assert!(matches!(
        follower.start_report(),
        Start::Copied { at: 0, .. }
    ));
    assert!(!place.path().join(migrate::MIGRATING_FILE).exists());
    write(leader.stores.engine().as_ref(), 0..3);
    let outcome = follower
        .run(
            leader.stores.engine().as_ref(),
            &caught_up(),
            &StopHandle::new(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!((outcome.started_at, outcome.at), (0, 3));
}

/// A shared leader (PostgreSQL) written through one instance and followed through another,
/// as a follower in another process does.
#[test]
fn a_postgres_leader_is_followed_through_its_own_instance() {
    use store_postgres::PostgresBackend;
    let location = store_postgres::scratch::fresh_location().unwrap();
    let writer = swapstore::open_as::<PostgresBackend>(&location, relaxed()).unwrap();
    populate(&writer);
    let leader = swapstore::open_as::<PostgresBackend>(&location, relaxed()).unwrap();
    let place = Place::<SqliteBackend>::fresh();
    let follower = place.start(&leader).unwrap();
    let stop = StopHandle::new();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            follower.run(
                leader.engine().as_ref(),
                &FollowOptions::default(),
                &stop,
                &NoProgress,
            )
        });
        write(writer.engine().as_ref(), 0..60);
        let deadline = Instant::now() + Duration::from_secs(60);
        while follower.stores().engine().current_sequence() < 66 {
            assert!(Instant::now() < deadline, "the follower did not catch up");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.stop();
        running.join().unwrap().unwrap();
    });
    same_engine(
        writer.engine().as_ref(),
        follower.stores().engine().as_ref(),
    );
    same_stores(&writer, follower.stores());
}
