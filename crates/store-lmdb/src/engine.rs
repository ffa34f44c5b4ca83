//! `StoreEngine` on three LMDB databases: `engine.data` (the keys and values, as given),
//! `engine.log` (the batch log, keyed by big-endian sequence number) and `engine.meta`
//! (the sequence counter).

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StoreEngine};
use store_kit::checksum::Framing;
use store_kit::codec::read_u64;
use store_kit::engine::{
    BatchLogEntry, SCAN_PREALLOC, SEQUENCE_KEY, batch_key, check_keys, check_mutations,
    check_put_batch, decode_batch, scan_bounds, write_in_order,
};
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};

use heed::RoTxn;

use crate::tables::{Abort, Db, ENGINE_DATA, ENGINE_LOG, ENGINE_META, Tables, put_record};
use crate::{BACKEND_NAME, HeedExt};

/// The LMDB engine store.
///
/// Writes run under the backend's writer lock: a batch's data, its log entry and the new
/// sequence number are written in one LMDB write transaction, and the in-memory copy of
/// the counter is updated after the commit, still under the lock, so sequence numbers
/// follow commit order. `apply_batch` decides inside the batch's write transaction.
#[derive(Debug)]
pub struct LmdbEngine {
    db: Arc<Db>,
    sequence: AtomicU64,
    committed: CommitNotifier,
}

/// The number a batch is committed under.
#[derive(Clone, Copy)]
enum Numbering<'a> {
    /// The next one (`put_batch`, `delete_batch`, `write_batch`).
    Next,
    /// The leader's (`apply_batch`): decided against the log inside the transaction.
    Leader(u64, &'a [Mutation]),
}

impl LmdbEngine {
    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error.
    pub(crate) fn close(&self) {
        self.committed.close();
    }

    /// The engine store of `db`, its counter as read when `db` was opened.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        let sequence = db.sequence_at_open();
        LmdbEngine {
            db,
            sequence: AtomicU64::new(sequence),
            committed: CommitNotifier::new(crate::BACKEND_NAME, sequence),
        }
    }

    /// Writes one non-empty batch: `apply` changes the data, `log` is its log entry, encoded
    /// straight into the space LMDB reserves for it in the log's page. Under
    /// [`Numbering::Leader`] the batch may turn out applied already: then the transaction
    /// is aborted, nothing is written, and its number is returned.
    fn commit(
        &self,
        what: &'static str,
        numbering: Numbering<'_>,
        log: BatchLogEntry<'_>,
        mut apply: impl FnMut(&mut heed::RwTxn<'_>, &Tables<'static>, Framing) -> heed::Result<()>,
    ) -> Result<u64, EngineError> {
        let writer = self.db.writer();
        let current = self.sequence.load(Ordering::Acquire);
        let seq = match numbering {
            Numbering::Next => current.checked_add(1).ok_or_else(|| {
                StorageError::without_source(
                    BACKEND_NAME,
                    store_api::StorageErrorKind::Engine,
                    "the engine sequence number is exhausted",
                )
            })?,
            Numbering::Leader(seq, _) => seq,
        };
        let framing = self.db.framing();
        let log_key = batch_key(seq);
        let written = writer.run(what, |txn, t| {
            if let Numbering::Leader(seq, mutations) = numbering {
                let logged = |seq| logged_batch(txn, t, framing, seq);
                let decision = decide_apply(current, seq, mutations, logged)
                    .map_err(|e| Abort::Fail(Refusal::Error(e)))?;
                if decision == ApplyDecision::AlreadyApplied {
                    return Err(Abort::Fail(Refusal::AlreadyApplied));
                }
            }
            apply(txn, t, framing)?;
            t.engine_log
                .put_reserved(txn, &log_key, framing.stored_len(log.len()), |space| {
                    space.fill_zeroes();
                    let stored = space.written_mut();
                    let entry = stored.get_mut(..log.len()).unwrap_or_default();
                    log.write_into(BACKEND_NAME, entry)
                        .map_err(std::io::Error::other)?;
                    framing.seal_in_place(ENGINE_LOG, &log_key, stored);
                    Ok(())
                })?;
            put_record(
                &t.engine_meta,
                txn,
                framing,
                ENGINE_META,
                SEQUENCE_KEY,
                &seq.to_be_bytes(),
            )?;
            Ok::<_, Abort<Refusal>>(())
        });
        match written {
            Ok(()) => {}
            Err(Refusal::AlreadyApplied) => return Ok(seq),
            Err(Refusal::Error(e)) => return Err(e),
        }
        self.sequence.store(seq, Ordering::Release);
        self.committed.publish(seq);
        drop(writer);
        Ok(seq)
    }
}

/// Why a batch's write transaction was aborted: a failure, or a re-applied batch that
/// needs no write.
enum Refusal {
    /// The batch is already applied, logged identically: nothing to write.
    AlreadyApplied,
    /// The batch was refused or the engine failed.
    Error(EngineError),
}

impl From<EngineError> for Refusal {
    fn from(e: EngineError) -> Self {
        Refusal::Error(e)
    }
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        Refusal::Error(e.into())
    }
}

/// The logged mutations of batch `seq`, read in `txn` (a read or a write transaction);
/// `None` when pruned or never written.
fn logged_batch(
    txn: &RoTxn<'_>,
    t: &Tables<'static>,
    framing: Framing,
    seq: u64,
) -> Result<Option<Vec<Mutation>>, EngineError> {
    let key = batch_key(seq);
    match t.engine_log.get(txn, &key).ctx("reading the batch log")? {
        Some(stored) => {
            let entry = framing.open(BACKEND_NAME, ENGINE_LOG, &key, stored)?;
            Ok(Some(decode_batch(BACKEND_NAME, entry)?))
        }
        None => Ok(None),
    }
}

/// Writes the mutations of a mixed batch, in order, so the last one of a key wins.
fn write_mutations(
    txn: &mut heed::RwTxn<'_>,
    t: &Tables<'static>,
    framing: Framing,
    mutations: &[Mutation],
) -> heed::Result<()> {
    write_in_order(
        txn,
        mutations,
        |txn, key, value| put_record(&t.engine_data, txn, framing, ENGINE_DATA, key, value),
        |txn, key| t.engine_data.delete(txn, key).map(drop),
    )
}

/// The sequence counter stored in `engine.meta` (0 before the first batch). Read once, when
/// the environment is opened, so a damaged counter refuses the open.
pub(crate) fn stored_sequence(
    txn: &RoTxn<'_>,
    t: &Tables<'_>,
    framing: Framing,
) -> Result<u64, StorageError> {
    let stored = t
        .engine_meta
        .get(txn, SEQUENCE_KEY)
        .ctx("reading the engine sequence counter")?;
    match stored {
        None => Ok(0),
        Some(stored) => match framing.open(BACKEND_NAME, ENGINE_META, SEQUENCE_KEY, stored)? {
            bytes if bytes.len() == 8 => read_u64(bytes, 0).ok_or_else(bad_counter),
            _ => Err(bad_counter()),
        },
    }
}

fn bad_counter() -> StorageError {
    StorageError::corrupted(BACKEND_NAME, "the engine sequence counter is not 8 bytes")
}

/// A stored row of `engine.data` as the caller's key and value, its checksum verified.
#[inline]
fn pair(framing: Framing, k: &[u8], stored: &[u8]) -> Result<(Bytes, Bytes), StorageError> {
    let v = framing.open(BACKEND_NAME, ENGINE_DATA, k, stored)?;
    Ok((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
}

impl StoreEngine for LmdbEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let log = BatchLogEntry::put(BACKEND_NAME, pairs)?;
        self.commit(
            "writing a put batch",
            Numbering::Next,
            log,
            |txn, t, framing| {
                for (key, value) in pairs {
                    put_record(&t.engine_data, txn, framing, ENGINE_DATA, key, value)?;
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
        let log = BatchLogEntry::delete(BACKEND_NAME, keys)?;
        self.commit(
            "writing a delete batch",
            Numbering::Next,
            log,
            |txn, t, _| {
                for key in keys {
                    t.engine_data.delete(txn, key)?;
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
        let log = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        self.commit(
            "writing a batch",
            Numbering::Next,
            log,
            |txn, t, framing| write_mutations(txn, t, framing, mutations),
        )
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let log = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        let numbering = Numbering::Leader(seq, mutations);
        self.commit("applying a batch", numbering, log, |txn, t, framing| {
            write_mutations(txn, t, framing, mutations)
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
        let framing = self.db.framing();
        self.db.read("reading a key", |txn, t| {
            match t.engine_data.get(txn, key).ctx("reading a key")? {
                Some(stored) => {
                    let value = framing.open(BACKEND_NAME, ENGINE_DATA, key, stored)?;
                    Ok(Some(Bytes::copy_from_slice(value)))
                }
                None => Ok(None),
            }
        })
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        let framing = self.db.framing();
        self.db.read("reading keys", |txn, t| {
            keys.iter()
                .map(
                    |key| match t.engine_data.get(txn, key).ctx("reading keys")? {
                        Some(stored) => {
                            let (key, value) = pair(framing, key, stored)?;
                            Ok((key, Some(value)))
                        }
                        None => Ok((Bytes::copy_from_slice(key), None)),
                    },
                )
                .collect()
        })
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
        const WHAT: &str = "scanning a key range";
        let framing = self.db.framing();
        self.db.read(WHAT, |txn, t| {
            let mut rows = Vec::with_capacity(limit.min(SCAN_PREALLOC));
            if forward {
                for row in t.engine_data.range(txn, &bounds).ctx(WHAT)?.take(limit) {
                    let (k, v) = row.ctx(WHAT)?;
                    rows.push(pair(framing, k, v)?);
                }
            } else {
                for row in t.engine_data.rev_range(txn, &bounds).ctx(WHAT)?.take(limit) {
                    let (k, v) = row.ctx(WHAT)?;
                    rows.push(pair(framing, k, v)?);
                }
            }
            Ok(rows)
        })
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        let framing = self.db.framing();
        self.db.read("reading the batch log", |txn, t| {
            logged_batch(txn, t, framing, seq)
        })
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        self.db.read("reading the batch log", |txn, t| {
            match t.engine_log.first(txn).ctx("reading the batch log")? {
                None => Ok(None),
                Some((key, _)) => match read_u64(key, 0) {
                    Some(seq) if key.len() == 8 => Ok(Some(seq)),
                    _ => Err(StorageError::corrupted(
                        BACKEND_NAME,
                        "a batch log key is not 8 bytes",
                    )
                    .into()),
                },
            }
        })
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        let cutoff = batch_key(cutoff_exclusive);
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Unbounded, Bound::Excluded(&cutoff));
        let removed = self.db.write("pruning the batch log", |txn, t| {
            Ok::<_, Abort<EngineError>>(t.engine_log.delete_range(txn, &range)?)
        })?;
        Ok(removed as u64)
    }
}
