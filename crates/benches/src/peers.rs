//! The references `docs/contract.md` §8.2 states its targets against, measured in the same
//! run as the backends, on the same workloads:
//!
//! - `laminar` (feature `peers`): laminar-core 0.19.11's state stores on the state
//!   workload;
//! - `talea` (feature `peers`): talea-store-log 0.1.0 on the ledger workload, through its
//!   own API;
//! - [`fsync_floor`] (always): one append of 256 bytes and one `fsync` in the directory the
//!   stores are created in, the physical limit of a durable write.
//!
//! Their figures are rows of the report like a backend's, under the names below, marked
//! [`peer`](crate::report::BackendInfo::peer) so no target is checked on them.

pub mod fsync_floor;
#[cfg(feature = "peers")]
pub mod laminar;
#[cfg(feature = "peers")]
pub mod talea;

/// laminar-core's `InMemoryStore` (a `BTreeMap`).
pub const LAMINAR_IN_MEMORY: &str = "laminar InMemoryStore";
/// laminar-core's `AHashMapStore` (a hash map and a `BTreeSet` of the keys).
pub const LAMINAR_AHASH: &str = "laminar AHashMapStore";
/// laminar-core's `MmapStateStore`, persistent (a `BTreeMap` index over a memory-mapped
/// file).
pub const LAMINAR_MMAP: &str = "laminar MmapStateStore";
/// Every laminar-core state store measured.
pub const LAMINAR_STORES: [&str; 3] = [LAMINAR_IN_MEMORY, LAMINAR_AHASH, LAMINAR_MMAP];
/// talea-store-log.
pub const TALEA: &str = "talea-store-log";
/// One append of 256 bytes and one `fsync`.
pub const FSYNC_FLOOR: &str = "fsync floor";
