//! `StateStore`: the shared [`BufferedState`] over the tables `state_partitions` (name to
//! id) and `state_entries` (`(partition_id, key) -> value`).
//!
//! A partition has one owner across every instance and process: opening it takes a
//! session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own, which
//! the handle keeps. Any other open gets [`StateError::PartitionInUse`] until the handle
//! drops (which unlocks and closes that connection) or its connection dies (the server
//! then releases the lock). The owner loads the partition once; `get` is a hash lookup in
//! memory. `flush` writes the buffered changes in one transaction on the owner's
//! connection, durable when it returns under both durability modes. Unflushed writes are
//! discarded when the handle drops.

use bytes::Bytes;

use store_api::limits::check_partition_cursor;
use store_api::{StateError, StorageError};
use store_kit::gate::WriteGate;
use store_kit::state::{BufferedState, PartitionLease, PendingWrites, StatePersist};

use crate::db::{Db, PgConn, execute, get, query, query_opt, write_on};
use crate::{PgContext, corrupted};

/// The advisory lock key of a partition: a 64-bit hash of the schema and the name, in a
/// key space of its own (the prefix), so that two stores on one server never share a
/// partition lock.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended(\
                        'store-postgres partition ' || $1 || '/' || $2, 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended(\
                      'store-postgres partition ' || $1 || '/' || $2, 0))";
const PARTITION_ID: &str = "SELECT id FROM state_partitions WHERE name = $1";
const CREATE_PARTITION: &str = "INSERT INTO state_partitions (name) VALUES ($1) RETURNING id";
const LOAD: &str = "SELECT key, value FROM state_entries WHERE partition_id = $1 ORDER BY key";
const CLEAR: &str = "DELETE FROM state_entries WHERE partition_id = $1";
const UPSERT: &str = "INSERT INTO state_entries (partition_id, key, value) \
                      SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS t (k, v) \
                      ON CONFLICT (partition_id, key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM state_entries WHERE partition_id = $1 AND key = ANY($2::bytea[])";
/// The partitions holding a key, by name after `$1` (`''` lists from the first: names are
/// never empty), at most `$2`. Names are `text COLLATE "C"`, compared and sorted bytewise:
/// the byte order of their UTF-8. Walks the unique index on `name`, probing the primary
/// key of `state_entries` per partition.
pub(crate) const LIST: &str = "SELECT name FROM state_partitions AS p WHERE name > $1 \
                    AND EXISTS (SELECT 1 FROM state_entries AS e WHERE e.partition_id = p.id) \
                    ORDER BY name LIMIT $2";

/// Where a state partition's flushes go: its rows of `state_entries`, written on the
/// owner's own connection (which holds the partition's lock).
pub struct PostgresPartition {
    client: PgConn,
    gate: std::sync::Arc<WriteGate>,
    schema: String,
    name: String,
    /// The partition's id, once its row exists.
    id: Option<i64>,
}

impl std::fmt::Debug for PostgresPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresPartition")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn partition_id(client: &mut PgConn, name: &str) -> Result<Option<i64>, StorageError> {
    query_opt(
        client,
        PARTITION_ID,
        &[&name],
        "looking up a state partition",
    )?
    .map(|row| get(&row, 0, "looking up a state partition"))
    .transpose()
}

/// One page of the partitions holding data, after the cursor `after` (§9.1).
pub(crate) fn list(db: &Db, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
    check_partition_cursor(after)?;
    const CTX: &str = "listing state partitions";
    db.list(LIST, &[&after.unwrap_or("")], limit, CTX, |row| {
        get(row, 0, CTX)
    })
}

/// A handle on the partition held by `lease`, locked for this owner on a connection of
/// its own and loaded with its stored entries.
pub(crate) fn open_partition(
    db: &Db,
    lease: PartitionLease,
) -> Result<BufferedState<PostgresPartition>, StateError> {
    let mut client = db.dedicated()?;
    let schema = db.location().schema().to_owned();
    let name = lease.name().to_owned();
    let locked: bool = query_opt(
        &mut client,
        TRY_LOCK,
        &[&schema, &name],
        "locking a state partition",
    )?
    .map(|row| get(&row, 0, "locking a state partition"))
    .transpose()?
    .unwrap_or(false);
    if !locked {
        return Err(StateError::PartitionInUse { partition: name });
    }
    // From here the partition is ours: dropping `persist` unlocks it.
    let mut persist = PostgresPartition {
        client,
        gate: std::sync::Arc::clone(db.gate()),
        schema,
        name,
        id: None,
    };
    let entries = persist.load()?;
    Ok(BufferedState::new(lease, entries, persist))
}

impl PostgresPartition {
    /// The stored entries (and the partition's id, when it has a row).
    fn load(&mut self) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
        const CTX: &str = "loading a state partition";
        let Some(id) = partition_id(&mut self.client, &self.name)? else {
            return Ok(Vec::new());
        };
        self.id = Some(id);
        query(&mut self.client, LOAD, &[&id], CTX)?
            .iter()
            .map(|row| {
                Ok((
                    Bytes::from(get::<Vec<u8>>(row, 0, CTX)?),
                    Bytes::from(get::<Vec<u8>>(row, 1, CTX)?),
                ))
            })
            .collect()
    }
}

impl StatePersist for PostgresPartition {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        const CTX: &str = "flushing a state partition";
        let known = self.id;
        let mut puts: (Vec<&[u8]>, Vec<&[u8]>) = (Vec::new(), Vec::new());
        let mut deletes: Vec<&[u8]> = Vec::new();
        for (key, value) in &writes.changes {
            match value {
                Some(value) => {
                    puts.0.push(key);
                    puts.1.push(value);
                }
                None => deletes.push(key),
            }
        }
        let id = write_on(&mut self.client, true, |tx| {
            let id = match known {
                Some(id) => id,
                None => match query_opt(tx, PARTITION_ID, &[&partition], CTX)? {
                    Some(row) => get(&row, 0, CTX)?,
                    None => {
                        let row = query_opt(tx, CREATE_PARTITION, &[&partition], CTX)?
                            .ok_or_else(|| corrupted("creating a state partition"))?;
                        get(&row, 0, CTX)?
                    }
                },
            };
            if writes.clear {
                execute(tx, CLEAR, &[&id], CTX)?;
            }
            if !puts.0.is_empty() {
                execute(tx, UPSERT, &[&id, &puts.0, &puts.1], CTX)?;
            }
            if !deletes.is_empty() {
                execute(tx, DELETE, &[&id, &deletes], CTX)?;
            }
            Ok::<_, StateError>(id)
        })
        .map_err(|e| match e {
            StateError::Storage(e) => e,
            other => corrupted_state(other),
        })?;
        self.id = Some(id);
        Ok(())
    }

    fn gate(&self) -> &WriteGate {
        &self.gate
    }
}

/// A state error that is not an engine failure, met where only engine failures can occur.
fn corrupted_state(error: StateError) -> StorageError {
    StorageError::new(
        crate::BACKEND_NAME,
        store_api::StorageErrorKind::Engine,
        "flushing a state partition",
        error,
    )
}

impl Drop for PostgresPartition {
    /// Releases the partition's lock before the connection closes, so that the next
    /// owner can take it at once (closing alone releases it too, a moment later, when
    /// the server notices).
    fn drop(&mut self) {
        let _ = self
            .client
            .query_opt(UNLOCK, &[&self.schema, &self.name])
            .ctx("unlocking a state partition");
    }
}
