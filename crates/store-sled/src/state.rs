//! `StateStore`: the shared [`BufferedState`] over sled.
//!
//! Every partition lives in one tree (`state.entries`) under a 4-byte partition id prefix;
//! the name-to-id map has its own tree (`state.partitions`) and the id counter sits in
//! `state.meta`. A partition is loaded whole into the handle's memory when it is opened,
//! so `get` never touches sled; a flush writes every change since the previous one as one
//! sled batch on the entries tree (atomic, also across a crash). The partition's id is
//! allocated at its first flush, in a transaction of its own just before. A flush is
//! durable when it returns, in both durability modes.

use std::sync::Arc;

use bytes::Bytes;
use sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};
use sled::{Batch, Tree};
use store_api::{StateError, StorageError};
use store_kit::gate::WriteGate;
use store_kit::state::{
    BufferedState, NEXT_PARTITION_ID_KEY, PartitionLease, PendingWrites, StatePersist,
    partition_key, partition_page, partition_prefix, partitions_after,
};

use crate::{BACKEND_NAME, Shared, from_tx, storage_error, to_bytes, trees};

/// The state trees of one backend, from which partition handles are opened.
pub(crate) struct SledPartitions {
    entries: Tree,
    names: Tree,
    meta: Tree,
    shared: Arc<Shared>,
}

impl SledPartitions {
    pub(crate) fn open(shared: Arc<Shared>) -> Result<Self, StorageError> {
        Ok(SledPartitions {
            entries: shared.tree(trees::STATE_ENTRIES)?,
            names: shared.tree(trees::STATE_PARTITIONS)?,
            meta: shared.tree(trees::STATE_META)?,
            shared,
        })
    }

    /// A handle on the partition held by `lease`, loaded with its stored entries. A
    /// partition never flushed has no id yet: it gets one at its first flush, so opening
    /// writes nothing.
    pub(crate) fn open_partition(
        &self,
        lease: PartitionLease,
    ) -> Result<BufferedState<SledPartition>, StorageError> {
        let id = match self
            .names
            .get(lease.name())
            .map_err(|e| storage_error("looking up a state partition", e))?
        {
            Some(stored) => Some(decode_id(&stored)?),
            None => None,
        };
        let mut entries: Vec<(Bytes, Bytes)> = Vec::new();
        if let Some(id) = id {
            for row in self.entries.scan_prefix(partition_prefix(id)) {
                let (key, value) =
                    row.map_err(|e| storage_error("loading a state partition", e))?;
                let Some(user_key) = key.get(4..) else {
                    return Err(StorageError::corrupted(
                        BACKEND_NAME,
                        "loading a state partition: a stored key is shorter than its prefix",
                    ));
                };
                entries.push((Bytes::copy_from_slice(user_key), to_bytes(value)));
            }
        }
        let persist = SledPartition {
            id,
            entries: self.entries.clone(),
            names: self.names.clone(),
            meta: self.meta.clone(),
            shared: Arc::clone(&self.shared),
        };
        Ok(BufferedState::new(lease, entries, persist))
    }
}

impl SledPartitions {
    /// One page of the partitions holding data: the name tree read from the cursor on,
    /// each name kept when its entries hold a key (one seek per name).
    pub(crate) fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        const WHAT: &str = "listing state partitions";
        let range = partitions_after(after)?;
        let names = self
            .names
            .range::<&[u8], _>(range.as_slices())
            .map(|row| row.map_err(|e| storage_error(WHAT, e)));
        let holds_data = |id: u32| match self.entries.scan_prefix(partition_prefix(id)).next() {
            Some(row) => row.map(|_| true).map_err(|e| storage_error(WHAT, e)),
            None => Ok(false),
        };
        Ok(partition_page(BACKEND_NAME, names, limit, holds_data)?)
    }
}

/// Where a sled partition's flushes go.
pub struct SledPartition {
    /// The partition's id, once it has one.
    id: Option<u32>,
    entries: Tree,
    names: Tree,
    meta: Tree,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SledPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledPartition")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn decode_id(stored: &[u8]) -> Result<u32, StorageError> {
    match <[u8; 4]>::try_from(stored) {
        Ok(bytes) => Ok(u32::from_be_bytes(bytes)),
        Err(_) => Err(StorageError::corrupted(
            BACKEND_NAME,
            "decoding a state partition id: it is not 4 bytes",
        )),
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StorageError>>;

/// The id of `partition`, allocated from the counter when it has none yet, in one
/// transaction over the name map and the counter.
fn id_in_tx(names: &TransactionalTree, meta: &TransactionalTree, partition: &str) -> TxResult<u32> {
    let abort = ConflictableTransactionError::Abort;
    if let Some(stored) = names.get(partition)? {
        return decode_id(&stored).map_err(abort);
    }
    let id = match meta.get(NEXT_PARTITION_ID_KEY)? {
        Some(stored) => decode_id(&stored).map_err(abort)?,
        None => 0,
    };
    let Some(next) = id.checked_add(1) else {
        return Err(abort(StorageError::without_source(
            BACKEND_NAME,
            store_api::StorageErrorKind::Engine,
            "allocating a state partition id: every 32-bit id is taken",
        )));
    };
    names.insert(partition, &id.to_be_bytes()[..])?;
    meta.insert(NEXT_PARTITION_ID_KEY, &next.to_be_bytes()[..])?;
    Ok(id)
}

impl SledPartition {
    /// The partition's id, allocated on first use. An id whose partition never got its
    /// entries written (a crash in between) is harmless: the partition opens empty.
    fn id(&mut self, partition: &str) -> Result<u32, StorageError> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        let id = (&self.names, &self.meta)
            .transaction(|(names, meta)| id_in_tx(names, meta, partition))
            .map_err(|e| {
                self.shared
                    .poisoning(from_tx("allocating a state partition id", e))
            })?;
        self.id = Some(id);
        Ok(id)
    }
}

impl StatePersist for SledPartition {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        self.shared.writable()?;
        let had_id = self.id.is_some();
        let id = self.id(partition)?;
        let mut batch = Batch::default();
        // The handle owns the partition: nobody else writes under its prefix, so the keys
        // to clear can be listed before the batch is applied.
        if writes.clear && had_id {
            for row in self.entries.scan_prefix(partition_prefix(id)) {
                let (key, _) = row.map_err(|e| storage_error("listing a state partition", e))?;
                batch.remove(key);
            }
        }
        for (key, value) in &writes.changes {
            let stored = partition_key(id, key);
            match value {
                Some(value) => batch.insert(stored, value.as_ref()),
                None => batch.remove(stored),
            }
        }
        // One batch on one tree: applied atomically, also across a crash.
        self.entries.apply_batch(batch).map_err(|e| {
            self.shared
                .poisoning(storage_error("flushing a state partition", e))
        })?;
        // `StateStore::flush` makes every earlier write durable, whatever the mode.
        self.shared
            .make_durable("making a state partition flush durable")
    }

    fn gate(&self) -> &WriteGate {
        self.shared.gate()
    }
}
