//! The state store every backend hands out: an in-memory index of the whole partition for
//! the hot path, which also remembers the keys written since the last flush, and a
//! backend-specific [`StatePersist`] that applies those writes in one atomic engine
//! transaction.
//!
//! # Why this design
//! `StateStore::get` must answer in well under 500 ns on every engine, and a state
//! partition has exactly one owner. So the owner keeps the partition in memory: `get` is
//! one hash lookup (no lock, no allocation beyond a reference-count increment), and the
//! engine only sees [`flush`](store_api::StateStore::flush), which writes every change
//! since the previous flush in one transaction. That is exactly the durability rule of
//! `docs/contract.md` §4.5: after a flush and a reopen the partition is what it was; writes after
//! the last flush may be lost; a flush is never half applied.
//!
//! The cost: a partition's keys and values live in memory while it is open (loaded once by
//! [`Backend::state_store`](store_api::Backend::state_store)). [`StateMap`] describes how
//! they are laid out so that a `get` costs one cache miss and a `put` little more: the
//! ordered view for scans and the flush delta are both derived from the index when they
//! are needed, not maintained by every write.

use std::collections::{BTreeMap, HashSet};
use std::ops::{Bound, Range};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use store_api::limits::{check_key, check_value};
use store_api::{StateError, StateSnapshot, StateStore, StorageError};

use crate::gate::WriteGate;

mod arena;
mod map;

pub use map::StateMap;

/// The writes since the last flush, as the engine must apply them (built by `flush` from
/// the keys the map remembers as written).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingWrites {
    /// Remove every stored entry of the partition first (after a `clear` or `restore`).
    pub clear: bool,
    /// Then set (`Some`) or delete (`None`) these keys, ascending.
    pub changes: BTreeMap<Bytes, Option<Bytes>>,
}

impl PendingWrites {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        !self.clear && self.changes.is_empty()
    }
}

/// How a backend stores a state partition.
pub trait StatePersist: Send + 'static {
    /// Applies `writes` to partition `partition` in one atomic, durable (per the backend's
    /// durability mode) engine transaction.
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError>;

    /// The gate of the backend the partition belongs to: once it is closed every call of
    /// the handle answers `Closed`, and while it refuses writes (read-only, poisoned) every
    /// write of the handle is refused at once, not only at the next flush.
    fn gate(&self) -> &WriteGate;
}

/// The set of partitions that have a live handle, shared by a backend's handles.
#[derive(Debug, Default, Clone)]
pub struct PartitionLeases {
    held: Arc<Mutex<HashSet<String>>>,
}

/// Proof that a handle owns a partition; releases it on drop.
#[derive(Debug)]
pub struct PartitionLease {
    name: String,
    held: Arc<Mutex<HashSet<String>>>,
}

impl PartitionLeases {
    /// Takes `name`, or fails with [`StateError::PartitionInUse`] while another handle
    /// holds it. The name must already be validated.
    pub fn acquire(&self, name: &str) -> Result<PartitionLease, StateError> {
        let mut held = self.held.lock();
        if !held.insert(name.to_owned()) {
            return Err(StateError::PartitionInUse {
                partition: name.to_owned(),
            });
        }
        Ok(PartitionLease {
            name: name.to_owned(),
            held: Arc::clone(&self.held),
        })
    }
}

impl PartitionLease {
    /// The partition's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PartitionLease {
    fn drop(&mut self) {
        self.held.lock().remove(&self.name);
    }
}

/// A [`StateStore`] over any [`StatePersist`]: the one implementation every backend uses.
pub struct BufferedState<P: StatePersist> {
    lease: PartitionLease,
    /// The entries, and the keys written since the last flush.
    map: StateMap,
    /// Whether the next flush removes every stored entry first (after a `clear` or
    /// `restore`); it then writes every entry of the map.
    replaced: bool,
    persist: P,
}

impl<P: StatePersist> BufferedState<P> {
    /// A handle on the partition held by `lease`, whose stored entries are `entries`.
    pub fn new(
        lease: PartitionLease,
        entries: impl IntoIterator<Item = (Bytes, Bytes)>,
        persist: P,
    ) -> Self {
        BufferedState {
            lease,
            map: StateMap::from_entries(entries),
            replaced: false,
            persist,
        }
    }

    /// Makes `entries` (later duplicates win) the whole state, to be written over the
    /// stored entries at the next flush.
    fn replace_all(&mut self, entries: &[(Bytes, Bytes)]) {
        self.replaced = true;
        self.map.replace(entries.iter().cloned());
    }

    /// What the next flush writes: every entry over a cleared partition after a `clear`
    /// or `restore`, else the net effect of the writes since the last flush.
    fn pending(&mut self) -> PendingWrites {
        if self.replaced {
            PendingWrites {
                clear: true,
                changes: self
                    .map
                    .entries()
                    .into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect(),
            }
        } else {
            PendingWrites {
                clear: false,
                changes: self.map.written(),
            }
        }
    }
}

impl<P: StatePersist> StateStore for BufferedState<P> {
    fn partition(&self) -> &str {
        &self.lease.name
    }

    /// Always inlined: this is the state store's hot path (a hash probe of tens of
    /// nanoseconds), and a call returning its result through memory costs as much again
    /// (measured: 37 to 60 ns for a hit at 1k keys when the compiler stopped inlining it
    /// after the error types changed; `crates/benches/README.md`, issue 20).
    #[inline(always)]
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StateError> {
        check_key(key)?;
        self.persist.gate().check_open()?;
        Ok(self.map.get(key).cloned())
    }

    fn contains(&self, key: &[u8]) -> Result<bool, StateError> {
        check_key(key)?;
        self.persist.gate().check_open()?;
        Ok(self.map.get(key).is_some())
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        check_key(key)?;
        check_value(value)?;
        self.persist.gate().check()?;
        self.map.put(key, value);
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StateError> {
        check_key(key)?;
        self.persist.gate().check()?;
        // The map mirrors the stored entries plus pending writes: an absent key needs no
        // record (it is not stored, or its delete is already pending), and `remove`
        // records none.
        self.map.remove(key);
        Ok(())
    }

    fn get_or_insert(&mut self, key: &[u8], default: &[u8]) -> Result<Bytes, StateError> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        self.put(key, default)?;
        Ok(Bytes::copy_from_slice(default))
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn size_bytes(&self) -> u64 {
        self.map.size_bytes()
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<(Bytes, Bytes)>, StateError> {
        self.persist.gate().check_open()?;
        Ok(self.map.prefix(prefix))
    }

    fn range_scan(&self, range: Range<&[u8]>) -> Result<Vec<(Bytes, Bytes)>, StateError> {
        self.persist.gate().check_open()?;
        Ok(self.map.range(range))
    }

    fn range_scan_bounds(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<Vec<(Bytes, Bytes)>, StateError> {
        self.persist.gate().check_open()?;
        Ok(self.map.range_bounds(start, end))
    }

    fn clear(&mut self) -> Result<(), StateError> {
        self.persist.gate().check()?;
        self.replace_all(&[]);
        Ok(())
    }

    fn snapshot(&self) -> Result<StateSnapshot, StateError> {
        self.persist.gate().check_open()?;
        Ok(StateSnapshot::from_sorted_unchecked(self.map.entries()))
    }

    fn restore(&mut self, snapshot: &StateSnapshot) -> Result<(), StateError> {
        self.persist.gate().check()?;
        self.replace_all(snapshot.entries());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StateError> {
        if !self.replaced && !self.map.has_written() {
            // Nothing to write is not a write: only a closed backend refuses it.
            self.persist.gate().check_open()?;
            return Ok(());
        }
        self.persist.gate().check()?;
        let pending = self.pending();
        let started = tracing::enabled!(target: "store_kit::state", tracing::Level::DEBUG)
            .then(std::time::Instant::now);
        // On failure nothing is forgotten: the next flush writes the same and more.
        self.persist
            .apply(&self.lease.name, &pending)
            .map_err(|e| self.persist.gate().locate(e))?;
        self.replaced = false;
        self.map.mark_flushed();
        if let Some(started) = started {
            tracing::debug!(
                target: "store_kit::state",
                partition = %self.lease.name,
                changes = pending.changes.len(),
                clear = pending.clear,
                elapsed_us = started.elapsed().as_micros() as u64,
                "state partition flushed durably"
            );
        }
        Ok(())
    }
}

impl<P: StatePersist> Drop for BufferedState<P> {
    /// Discards the unflushed writes (checkpoint semantics, `docs/contract.md` §4.5) and
    /// says so in a `debug` event, so a missing flush shows in the logs.
    fn drop(&mut self) {
        if self.replaced || self.map.has_written() {
            // The fields are computed only when the event is enabled.
            tracing::debug!(
                target: "store_kit::state",
                partition = %self.lease.name,
                discarded_writes = self.map.written().len(),
                discarded_clear = self.replaced,
                "state partition dropped with unflushed writes; they are discarded"
            );
        }
    }
}

/// Key of the counter that hands out partition ids, in a backend's metadata table.
pub const NEXT_PARTITION_ID_KEY: &[u8] = b"next-partition-id";

/// The 4-byte prefix of every stored key of partition `id`, on engines that keep all
/// partitions in one table. A short numeric prefix (instead of the name) keeps a key at
/// [`MAX_KEY_LEN`](store_api::MAX_KEY_LEN) under LMDB's key limit; the name-to-id map lives
/// in its own table.
pub fn partition_prefix(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

/// The stored key of `key` in partition `id`: `id(u32be) key`.
pub fn partition_key(id: u32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len());
    out.extend_from_slice(&partition_prefix(id));
    out.extend_from_slice(key);
    out
}

/// One page of [`Backend::list_partitions`](store_api::Backend::list_partitions) on an
/// engine that keeps a name → id table beside the entries of every partition: `names` are
/// that table's rows (name, id as `u32be`) read ascending from the cursor on, and a
/// partition is listed when `holds_data(id)` says its entries hold a key (a partition whose
/// keys were all deleted and flushed keeps its row but holds nothing). A row that does not
/// decode is a [`Corrupted`](store_api::StorageErrorKind::Corrupted) error of `backend`.
pub fn partition_page<N, I, E>(
    backend: &'static str,
    names: impl IntoIterator<Item = Result<(N, I), E>>,
    limit: usize,
    mut holds_data: impl FnMut(u32) -> Result<bool, E>,
) -> Result<Vec<String>, E>
where
    N: AsRef<[u8]>,
    I: AsRef<[u8]>,
    E: From<StorageError>,
{
    let rows = names.into_iter().map(|row| {
        let (name, id) = row?;
        Ok(partition_row(backend, name.as_ref(), id.as_ref())?)
    });
    let page = crate::listing::filtered_page(rows, limit, |(_, id)| holds_data(*id))?;
    Ok(page.into_iter().map(|(name, _)| name).collect())
}

/// One row of a name → id table decoded: the partition's name and id. A row that does not
/// decode is a [`Corrupted`](store_api::StorageErrorKind::Corrupted) error of `backend`.
pub fn partition_row(
    backend: &'static str,
    name: &[u8],
    id: &[u8],
) -> Result<(String, u32), StorageError> {
    let corrupted = || StorageError::corrupted(backend, "decoding a state partition row");
    let name = std::str::from_utf8(name)
        .ok()
        .filter(|name| store_api::limits::check_partition_name(name).is_ok())
        .ok_or_else(corrupted)?;
    let id = <[u8; 4]>::try_from(id).map_err(|_| corrupted())?;
    Ok((name.to_owned(), u32::from_be_bytes(id)))
}

/// The key range, in a name → id table, of a
/// [`list_partitions`](store_api::Backend::list_partitions) page: the names after the
/// cursor, which must be a valid partition name.
pub fn partitions_after(
    after: Option<&str>,
) -> Result<crate::listing::KeyRange, store_api::InputError> {
    store_api::limits::check_partition_cursor(after)?;
    Ok(crate::listing::KeyRange::after(
        after.map(|name| name.as_bytes().to_vec()),
    ))
}
