//! The raw-engine baseline: the `StoreEngine` operations compared with the engine beneath
//! (get, put_batch, range_scan), written directly against redb, heed, sled and rusqlite
//! with the store's settings.
//!
//! Both sides are driven through the same [`Kv`] trait object by the same
//! [`KvBench`](crate::ops::engine::KvBench), so they pay the same call overhead and run the
//! same seeded keys; the ratio store/raw is the cost of the abstraction. That cost includes
//! what the store does on top of the bare operation: input checks, the batch-log entry and
//! the sequence counter each `put_batch` writes in the same transaction, and copying
//! results into `Bytes`. The raw side copies its results out too (into `Vec<u8>`), as any
//! caller holding a value past its read transaction must, and passes every copy through
//! [`black_box`]: a copy that is only measured and dropped is otherwise removed by the
//! compiler, and the raw `get` would then not copy the value at all.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use store_api::{Durability, StoreEngine};

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

#[cfg(feature = "lmdb")]
pub mod lmdb;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "sled")]
pub mod sled;
#[cfg(feature = "sqlite")]
pub mod sqlite;
