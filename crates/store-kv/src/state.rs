//! `StateStore` partitions on any [`KvStore`]: the shared [`BufferedState`] over one table
//! of entries, where every partition's keys carry its 4-byte id (`partition_id:u32be key`),
//! with the name → id map and the next id to hand out in two more tables.
//!
//! A handle loads its whole partition once (one range read) and answers every read from
//! memory; [`flush`](store_api::StateStore::flush) writes the changes since the previous
//! flush in one write transaction, committed durably under either durability mode
//! ([`Commit::Durable`]). A partition gets its id at its first flush, in that flush's
//! transaction: opening a partition writes nothing.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use store_api::{StateError, StorageError, StorageErrorKind};
use store_kit::codec::prefix_successor;
use store_kit::state::{
    BufferedState, NEXT_PARTITION_ID_KEY, PartitionLease, PendingWrites, StatePersist,
    partition_key, partition_prefix, partition_row, partitions_after,
};

use crate::listing::first_key;
use crate::{Commit, Direction, KvRead, KvStore, KvWrite, Visit};

/// The names of the state tables and the first partition id, which differ between
/// backends (each keeps the names and ids its databases have always had).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTables {
    /// Entries of every partition: `partition_id:u32be key` → value, as given.
    pub entries: &'static str,
    /// Partition names: UTF-8 name → `partition_id:u32be`.
    pub partitions: &'static str,
    /// The next partition id to hand out (`u32be`) at `next-partition-id`.
    pub meta: &'static str,
    /// The id of the first partition of a new database.
    pub first_id: u32,
}

/// The tables of the state partitions, resolved.
#[derive(Debug, Clone)]
struct Tables<T> {
    entries: T,
    partitions: T,
    meta: T,
    first_id: u32,
}

/// The state partitions of a backend on the engine `K`: opens and lists them.
#[derive(Debug)]
pub struct KvPartitions<K: KvStore> {
    t: Tables<K::Table>,
    /// Declared last: the tables are dropped before the engine handle, which may close
    /// its files only once no table handle is left (sled does).
    kv: Arc<K>,
}

/// Where the flushes of one partition go.
#[derive(Debug)]
pub struct KvPartition<K: KvStore> {
    t: Tables<K::Table>,
    /// The partition's id, once it has one: `None` until its first flush allocates one.
    id: Option<u32>,
    /// Declared last: the tables are dropped before the engine handle, which may close
    /// its files only once no table handle is left (sled does).
    kv: Arc<K>,
}

fn decode_id(backend: &'static str, bytes: &[u8]) -> Result<u32, StorageError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| {
        StorageError::corrupted(backend, "decoding a state partition id: it is not 4 bytes")
    })?;
    Ok(u32::from_be_bytes(bytes))
}

/// The key range of partition `id`'s entries: every key with its prefix.
fn with_prefix<'a>(prefix: &'a [u8], end: &'a Option<Vec<u8>>) -> crate::KeyBounds<'a> {
    (
        Bound::Included(prefix),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

impl<K: KvStore> KvPartitions<K> {
    /// The partitions over `kv`, in the tables `tables` names.
    pub fn open(kv: Arc<K>, tables: StateTables) -> Result<Self, StorageError> {
        Ok(KvPartitions {
            t: Tables {
                entries: kv.table(tables.entries)?,
                partitions: kv.table(tables.partitions)?,
                meta: kv.table(tables.meta)?,
                first_id: tables.first_id,
            },
            kv,
        })
    }

    /// A handle on the partition `lease` holds: its id, if it has one, and its stored
    /// entries, read in one read transaction.
    pub fn open_partition(
        &self,
        lease: PartitionLease,
    ) -> Result<BufferedState<KvPartition<K>>, StorageError> {
        let (id, entries) = self.kv.read("loading a state partition", |txn| {
            let id = txn.get(&self.t.partitions, lease.name().as_bytes(), |bytes| {
                decode_id(K::NAME, bytes)
            })?;
            let mut entries = Vec::new();
            if let Some(id) = id {
                let prefix = partition_prefix(id);
                let end = prefix_successor(&prefix);
                let range = with_prefix(&prefix, &end);
                txn.scan(&self.t.entries, range, Direction::Forward, |key, value| {
                    let key = key.get(prefix.len()..).ok_or_else(|| {
                        StorageError::corrupted(K::NAME, "a state key shorter than its prefix")
                    })?;
                    entries.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
                    Ok::<_, StorageError>(Visit::Continue(()))
                })?;
            }
            Ok::<_, StorageError>((id, entries))
        })?;
        let persist = KvPartition {
            kv: Arc::clone(&self.kv),
            t: self.t.clone(),
            id,
        };
        Ok(BufferedState::new(lease, entries, persist))
    }

    /// One page of the partitions holding data: the name table read from the cursor on,
    /// each name kept when its entries hold a key (one seek per name; a partition whose
    /// keys were all deleted keeps its name but is not listed).
    pub fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
        let range = partitions_after(after)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(self.kv.read("listing state partitions", |txn| {
            let mut page = Vec::new();
            txn.scan(
                &self.t.partitions,
                range.as_slices(),
                Direction::Forward,
                |name, id| {
                    let (name, id) = partition_row(K::NAME, name, id)?;
                    let prefix = partition_prefix(id);
                    let end = prefix_successor(&prefix);
                    let range = with_prefix(&prefix, &end);
                    if first_key(txn, &self.t.entries, range, Direction::Forward)?.is_some() {
                        page.push(name);
                    }
                    Ok::<_, StorageError>(if page.len() == limit {
                        Visit::Break(())
                    } else {
                        Visit::Continue(())
                    })
                },
            )?;
            Ok::<_, StorageError>(page)
        })?)
    }
}

impl<K: KvStore> KvPartition<K> {
    /// The id of `partition`, allocated in `txn` when it has none yet.
    fn allocate_id(
        &self,
        txn: &mut impl KvWrite<Table = K::Table>,
        partition: &str,
    ) -> Result<u32, StorageError> {
        let decode = |bytes: &[u8]| decode_id(K::NAME, bytes);
        if let Some(id) = txn.get(&self.t.partitions, partition.as_bytes(), decode)? {
            return Ok(id);
        }
        let id = txn
            .get(&self.t.meta, NEXT_PARTITION_ID_KEY, decode)?
            .unwrap_or(self.t.first_id);
        let next = id.checked_add(1).ok_or_else(|| {
            StorageError::without_source(
                K::NAME,
                StorageErrorKind::Engine,
                "allocating a state partition id: every id is used",
            )
        })?;
        txn.put(&self.t.meta, NEXT_PARTITION_ID_KEY, &next.to_be_bytes())?;
        txn.put(&self.t.partitions, partition.as_bytes(), &id.to_be_bytes())?;
        Ok(id)
    }
}

impl<K: KvStore> StatePersist for KvPartition<K> {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        let known = self.id;
        let id = self
            .kv
            .write(Commit::Durable, "flushing a state partition", |txn| {
                let id = match known {
                    Some(id) => id,
                    None => self.allocate_id(txn, partition)?,
                };
                if writes.clear {
                    let prefix = partition_prefix(id);
                    let end = prefix_successor(&prefix);
                    txn.delete_range(&self.t.entries, with_prefix(&prefix, &end))?;
                }
                for (key, value) in &writes.changes {
                    let stored = partition_key(id, key);
                    match value {
                        Some(value) => txn.put(&self.t.entries, &stored, value)?,
                        // A cleared partition holds nothing to delete.
                        None if !writes.clear => txn.delete(&self.t.entries, &stored)?,
                        None => {}
                    }
                }
                Ok::<_, StorageError>(id)
            })?;
        self.id = Some(id);
        Ok(())
    }

    fn gate(&self) -> &store_kit::gate::WriteGate {
        self.kv.gate()
    }
}
