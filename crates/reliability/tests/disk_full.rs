//! A full disk under every persistent backend and every store (see
//! `reliability::disk_full`): typed errors, no acknowledged write lost, reads served, and
//! writes again once space is back.
//!
//! Each test mounts its own small `tmpfs`, which needs root: built as another user the
//! tests are generated `#[ignore]`d (see `build.rs`), never passed.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reliability::disk_full::{Filled, fill_and_recover};
use store_api::{Backend, Durability};

fn disk_full<B: Backend<Location = std::path::Path>>(filled: Filled) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let outcome = fill_and_recover::<B>(root.path(), Durability::Immediate, filled)
        .unwrap_or_else(|f| panic!("{} {filled:?}: {f}", B::NAME));
    eprintln!(
        "RELIABILITY-FIGURES disk-full backend={} store={filled:?} acknowledged={} errors={:?} \
         wrote_without_reopen={}",
        B::NAME,
        outcome.acknowledged,
        outcome.errors,
        outcome.wrote_without_reopen
    );
}

macro_rules! disk_full_tests {
    ($name:ident, $ty:ty) => {
        mod $name {
            use super::*;

            macro_rules! case {
                ($test:ident, $filled:expr) => {
                    #[test]
                    #[cfg_attr(
                        not(reliability_as_root),
                        ignore = "mounting the small tmpfs needs root, see build.rs"
                    )]
                    fn $test() {
                        disk_full::<$ty>($filled);
                    }
                };
            }

            case!(engine_put_batch, Filled::Engine);
            case!(ledger_commit, Filled::Ledger);
            case!(side_effect_write_outputs, Filled::SideEffects);
            case!(segment_append, Filled::Segments);
            case!(state_flush, Filled::State);
        }
    };
}

reliability::for_each_persistent_backend!(disk_full_tests);
