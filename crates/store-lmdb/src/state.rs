//! `StateStore`: the shared [`BufferedState`] over LMDB. Every partition lives in
//! `state.data` under `partition_id(u32be) key`; `state.names` maps a partition name to its
//! id and `state.meta` holds the next id to hand out.
//!
//! A partition is loaded whole into memory when its handle is taken, so `get` never
//! touches LMDB; `flush` writes every change since the previous flush in one write
//! transaction.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use heed::RoTxn;
use store_api::{Durability, StateError, StorageError, StorageErrorKind};
use store_kit::codec::prefix_successor;
use store_kit::gate::WriteGate;
use store_kit::state::{
    BufferedState, NEXT_PARTITION_ID_KEY, PartitionLease, PendingWrites, StatePersist,
    partition_key, partition_page, partition_prefix, partitions_after,
};

use crate::tables::{Abort, Db, Tables};
use crate::{BACKEND_NAME, HeedExt};

/// Where a partition's flushes go: its rows of `state.data`.
#[derive(Debug)]
pub struct LmdbPartition {
    db: Arc<Db>,
    /// The partition's id; `None` until its first flush allocates one.
    id: Option<u32>,
}

/// A handle on the partition held by `lease`, loaded from LMDB.
pub(crate) fn open(
    db: &Arc<Db>,
    lease: PartitionLease,
) -> Result<BufferedState<LmdbPartition>, StateError> {
    const WHAT: &str = "loading a state partition";
    let (id, entries) = db.read(WHAT, |txn, t| {
        let Some(id) = partition_id(txn, t, lease.name())? else {
            return Ok::<_, StateError>((None, Vec::new()));
        };
        let prefix = partition_prefix(id);
        let mut entries = Vec::new();
        for row in t.state_data.prefix_iter(txn, &prefix).ctx(WHAT)? {
            let (key, value) = row.ctx(WHAT)?;
            let Some(key) = key.get(prefix.len()..) else {
                return Err(StorageError::corrupted(
                    BACKEND_NAME,
                    "a state key lost its partition prefix",
                )
                .into());
            };
            entries.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
        }
        Ok((Some(id), entries))
    })?;
    Ok(BufferedState::new(
        lease,
        entries,
        LmdbPartition {
            db: Arc::clone(db),
            id,
        },
    ))
}

/// One page of the partitions holding data: the name database read from the cursor on,
/// each name kept when its entries hold a key (one seek per name).
pub(crate) fn list(db: &Db, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
    const WHAT: &str = "listing state partitions";
    let range = partitions_after(after)?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    Ok(db.read(WHAT, |txn, t| {
        let names = t
            .state_names
            .range(txn, &range.as_slices())
            .ctx(WHAT)?
            .map(|row| row.ctx(WHAT));
        let holds_data = |id: u32| {
            let mut entries = t
                .state_data
                .prefix_iter(txn, &partition_prefix(id))
                .ctx(WHAT)?;
            Ok(entries.next().transpose().ctx(WHAT)?.is_some())
        };
        partition_page(BACKEND_NAME, names, limit, holds_data)
    })?)
}

/// The id of partition `name`, if it was ever flushed.
fn partition_id(txn: &RoTxn<'_>, t: &Tables<'_>, name: &str) -> Result<Option<u32>, StorageError> {
    match t
        .state_names
        .get(txn, name.as_bytes())
        .ctx("reading a state partition id")?
    {
        None => Ok(None),
        Some(bytes) => decode_id(bytes).map(Some),
    }
}

fn decode_id(bytes: &[u8]) -> Result<u32, StorageError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| {
        StorageError::corrupted(BACKEND_NAME, "a state partition id is not 4 bytes")
    })?;
    Ok(u32::from_be_bytes(bytes))
}

/// The id of partition `name`, allocated in `txn` when it has none yet.
fn allocate_id(
    txn: &mut heed::RwTxn<'_>,
    t: &Tables<'_>,
    name: &str,
) -> Result<u32, Abort<StorageError>> {
    if let Some(id) = partition_id(txn, t, name)? {
        return Ok(id);
    }
    let id = match t
        .state_meta
        .get(txn, NEXT_PARTITION_ID_KEY)
        .ctx("reading the next state partition id")?
    {
        None => 0,
        Some(bytes) => decode_id(bytes)?,
    };
    let next = id.checked_add(1).ok_or_else(|| {
        StorageError::without_source(
            BACKEND_NAME,
            StorageErrorKind::Engine,
            "every state partition id is in use",
        )
    })?;
    t.state_meta
        .put(txn, NEXT_PARTITION_ID_KEY, &next.to_be_bytes())?;
    t.state_names.put(txn, name.as_bytes(), &id.to_be_bytes())?;
    Ok(id)
}

impl StatePersist for LmdbPartition {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        let known = self.id;
        let id = self.db.write("flushing a state partition", |txn, t| {
            let id = match known {
                Some(id) => id,
                None => allocate_id(txn, t, partition)?,
            };
            if writes.clear {
                let prefix = partition_prefix(id);
                let end = prefix_successor(&prefix);
                let upper = match &end {
                    Some(end) => Bound::Excluded(end.as_slice()),
                    None => Bound::Unbounded,
                };
                let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&prefix), upper);
                t.state_data.delete_range(txn, &range)?;
            }
            for (key, value) in &writes.changes {
                let stored = partition_key(id, key);
                match value {
                    Some(value) => t.state_data.put(txn, &stored, value)?,
                    None => {
                        t.state_data.delete(txn, &stored)?;
                    }
                }
            }
            Ok::<_, Abort<StorageError>>(id)
        })?;
        self.id = Some(id);
        // A flush makes every earlier write durable, whatever the durability mode: under
        // `Relaxed` the commit skipped the meta-page sync, so force it now.
        if self.db.durability() == Durability::Relaxed {
            self.db.sync("syncing a state flush")?;
        }
        Ok(())
    }

    fn gate(&self) -> &WriteGate {
        self.db.gate()
    }
}
