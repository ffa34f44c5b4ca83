//! `StateStore` on redb: the shared [`BufferedState`] over `state.entries`, where every
//! partition's keys carry its 4-byte id, with the name → id map in `state.partitions`.
//!
//! A handle loads its whole partition once (one range read) and answers every read from
//! memory; [`flush`](store_api::StateStore::flush) writes the changes since the previous
//! flush in one write transaction, committed durably under either durability mode.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use store_api::{MAX_KEY_LEN, StateError, StorageError};
use store_kit::codec::prefix_successor;
use store_kit::gate::WriteGate;
use store_kit::state::{
    BufferedState, NEXT_PARTITION_ID_KEY, PartitionLease, PendingWrites, StatePersist,
    partition_page, partition_prefix, partitions_after,
};

use crate::BACKEND_NAME;
use crate::db::{Context, Db, WriteTxn, get_with, read_table};
use crate::tables::{STATE_ENTRIES, STATE_META, STATE_PARTITIONS};

/// Where a redb state partition's flushes go.
#[derive(Debug)]
pub struct RedbPartition {
    db: Arc<Db>,
    /// The partition's id, once it has one: a partition that was never flushed has none, so
    /// opening a partition writes nothing.
    id: Option<u32>,
}

/// Opens the partition held by `lease`: its id, if it has one, and its stored entries.
pub(crate) fn open(
    db: Arc<Db>,
    lease: PartitionLease,
) -> Result<BufferedState<RedbPartition>, StorageError> {
    const CONTEXT: &str = "loading a state partition";
    let txn = db.begin_read(CONTEXT)?;
    let partitions = read_table(&txn, STATE_PARTITIONS, CONTEXT)?;
    let id = get_with(&partitions, lease.name().as_bytes(), CONTEXT, decode_id)?;
    let mut entries = Vec::new();
    if let Some(id) = id {
        let table = read_table(&txn, STATE_ENTRIES, CONTEXT)?;
        let prefix = partition_prefix(id);
        let end = prefix_successor(&prefix);
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            Bound::Included(prefix.as_slice()),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        );
        for entry in table.range::<&[u8]>(bounds).ctx(CONTEXT)? {
            let (key, value) = entry.ctx(CONTEXT)?;
            let key = key.value().get(prefix.len()..).ok_or_else(|| {
                StorageError::corrupted(BACKEND_NAME, "a state key shorter than its prefix")
            })?;
            entries.push((
                Bytes::copy_from_slice(key),
                Bytes::copy_from_slice(value.value()),
            ));
        }
    }
    Ok(BufferedState::new(lease, entries, RedbPartition { db, id }))
}

/// One page of the partitions holding data: the name table read from the cursor on, each
/// name kept when its entries hold a key (one seek per name).
pub(crate) fn list(db: &Db, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
    const CONTEXT: &str = "listing state partitions";
    let range = partitions_after(after)?;
    let txn = db.begin_read(CONTEXT)?;
    let partitions = read_table(&txn, STATE_PARTITIONS, CONTEXT)?;
    let entries = read_table(&txn, STATE_ENTRIES, CONTEXT)?;
    let names = partitions
        .range::<&[u8]>(range.as_slices())
        .ctx(CONTEXT)?
        .map(|row| {
            let (name, id) = row.ctx(CONTEXT)?;
            Ok::<_, StorageError>((name.value().to_vec(), id.value().to_vec()))
        });
    let holds_data = |id: u32| {
        let prefix = partition_prefix(id);
        let first = entries
            .range::<&[u8]>(prefix.as_slice()..)
            .ctx(CONTEXT)?
            .next();
        match first {
            Some(row) => Ok(row.ctx(CONTEXT)?.0.value().starts_with(&prefix)),
            None => Ok(false),
        }
    };
    Ok(partition_page(BACKEND_NAME, names, limit, holds_data)?)
}

fn decode_id(bytes: &[u8]) -> Result<u32, StorageError> {
    let bytes: [u8; 4] = bytes
        .try_into()
        .map_err(|_| StorageError::corrupted(BACKEND_NAME, "decoding a state partition id"))?;
    Ok(u32::from_be_bytes(bytes))
}

/// The id of `partition`, allocated in `txn` when it has none yet.
fn partition_id(txn: &WriteTxn<'_>, partition: &str) -> Result<u32, StorageError> {
    const CONTEXT: &str = "allocating a state partition id";
    let mut partitions = txn.table(STATE_PARTITIONS, CONTEXT)?;
    if let Some(id) = get_with(&partitions, partition.as_bytes(), CONTEXT, decode_id)? {
        return Ok(id);
    }
    let mut meta = txn.table(STATE_META, CONTEXT)?;
    let id = get_with(&meta, NEXT_PARTITION_ID_KEY, CONTEXT, decode_id)?.unwrap_or(1);
    let next = id.checked_add(1).ok_or_else(|| {
        StorageError::without_source(
            BACKEND_NAME,
            store_api::StorageErrorKind::Engine,
            "allocating a state partition id: every id is used",
        )
    })?;
    meta.insert(NEXT_PARTITION_ID_KEY, next.to_be_bytes().as_slice())
        .ctx(CONTEXT)?;
    partitions
        .insert(partition.as_bytes(), id.to_be_bytes().as_slice())
        .ctx(CONTEXT)?;
    Ok(id)
}

impl StatePersist for RedbPartition {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        const CONTEXT: &str = "flushing a state partition";
        let txn = self.db.begin_durable_write(CONTEXT)?;
        let id = match self.id {
            Some(id) => id,
            None => partition_id(&txn, partition)?,
        };
        {
            let prefix = partition_prefix(id);
            let mut entries = txn.table(STATE_ENTRIES, CONTEXT)?;
            if writes.clear {
                let end = prefix_successor(&prefix);
                let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
                    Bound::Included(prefix.as_slice()),
                    end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                );
                entries
                    .retain_in::<&[u8], _>(bounds, |_, _| false)
                    .ctx(CONTEXT)?;
            }
            let mut key = Vec::with_capacity(prefix.len() + MAX_KEY_LEN);
            for (k, v) in &writes.changes {
                key.clear();
                key.extend_from_slice(&prefix);
                key.extend_from_slice(k);
                match v {
                    Some(v) => {
                        entries.insert(key.as_slice(), v.as_ref()).ctx(CONTEXT)?;
                    }
                    None if !writes.clear => {
                        entries.remove(key.as_slice()).ctx(CONTEXT)?;
                    }
                    None => {}
                }
            }
        }
        txn.commit(CONTEXT)?;
        self.id = Some(id);
        Ok(())
    }

    fn gate(&self) -> &WriteGate {
        self.db.gate()
    }
}
