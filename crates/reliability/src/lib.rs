//! Reliability suite: what every backend survives, proven by tests that run in CI.
//!
//! Five kinds of test, each written once, generic over [`store_api::Backend`], and
//! expanded for every backend listed in [`for_each_persistent_backend!`]:
//!
//! - [`crash`]: a child process (the `crash_writer` binary, `src/bin/crash_writer.rs`)
//!   writes to every store and reports each acknowledged write; the parent kills it with
//!   `SIGKILL` at random moments, reopens the directory and checks what survived against
//!   the reference model ([`workload`]) and the invariants of [`invariants`].
//! - [`stress`]: many threads writing and reading every store at once.
//! - [`hostile`]: a table of bad inputs for every public entry point, and bad directories.
//! - [`differential`]: random operation sequences (proptest) run on every backend at once
//!   and on `store-mem`, comparing every result and every error.
//! - [`replication`]: a leader on one backend and a follower on another, random writes,
//!   prunes, applies and reopens (proptest), the follower checked against the leader at
//!   every applied number.
//! - [`follow_kill`]: a follower process (`src/bin/follow_child.rs`, running
//!   `store::replicate`) killed with `SIGKILL` at random moments while a PostgreSQL leader
//!   keeps writing, restarted, checked to hold a prefix of the leader's batches after each
//!   kill and to converge to the leader at the end; and an embedded leader's process, with
//!   its follower inside, killed the same way.
//! - [`server_kill`]: a PostgreSQL server stopped (`pg_ctl stop -m immediate`) or its
//!   postmaster killed while threads write every store, then restarted: typed errors
//!   within a bound during the outage, every acknowledged write afterwards, the same
//!   backend working again.
//! - [`disk_full`]: each store written until a small real filesystem is full, then the
//!   error kinds, reads, retries and the recovery once space is back.
//! - [`faultfs`]: a fault-injecting FUSE filesystem that knows what an `fsync` made
//!   durable; the power-cut tests run the crash workload on it, cut the power (every
//!   unsynced write discarded, or a torn subset kept) and check what survived, and
//!   inject failed `fsync`s and writes.
//!
//! [`fuzz_bodies`] holds the bodies of the cargo-fuzz targets in `fuzz/`, so stable Rust
//! compiles and unit-tests them. Iteration counts scale with `RELIABILITY_SCALE`
//! ([`scale`]).
//!
//! Everything here reports failures as [`Failure`] values rather than panicking; the test
//! files turn them into test failures.

pub mod crash;
pub mod differential;
pub mod disk_full;
pub mod dump;
pub mod failure;
pub mod faultfs;
pub mod fingerprint;
pub mod follow_kill;
pub mod fuzz_bodies;
pub mod hostile;
pub mod invariants;
pub mod pg;
pub mod power_cut;
pub mod records;
pub mod replication;
pub mod rng;
pub mod scale;
pub mod server_kill;
pub mod site;
pub mod stress;
pub mod workload;

pub use failure::Failure;

/// Calls `$callback!(name, BackendType)` once for every persistent backend that has
/// landed. A new backend joins every reliability test, and the crash writer, with one line
/// here.
#[macro_export]
macro_rules! for_each_persistent_backend {
    ($callback:ident) => {
        $callback!(redb, ::store_redb::RedbBackend);
        $callback!(lmdb, ::store_lmdb::LmdbBackend);
        $callback!(sled, ::store_sled::SledBackend);
        $callback!(fjall, ::store_fjall::FjallBackend);
        $callback!(sqlite, ::store_sqlite::SqliteBackend);
    };
}

/// Calls `$callback!(name, BackendType)` for the in-memory reference backend and then for
/// every backend of [`for_each_persistent_backend!`].
#[macro_export]
macro_rules! for_each_backend {
    ($callback:ident) => {
        $callback!(mem, ::store_mem::MemBackend);
        $crate::for_each_persistent_backend!($callback);
    };
}
