//! The raw fjall baseline: the `engine.data` keyspace of a database laid out as
//! store-fjall's, written with fjall's own atomic write batch, persisted as store-fjall
//! persists a commit: the journal synced (`PersistMode::SyncAll`) under
//! [`Durability::Immediate`], handed to the OS (`PersistMode::Buffer`) under
//! [`Durability::Relaxed`]. Reads go straight to the keyspace (no snapshot).

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use store_api::Durability;

use crate::error::{BenchError, Context};
use crate::raw::Kv;

/// fjall used directly.
pub struct RawFjall {
    db: Database,
    data: Keyspace,
    persist: PersistMode,
}

/// Opens (creating if needed) the raw fjall database in `dir`, laid out as store-fjall's.
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let layout = dir.join("raw-fjall");
    let path = layout.join(store_fjall::FJALL_SUBDIR);
    crate::raw::lay_out_as::<store_fjall::FjallBackend>(&layout, &path)?;
    let db = Database::builder(&path)
        .manual_journal_persist(true)
        .open()
        .context("fjall: opening the database")?;
    let data = db
        .keyspace("engine.data", KeyspaceCreateOptions::default)
        .context("fjall: opening the keyspace")?;
    let persist = match durability {
        Durability::Immediate => PersistMode::SyncAll,
        Durability::Relaxed => PersistMode::Buffer,
    };
    Ok(Box::new(RawFjall { db, data, persist }))
}

impl Kv for RawFjall {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        // The copy outlives fjall's buffer, as the store's result does.
        let value = self.data.get(key).context("fjall: get")?;
        let value = value.map(|v| Bytes::copy_from_slice(&v));
        Ok(black_box(value).map(|v| v.len()))
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        let mut batch = self.db.batch().durability(Some(self.persist));
        for (key, value) in pairs {
            batch.insert(&self.data, *key, *value);
        }
        batch.commit().context("fjall: batch commit")?;
        Ok(())
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError> {
        let range = self.data.range::<&[u8], _>(start..=end);
        let copy = |row: fjall::Guard| {
            let (k, v) = row.into_inner().context("fjall: range row")?;
            Ok::<_, BenchError>((Bytes::copy_from_slice(&k), Bytes::copy_from_slice(&v)))
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
        Ok(black_box(rows).len())
    }
}
