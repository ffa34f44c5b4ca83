//! `KvEngine`, the `StoreEngine` of every backend on the ordered-KV layer, and the
//! `EngineKv` trait it runs on.

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StorageErrorKind, StoreEngine};
use store_kit::engine::{
    BatchLogEntry, SEQUENCE_KEY, batch_key, check_keys, check_mutations, check_put_batch,
    decode_batch, scan_bounds, write_in_order,
};
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};

use crate::{Commit, Direction, KvRead, KvStore, KvWrite, Visit};

/// The names of the engine's three tables.
#[derive(Debug, Clone, Copy)]
pub struct EngineTables {
    /// The caller's keys and values.
    pub data: &'static str,
    /// The batch log: sequence number → the batch's mutations.
    pub log: &'static str,
    /// The sequence counter, at [`SEQUENCE_KEY`].
    pub meta: &'static str,
}

/// The engine tables of every backend on this layer.
pub const ENGINE_TABLES: EngineTables = EngineTables {
    data: "engine.data",
    log: "engine.log",
    meta: "engine.meta",
};

/// The engine's three tables, resolved by the backend.
#[derive(Debug, Clone)]
pub struct EngineHandles<T> {
    /// The caller's keys and values.
    pub data: T,
    /// The batch log.
    pub log: T,
    /// The sequence counter.
    pub meta: T,
}

/// What one batch writes to the data table, as the caller gave it.
#[derive(Debug, Clone, Copy)]
pub enum BatchWrites<'a> {
    /// `put_batch`: every pair is put.
    Put(&'a [(&'a [u8], &'a [u8])]),
    /// `delete_batch`: every key is deleted.
    Delete(&'a [&'a [u8]]),
    /// `write_batch` and `apply_batch`: puts and deletes in order, the last of a key wins.
    Mixed(&'a [Mutation]),
}

impl BatchWrites<'_> {
    /// Passes each write to `put` or `delete`, in the batch's order.
    #[inline]
    pub fn for_each<T: ?Sized, E>(
        self,
        target: &mut T,
        mut put: impl FnMut(&mut T, &[u8], &[u8]) -> Result<(), E>,
        mut delete: impl FnMut(&mut T, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            BatchWrites::Put(pairs) => pairs
                .iter()
                .try_for_each(|(key, value)| put(target, key, value)),
            BatchWrites::Delete(keys) => keys.iter().try_for_each(|key| delete(target, key)),
            BatchWrites::Mixed(mutations) => write_in_order(target, mutations, put, delete),
        }
    }
}

/// One numbered batch, as [`EngineKv::commit_batch`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct EngineBatch<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Its writes to the data table.
    pub writes: BatchWrites<'a>,
    /// Its batch-log entry, stored at [`batch_key`]`(seq)`.
    pub log_entry: BatchLogEntry<'a>,
}

impl EngineBatch<'_> {
    /// Writes the batch in `txn`: the data, the log entry (into the space the engine
    /// reserves for it, [`KvWrite::put_reserved`]) and the counter. The body of
    /// [`EngineKv::commit_batch`]'s default.
    #[inline]
    pub fn write_to<W: KvWrite>(
        &self,
        backend: &'static str,
        txn: &mut W,
        tables: &EngineHandles<W::Table>,
    ) -> Result<(), StorageError> {
        let data = &tables.data;
        self.writes.for_each(
            txn,
            |txn, key, value| txn.put(data, key, value),
            |txn, key| txn.delete(data, key),
        )?;
        txn.put_reserved(
            &tables.log,
            &batch_key(self.seq),
            self.log_entry.len(),
            |space| self.log_entry.write_into(backend, space),
        )?;
        txn.put(&tables.meta, SEQUENCE_KEY, &self.seq.to_be_bytes())
    }
}

/// What [`KvEngine`] asks of an engine beyond [`KvStore`]: its batch commit and its read
/// paths, each with a default written over [`KvStore`]. An engine overrides one where it
/// has a faster way that keeps the same guarantees (see [`KvEngine`]).
pub trait EngineKv: KvStore {
    /// Writes `batch` to `tables` as one atomic write, committed as
    /// [`Commit::Backend`] asks; nothing of it is written when this fails. The default is
    /// one [`KvStore::write`] running [`EngineBatch::write_to`].
    #[inline]
    fn commit_batch(
        &self,
        tables: &EngineHandles<Self::Table>,
        batch: &EngineBatch<'_>,
        context: &'static str,
    ) -> Result<(), StorageError> {
        self.write(Commit::Backend, context, |txn| {
            batch.write_to(Self::NAME, txn, tables)
        })
    }

    /// Runs after a batch committed, before its number is published: an engine whose
    /// commit is made durable in a step of its own (sled) runs it here. A failure here
    /// must shut the backend's write gate. The default does nothing.
    #[inline]
    fn after_commit(&self, context: &'static str) -> Result<(), StorageError> {
        let _ = context;
        Ok(())
    }

    /// The value at `key` in `table`, copied out; it may be read without a snapshot. The
    /// default is one [`KvStore::read`] running [`KvRead::get_bytes`].
    #[inline]
    fn point_read(
        &self,
        table: &Self::Table,
        key: &[u8],
        context: &'static str,
    ) -> Result<Option<Bytes>, StorageError> {
        self.read(context, |txn| txn.get_bytes(table, key))
    }

    /// Runs `f` in one read that sees every batch whole or not at all. The default is
    /// [`KvStore::read`].
    #[inline]
    fn engine_read<T, E: From<StorageError>>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Self::Read<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.read(context, f)
    }
}

/// Decodes the sequence counter stored at [`SEQUENCE_KEY`]: exactly 8 bytes, big-endian.
pub fn decode_sequence(backend: &'static str, stored: &[u8]) -> Result<u64, StorageError> {
    match <[u8; 8]>::try_from(stored) {
        Ok(bytes) => Ok(u64::from_be_bytes(bytes)),
        Err(_) => Err(StorageError::corrupted(
            backend,
            "the engine sequence counter is not 8 bytes",
        )),
    }
}

/// [`StoreEngine`] written once over an ordered-KV engine ([`EngineKv`]): the caller's
/// keys and values in one table, the batch log in a second, the sequence counter in a
/// third, all three written by one atomic write per batch.
///
/// # Format
///
/// | table ([`ENGINE_TABLES`]) | key | value |
/// |---|---|---|
/// | `engine.data` | the caller's key | the caller's value, as given |
/// | `engine.log` | [`batch_key`]: the sequence number, `u64` big-endian | the batch's mutations ([`BatchLogEntry`]) |
/// | `engine.meta` | [`SEQUENCE_KEY`] | the last committed sequence number, `u64` big-endian |
///
/// Values are stored as the backend's [`KvWrite::put`] stores them (LMDB and sled add
/// their record checksum); the counter is kept apart from the log, so pruning the log
/// never resets it.
///
/// # Invariants
///
/// - **Writers serialize on the engine's writer mutex**, held from the moment a batch is
///   numbered until its number is published, and by pruning. The mutex is always taken
///   before the backend's own writer lock (inside [`EngineKv::commit_batch`]), so the two
///   never deadlock.
/// - **One batch, one atomic write**: [`EngineKv::commit_batch`] writes the batch's data,
///   its log entry and the new counter as one write, so a reader and a crash see the
///   batch whole or not at all, and numbers follow commit order.
/// - **The cached sequence** ([`current_sequence`](StoreEngine::current_sequence)) is
///   stored once the batch's write committed, still under the writer mutex, then the
///   backend's durability step runs ([`EngineKv::after_commit`]), then the number is
///   published to [`wait_for_sequence`](StoreEngine::wait_for_sequence). A failed write
///   leaves it where it was; a failed durability step leaves it moved on (the batch is
///   committed and visible) and the backend's write gate shut.
/// - **`apply_batch` decides under the writer mutex**: the log entry the decision needs
///   ([`decide_apply`]) is read after the mutex is taken, and every writer of the log
///   (batches and pruning) holds that mutex, so the log cannot change between the decision
///   and the write. A batch already applied with the same mutations writes nothing and
///   returns its number.
/// - **Reads**: a multi-key read (`get_many`, `range_scan`) runs in one
///   [`EngineKv::engine_read`], which sees each batch whole or not at all; a point read
///   goes through [`EngineKv::point_read`], which an engine may serve without a snapshot
///   (one key is written atomically by any engine's commit).
pub struct KvEngine<K: EngineKv> {
    // Tables are declared before the store: they drop first (see `KvStore::Table`).
    tables: EngineHandles<K::Table>,
    /// Serializes writers (batches and pruning) from numbering a batch to publishing it.
    writer: Mutex<()>,
    /// The last committed sequence number, stored after each commit under `writer`.
    sequence: AtomicU64,
    /// Wakes `wait_for_sequence` once a batch is committed (and durable per the mode).
    committed: CommitNotifier,
    kv: Arc<K>,
}

impl<K: EngineKv> fmt::Debug for KvEngine<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvEngine")
            .field("backend", &K::NAME)
            .field("sequence", &self.sequence.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// The number a batch is committed under.
#[derive(Clone, Copy)]
enum Numbering<'a> {
    /// The next one (`put_batch`, `delete_batch`, `write_batch`).
    Next,
    /// The leader's (`apply_batch`): decided against the log under the writer mutex.
    Leader(u64, &'a [Mutation]),
}

impl<K: EngineKv> KvEngine<K> {
    /// The engine over `kv`'s [`ENGINE_TABLES`], reading the stored sequence counter (a
    /// damaged counter refuses the open as corrupted).
    pub fn open(kv: Arc<K>) -> Result<Self, StorageError> {
        let tables = EngineHandles {
            data: kv.table(ENGINE_TABLES.data)?,
            log: kv.table(ENGINE_TABLES.log)?,
            meta: kv.table(ENGINE_TABLES.meta)?,
        };
        let sequence = kv
            .read("reading the engine sequence counter", |txn| {
                txn.get(&tables.meta, SEQUENCE_KEY, |stored| {
                    decode_sequence(K::NAME, stored)
                })
            })?
            .unwrap_or(0);
        Ok(KvEngine {
            tables,
            writer: Mutex::new(()),
            sequence: AtomicU64::new(sequence),
            committed: CommitNotifier::new(K::NAME, sequence),
            kv,
        })
    }

    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error: the
    /// backend's `close` calls it.
    pub fn close(&self) {
        self.committed.close();
    }

    /// Commits one non-empty batch. Under [`Numbering::Leader`] the batch may turn out
    /// applied already: then nothing is written and its number is returned.
    fn commit(
        &self,
        numbering: Numbering<'_>,
        writes: BatchWrites<'_>,
        log_entry: BatchLogEntry<'_>,
        context: &'static str,
    ) -> Result<u64, EngineError> {
        let _writer = store_kit::lock_wait::lock(&self.writer, "engine writer");
        let current = self.sequence.load(Ordering::Acquire);
        let seq = match numbering {
            Numbering::Next => current.checked_add(1).ok_or_else(|| {
                StorageError::without_source(
                    K::NAME,
                    StorageErrorKind::Engine,
                    "numbering a batch: the sequence counter is at its maximum",
                )
            })?,
            // The writer mutex is held (pruning takes it too): the log cannot change
            // between this decision and the write below.
            Numbering::Leader(seq, mutations) => {
                match decide_apply(current, seq, mutations, |seq| self.logged_batch(seq))? {
                    ApplyDecision::AlreadyApplied => return Ok(seq),
                    ApplyDecision::Write => seq,
                }
            }
        };
        let batch = EngineBatch {
            seq,
            writes,
            log_entry,
        };
        self.kv.commit_batch(&self.tables, &batch, context)?;
        // The batch is committed (and visible) whatever the durability step does: the
        // counter moves on so no later batch reuses this number.
        self.sequence.store(seq, Ordering::Release);
        self.kv.after_commit(context)?;
        self.committed.publish(seq);
        Ok(seq)
    }

    /// The logged mutations of batch `seq`; `None` when pruned or never written.
    fn logged_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        Ok(self.kv.engine_read("reading the batch log", |txn| {
            txn.get(&self.tables.log, &batch_key(seq), |bytes| {
                decode_batch(K::NAME, bytes)
            })
        })?)
    }
}

impl<K: EngineKv> StoreEngine for KvEngine<K> {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::put(K::NAME, pairs)?;
        let writes = BatchWrites::Put(pairs);
        self.commit(Numbering::Next, writes, log_entry, "writing a put batch")
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::delete(K::NAME, keys)?;
        let writes = BatchWrites::Delete(keys);
        self.commit(Numbering::Next, writes, log_entry, "writing a delete batch")
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::mutations(K::NAME, mutations)?;
        let writes = BatchWrites::Mixed(mutations);
        self.commit(Numbering::Next, writes, log_entry, "writing a batch")
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let log_entry = BatchLogEntry::mutations(K::NAME, mutations)?;
        let numbering = Numbering::Leader(seq, mutations);
        let writes = BatchWrites::Mixed(mutations);
        self.commit(numbering, writes, log_entry, "applying a batch")
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        self.committed.wait_after(after, timeout)
    }

    fn current_sequence(&self) -> u64 {
        self.sequence.load(Ordering::Acquire)
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        check_key(key)?;
        Ok(self
            .kv
            .point_read(&self.tables.data, key, "reading an engine key")?)
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        let data = &self.tables.data;
        Ok(self.kv.engine_read("reading engine keys", |txn| {
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                rows.push((Bytes::copy_from_slice(key), txn.get_bytes(data, key)?));
            }
            Ok::<_, StorageError>(rows)
        })?)
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError> {
        let Some(bounds) = scan_bounds(start, end, limit) else {
            return Ok(Vec::new());
        };
        let direction = if forward {
            Direction::Forward
        } else {
            Direction::Backward
        };
        Ok(self.kv.engine_read("scanning the engine data", |txn| {
            txn.rows(&self.tables.data, bounds, direction, limit)
        })?)
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        self.logged_batch(seq)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        let all = (Bound::Unbounded, Bound::Unbounded);
        Ok(self.kv.engine_read("reading the batch log", |txn| {
            let mut oldest = None;
            txn.scan(&self.tables.log, all, Direction::Forward, |key, _| {
                let seq = <[u8; 8]>::try_from(key).map_err(|_| {
                    StorageError::corrupted(K::NAME, "a batch log key is not 8 bytes")
                })?;
                oldest = Some(u64::from_be_bytes(seq));
                Ok::<_, StorageError>(Visit::Break(()))
            })?;
            Ok::<_, StorageError>(oldest)
        })?)
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        let cutoff = batch_key(cutoff_exclusive);
        let below = (Bound::Unbounded, Bound::Excluded(cutoff.as_slice()));
        let _writer = store_kit::lock_wait::lock(&self.writer, "engine writer");
        Ok(self
            .kv
            .write(Commit::Backend, "pruning the batch log", |txn| {
                txn.delete_range(&self.tables.log, below)
            })?)
    }
}
