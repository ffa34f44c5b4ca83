//! Differential testing: random operation sequences on every backend at once (PostgreSQL
//! included), compared with the in-memory reference, result by result and error by error.
//!
//! The run is seeded (a fixed seed in CI; `RELIABILITY_SEED` picks another) and shrinks a
//! failure to a minimal sequence, which then becomes a named regression test below.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Mutex, OnceLock};

use reliability::differential::{self, Subjects, seed_bytes};
use reliability::scale::scaled;
use store_api::{Backend, OpenOptions};
use store_postgres::{PostgresBackend, PostgresLocation, scratch};

/// The fixed seed of the CI run.
const CI_SEED: u64 = 0x00D1_FF5E_ED00_0001;
const CASES: u64 = 24;
const MAX_LEN: usize = 80;

/// The reference first, then every persistent backend, then PostgreSQL (a fresh schema on
/// this test binary's throwaway server, or on the server `STORE_TEST_POSTGRES_URL` names).
fn all_backends() -> Result<Subjects, reliability::Failure> {
    let mut subjects = Subjects::new();
    macro_rules! add {
        ($name:ident, $ty:ty) => {
            subjects.add::<$ty>()?;
        };
    }
    reliability::for_each_backend!(add);
    subjects.add_at::<PostgresBackend>(&prepared_schema()?)?;
    Ok(subjects)
}

/// A fresh PostgreSQL store, its schema created ahead of time by a thread of its own while
/// the previous sequence runs: creating a store's tables takes about 0.3 s on the 2-core
/// CI machine, which would otherwise add 24 × 0.3 s to this test.
fn prepared_schema() -> Result<PostgresLocation, reliability::Failure> {
    type Prepared = Result<PostgresLocation, String>;
    static NEXT: OnceLock<Mutex<Receiver<Prepared>>> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let (send, receive) = sync_channel::<Prepared>(2);
        std::thread::spawn(move || {
            loop {
                let prepared = scratch::fresh_location()
                    .and_then(|location| {
                        PostgresBackend::open(&location, OpenOptions::default())?;
                        Ok(location)
                    })
                    .map_err(|e| store_api::error_chain(&e));
                if send.send(prepared).is_err() {
                    break;
                }
            }
        });
        Mutex::new(receive)
    });
    next.lock()
        .map_err(|_| reliability::Failure::new("the schema preparer's lock is poisoned"))?
        .recv()
        .map_err(|_| reliability::Failure::new("the schema preparer stopped"))?
        .map_err(|e| reliability::Failure(format!("preparing a PostgreSQL schema: {e}")))
}

#[test]
fn random_sequences_agree_on_every_backend() {
    let seed = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(CI_SEED);
    let cases = u32::try_from(scaled(CASES)).unwrap_or(u32::MAX);
    let started = std::time::Instant::now();
    match differential::run(cases, MAX_LEN, seed_bytes(seed), &all_backends) {
        Ok(report) => eprintln!(
            "RELIABILITY-FIGURES differential backends={} cases={} operations_compared={} \
             seconds={:.1} seed={seed}",
            all_backends().map(|s| s.subjects.len()).unwrap_or(0),
            report.cases,
            report.compared,
            started.elapsed().as_secs_f64()
        ),
        Err(failure) => panic!("seed {seed}: {failure}"),
    }
}

/// Regressions: minimal sequences the random run found, kept as named tests.
mod regressions {
    use reliability::differential::{self, ops::Blob, ops::Op};

    fn agree(ops: Vec<Op>) {
        let mut subjects = super::all_backends().expect("opening every backend");
        let mut all = differential::prelude();
        all.extend(ops);
        if let Err(failure) = differential::compare(&mut subjects, &all) {
            panic!("{failure}");
        }
    }

    /// §1.6 on every backend alike: after `close`, every store answers `Closed` through
    /// handles held from before and taken after, for reads and writes, and closing again is
    /// `Ok` (every random sequence ends the same way; this one closes right after the
    /// prelude).
    #[test]
    fn close_then_every_store_answers_closed() {
        agree(differential::ops::closing());
        // And what they agree on is `Closed`, on the reference too.
        let dir = tempfile::tempdir().unwrap();
        let mut reference =
            differential::Subject::<store_mem::MemBackend>::open(dir.path()).unwrap();
        for op in differential::prelude() {
            differential::AnySubject::apply(&mut reference, &op);
        }
        let closing = differential::ops::closing();
        let (first, rest) = closing.split_first().unwrap();
        let (last, calls) = rest.split_last().unwrap();
        assert_eq!(
            differential::AnySubject::apply(&mut reference, first),
            "Ok(closed)"
        );
        for op in calls {
            let outcome = differential::AnySubject::apply(&mut reference, op);
            assert!(
                outcome.contains("Closed"),
                "{op:?} after close gave {outcome}"
            );
        }
        assert_eq!(
            differential::AnySubject::apply(&mut reference, last),
            "Ok(closed)"
        );
    }

    /// Seed 0x00D1FF5EED000001 (CI): `truncate` naming a segment of another session
    /// must be `WrongSession` like every write (store-redb answered `NotFound`).
    #[test]
    fn truncate_of_another_sessions_segment() {
        agree(vec![
            Op::Append {
                session: 1,
                segment: 2,
                entry: Blob::of(b""),
            },
            Op::Truncate {
                session: 0,
                segment: 2,
                len: 0,
            },
        ]);
    }
}
