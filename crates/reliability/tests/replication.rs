//! Replication across backends: every backend leading the in-memory reference and
//! following it, random sequences of leader writes, prunes, applies, re-applies, gaps and
//! reopens, the follower checked against the leader at every applied number.
//!
//! The run is seeded (a fixed seed in CI; `RELIABILITY_SEED` picks another), bounded
//! (`RELIABILITY_SCALE` multiplies the cases) and shrinks a failure to a minimal sequence.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reliability::differential::seed_bytes;
use reliability::replication;
use reliability::scale::scaled;
use std::path::Path;

use store_api::Backend;

/// The fixed seed of the CI run.
const CI_SEED: u64 = 0x00E1_1CA7_E000_0001;
const CASES: u64 = 16;
const MAX_STEPS: usize = 60;

fn leader_and_follower<L: Backend<Location = Path>, F: Backend<Location = Path>>() {
    let seed = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(CI_SEED);
    let cases = u32::try_from(scaled(CASES)).unwrap_or(u32::MAX);
    match replication::run::<L, F>(cases, MAX_STEPS, seed_bytes(seed)) {
        Ok(report) => eprintln!(
            "RELIABILITY-FIGURES replication leader={} follower={} cases={} applied={} seed={seed}",
            L::NAME,
            F::NAME,
            report.cases,
            report.applied
        ),
        Err(failure) => panic!("seed {seed}: {failure}"),
    }
}

/// Each backend leads the reference and follows it: two backends at once, always
/// different, and a new backend joins with its line in `for_each_persistent_backend!`.
macro_rules! pairs {
    ($name:ident, $ty:ty) => {
        mod $name {
            #[test]
            fn leads_mem() {
                super::leader_and_follower::<$ty, ::store_mem::MemBackend>();
            }

            #[test]
            fn follows_mem() {
                super::leader_and_follower::<::store_mem::MemBackend, $ty>();
            }
        }
    };
}

reliability::for_each_persistent_backend!(pairs);
