//! Cross-backend benchmarks of every store of `store-api`, the raw-engine baseline beside
//! the `StoreEngine`, and the comparison report.
//!
//! - [`workloads`]: the seeded generators shared by criterion and the report;
//! - [`backends`]: the enabled backends (one Cargo feature each) and the fixture;
//! - [`raw`]: the raw-engine baselines;
//! - [`ops`]: one loaded [`Bench`](measure::Bench) per store, with its operations;
//! - [`migrate_copy`]: `store-migrate`'s engine copy against `put_batch`;
//! - `pg_procs` (feature `postgres`): PostgreSQL ledger commits from several processes;
//! - [`peers`]: the references of `docs/contract.md` §8.2 measured beside the backends
//!   (laminar-core and talea-store-log with the `peers` feature, and the fsync floor);
//! - [`measure`]: how an operation is sampled and timed;
//! - [`groups`]: the criterion groups, every backend side by side;
//! - [`matrix`]: the report's fixed matrix;
//! - [`follow`]: the report's follower section: lag and catch-up per pair of backends;
//! - [`report`]: percentiles, the performance checks of `docs/contract.md` section 8, and
//!   the Markdown, JSON and SVG writers.
//!
//! Run the criterion benches with `cargo bench -p benches` and the report with
//! `cargo run --release -p benches --bin report` (see the crate's README).

pub mod backends;
pub mod error;
pub mod follow;
pub mod groups;
pub mod matrix;
pub mod measure;
pub mod migrate_copy;
pub mod ops;
pub mod peers;
#[cfg(feature = "postgres")]
pub mod pg_procs;
pub mod raw;
pub mod report;
pub mod workloads;

pub use error::BenchError;
