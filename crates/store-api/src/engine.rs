//! `StoreEngine`: an ordered key-value engine with atomic batches, sequence numbers and a
//! replayable batch log (`docs/contract.md` section 3).

use std::time::Duration;

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
    ///
    /// ```
    /// # use store_api::Mutation;
    /// let delete = Mutation::Delete { key: "k".into() };
    /// assert_eq!(delete.key(), "k");
    /// ```
    pub fn key(&self) -> &Bytes {
        match self {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key,
        }
    }
}

/// Errors of [`StoreEngine`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A key or value broke the common limits; nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The engine underneath failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// [`StoreEngine::apply_batch`] was given a number that is not the next one: a gap
    /// (`given > expected`) or 0, which no batch has. Nothing was written; the follower
    /// must fetch and apply batch `expected` first.
    #[error(
        "cannot apply batch {given}: the engine expects batch {expected} next \
         (a batch is applied only under the number after the current sequence); nothing was written"
    )]
    SequenceGap {
        /// The number the engine accepts next (`current_sequence() + 1`).
        expected: u64,
        /// The number the caller gave.
        given: u64,
    },
    /// [`StoreEngine::apply_batch`] named a batch already applied, but with mutations that
    /// differ from the ones logged under that number: this store and the leader have
    /// diverged. Nothing was written.
    #[error(
        "cannot apply batch {given}: it is already applied with different mutations \
         (the engine expects batch {expected} next); nothing was written"
    )]
    ConflictingBatch {
        /// The number the engine accepts next (`current_sequence() + 1`).
        expected: u64,
        /// The number the caller gave.
        given: u64,
    },
    /// [`StoreEngine::apply_batch`] named a batch already applied whose log entry was
    /// pruned: it cannot be compared with what was applied, so it is refused rather than
    /// accepted unchecked. Nothing was written; a follower resumes at `expected`.
    #[error(
        "cannot apply batch {given}: it is already applied and its log entry was pruned, \
         so it cannot be compared (the engine expects batch {expected} next); nothing was written"
    )]
    AppliedBatchPruned {
        /// The number the engine accepts next (`current_sequence() + 1`).
        expected: u64,
        /// The number the caller gave.
        given: u64,
    },
    /// [`StoreEngine::apply_batch`] was given no mutations: an empty batch never gets a
    /// sequence number, so no leader has one to replicate. Nothing was written.
    #[error(
        "cannot apply batch {given}: it has no mutations, and an empty batch never gets a \
         sequence number; nothing was written"
    )]
    EmptyBatch {
        /// The number the caller gave.
        given: u64,
    },
}

impl crate::error::StoreError for EngineError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            EngineError::Storage(e) => Some(e),
            _ => None,
        }
    }

    fn storage_mut(&mut self) -> Option<&mut StorageError> {
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
/// - Every batch (put, delete or mixed) is atomic (a concurrent reader sees all of it or
///   none) and, under [`Durability::Immediate`](crate::Durability::Immediate), durable when
///   the call returns.
/// - Each non-empty batch gets the next sequence number: the first is 1, numbers are
///   contiguous, strictly increasing in commit order and survive reopen, even after the
///   whole batch log was pruned.
/// - `Send + Sync`: any number of threads may read and write at once; writes are
///   serialized in sequence order.
///
/// # Batches and replication
/// [`put_batch`](Self::put_batch), [`delete_batch`](Self::delete_batch) and
/// [`write_batch`](Self::write_batch) are one commit path: each non-empty call is one
/// batch, logged exactly as given, under the next number. A follower replays a leader's
/// log with [`apply_batch`](Self::apply_batch), which keeps the leader's numbers: once a
/// follower applied batches `1..=n` it holds the leader's data, `current_sequence() == n`
/// and the same log entries for the batches both still retain.
/// [`wait_for_sequence`](Self::wait_for_sequence) lets a reader of the log (a follower's
/// feeder) sleep until the next batch commits, woken by the commit itself.
///
/// ```
/// use store_api::{Backend, OpenOptions, StoreEngine};
///
/// let backend = store_mem::MemBackend::new(OpenOptions::default());
/// let engine = backend.engine();
/// assert_eq!(engine.put_batch(&[(b"user:1", b"ada"), (b"user:2", b"bob")])?, 1);
/// assert_eq!(engine.get(b"user:1")?, Some("ada".into()));
/// assert_eq!(engine.range_scan(b"user:", b"", 10, true)?.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StoreEngine: Send + Sync {
    /// Writes all `pairs` atomically and returns the batch's sequence number.
    ///
    /// A key repeated inside the batch: the last pair wins (and the log keeps every pair).
    /// An empty batch writes nothing and returns [`current_sequence`](Self::current_sequence).
    /// Any invalid key or value rejects the whole batch.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// let seq = engine.put_batch(&[(b"a", b"1"), (b"a", b"2"), (b"b", b"")])?;
    /// assert_eq!(seq, 1);
    /// assert_eq!(engine.get(b"a")?, Some("2".into())); // the last pair of a key wins
    /// assert_eq!(engine.get(b"b")?, Some("".into())); // an empty value is a value
    /// assert_eq!(engine.put_batch(&[])?, 1); // an empty batch gets no number
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError>;

    /// Deletes all `keys` atomically and returns the batch's sequence number.
    ///
    /// Deleting a missing key is fine (it is still logged). An empty batch writes nothing and
    /// returns [`current_sequence`](Self::current_sequence).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// engine.put_batch(&[(b"a", b"1"), (b"b", b"2")])?;
    /// assert_eq!(engine.delete_batch(&[b"a", b"missing"])?, 2);
    /// assert_eq!(engine.get(b"a")?, None);
    /// assert_eq!(engine.get(b"b")?, Some("2".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError>;

    /// Writes puts and deletes together, atomically, as one batch, and returns its
    /// sequence number.
    ///
    /// The mutations apply in order, so the last mutation of a key wins (a delete after a
    /// put removes the key; a put after a delete sets it). [`get_batch`](Self::get_batch)
    /// returns exactly `mutations`, in order, repeats included. An empty slice writes
    /// nothing and returns [`current_sequence`](Self::current_sequence). The input checks
    /// are those of `put_batch` and `delete_batch`: any invalid key or value rejects the
    /// whole batch with [`EngineError::Input`] and nothing is written.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// let batch = [
    ///     Mutation::Put { key: "a".into(), value: "1".into() },
    ///     Mutation::Put { key: "b".into(), value: "2".into() },
    ///     Mutation::Delete { key: "a".into() },
    /// ];
    /// assert_eq!(engine.write_batch(&batch)?, 1);
    /// assert_eq!(engine.get(b"a")?, None); // the delete came last
    /// assert_eq!(engine.get_batch(1)?, Some(batch.to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError>;

    /// Applies a leader's batch `seq` (its [`get_batch`](Self::get_batch)) under the
    /// leader's number, and returns `seq`.
    ///
    /// Decided inside the write transaction, so concurrent writers cannot slip in between:
    /// - `seq == current_sequence() + 1`: the batch is written as
    ///   [`write_batch`](Self::write_batch) would write it (atomic, durable per the mode)
    ///   and logged under `seq`;
    /// - `seq` already applied and its log entry equal to `mutations`: accepted, and
    ///   nothing changes (a follower that restarts mid-stream may apply a batch again);
    /// - `seq` already applied with other mutations: [`EngineError::ConflictingBatch`];
    /// - `seq` already applied but its log entry pruned: it cannot be compared, so it is
    ///   refused with [`EngineError::AppliedBatchPruned`] rather than accepted unchecked;
    /// - `seq > current_sequence() + 1` (a gap) or `seq == 0`: [`EngineError::SequenceGap`].
    ///
    /// Each refusal names the number expected next and the one given, and writes nothing.
    /// Before any of these, invalid keys or values are [`EngineError::Input`] and an empty
    /// `mutations` is [`EngineError::EmptyBatch`] (an empty batch never has a number).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// let leader = store_mem::MemBackend::new(OpenOptions::default()).engine();
    /// leader.put_batch(&[(b"k", b"v")])?;
    /// let batch = leader.get_batch(1)?.unwrap();
    /// assert_eq!(engine.apply_batch(1, &batch)?, 1);
    /// assert_eq!(engine.apply_batch(1, &batch)?, 1); // an identical re-apply is accepted
    /// assert_eq!(engine.get(b"k")?, Some("v".into()));
    /// let gap = engine.apply_batch(3, &batch);
    /// assert_eq!(gap, Err(EngineError::SequenceGap { expected: 2, given: 3 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError>;

    /// Waits until a batch later than `after` has committed, and returns the sequence
    /// number then current; returns at once when one already has, and at `timeout`
    /// otherwise (then the result is `<= after`, unless a batch committed at that moment).
    ///
    /// The wait is woken by the commit itself (no polling), once the batch is visible to
    /// readers and durable per the durability mode, so a caller woken here can read it
    /// with [`get_batch`](Self::get_batch) at once. Batches written by `put_batch`,
    /// `delete_batch`, `write_batch` and `apply_batch` all wake it; an identical re-apply,
    /// an empty batch and a refused call write nothing and wake nobody.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// use std::time::Duration;
    /// let writer = std::thread::spawn({
    ///     let engine = engine.clone();
    ///     move || engine.put_batch(&[(b"k", b"v")])
    /// });
    /// assert_eq!(engine.wait_for_sequence(0, Duration::from_secs(10))?, 1);
    /// writer.join().unwrap()?;
    /// // Nothing commits after batch 1: the wait ends at the timeout.
    /// assert_eq!(engine.wait_for_sequence(1, Duration::from_millis(10))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError>;

    /// The sequence number of the last committed batch; 0 when none was ever committed.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// assert_eq!(engine.current_sequence(), 0);
    /// engine.put_batch(&[(b"a", b"1")])?;
    /// engine.delete_batch(&[b"a"])?;
    /// assert_eq!(engine.current_sequence(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn current_sequence(&self) -> u64;

    /// The value of `key`, or `None` when it is absent.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// engine.put_batch(&[(b"k", b"v")])?;
    /// assert_eq!(engine.get(b"k")?, Some("v".into()));
    /// assert_eq!(engine.get(b"absent")?, None);
    /// assert_eq!(engine.get(b""), Err(EngineError::Input(InputError::EmptyKey)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError>;

    /// One `(key, value)` per input key, in input order, read from one consistent view.
    /// Any invalid key rejects the whole call with [`EngineError::Input`].
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// engine.put_batch(&[(b"a", b"1")])?;
    /// let rows = engine.get_many(&[b"b", b"a"])?;
    /// assert_eq!(rows, vec![("b".into(), None), ("a".into(), Some("1".into()))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError>;

    /// Keys in `[start, end]`: **`end` is inclusive**.
    ///
    /// An empty `start` begins at the first key; an empty `end` means unbounded above.
    /// `start > end` (both non-empty) gives nothing; `limit` caps the rows and 0 gives
    /// nothing. `forward = false` returns the **last** `limit` keys of the range, in
    /// descending order. Bounds are compared as bytes and are not length-checked.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// engine.put_batch(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])?;
    /// let keys = |rows: Vec<(Bytes, Bytes)>| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    /// assert_eq!(keys(engine.range_scan(b"a", b"b", 10, true)?), ["a", "b"]); // end inclusive
    /// assert_eq!(keys(engine.range_scan(b"b", b"", 10, true)?), ["b", "c"]); // unbounded end
    /// assert_eq!(keys(engine.range_scan(b"", b"", 2, false)?), ["c", "b"]); // last 2, descending
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError>;

    /// The mutations of batch `seq`, in the order given (a repeated key included), so
    /// another store can replay the log exactly; `None` when pruned or never written.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// engine.put_batch(&[(b"k", b"v")])?;
    /// let put = Mutation::Put { key: "k".into(), value: "v".into() };
    /// assert_eq!(engine.get_batch(1)?, Some(vec![put]));
    /// assert_eq!(engine.get_batch(2)?, None); // never written
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError>;

    /// The smallest sequence number still in the batch log; `None` when the log is empty.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// assert_eq!(engine.oldest_retained_batch()?, None);
    /// engine.put_batch(&[(b"a", b"1")])?;
    /// engine.put_batch(&[(b"b", b"2")])?;
    /// assert_eq!(engine.oldest_retained_batch()?, Some(1));
    /// engine.prune_batch_log(2)?;
    /// assert_eq!(engine.oldest_retained_batch()?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError>;

    /// Removes every log entry with `seq < cutoff_exclusive` and returns how many were
    /// removed. Never touches the data or the sequence counter.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let engine = backend.engine();
    /// for key in [b"a", b"b", b"c"] {
    ///     engine.put_batch(&[(key, b"v")])?;
    /// }
    /// assert_eq!(engine.prune_batch_log(3)?, 2); // batches 1 and 2
    /// assert_eq!(engine.get_batch(1)?, None);
    /// assert_eq!(engine.get(b"a")?, Some("v".into())); // the data stays
    /// assert_eq!(engine.current_sequence(), 3); // and so does the counter
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        (**self).write_batch(mutations)
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        (**self).apply_batch(seq, mutations)
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        (**self).wait_for_sequence(after, timeout)
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
