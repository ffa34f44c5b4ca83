//! `StoreEngine` on three fjall keyspaces, through the ordered-KV layer: `engine.data` (the
//! keys and values, as given), `engine.log` (the batch log, keyed by big-endian sequence
//! number) and `engine.meta` (the sequence counter).
//!
//! A batch's data, log entry and counter are one write transaction, so one fjall journal
//! batch: applied, logged and numbered as one atomic step, also across a crash. Writers
//! are serialized by a mutex held across the commit, so sequence numbers follow commit
//! order; reads are fjall snapshots, which see a batch entirely or not at all.

use std::ops::{Bound, ControlFlow};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StoreEngine};
use store_kit::codec::read_u64;
use store_kit::engine::{
    BatchLogEntry, SCAN_PREALLOC, SEQUENCE_KEY, batch_key, check_keys, check_mutations,
    check_put_batch, decode_batch, scan_bounds, write_in_order,
};
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};
use store_kv::{Commit, Direction, KvRead, KvStore, KvWrite, Visit};

use crate::BACKEND_NAME;
use crate::db::Db;
use crate::kv::{FjallTable, FjallWrite};

/// The engine store of a [`FjallBackend`](crate::FjallBackend).
#[derive(Debug)]
pub struct FjallEngine {
    data: FjallTable,
    log: FjallTable,
    meta: FjallTable,
    /// Serializes writers: sequence numbers are assigned and committed in one order.
    writer: Mutex<()>,
    /// The last committed sequence number, updated after each commit under `writer`.
    sequence: AtomicU64,
    /// Wakes `wait_for_sequence` once a batch is committed (and durable per the mode).
    committed: CommitNotifier,
    /// Dropped last, after the keyspace handles above (see [`Db`]).
    db: Arc<Db>,
}

/// The number a batch is committed under.
#[derive(Clone, Copy)]
enum Numbering<'a> {
    /// The next one (`put_batch`, `delete_batch`, `write_batch`).
    Next,
    /// The leader's (`apply_batch`): decided against the log under the writer mutex.
    Leader(u64, &'a [Mutation]),
}

impl FjallEngine {
    /// The engine store of `db`, its counter read from `engine.meta` (a damaged counter
    /// refuses the open).
    pub(crate) fn open(db: Arc<Db>) -> Result<Self, StorageError> {
        let data = db.table("engine.data")?;
        let log = db.table("engine.log")?;
        let meta = db.table("engine.meta")?;
        const WHAT: &str = "reading the engine sequence counter";
        let sequence = db
            .read(WHAT, |txn| txn.get(&meta, SEQUENCE_KEY, decode_sequence))?
            .unwrap_or(0);
        Ok(FjallEngine {
            db,
            data,
            log,
            meta,
            writer: Mutex::new(()),
            sequence: AtomicU64::new(sequence),
            committed: CommitNotifier::new(BACKEND_NAME, sequence),
        })
    }

    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error.
    pub(crate) fn close(&self) {
        self.committed.close();
    }

    /// Commits one non-empty batch: `apply` changes the data, `log` is its log entry.
    /// Under [`Numbering::Leader`] the batch may turn out applied already: then nothing is
    /// written and its number is returned.
    fn commit(
        &self,
        what: &'static str,
        numbering: Numbering<'_>,
        log: BatchLogEntry<'_>,
        apply: impl Fn(&mut FjallWrite<'_>, &FjallTable) -> Result<(), StorageError>,
    ) -> Result<u64, EngineError> {
        let log = log.to_vec();
        let _writer = store_kit::lock_wait::lock(&self.writer, "fjall engine writer");
        let current = self.sequence.load(Ordering::Acquire);
        let seq = match numbering {
            Numbering::Next => current.checked_add(1).ok_or_else(|| {
                StorageError::without_source(
                    BACKEND_NAME,
                    store_api::StorageErrorKind::Engine,
                    "the engine sequence number is exhausted",
                )
            })?,
            // The writer mutex is held (pruning takes it too): the log cannot change
            // between this decision and the transaction below.
            Numbering::Leader(seq, mutations) => {
                match decide_apply(current, seq, mutations, |seq| self.logged_batch(seq))? {
                    ApplyDecision::AlreadyApplied => return Ok(seq),
                    ApplyDecision::Write => seq,
                }
            }
        };
        self.db.write(Commit::Backend, what, |txn| {
            apply(txn, &self.data)?;
            txn.put(&self.log, &batch_key(seq), &log)?;
            txn.put(&self.meta, SEQUENCE_KEY, &seq.to_be_bytes())?;
            Ok::<_, StorageError>(())
        })?;
        self.sequence.store(seq, Ordering::Release);
        self.committed.publish(seq);
        Ok(seq)
    }

    /// The logged mutations of batch `seq`; `None` when pruned or never written.
    fn logged_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        const WHAT: &str = "reading the batch log";
        let logged = self.db.read(WHAT, |txn| {
            txn.get(&self.log, &batch_key(seq), |bytes| {
                decode_batch(BACKEND_NAME, bytes)
            })
        })?;
        Ok(logged)
    }
}

fn decode_sequence(stored: &[u8]) -> Result<u64, StorageError> {
    match read_u64(stored, 0) {
        Some(seq) if stored.len() == 8 => Ok(seq),
        _ => Err(StorageError::corrupted(
            BACKEND_NAME,
            "the engine sequence counter is not 8 bytes",
        )),
    }
}

/// Writes the mutations of a mixed batch, in order, so the last one of a key wins.
fn write_mutations(
    txn: &mut FjallWrite<'_>,
    data: &FjallTable,
    mutations: &[Mutation],
) -> Result<(), StorageError> {
    write_in_order(
        txn,
        mutations,
        |txn, key, value| txn.put(data, key, value),
        |txn, key| txn.delete(data, key),
    )
}

impl StoreEngine for FjallEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let log = BatchLogEntry::put(BACKEND_NAME, pairs)?;
        self.commit("writing a put batch", Numbering::Next, log, |txn, data| {
            pairs
                .iter()
                .try_for_each(|(key, value)| txn.put(data, key, value))
        })
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        let log = BatchLogEntry::delete(BACKEND_NAME, keys)?;
        self.commit(
            "writing a delete batch",
            Numbering::Next,
            log,
            |txn, data| keys.iter().try_for_each(|key| txn.delete(data, key)),
        )
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        let log = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        self.commit("writing a batch", Numbering::Next, log, |txn, data| {
            write_mutations(txn, data, mutations)
        })
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let log = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        let numbering = Numbering::Leader(seq, mutations);
        self.commit("applying a batch", numbering, log, |txn, data| {
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
        const WHAT: &str = "reading a key";
        let value = self.db.read(WHAT, |txn| {
            txn.get(&self.data, key, |value| Ok(Bytes::copy_from_slice(value)))
        })?;
        Ok(value)
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        let rows = self.db.read("reading keys", |txn| {
            keys.iter()
                .map(|key| {
                    let value =
                        txn.get(&self.data, key, |value| Ok(Bytes::copy_from_slice(value)))?;
                    Ok::<_, StorageError>((Bytes::copy_from_slice(key), value))
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
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
        let rows = self.db.read("scanning a key range", |txn| {
            let mut rows = Vec::with_capacity(limit.min(SCAN_PREALLOC));
            txn.scan(&self.data, bounds, direction, |key, value| {
                rows.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
                Ok::<_, StorageError>(if rows.len() < limit {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                })
            })?;
            Ok::<_, StorageError>(rows)
        })?;
        Ok(rows)
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        self.logged_batch(seq)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        let all = (Bound::Unbounded, Bound::Unbounded);
        let oldest = self.db.read("reading the batch log", |txn| {
            let mut oldest = None;
            txn.scan(&self.log, all, Direction::Forward, |key, _| {
                oldest = Some(decode_sequence(key).map_err(|_| {
                    StorageError::corrupted(BACKEND_NAME, "a batch log key is not 8 bytes")
                })?);
                Ok::<_, StorageError>(Visit::Break(()))
            })?;
            Ok::<_, StorageError>(oldest)
        })?;
        Ok(oldest)
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        let cutoff = batch_key(cutoff_exclusive);
        let below = (Bound::Unbounded, Bound::Excluded(&cutoff[..]));
        let _writer = store_kit::lock_wait::lock(&self.writer, "fjall engine writer");
        let removed = self
            .db
            .write(Commit::Backend, "pruning the batch log", |txn| {
                let mut keys = Vec::new();
                txn.scan(&self.log, below, Direction::Forward, |key, _| {
                    keys.push(key.to_vec());
                    Ok::<_, StorageError>(Visit::Continue(()))
                })?;
                for key in &keys {
                    txn.delete(&self.log, key)?;
                }
                Ok::<_, StorageError>(keys.len() as u64)
            })?;
        Ok(removed)
    }
}
