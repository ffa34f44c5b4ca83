//! `StoreEngine` on a hash index beside a `BTreeMap`, both behind one read-write lock.
//!
//! # Why two structures
//! A point read in a `BTreeMap<Bytes, Bytes>` of 100k keys walks about 17 comparisons, each
//! following a key's pointer (a cache miss at this size): several hundred nanoseconds. The
//! hash index answers `get` with one probe whose bucket holds the key inline
//! ([`InlineKey`]) and the value's handle, so a read costs the bucket and the value's
//! reference count. The `BTreeMap` stays for ordered range scans. Every write updates both
//! under the same write lock, so readers never see one without the other.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StoreEngine};
use store_kit::engine::{
    check_keys, check_mutations, check_put_batch, delete_mutations, put_mutations, scan_bounds,
};
use store_kit::inline_key::InlineKey;
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};

/// The in-memory engine store. Writers take the lock exclusively, so a batch is applied
/// and numbered as one step and readers see all of it or none; `apply_batch` decides under
/// the same lock.
#[derive(Debug)]
pub struct MemEngine {
    inner: RwLock<Inner>,
    committed: CommitNotifier,
}

impl Default for MemEngine {
    fn default() -> Self {
        MemEngine {
            inner: RwLock::default(),
            committed: CommitNotifier::new(crate::BACKEND_NAME, 0),
        }
    }
}

impl MemEngine {
    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error.
    pub(crate) fn close(&self) {
        self.committed.close();
    }
}

/// Invariant: `index` and `data` hold the same entries.
#[derive(Debug, Default)]
struct Inner {
    /// Every entry, for point reads.
    index: HashMap<InlineKey, Bytes, foldhash::fast::RandomState>,
    /// Every entry again, ascending, for range scans.
    data: BTreeMap<Bytes, Bytes>,
    log: BTreeMap<u64, Vec<Mutation>>,
    sequence: u64,
}

impl Inner {
    fn commit(&mut self, mutations: Vec<Mutation>) -> u64 {
        for m in &mutations {
            match m {
                Mutation::Put { key, value } => {
                    match self.index.get_mut(&key[..]) {
                        Some(slot) => *slot = value.clone(),
                        None => {
                            self.index.insert(InlineKey::new(key), value.clone());
                        }
                    }
                    self.data.insert(key.clone(), value.clone());
                }
                Mutation::Delete { key } => {
                    if self.index.remove(&key[..]).is_some() {
                        self.data.remove(key);
                    }
                }
            }
        }
        self.sequence += 1;
        self.log.insert(self.sequence, mutations);
        self.sequence
    }
}

impl MemEngine {
    /// Commits one non-empty batch under the next number and wakes the waiters.
    fn commit(&self, mutations: Vec<Mutation>) -> u64 {
        let seq = self.inner.write().commit(mutations);
        self.committed.publish(seq);
        seq
    }
}

impl StoreEngine for MemEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        Ok(self.commit(put_mutations(pairs)))
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        Ok(self.commit(delete_mutations(keys)))
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        Ok(self.commit(mutations.to_vec()))
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let mut inner = self.inner.write();
        let logged = |seq| Ok(inner.log.get(&seq).cloned());
        match decide_apply(inner.sequence, seq, mutations, logged)? {
            ApplyDecision::AlreadyApplied => Ok(seq),
            ApplyDecision::Write => {
                let seq = inner.commit(mutations.to_vec());
                drop(inner);
                self.committed.publish(seq);
                Ok(seq)
            }
        }
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        self.committed.wait_after(after, timeout)
    }

    fn current_sequence(&self) -> u64 {
        self.inner.read().sequence
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        check_key(key)?;
        Ok(self.inner.read().index.get(key).cloned())
    }

    /// One read lock and one hash probe per key; the answer's keys share one buffer.
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        let mut buffer = BytesMut::with_capacity(keys.iter().map(|k| k.len()).sum());
        let mut out = Vec::with_capacity(keys.len());
        let inner = self.inner.read();
        for key in keys {
            buffer.extend_from_slice(key);
            out.push((buffer.split().freeze(), inner.index.get(*key).cloned()));
        }
        Ok(out)
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
        let inner = self.inner.read();
        let range = inner.data.range::<[u8], _>(bounds);
        let pair = |(k, v): (&Bytes, &Bytes)| (k.clone(), v.clone());
        Ok(if forward {
            range.take(limit).map(pair).collect()
        } else {
            range.rev().take(limit).map(pair).collect()
        })
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        Ok(self.inner.read().log.get(&seq).cloned())
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        Ok(self.inner.read().log.keys().next().copied())
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        let mut inner = self.inner.write();
        let kept = inner.log.split_off(&cutoff_exclusive);
        let removed = std::mem::replace(&mut inner.log, kept);
        Ok(removed.len() as u64)
    }
}
