//! The code of the crate's examples (`cargo run -p swapstore --example ledger|state|session_log
//! -- [URL]`), shared by the three examples and by the integration tests (through
//! `tests/common`), so the tests run exactly what the examples run, on every backend. It
//! is not part of the library: it uses only the public API of `store`.
//!
//! Each demo takes an open [`Stores`](swapstore::Stores), does its work through the trait objects only, and
//! returns a report that prints what it did. Every demo can run again on the same
//! directory and prints the same figures: the ledger demo uses idempotency keys, the state
//! demo starts from an empty partition, and the session demo writes a new session.
// Each example runs one demo and the tests do not call `run_example`: every user of this
// module leaves part of it (and of its re-exports) unused.
#![allow(dead_code, unused_imports)]

mod example;
mod ledger;
mod session_log;
mod state;

pub use example::{ExampleStores, open_for_example, run_example};
pub use ledger::{BOOK as LEDGER_BOOK, LedgerDemo, ledger_demo};
pub use session_log::{SessionLogDemo, session_log_demo};
pub use state::{
    PARTITION as STATE_PARTITION, REPLICA_PARTITION as STATE_REPLICA_PARTITION, StateDemo,
    state_demo,
};

use swapstore::{InputError, LedgerError, SegmentError, SnapshotError, StateError, StoresError};

/// Why a demo failed: the store error that stopped it, unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The backend could not be opened.
    #[error(transparent)]
    Open(#[from] StoresError),
    /// A temporary directory for the default backend could not be created.
    #[error("cannot create a temporary directory for the example's backend: {0}")]
    TempDir(#[source] std::io::Error),
    /// A name or field the demo built was rejected.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A snapshot did not decode.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The segment log failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
}

/// `amount` minor units of an asset with `precision` decimals, as a decimal string
/// (`12050` at precision 2 is `120.50`).
pub fn format_minor(amount: i128, precision: u8) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let digits = amount.unsigned_abs().to_string();
    let precision = usize::from(precision);
    if precision == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = precision + 1);
    let (whole, frac) = padded.split_at(padded.len() - precision);
    format!("{sign}{whole}.{frac}")
}
