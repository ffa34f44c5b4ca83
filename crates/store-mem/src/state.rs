//! `StateStore`: the shared [`BufferedState`](store_kit::state::BufferedState) over a
//! map of flushed partitions held by the backend.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use store_api::StorageError;
use store_kit::gate::WriteGate;
use store_kit::state::{BufferedState, PartitionLease, PendingWrites, StatePersist};

/// Partitions by name, ordered so that listings are range reads.
type Partitions = Arc<Mutex<BTreeMap<String, BTreeMap<Bytes, Bytes>>>>;

/// The flushed contents of every partition of one backend.
#[derive(Debug, Clone)]
pub(crate) struct MemPartitions {
    flushed: Partitions,
    gate: Arc<WriteGate>,
}

impl MemPartitions {
    pub(crate) fn new(gate: Arc<WriteGate>) -> Self {
        MemPartitions {
            flushed: Partitions::default(),
            gate,
        }
    }

    /// A handle on the partition held by `lease`, starting from its flushed contents.
    pub(crate) fn open(&self, lease: PartitionLease) -> BufferedState<MemPartition> {
        let entries: Vec<(Bytes, Bytes)> = {
            let flushed = self.flushed.lock();
            flushed
                .get(lease.name())
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        BufferedState::new(
            lease,
            entries,
            MemPartition {
                flushed: Arc::clone(&self.flushed),
                gate: Arc::clone(&self.gate),
            },
        )
    }

    /// The names of the partitions whose flushed contents hold a key, after `after` (a
    /// checked cursor), at most `limit`.
    pub(crate) fn list(&self, after: Option<&str>, limit: usize) -> Vec<String> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.flushed
            .lock()
            .range::<str, _>((lower, Bound::Unbounded))
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(name, _)| name.clone())
            .take(limit)
            .collect()
    }
}

/// Where an in-memory partition's flushes go: the backend's map of flushed partitions.
#[derive(Debug)]
pub struct MemPartition {
    flushed: Partitions,
    gate: Arc<WriteGate>,
}

impl StatePersist for MemPartition {
    fn apply(&mut self, partition: &str, writes: &PendingWrites) -> Result<(), StorageError> {
        let mut flushed = self.flushed.lock();
        let stored = flushed.entry(partition.to_owned()).or_default();
        if writes.clear {
            stored.clear();
        }
        for (key, value) in &writes.changes {
            match value {
                Some(value) => {
                    stored.insert(key.clone(), value.clone());
                }
                None => {
                    stored.remove(key);
                }
            }
        }
        Ok(())
    }

    fn gate(&self) -> &WriteGate {
        &self.gate
    }
}
