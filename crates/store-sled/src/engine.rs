//! `StoreEngine` on three sled trees: the data, the batch log and the sequence counter.
//! Every value is stored with its checksum (`store_kit::checksum`), verified on every
//! read.
//!
//! A batch is one sled transaction over the three trees (data pairs, log entry, counter),
//! so it is applied, logged and numbered as one atomic step, also across a crash. Writers
//! are serialized by a mutex, so sequence numbers follow commit order and the transaction
//! never conflicts. Point reads go straight to sled (a sled commit is atomic for them);
//! multi-key reads (`get_many`, `range_scan`) hold a read lock that commits exclude, so they
//! see a batch entirely or not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use sled::transaction::{ConflictableTransactionError, Transactional};
use sled::{Batch, IVec, Tree};
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StoreEngine};
use store_kit::checksum::{Framing, TRAILER_LEN, open_value, seal_value};
use store_kit::codec::read_u64;
use store_kit::engine::{
    BatchLogEntry, SEQUENCE_KEY, batch_key, check_keys, check_mutations, check_put_batch,
    collect_rows, decode_batch, scan_bounds, write_in_order,
};
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};

use crate::trees::{ENGINE_DATA, ENGINE_LOG, ENGINE_META};
use crate::{BACKEND_NAME, Shared, from_tx, opened_bytes, storage_error, to_bytes};

/// The engine store of a [`SledBackend`](crate::SledBackend).
pub struct SledEngine {
    data: Tree,
    log: Tree,
    meta: Tree,
    /// Serializes writers: sequence numbers are assigned and committed in one order.
    writer: Mutex<()>,
    /// Held exclusively while a batch commits; multi-key reads hold it shared.
    visible: RwLock<()>,
    /// The last committed sequence number, updated after each commit under `writer`.
    sequence: AtomicU64,
    /// Wakes `wait_for_sequence` once a batch is committed and durable per the mode.
    committed: CommitNotifier,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SledEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEngine")
            .field("sequence", &self.sequence.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// What one engine batch writes to the data tree.
#[derive(Clone, Copy)]
enum Writes<'a> {
    Put(&'a [(&'a [u8], &'a [u8])]),
    Delete(&'a [&'a [u8]]),
    Mixed(&'a [Mutation]),
}

/// The number a batch is committed under.
#[derive(Clone, Copy)]
enum Numbering<'a> {
    /// The next one (`put_batch`, `delete_batch`, `write_batch`).
    Next,
    /// The leader's (`apply_batch`): decided against the log under the writer mutex.
    Leader(u64, &'a [Mutation]),
}

impl SledEngine {
    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error.
    pub(crate) fn close(&self) {
        self.committed.close();
    }

    pub(crate) fn open(shared: Arc<Shared>) -> Result<Self, StorageError> {
        let data = shared.tree(ENGINE_DATA)?;
        let log = shared.tree(ENGINE_LOG)?;
        let meta = shared.tree(ENGINE_META)?;
        let sequence = match meta
            .get(SEQUENCE_KEY)
            .map_err(|e| storage_error("reading the engine sequence counter", e))?
        {
            None => 0,
            Some(stored) => decode_sequence(open_value(
                BACKEND_NAME,
                ENGINE_META,
                SEQUENCE_KEY,
                &stored,
            )?)?,
        };
        Ok(SledEngine {
            data,
            log,
            meta,
            writer: Mutex::new(()),
            visible: RwLock::new(()),
            sequence: AtomicU64::new(sequence),
            committed: CommitNotifier::new(crate::BACKEND_NAME, sequence),
            shared,
        })
    }

    /// Commits one batch: data, log entry and counter in one sled transaction, then makes
    /// it durable per the durability mode. Under [`Numbering::Leader`] the batch may turn
    /// out applied already: then nothing is written and its number is returned.
    fn commit(
        &self,
        numbering: Numbering<'_>,
        writes: Writes<'_>,
        log_entry: BatchLogEntry<'_>,
    ) -> Result<u64, EngineError> {
        // Encoded before the lock; its checksum (over its key, so its sequence number) is
        // added under the lock.
        let mut log_entry = log_entry.to_vec();
        log_entry.extend_from_slice(&[0; TRAILER_LEN]);
        let _writer = store_kit::lock_wait::lock(&self.writer, "sled engine writer");
        self.shared.writable()?;
        let current = self.sequence.load(Ordering::Acquire);
        let seq = match numbering {
            Numbering::Next => current + 1,
            // The writer mutex is held (pruning takes it too): the log cannot change
            // between this decision and the transaction below.
            Numbering::Leader(seq, mutations) => {
                match decide_apply(current, seq, mutations, |seq| self.logged_batch(seq))? {
                    ApplyDecision::AlreadyApplied => return Ok(seq),
                    ApplyDecision::Write => seq,
                }
            }
        };
        let log_key = batch_key(seq);
        Framing::Checksummed.seal_in_place(ENGINE_LOG, &log_key, &mut log_entry);
        let log_entry = IVec::from(log_entry);
        let seq_value = seal_value(ENGINE_META, SEQUENCE_KEY, &seq.to_be_bytes());
        {
            let _visible = self.visible.write();
            (&self.data, &self.log, &self.meta)
                .transaction(|(data, log, meta)| {
                    match writes {
                        Writes::Put(pairs) => {
                            for (key, value) in pairs {
                                data.insert(*key, seal_value(ENGINE_DATA, key, value))?;
                            }
                        }
                        Writes::Delete(keys) => {
                            for key in keys {
                                data.remove(*key)?;
                            }
                        }
                        Writes::Mixed(mutations) => write_in_order(
                            &mut &*data,
                            mutations,
                            |data, key, value| {
                                data.insert(key, seal_value(ENGINE_DATA, key, value))
                                    .map(drop)
                            },
                            |data, key| data.remove(key).map(drop),
                        )?,
                    }
                    log.insert(&log_key[..], log_entry.clone())?;
                    meta.insert(SEQUENCE_KEY, &seq_value[..])?;
                    Ok::<_, ConflictableTransactionError<StorageError>>(())
                })
                .map_err(|e| {
                    self.shared
                        .poisoning(from_tx("committing an engine batch", e))
                })?;
        }
        // The batch is committed (and visible) whatever the flush does: the counter must
        // move on so the next batch never reuses this number.
        self.sequence.store(seq, Ordering::Release);
        self.shared.sync("making an engine batch durable")?;
        self.committed.publish(seq);
        Ok(seq)
    }

    /// The logged mutations of batch `seq`; `None` when pruned or never written.
    fn logged_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        let key = batch_key(seq);
        let stored = self
            .log
            .get(key)
            .map_err(|e| storage_error("reading the batch log", e))?;
        match stored {
            None => Ok(None),
            Some(stored) => {
                let entry = open_value(BACKEND_NAME, ENGINE_LOG, &key, &stored)?;
                Ok(Some(decode_batch(BACKEND_NAME, entry)?))
            }
        }
    }
}

fn decode_sequence(stored: &[u8]) -> Result<u64, StorageError> {
    match <[u8; 8]>::try_from(stored) {
        Ok(bytes) => Ok(u64::from_be_bytes(bytes)),
        Err(_) => Err(StorageError::corrupted(
            BACKEND_NAME,
            "decoding the engine sequence counter: it is not 8 bytes",
        )),
    }
}

impl StoreEngine for SledEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let entry = BatchLogEntry::put(BACKEND_NAME, pairs)?;
        self.commit(Numbering::Next, Writes::Put(pairs), entry)
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        let entry = BatchLogEntry::delete(BACKEND_NAME, keys)?;
        self.commit(Numbering::Next, Writes::Delete(keys), entry)
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        let entry = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        self.commit(Numbering::Next, Writes::Mixed(mutations), entry)
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let entry = BatchLogEntry::mutations(BACKEND_NAME, mutations)?;
        let numbering = Numbering::Leader(seq, mutations);
        self.commit(numbering, Writes::Mixed(mutations), entry)
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        self.committed.wait_after(after, timeout)
    }

    fn current_sequence(&self) -> u64 {
        self.sequence.load(Ordering::Acquire)
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        self.shared.readable()?;
        check_key(key)?;
        match self.data.get(key) {
            Ok(Some(stored)) => Ok(Some(opened_bytes(ENGINE_DATA, key, stored)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(storage_error("reading an engine key", e).into()),
        }
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        self.shared.readable()?;
        check_keys(keys)?;
        let _visible = self.visible.read();
        keys.iter()
            .map(|key| match self.data.get(key) {
                Ok(found) => {
                    let value = match found {
                        Some(stored) => Some(opened_bytes(ENGINE_DATA, key, stored)?),
                        None => None,
                    };
                    Ok((Bytes::copy_from_slice(key), value))
                }
                Err(e) => Err(storage_error("reading engine keys", e).into()),
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
        self.shared.readable()?;
        let Some(bounds) = scan_bounds(start, end, limit) else {
            return Ok(Vec::new());
        };
        let _visible = self.visible.read();
        let range = self.data.range::<&[u8], _>(bounds);
        let pair = |row: sled::Result<(IVec, IVec)>| match row {
            Ok((k, stored)) => {
                let value = opened_bytes(ENGINE_DATA, &k, stored)?;
                Ok((to_bytes(k), value))
            }
            Err(e) => Err(EngineError::from(storage_error("scanning engine keys", e))),
        };
        if forward {
            collect_rows(range.map(pair), limit)
        } else {
            collect_rows(range.rev().map(pair), limit)
        }
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        self.shared.readable()?;
        self.logged_batch(seq)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        self.shared.readable()?;
        let first = self
            .log
            .first()
            .map_err(|e| storage_error("reading the batch log", e))?;
        match first {
            None => Ok(None),
            Some((key, _)) => match read_u64(&key, 0) {
                Some(seq) if key.len() == 8 => Ok(Some(seq)),
                _ => Err(StorageError::corrupted(
                    BACKEND_NAME,
                    "reading the batch log: a key is not an 8-byte sequence number",
                )
                .into()),
            },
        }
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        let _writer = store_kit::lock_wait::lock(&self.writer, "sled engine writer");
        self.shared.writable()?;
        let mut batch = Batch::default();
        let mut removed = 0u64;
        for row in self.log.range(..batch_key(cutoff_exclusive)) {
            let (key, _) = row.map_err(|e| storage_error("scanning the batch log", e))?;
            batch.remove(key);
            removed += 1;
        }
        if removed > 0 {
            self.log.apply_batch(batch).map_err(|e| {
                self.shared
                    .poisoning(storage_error("pruning the batch log", e))
            })?;
            self.shared.sync("making a batch-log prune durable")?;
        }
        Ok(removed)
    }
}
