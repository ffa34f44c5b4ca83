//! `StoreEngine` on a `BTreeMap` behind a read-write lock.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StoreEngine};
use store_kit::engine::{
    check_keys, check_mutations, check_put_batch, delete_mutations, put_mutations, scan_bounds,
};
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

#[derive(Debug, Default)]
struct Inner {
    data: BTreeMap<Bytes, Bytes>,
    log: BTreeMap<u64, Vec<Mutation>>,
    sequence: u64,
}

impl Inner {
    fn commit(&mut self, mutations: Vec<Mutation>) -> u64 {
        for m in &mutations {
            match m {
                Mutation::Put { key, value } => {
                    self.data.insert(key.clone(), value.clone());
                }
                Mutation::Delete { key } => {
                    self.data.remove(key);
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
        Ok(self.inner.read().data.get(key).cloned())
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        let inner = self.inner.read();
        Ok(keys
            .iter()
            .map(|k| (Bytes::copy_from_slice(k), inner.data.get(*k).cloned()))
            .collect())
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
