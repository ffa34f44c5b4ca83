//! `StateStore`: the shared [`BufferedState`] over the tables `state_partitions` (name to
//! id) and `state_entries` (`(partition_id, key) -> value`).
//!
//! Opening a partition reads its entries once; `get` is then a hash lookup in memory and
//! never touches SQLite. `flush` writes the buffered changes in one write transaction,
//! durable when it returns under both durability modes (an explicit flush asks for it).
//! A partition gets its row in `state_partitions` at its first flush, so opening one never
//! writes.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use store_api::limits::check_partition_cursor;
use store_api::{StateError, StorageError};
use store_kit::gate::WriteGate;
use store_kit::state::{BufferedState, PartitionLease, PendingWrites, StatePersist};

use crate::db::Db;
use crate::{SqlContext, crc, limit_to_sql, query_page, verify_crc};
use store_kit::checksum::Fields;

const PARTITION_ID: &str = "SELECT id FROM state_partitions WHERE name = ?1";
const CREATE_PARTITION: &str = "INSERT INTO state_partitions (name) VALUES (?1)";
const LOAD: &str = "SELECT key, value, crc FROM state_entries WHERE partition_id = ?1 ORDER BY key";
const CLEAR: &str = "DELETE FROM state_entries WHERE partition_id = ?1";
const UPSERT: &str = "INSERT INTO state_entries (partition_id, key, value, crc) \
                      VALUES (?1, ?2, ?3, ?4) ON CONFLICT (partition_id, key) \
                      DO UPDATE SET value = excluded.value, crc = excluded.crc";

/// The table whose rows carry the checksums; a row's checksum key is the partition name
/// and the key, so a row moved to another partition does not verify.
const ENTRIES: &str = "state_entries";

fn entry_key(partition: &str, key: &[u8]) -> Fields {
    Fields::new().bytes(partition.as_bytes()).bytes(key)
}
const DELETE: &str = "DELETE FROM state_entries WHERE partition_id = ?1 AND key = ?2";
/// The partitions holding a key, by name after `?1` (`''` lists from the first: names are
/// never empty), at most `?2`. Names are `TEXT` compared with `memcmp` (`BINARY`), which is
/// the byte order of their UTF-8.
const LIST: &str = "SELECT name FROM state_partitions AS p WHERE name > ?1 \
                    AND EXISTS (SELECT 1 FROM state_entries AS e WHERE e.partition_id = p.id) \
                    ORDER BY name LIMIT ?2";

/// Where a state partition's flushes go: its rows of `state_entries`.
pub struct SqlitePartition {
    db: Arc<Db>,
    /// The partition's id, once its row exists.
    id: Option<i64>,
}

impl std::fmt::Debug for SqlitePartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePartition")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn partition_id(conn: &Connection, name: &str) -> Result<Option<i64>, StorageError> {
    conn.prepare_cached(PARTITION_ID)
        .and_then(|mut stmt| stmt.query_row([name], |r| r.get(0)).optional())
        .ctx("looking up a state partition")
}

/// One page of the partitions holding data, after the cursor `after`.
pub(crate) fn list(db: &Db, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
    check_partition_cursor(after)?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let params = (after.unwrap_or(""), limit_to_sql(limit));
    db.read(|conn| {
        query_page(conn, LIST, params, "listing state partitions", |row| {
            row.get(0).ctx("listing state partitions")
        })
    })
}

/// A handle on the partition held by `lease`, loaded with its stored entries.
pub(crate) fn open_partition(
    db: &Arc<Db>,
    lease: PartitionLease,
) -> Result<BufferedState<SqlitePartition>, StateError> {
    let (id, entries) = db.read_tx(|conn| {
        let Some(id) = partition_id(conn, lease.name())? else {
            return Ok::<_, StorageError>((None, Vec::new()));
        };
        let mut stmt = conn.prepare_cached(LOAD).ctx("loading a state partition")?;
        let mut rows = stmt.query([id]).ctx("loading a state partition")?;
        let mut entries: Vec<(Bytes, Bytes)> = Vec::new();
        while let Some(row) = rows.next().ctx("loading a state partition")? {
            let key: Vec<u8> = row.get(0).ctx("loading a state partition")?;
            let id = entry_key(lease.name(), &key);
            let value: Vec<u8> = row.get(1).map_err(|_| {
                store_kit::checksum::mismatch(crate::BACKEND_NAME, ENTRIES, id.as_slice())
            })?;
            verify_crc(row, 2, ENTRIES, id.as_slice(), &value)?;
            entries.push((Bytes::from(key), Bytes::from(value)));
        }
        Ok((Some(id), entries))
    })?;
    Ok(BufferedState::new(
        lease,
        entries,
        SqlitePartition {
            db: Arc::clone(db),
            id,
        },
    ))
}

impl StatePersist for SqlitePartition {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        let known = self.id;
        let id = self.db.write_durable(|conn| {
            let id = match known {
                Some(id) => id,
                None => match partition_id(conn, partition)? {
                    Some(id) => id,
                    None => {
                        conn.prepare_cached(CREATE_PARTITION)
                            .and_then(|mut stmt| stmt.execute([partition]))
                            .ctx("creating a state partition")?;
                        conn.last_insert_rowid()
                    }
                },
            };
            if writes.clear {
                conn.prepare_cached(CLEAR)
                    .and_then(|mut stmt| stmt.execute([id]))
                    .ctx("clearing a state partition")?;
            }
            let mut upsert = conn
                .prepare_cached(UPSERT)
                .ctx("flushing a state partition")?;
            let mut delete = conn
                .prepare_cached(DELETE)
                .ctx("flushing a state partition")?;
            for (key, value) in &writes.changes {
                match value {
                    Some(value) => {
                        let sum = crc(ENTRIES, entry_key(partition, key).as_slice(), value);
                        upsert.execute((id, key.as_ref(), value.as_ref(), sum))
                    }
                    None => delete.execute((id, key.as_ref())),
                }
                .ctx("flushing a state partition")?;
            }
            Ok::<_, StorageError>(id)
        })?;
        self.id = Some(id);
        Ok(())
    }

    fn gate(&self) -> &WriteGate {
        self.db.gate()
    }
}
