//! [`StoreEngine`] written once over [`KvStore`]: the caller's keys and values in one
//! table, the batch log in a second, the sequence counter in a third, all three written by
//! one write transaction per batch.

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

/// The [`StoreEngine`] of a backend on the ordered-KV layer.
///
/// # Format
///
/// | table ([`EngineTables`]) | key | value |
/// |---|---|---|
/// | `data` | the caller's key | the caller's value, as given |
/// | `log` | [`batch_key`]: the sequence number, `u64` big-endian | the batch's mutations ([`BatchLogEntry`]) |
/// | `meta` | [`SEQUENCE_KEY`] | the last committed sequence number, `u64` big-endian |
///
/// The counter is kept apart from the log, so pruning the log never resets it.
///
/// # Invariants
///
/// - **Writers serialize on the engine's writer mutex**, held from the moment a batch is
///   numbered until its number is published. Under it, the batch's data, its log entry and
///   the new counter are written by one [`KvStore::write`] (whose own writer lock the
///   mutex is always taken before, so the two never deadlock), so numbers follow commit
///   order and a crash keeps a batch whole or not at all.
/// - **The cached sequence** ([`current_sequence`](StoreEngine::current_sequence)) is
///   stored after the write transaction committed, still under the writer mutex, then
///   published to [`wait_for_sequence`](StoreEngine::wait_for_sequence). A failed commit
///   leaves it where it was; an engine whose failed commit may still have written
///   something (a failed durability step after the engine's own commit) shuts its write
///   gate, so no later batch can take the number again.
/// - **`apply_batch` decides inside the write transaction**: it reads the log entry the
///   decision needs ([`decide_apply`]) in the same transaction that then writes the batch,
///   so nothing (a prune, another writer) can change the log between the decision and the
///   write. A batch already applied with the same mutations aborts the transaction:
///   nothing is written and its number is returned.
/// - **Reads** run in one [`KvStore::read`] each, so a multi-key read (`get_many`,
///   `range_scan`) sees a batch whole or not at all; a point read goes through
///   [`KvStore::read_bytes`], which an engine may serve without a snapshot.
/// - **Pruning** deletes the log entries below the cutoff in one write transaction; it
///   needs no writer mutex, as the counter lives apart from the log.
pub struct KvEngine<K: KvStore> {
    // Tables are declared before the store: they drop first (see `KvStore::Table`).
    data: K::Table,
    log: K::Table,
    meta: K::Table,
    /// Serializes writers from numbering a batch to publishing its number.
    writer: Mutex<()>,
    /// The last committed sequence number, stored after each commit under `writer`.
    sequence: AtomicU64,
    /// Wakes `wait_for_sequence` once a batch is committed.
    committed: CommitNotifier,
    kv: Arc<K>,
}

impl<K: KvStore> fmt::Debug for KvEngine<K> {
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
    /// The leader's (`apply_batch`): decided against the log inside the transaction.
    Leader(u64, &'a [Mutation]),
}

/// Why a batch's write transaction was aborted: a re-applied batch that needs no write,
/// or a failure.
enum Stop {
    /// The batch is already applied, logged identically: nothing to write.
    AlreadyApplied,
    /// The batch was refused or the engine failed.
    Failed(EngineError),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Self {
        Stop::Failed(e.into())
    }
}

impl<K: KvStore> KvEngine<K> {
    /// The engine over `kv`'s tables `tables`, reading the stored sequence counter (a
    /// damaged counter refuses the open as corrupted).
    pub fn open(kv: Arc<K>, tables: EngineTables) -> Result<Self, StorageError> {
        let data = kv.table(tables.data)?;
        let log = kv.table(tables.log)?;
        let meta = kv.table(tables.meta)?;
        let sequence = kv
            .read("reading the engine sequence counter", |txn| {
                txn.get(&meta, SEQUENCE_KEY, |stored| {
                    decode_sequence(K::NAME, stored)
                })
            })?
            .unwrap_or(0);
        Ok(KvEngine {
            data,
            log,
            meta,
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

    /// Writes one non-empty batch: `apply` changes the data table, `log_entry` is its
    /// batch-log record, encoded straight into the space the engine reserves for it
    /// ([`KvWrite::put_reserved`]). `apply` may run more than once (see
    /// [`KvStore::write`]). Under [`Numbering::Leader`] the batch may turn out applied
    /// already: then nothing is written and its number is returned.
    fn commit(
        &self,
        numbering: Numbering<'_>,
        log_entry: BatchLogEntry<'_>,
        context: &'static str,
        mut apply: impl FnMut(&mut K::Write<'_>, &K::Table) -> Result<(), StorageError>,
    ) -> Result<u64, EngineError> {
        let _writer = self.writer.lock();
        let current = self.sequence.load(Ordering::Acquire);
        let seq = match numbering {
            Numbering::Next => current.checked_add(1).ok_or_else(|| {
                StorageError::without_source(
                    K::NAME,
                    StorageErrorKind::Engine,
                    "numbering a batch: the sequence counter is at its maximum",
                )
            })?,
            Numbering::Leader(seq, _) => seq,
        };
        let log_key = batch_key(seq);
        let counter = seq.to_be_bytes();
        let written = self.kv.write(Commit::Backend, context, |txn| {
            if let Numbering::Leader(seq, mutations) = numbering {
                let logged = |seq| {
                    Ok(txn.get(&self.log, &batch_key(seq), |bytes| {
                        decode_batch(K::NAME, bytes)
                    })?)
                };
                let decision =
                    decide_apply(current, seq, mutations, logged).map_err(Stop::Failed)?;
                if decision == ApplyDecision::AlreadyApplied {
                    return Err(Stop::AlreadyApplied);
                }
            }
            apply(txn, &self.data)?;
            txn.put_reserved(&self.log, &log_key, log_entry.len(), |space| {
                log_entry.write_into(K::NAME, space)
            })?;
            txn.put(&self.meta, SEQUENCE_KEY, &counter)?;
            Ok(())
        });
        match written {
            Ok(()) => {}
            Err(Stop::AlreadyApplied) => return Ok(seq),
            Err(Stop::Failed(e)) => return Err(e),
        }
        self.sequence.store(seq, Ordering::Release);
        self.committed.publish(seq);
        Ok(seq)
    }
}

/// Writes the mutations of a mixed batch to `data`, in order, so the last one of a key wins.
fn write_mutations<W: KvWrite>(
    txn: &mut W,
    data: &W::Table,
    mutations: &[Mutation],
) -> Result<(), StorageError> {
    write_in_order(
        txn,
        mutations,
        |txn, key, value| txn.put(data, key, value),
        |txn, key| txn.delete(data, key),
    )
}

impl<K: KvStore> StoreEngine for KvEngine<K> {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::put(K::NAME, pairs)?;
        self.commit(
            Numbering::Next,
            log_entry,
            "writing a put batch",
            |txn, data| {
                for (key, value) in pairs {
                    txn.put(data, key, value)?;
                }
                Ok(())
            },
        )
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::delete(K::NAME, keys)?;
        self.commit(
            Numbering::Next,
            log_entry,
            "writing a delete batch",
            |txn, data| {
                for key in keys {
                    txn.delete(data, key)?;
                }
                Ok(())
            },
        )
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::mutations(K::NAME, mutations)?;
        self.commit(
            Numbering::Next,
            log_entry,
            "writing a batch",
            |txn, data| write_mutations(txn, data, mutations),
        )
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let log_entry = BatchLogEntry::mutations(K::NAME, mutations)?;
        let numbering = Numbering::Leader(seq, mutations);
        self.commit(numbering, log_entry, "applying a batch", |txn, data| {
            write_mutations(txn, data, mutations)
        })
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
            .read_bytes("reading an engine key", &self.data, key)?)
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        Ok(self.kv.read("reading engine keys", |txn| {
            keys.iter()
                .map(|key| Ok((Bytes::copy_from_slice(key), txn.get_bytes(&self.data, key)?)))
                .collect::<Result<_, StorageError>>()
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
        Ok(self.kv.read("scanning the engine data", |txn| {
            txn.rows(&self.data, bounds, direction, limit)
        })?)
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        Ok(self.kv.read("reading the batch log", |txn| {
            txn.get(&self.log, &batch_key(seq), |bytes| {
                decode_batch(K::NAME, bytes)
            })
        })?)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        let all = (Bound::Unbounded, Bound::Unbounded);
        Ok(self.kv.read("reading the batch log", |txn| {
            let mut oldest = None;
            txn.scan(&self.log, all, Direction::Forward, |key, _| {
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
        Ok(self
            .kv
            .write(Commit::Backend, "pruning the batch log", |txn| {
                txn.delete_range(&self.log, below)
            })?)
    }
}
