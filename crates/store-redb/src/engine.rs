//! `StoreEngine` on redb: the data in `engine.data`, the batch log in `engine.log`, the
//! sequence counter in `engine.meta`, all three written by one write transaction per batch.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use redb::ReadableTable;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StorageErrorKind, StoreEngine};
use store_kit::engine::{
    BatchLogEntry, SEQUENCE_KEY, batch_key, check_keys, check_mutations, check_put_batch,
    collect_rows, decode_batch, scan_bounds, write_in_order,
};
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};

use crate::BACKEND_NAME;
use crate::db::{Context, Db, RangeEntry, WriteTable, get_with, read_table};
use crate::tables::{ENGINE_DATA, ENGINE_LOG, ENGINE_META};

/// The engine store of a [`RedbBackend`](crate::RedbBackend).
///
/// Writers are serialized by a mutex held across the whole write transaction, so batches
/// are numbered in commit order; the last committed number is cached in memory for
/// [`current_sequence`](StoreEngine::current_sequence). Readers use redb read transactions
/// (MVCC snapshots): a reader sees a whole batch or none of it. `apply_batch` decides
/// inside the batch's write transaction, under the same mutex.
#[derive(Debug)]
pub struct RedbEngine {
    db: Arc<Db>,
    writer: Mutex<()>,
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

impl RedbEngine {
    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error.
    pub(crate) fn close(&self) {
        self.committed.close();
    }

    /// The engine over `db`, reading the stored sequence counter.
    pub(crate) fn open(db: Arc<Db>) -> Result<Self, StorageError> {
        const CONTEXT: &str = "reading the engine sequence counter";
        let txn = db.begin_read(CONTEXT)?;
        let meta = read_table(&txn, ENGINE_META, CONTEXT)?;
        let sequence = get_with(&meta, SEQUENCE_KEY, CONTEXT, decode_seq)?.unwrap_or(0);
        drop(meta);
        drop(txn);
        Ok(RedbEngine {
            db,
            writer: Mutex::new(()),
            sequence: AtomicU64::new(sequence),
            committed: CommitNotifier::new(crate::BACKEND_NAME, sequence),
        })
    }

    /// Writes one batch: `apply` changes the data, `log_entry` is its batch-log record,
    /// encoded straight into the space redb reserves for it in the log table's page.
    /// Under [`Numbering::Leader`] the batch may turn out applied already: then nothing is
    /// written and its number is returned.
    fn commit(
        &self,
        numbering: Numbering<'_>,
        log_entry: BatchLogEntry<'_>,
        context: &'static str,
        apply: impl FnOnce(&mut WriteTable<'_>) -> Result<(), redb::StorageError>,
    ) -> Result<u64, EngineError> {
        let _writer = store_kit::lock_wait::lock(&self.writer, "redb engine writer");
        let current = self.sequence.load(Ordering::Acquire);
        let seq = match numbering {
            Numbering::Next => current.checked_add(1).ok_or_else(|| {
                StorageError::without_source(
                    BACKEND_NAME,
                    StorageErrorKind::Engine,
                    "numbering a batch: the sequence counter is at its maximum",
                )
            })?,
            Numbering::Leader(seq, _) => seq,
        };
        let txn = self.db.begin_write(context)?;
        if let Numbering::Leader(seq, mutations) = numbering {
            let log = txn.table(ENGINE_LOG, context)?;
            let logged = |seq| {
                Ok(get_with(&log, &batch_key(seq), context, |bytes| {
                    decode_batch(BACKEND_NAME, bytes)
                })?)
            };
            // Dropping the transaction unused aborts it: a re-apply or a refusal writes
            // nothing.
            if decide_apply(current, seq, mutations, logged)? == ApplyDecision::AlreadyApplied {
                return Ok(seq);
            }
        }
        {
            let mut data = txn.table(ENGINE_DATA, context)?;
            apply(&mut data).ctx(context)?;
            let mut log = txn.table(ENGINE_LOG, context)?;
            let mut space = log
                .insert_reserve(batch_key(seq).as_slice(), log_entry.len())
                .ctx(context)?;
            log_entry.write_into(BACKEND_NAME, space.as_mut())?;
            drop(space);
            let mut meta = txn.table(ENGINE_META, context)?;
            meta.insert(SEQUENCE_KEY, seq.to_be_bytes().as_slice())
                .ctx(context)?;
        }
        txn.commit(context)?;
        self.sequence.store(seq, Ordering::Release);
        self.committed.publish(seq);
        Ok(seq)
    }
}

/// Writes the mutations of a mixed batch, in order, so the last one of a key wins.
fn write_mutations(
    data: &mut WriteTable<'_>,
    mutations: &[Mutation],
) -> Result<(), redb::StorageError> {
    write_in_order(
        data,
        mutations,
        |data, key, value| data.insert(key, value).map(drop),
        |data, key| data.remove(key).map(drop),
    )
}

fn decode_seq(bytes: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::corrupted(BACKEND_NAME, "decoding the sequence counter"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn pair(entry: RangeEntry<'_>) -> Result<(Bytes, Bytes), EngineError> {
    let (key, value) = entry.ctx("scanning the engine data")?;
    Ok((
        Bytes::copy_from_slice(key.value()),
        Bytes::copy_from_slice(value.value()),
    ))
}

impl StoreEngine for RedbEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::put(BACKEND_NAME, pairs)?;
        self.commit(Numbering::Next, log_entry, "writing a put batch", |data| {
            for (key, value) in pairs {
                data.insert(*key, *value)?;
            }
            Ok(())
        })
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        let log_entry = BatchLogEntry::delete(BACKEND_NAME, keys)?;
        self.commit(
            Numbering::Next,
            log_entry,
            "writing a delete batch",
            |data| {
                for key in keys {
                    data.remove(*key)?;
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
        let log_entry = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        self.commit(Numbering::Next, log_entry, "writing a batch", |data| {
            write_mutations(data, mutations)
        })
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let log_entry = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        let numbering = Numbering::Leader(seq, mutations);
        self.commit(numbering, log_entry, "applying a batch", |data| {
            write_mutations(data, mutations)
        })
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        self.committed.wait_after(after, timeout)
    }

    fn current_sequence(&self) -> u64 {
        self.sequence.load(Ordering::Acquire)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        const CONTEXT: &str = "reading an engine key";
        check_key(key)?;
        let txn = self.db.begin_read(CONTEXT)?;
        let data = read_table(&txn, ENGINE_DATA, CONTEXT)?;
        let value = data.get(key).ctx(CONTEXT)?;
        Ok(value.map(|v| Bytes::copy_from_slice(v.value())))
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        const CONTEXT: &str = "reading engine keys";
        check_keys(keys)?;
        let txn = self.db.begin_read(CONTEXT)?;
        let data = read_table(&txn, ENGINE_DATA, CONTEXT)?;
        keys.iter()
            .map(|key| {
                let value = data.get(*key).ctx(CONTEXT)?;
                Ok((
                    Bytes::copy_from_slice(key),
                    value.map(|v| Bytes::copy_from_slice(v.value())),
                ))
            })
            .collect()
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError> {
        const CONTEXT: &str = "scanning the engine data";
        let Some(bounds) = scan_bounds(start, end, limit) else {
            return Ok(Vec::new());
        };
        let txn = self.db.begin_read(CONTEXT)?;
        let data = read_table(&txn, ENGINE_DATA, CONTEXT)?;
        let range = data.range::<&[u8]>(bounds).ctx(CONTEXT)?;
        if forward {
            collect_rows(range.map(pair), limit)
        } else {
            collect_rows(range.rev().map(pair), limit)
        }
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        const CONTEXT: &str = "reading the batch log";
        let txn = self.db.begin_read(CONTEXT)?;
        let log = read_table(&txn, ENGINE_LOG, CONTEXT)?;
        Ok(get_with(&log, &batch_key(seq), CONTEXT, |bytes| {
            decode_batch(BACKEND_NAME, bytes)
        })?)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        const CONTEXT: &str = "reading the batch log";
        let txn = self.db.begin_read(CONTEXT)?;
        let log = read_table(&txn, ENGINE_LOG, CONTEXT)?;
        match log.first().ctx(CONTEXT)? {
            Some((key, _)) => Ok(Some(decode_seq(key.value())?)),
            None => Ok(None),
        }
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        const CONTEXT: &str = "pruning the batch log";
        let cutoff = batch_key(cutoff_exclusive);
        let txn = self.db.begin_write(CONTEXT)?;
        let mut removed = 0u64;
        {
            let mut log = txn.table(ENGINE_LOG, CONTEXT)?;
            let range: (Bound<&[u8]>, Bound<&[u8]>) =
                (Bound::Unbounded, Bound::Excluded(cutoff.as_slice()));
            log.retain_in::<&[u8], _>(range, |_, _| {
                removed += 1;
                false
            })
            .ctx(CONTEXT)?;
        }
        if removed > 0 {
            txn.commit(CONTEXT)?;
        }
        Ok(removed)
    }
}
