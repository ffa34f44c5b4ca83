//! The raw LMDB baseline (through heed): the `engine.data` named database of byte keys and
//! values, with store-lmdb's settings: default flags under [`Durability::Immediate`]
//! (every commit syncs data and meta pages), `MDB_NOMETASYNC` under
//! [`Durability::Relaxed`], 32 named databases, 1024 reader slots. The map is sized once
//! (1 GiB), where store-lmdb starts at 64 MiB and doubles it when full.
//!
//! The environment is one store-lmdb laid out ([`lay_out_as`]): it holds every named
//! database of the backend (21 today), of which the baseline uses `engine.data` only.
//! LMDB's read transaction costs grow with the named databases open in the environment
//! (each begin initializes every one, each first use of a database looks it up among
//! them): with 21 instead of 1 a `get` ran about 600 more instructions (3.8k instead of
//! 3.2k).

use std::hint::black_box;
use std::ops::Bound;
use std::path::Path;

use ::heed::types::{Bytes as Raw, DecodeIgnore, Str};
use ::heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions};
use bytes::Bytes;
use store_api::Durability;

use crate::error::{BenchError, Context};
use crate::raw::{Kv, lay_out_as};

/// LMDB used directly.
pub struct RawLmdb {
    env: Env,
    data: Database<'static, Raw, Raw>,
}

/// Opens (creating if needed) the raw LMDB environment in `dir`.
#[allow(unsafe_code)]
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let path = dir.join("raw-lmdb");
    lay_out_as::<store_lmdb::LmdbBackend>(&path, &path.join("data.mdb"))?;
    let mut options = EnvOpenOptions::new();
    options.map_size(1 << 30).max_dbs(32).max_readers(1024);
    // SAFETY: heed marks these unsafe because the memory map is undefined behaviour if the
    // file changes behind LMDB's back, and because NO_META_SYNC weakens durability. The
    // directory is a fresh temporary directory that only this process writes: once through
    // store-lmdb, closed before this opens it, then only through this environment;
    // NO_META_SYNC is exactly the Relaxed mode of
    // store-lmdb (a system crash may undo the last transaction, never corrupt).
    let env = unsafe {
        if durability == Durability::Relaxed {
            options.flags(EnvFlags::NO_META_SYNC);
        }
        options.open(&path)
    }
    .context("lmdb: opening the environment")?;
    // Open every named database of the layout, as store-lmdb does: the environment's open
    // databases are what each read transaction initializes.
    let rtxn = env.read_txn().context("lmdb: read_txn")?;
    let opened = env
        .open_databases_and_commit(rtxn, |opener, rtxn| {
            let Some(main) = opener.open_database::<Str, DecodeIgnore>(rtxn, None)? else {
                return Ok::<_, ::heed::Error>(CommitOrAbort::<_, ()>::Commit(None));
            };
            let names = main
                .iter(rtxn)?
                .map(|row| row.map(|(name, ())| name.to_owned()))
                .collect::<Result<Vec<String>, _>>()?;
            let mut data = None;
            for name in &names {
                let db = opener.open_database::<Raw, Raw>(rtxn, Some(name))?;
                if name == "engine.data" {
                    data = db;
                }
            }
            Ok(CommitOrAbort::Commit(data))
        })
        .context("lmdb: opening the named databases")?;
    let CommitOrAbort::Commit(Some(data)) = opened else {
        return Err(BenchError::msg(
            "lmdb: the laid-out environment has no engine.data database",
        ));
    };
    Ok(Box::new(RawLmdb { env, data }))
}

impl Kv for RawLmdb {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        // The copy outlives the read transaction, as the store's result does.
        let value = {
            let txn = self.env.read_txn().context("lmdb: read_txn")?;
            let value = self.data.get(&txn, key).context("lmdb: get")?;
            value.map(Bytes::copy_from_slice)
        };
        Ok(black_box(value).map(|v| v.len()))
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
        let mut rows: Vec<(Bytes, Bytes)> = Vec::with_capacity(limit.min(1024));
        if forward {
            for row in self
                .data
                .range(&txn, &bounds)
                .context("lmdb: range")?
                .take(limit)
            {
                let (k, v) = row.context("lmdb: range row")?;
                rows.push((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)));
            }
        } else {
            for row in self
                .data
                .rev_range(&txn, &bounds)
                .context("lmdb: rev_range")?
                .take(limit)
            {
                let (k, v) = row.context("lmdb: range row")?;
                rows.push((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)));
            }
        }
        // The rows outlive the read transaction, as the store's result does.
        drop(txn);
        Ok(black_box(rows).len())
    }
}
