//! `StoreEngine`: an ordered key-value engine with atomic batches, sequence numbers and a
//! replayable batch log (`docs/contract.md` section 3).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{InputError, StorageError};

/// One mutation of a batch, as recorded in the batch log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutation {
    /// `key` was set to `value`.
    Put {
        /// The key written.
        key: Bytes,
        /// The value written (may be empty).
        value: Bytes,
    },
    /// `key` was deleted (whether or not it existed).
    Delete {
        /// The key deleted.
        key: Bytes,
    },
}

impl Mutation {
    /// The key this mutation touches.
    pub fn key(&self) -> &Bytes {
        match self {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key,
        }
    }
}

/// Errors of [`StoreEngine`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A key or value broke the common limits; nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The engine underneath failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl crate::error::StoreError for EngineError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            EngineError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// An ordered key-value engine with atomic batches and a replayable batch log.
///
/// # Guarantees
/// - Keys order by unsigned byte comparison. Keys are 1 to
///   [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes; values 0 to
///   [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN). An empty value is a value, never a missing key.
/// - Every put or delete batch is atomic (a concurrent reader sees all of it or none) and,
///   under [`Durability::Immediate`](crate::Durability::Immediate), durable when the call
///   returns.
/// - Each non-empty batch gets the next sequence number: the first is 1, numbers are
///   contiguous, strictly increasing in commit order and survive reopen, even after the
///   whole batch log was pruned.
/// - `Send + Sync`: any number of threads may read and write at once; writes are
///   serialized in sequence order.
pub trait StoreEngine: Send + Sync {
    /// Writes all `pairs` atomically and returns the batch's sequence number.
    ///
    /// A key repeated inside the batch: the last pair wins (and the log keeps every pair).
    /// An empty batch writes nothing and returns [`current_sequence`](Self::current_sequence).
    /// Any invalid key or value rejects the whole batch.
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError>;

    /// Deletes all `keys` atomically and returns the batch's sequence number.
    ///
    /// Deleting a missing key is fine (it is still logged). An empty batch writes nothing and
    /// returns [`current_sequence`](Self::current_sequence).
    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError>;

    /// The sequence number of the last committed batch; 0 when none was ever committed.
    fn current_sequence(&self) -> u64;

    /// The value of `key`, or `None` when it is absent.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError>;

    /// One `(key, value)` per input key, in input order, read from one consistent view.
    /// Any invalid key rejects the whole call with [`EngineError::Input`].
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError>;

    /// Keys in `[start, end]`: **`end` is inclusive**.
    ///
    /// An empty `start` begins at the first key; an empty `end` means unbounded above.
    /// `start > end` (both non-empty) gives nothing; `limit` caps the rows and 0 gives
    /// nothing. `forward = false` returns the **last** `limit` keys of the range, in
    /// descending order. Bounds are compared as bytes and are not length-checked.
    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError>;

    /// The mutations of batch `seq`, in the order given (a repeated key included), so
    /// another store can replay the log exactly; `None` when pruned or never written.
    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError>;

    /// The smallest sequence number still in the batch log; `None` when the log is empty.
    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError>;

    /// Removes every log entry with `seq < cutoff_exclusive` and returns how many were
    /// removed. Never touches the data or the sequence counter.
    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError>;
}

/// A shared engine is an engine: every call goes to the one it points to, so code generic
/// over `E: StoreEngine` also takes an `Arc<dyn StoreEngine>`.
impl<E: StoreEngine + ?Sized> StoreEngine for std::sync::Arc<E> {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        (**self).put_batch(pairs)
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        (**self).delete_batch(keys)
    }

    fn current_sequence(&self) -> u64 {
        (**self).current_sequence()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        (**self).get(key)
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        (**self).get_many(keys)
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError> {
        (**self).range_scan(start, end, limit, forward)
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        (**self).get_batch(seq)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        (**self).oldest_retained_batch()
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        (**self).prune_batch_log(cutoff_exclusive)
    }
}
