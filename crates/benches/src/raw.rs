//! The raw-engine baseline: the `StoreEngine` operations compared with the engine beneath
//! (get, put_batch, range_scan), written directly against redb, heed, sled, fjall and rusqlite
//! with the store's settings.
//!
//! Both sides are driven through the same [`Kv`] trait object by the same
//! [`KvBench`](crate::ops::engine::KvBench), so they pay the same call overhead and run the
//! same seeded keys; the ratio store/raw is the cost of the abstraction. That cost includes
//! what the store does on top of the bare operation: input checks, and the batch-log entry
//! and sequence counter each `put_batch` writes in the same transaction.
//!
//! The raw side materializes the same output as the store: every value, key and row it
//! reads is copied out of its read transaction into `bytes::Bytes` (as the `StoreEngine`
//! signatures return them, and as any caller holding a value past its read transaction
//! must), scans into a vector sized for `limit` (up to 1024 rows) as the store's are, and
//! the copies outlive the transaction before they are dropped. Each result passes through
//! [`black_box`]: a copy that is only measured and dropped is otherwise removed by the
//! compiler, and the raw `get` then copied nothing at all.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use store_api::{Backend, Durability, OpenOptions, StoreEngine};

use crate::error::{BenchError, Context};

/// The operations the baseline compares, on the store or on a raw engine.
pub trait Kv: Send + Sync {
    /// Reads `key`; returns the value's length, `None` when absent.
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError>;

    /// Writes every pair in one atomic, durable (per the durability mode) transaction.
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError>;

    /// Reads up to `limit` pairs of `[start, end]` (end inclusive), ascending when
    /// `forward`, else the last `limit` descending; returns how many were read.
    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError>;
}

/// Lays `dir` out as backend `B` does, unless `data_file` shows it already is: opens `B`
/// there (which creates the tables, trees or named databases of every store) and closes
/// it again. A raw baseline then runs on that database and uses the engine's data table
/// only, so costs that grow with the number of tables in the database (an LMDB read
/// transaction initializes every named database of the environment and looks its
/// database up among them; a redb transaction looks its table up in the table tree) are
/// the same on both sides: `docs/contract.md` §1.1 puts every store in one database, and that
/// cost is the backend's layout, not the `StoreEngine` code.
pub fn lay_out_as<B: Backend<Location = Path>>(
    dir: &Path,
    data_file: &Path,
) -> Result<(), BenchError> {
    if data_file.exists() {
        return Ok(());
    }
    let backend =
        B::open(dir, OpenOptions::default()).context("laying out the raw engine's database")?;
    drop(backend);
    Ok(())
}

/// Opens a raw engine in a directory with a durability mode.
pub type RawOpener = fn(&Path, Durability) -> Result<Box<dyn Kv>, BenchError>;

/// A store's [`StoreEngine`] seen as a [`Kv`].
pub struct StoreKv<E: StoreEngine>(pub Arc<E>);

impl<E: StoreEngine> Kv for StoreKv<E> {
    #[inline]
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        let value = self.0.get(key).context("StoreEngine::get")?;
        Ok(black_box(value).map(|v| v.len()))
    }

    #[inline]
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        self.0.put_batch(pairs).context("StoreEngine::put_batch")?;
        Ok(())
    }

    #[inline]
    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError> {
        let rows = self
            .0
            .range_scan(start, end, limit, forward)
            .context("StoreEngine::range_scan")?;
        Ok(black_box(rows).len())
    }
}

#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "lmdb")]
pub mod lmdb;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "sled")]
pub mod sled;
#[cfg(feature = "sqlite")]
pub mod sqlite;
