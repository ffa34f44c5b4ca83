//! The raw redb baseline: the `engine.data` table of byte keys and values, with store-redb's
//! settings: default `Builder` (1 GiB page cache), `Immediate` commits under
//! [`Durability::Immediate`]; under [`Durability::Relaxed`], `Durability::None` commits with
//! a durable one once a second, as store-redb does.
//!
//! The file is one store-redb laid out ([`lay_out_as`]): it holds every table of the
//! backend (22 today), of which the baseline uses `engine.data` only, so opening that
//! table looks it up in the same table tree as the store's.

use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redb::{Database, ReadableDatabase, TableDefinition};
use bytes::Bytes;
use store_api::Durability;

use crate::error::{BenchError, Context};
use crate::raw::{Kv, lay_out_as};

const DATA: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("engine.data");

/// store-redb's durable-commit interval under `Relaxed`.
const RELAXED_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// redb used directly.
pub struct RawRedb {
    db: Database,
    durability: Durability,
    last_sync: Mutex<Instant>,
}

/// Opens (creating if needed) the raw redb database in `dir`.
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let file = dir.join(store_redb::DB_FILE);
    lay_out_as::<store_redb::RedbBackend>(dir, &file)?;
    let db = Database::create(file).context("redb: opening the database")?;
    let txn = db.begin_write().context("redb: begin_write")?;
    txn.open_table(DATA).context("redb: creating the table")?;
    txn.commit().context("redb: commit")?;
    Ok(Box::new(RawRedb {
        db,
        durability,
        last_sync: Mutex::new(Instant::now()),
    }))
}

impl Kv for RawRedb {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        // The copy outlives the read transaction, as the store's result does.
        let value = {
            let txn = self.db.begin_read().context("redb: begin_read")?;
            let table = txn.open_table(DATA).context("redb: open_table")?;
            let value = table.get(key).context("redb: get")?;
            value.map(|v| Bytes::copy_from_slice(v.value()))
        };
        Ok(black_box(value).map(|v| v.len()))
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        let mut txn = self.db.begin_write().context("redb: begin_write")?;
        let durable = match self.durability {
            Durability::Immediate => true,
            Durability::Relaxed => self
                .last_sync
                .lock()
                .map_or(true, |t| t.elapsed() >= RELAXED_SYNC_INTERVAL),
        };
        if !durable {
            txn.set_durability(::redb::Durability::None)
                .context("redb: set_durability")?;
        }
        {
            let mut table = txn.open_table(DATA).context("redb: open_table")?;
            for (key, value) in pairs {
                table.insert(*key, *value).context("redb: insert")?;
            }
        }
        txn.commit().context("redb: commit")?;
        if durable
            && self.durability == Durability::Relaxed
            && let Ok(mut t) = self.last_sync.lock()
        {
            *t = Instant::now();
        }
        Ok(())
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError> {
        let txn = self.db.begin_read().context("redb: begin_read")?;
        let table = txn.open_table(DATA).context("redb: open_table")?;
        let range = table.range::<&[u8]>(start..=end).context("redb: range")?;
        let copy = |row: Result<_, ::redb::StorageError>| {
            let (k, v): (
                ::redb::AccessGuard<'_, &[u8]>,
                ::redb::AccessGuard<'_, &[u8]>,
            ) = row.context("redb: range row")?;
            Ok::<_, BenchError>((
                Bytes::copy_from_slice(k.value()),
                Bytes::copy_from_slice(v.value()),
            ))
        };
        let mut rows: Vec<(Bytes, Bytes)> = Vec::with_capacity(limit.min(1024));
        if forward {
            for row in range.take(limit) {
                rows.push(copy(row)?);
            }
        } else {
            for row in range.rev().take(limit) {
                rows.push(copy(row)?);
            }
        }
        // The rows outlive the read transaction, as the store's result does.
        drop(table);
        drop(txn);
        Ok(black_box(rows).len())
    }
}
