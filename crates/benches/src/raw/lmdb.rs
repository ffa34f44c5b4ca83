//! The raw LMDB baseline (through heed): one `engine.data` named database of byte keys and
//! values, with store-lmdb's settings: default flags under [`Durability::Immediate`]
//! (every commit syncs data and meta pages), `MDB_NOMETASYNC` under
//! [`Durability::Relaxed`], 32 named databases, 1024 reader slots. The map is sized once
//! (1 GiB), where store-lmdb starts at 64 MiB and doubles it when full.

use std::ops::Bound;
use std::path::Path;

use ::heed::types::Bytes;
use ::heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions};
use store_api::Durability;

use crate::error::{BenchError, Context};
use crate::raw::Kv;

/// LMDB used directly.
pub struct RawLmdb {
    env: Env,
    data: Database<'static, Bytes, Bytes>,
}

/// Opens (creating if needed) the raw LMDB environment in `dir`.
#[allow(unsafe_code)]
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let path = dir.join("raw-lmdb");
    std::fs::create_dir_all(&path).context("lmdb: creating the directory")?;
    let mut options = EnvOpenOptions::new();
    options.map_size(1 << 30).max_dbs(32).max_readers(1024);
    // SAFETY: heed marks these unsafe because the memory map is undefined behaviour if the
    // file changes behind LMDB's back, and because NO_META_SYNC weakens durability. The
    // directory is a fresh temporary directory that only this process, and only through
    // this environment, ever writes; NO_META_SYNC is exactly the Relaxed mode of
    // store-lmdb (a system crash may undo the last transaction, never corrupt).
    let env = unsafe {
        if durability == Durability::Relaxed {
            options.flags(EnvFlags::NO_META_SYNC);
        }
        options.open(&path)
    }
    .context("lmdb: opening the environment")?;
    let wtxn = env.write_txn().context("lmdb: write_txn")?;
    let created = env
        .create_databases_and_commit(wtxn, |opener, wtxn| {
            opener
                .create_database::<Bytes, Bytes>(wtxn, Some("engine.data"))
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .context("lmdb: create_database")?;
    let CommitOrAbort::Commit(data) = created else {
        return Err(BenchError::msg("lmdb: creating the database was aborted"));
    };
    Ok(Box::new(RawLmdb { env, data }))
}

impl Kv for RawLmdb {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        let txn = self.env.read_txn().context("lmdb: read_txn")?;
        let value = self.data.get(&txn, key).context("lmdb: get")?;
        Ok(value.map(|v| std::hint::black_box(v.to_vec()).len()))
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        let mut txn = self.env.write_txn().context("lmdb: write_txn")?;
        for (key, value) in pairs {
            self.data.put(&mut txn, key, value).context("lmdb: put")?;
        }
        txn.commit().context("lmdb: commit")
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError> {
        let txn = self.env.read_txn().context("lmdb: read_txn")?;
        let bounds = (Bound::Included(start), Bound::Included(end));
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(limit.min(1024));
        if forward {
            for row in self
                .data
                .range(&txn, &bounds)
                .context("lmdb: range")?
                .take(limit)
            {
                let (k, v) = row.context("lmdb: range row")?;
                rows.push((k.to_vec(), v.to_vec()));
            }
        } else {
            for row in self
                .data
                .rev_range(&txn, &bounds)
                .context("lmdb: rev_range")?
                .take(limit)
            {
                let (k, v) = row.context("lmdb: range row")?;
                rows.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(std::hint::black_box(rows).len())
    }
}
