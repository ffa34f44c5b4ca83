//! The raw sled baseline: one `engine.data` tree, with store-sled's settings: default
//! `Config` with `flush_every_ms(500)`; a put batch is one atomic `sled::Batch` followed,
//! under [`Durability::Immediate`], by `Db::flush` and an `fdatasync` of sled's log file
//! (store-sled's durable sync: sled's own flush does not persist the file size or flush the
//! device cache on Linux), and left to the background flush under
//! [`Durability::Relaxed`].

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use store_api::Durability;

use crate::error::{BenchError, Context};
use crate::raw::Kv;

/// sled used directly.
pub struct RawSled {
    db: ::sled::Db,
    log_file: std::fs::File,
    data: ::sled::Tree,
    durability: Durability,
}

/// Opens (creating if needed) the raw sled database in `dir`.
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let path = dir.join("raw-sled");
    let db = ::sled::Config::new()
        .path(&path)
        .flush_every_ms(Some(500))
        .open()
        .context("sled: opening the database")?;
    let data = db.open_tree("engine.data").context("sled: open_tree")?;
    let log_file = std::fs::File::open(path.join("db")).context("sled: opening the log file")?;
    Ok(Box::new(RawSled {
        db,
        log_file,
        data,
        durability,
    }))
}

impl Kv for RawSled {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        // The copy outlives sled's buffer, as the store's result does.
        let value = self.data.get(key).context("sled: get")?;
        let value = value.map(|v| Bytes::copy_from_slice(&v));
        Ok(black_box(value).map(|v| v.len()))
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        let mut batch = ::sled::Batch::default();
        for (key, value) in pairs {
            batch.insert(*key, *value);
        }
        self.data.apply_batch(batch).context("sled: apply_batch")?;
        if self.durability == Durability::Immediate {
            self.db.flush().context("sled: flush")?;
            self.log_file.sync_data().context("sled: fdatasync")?;
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
        let range = self.data.range::<&[u8], _>(start..=end);
        let copy = |row: ::sled::Result<(::sled::IVec, ::sled::IVec)>| {
            let (k, v) = row.context("sled: range row")?;
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
