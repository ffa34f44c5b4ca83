//! `StateStore` operations on a partition preloaded with `n` seeded keys.

use std::hint::black_box;

use store_api::{Backend, Durability, StateSnapshot, StateStore};

use crate::backends::{Fixture, options};
use crate::error::{BenchError, Context};
use crate::measure::Bench;
use crate::ops::{Workload, size_label};
use crate::workloads::{GROUP_LEN, Rng, group_prefix, key, miss_key, value};

/// Fresh keys the insert workload cycles through (each sample's inserts are removed again
/// before the next, so the partition keeps its size).
const INSERT_POOL: u64 = 10_000;

/// Keys updated before each timed flush.
pub const FLUSH_KEYS: usize = 100;

/// A `StateStore` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOp {
    /// `get` of a random present key.
    GetHit,
    /// `get` of an absent key.
    GetMiss,
    /// `put` of a fresh key.
    PutInsert,
    /// `put` of a new value for a random present key.
    PutUpdate,
    /// `delete` of a random present key.
    Delete,
    /// `prefix_scan` of a prefix matching 100 keys.
    PrefixScan,
    /// `snapshot` of the whole partition.
    Snapshot,
    /// `restore` of a snapshot of the whole partition.
    Restore,
    /// `flush` after updating 100 keys (durable per the backend's mode).
    Flush,
}

impl StateOp {
    /// Every operation, in report order.
    pub const ALL: [StateOp; 9] = [
        StateOp::GetHit,
        StateOp::GetMiss,
        StateOp::PutInsert,
        StateOp::PutUpdate,
        StateOp::Delete,
        StateOp::PrefixScan,
        StateOp::Snapshot,
        StateOp::Restore,
        StateOp::Flush,
    ];

    /// The workload of this operation on a partition of `n` keys.
    pub fn workload(self, n: u64) -> Workload {
        let (op, calls_per_sample, items_per_call) = match self {
            StateOp::GetHit => ("get hit", 100, 1),
            StateOp::GetMiss => ("get miss", 100, 1),
            StateOp::PutInsert => ("put insert", 100, 1),
            StateOp::PutUpdate => ("put update", 100, 1),
            StateOp::Delete => ("delete", 100, 1),
            StateOp::PrefixScan => ("prefix_scan 100", 10, GROUP_LEN),
            StateOp::Snapshot => ("snapshot", 1, n),
            StateOp::Restore => ("restore", 1, n),
            StateOp::Flush => ("flush 100 updates", 1, FLUSH_KEYS as u64),
        };
        Workload {
            store: "StateStore",
            op,
            param: format!("{} keys", size_label(n)),
            calls_per_sample,
            items_per_call,
        }
    }
}

/// The name of the partition holding the `n`-key dataset.
pub fn partition(n: u64) -> String {
    format!("state-{}", size_label(n))
}

/// A backend (durability `Immediate`) whose partitions [`partition`]`(n)` hold the `n`-key
/// datasets, for every `n` of `sizes`.
pub fn fixture<B: Backend>(sizes: &[u64]) -> Result<Fixture<B>, BenchError> {
    Fixture::loaded(options(Durability::Immediate), |b: &B| {
        sizes.iter().try_for_each(|&n| load(b, &partition(n), n))
    })
}

/// Writes `n` seeded keys into partition `partition` of `backend` and flushes them.
pub fn load<B: Backend>(backend: &B, partition: &str, n: u64) -> Result<(), BenchError> {
    let mut state = backend
        .state_store(partition)
        .context("opening the state partition")?;
    for i in 0..n {
        state
            .put(&key(i), &value(i, 0))
            .context("loading the state partition")?;
    }
    state.flush().context("flushing the loaded partition")
}

/// A state partition of `n` seeded keys and the operations on it.
pub struct StateBench<S: StateStore> {
    state: S,
    n: u64,
    rng: Rng,
    version: u64,
    next_insert: u64,
    inserted: Vec<u64>,
    deleted: Vec<u64>,
    snapshot: Option<StateSnapshot>,
}

impl<S: StateStore> StateBench<S> {
    /// Benchmarks `state`, which holds the keys `0..n` (see [`load`]).
    pub fn new(state: S, n: u64) -> Self {
        StateBench {
            state,
            n,
            rng: Rng::new(0x57A7E ^ n),
            version: 1,
            next_insert: 0,
            inserted: Vec::new(),
            deleted: Vec::new(),
            snapshot: None,
        }
    }

    /// Opens partition `partition` of `backend`, loaded with `n` keys by [`load`].
    pub fn open<B: Backend<State = S>>(
        backend: &B,
        partition: &str,
        n: u64,
    ) -> Result<Self, BenchError> {
        let state = backend
            .state_store(partition)
            .context("opening the state partition")?;
        if state.len() as u64 != n {
            return Err(BenchError::msg(format!(
                "state partition {partition} holds {} keys, expected {n}",
                state.len()
            )));
        }
        Ok(Self::new(state, n))
    }

    /// Puts back what the last delete and insert samples changed, so every sample sees
    /// the loaded dataset.
    fn restore_dataset(&mut self) -> Result<(), BenchError> {
        for i in self.deleted.drain(..) {
            self.state.put(&key(i), &value(i, 0)).context("re-put")?;
        }
        for i in self.inserted.drain(..) {
            self.state.delete(&key(i)).context("un-insert")?;
        }
        Ok(())
    }
}

impl<S: StateStore> Bench for StateBench<S> {
    type Op = StateOp;

    fn prepare(&mut self, op: StateOp) -> Result<(), BenchError> {
        self.restore_dataset()?;
        match op {
            StateOp::Restore if self.snapshot.is_none() => {
                self.snapshot = Some(self.state.snapshot().context("StateStore::snapshot")?);
            }
            StateOp::Flush => {
                self.version += 1;
                for _ in 0..FLUSH_KEYS {
                    let i = self.rng.below(self.n);
                    self.state
                        .put(&key(i), &value(i, self.version))
                        .context("StateStore::put")?;
                }
            }
            StateOp::PutUpdate => self.version += 1,
            _ => {}
        }
        Ok(())
    }

    #[inline]
    fn run(&mut self, op: StateOp) -> Result<(), BenchError> {
        match op {
            StateOp::GetHit => {
                let k = key(self.rng.below(self.n));
                black_box(self.state.get(&k).context("StateStore::get")?);
            }
            StateOp::GetMiss => {
                let k = miss_key(self.rng.next_u64() >> 16);
                black_box(self.state.get(&k).context("StateStore::get")?);
            }
            StateOp::PutInsert => {
                let i = self.n + self.next_insert;
                self.next_insert = (self.next_insert + 1) % INSERT_POOL;
                self.state
                    .put(&key(i), &value(i, 0))
                    .context("StateStore::put")?;
                self.inserted.push(i);
            }
            StateOp::PutUpdate => {
                let i = self.rng.below(self.n);
                self.state
                    .put(&key(i), &value(i, self.version))
                    .context("StateStore::put")?;
            }
            StateOp::Delete => {
                let i = self.rng.below(self.n);
                self.state.delete(&key(i)).context("StateStore::delete")?;
                self.deleted.push(i);
            }
            StateOp::PrefixScan => {
                let prefix = group_prefix(self.rng.below(self.n / GROUP_LEN));
                let rows = self
                    .state
                    .prefix_scan(&prefix)
                    .context("StateStore::prefix_scan")?;
                if rows.len() as u64 != GROUP_LEN {
                    return Err(BenchError::msg(format!(
                        "prefix_scan returned {} rows, expected {GROUP_LEN}",
                        rows.len()
                    )));
                }
                black_box(rows);
            }
            StateOp::Snapshot => {
                black_box(self.state.snapshot().context("StateStore::snapshot")?);
            }
            StateOp::Restore => {
                if let Some(snapshot) = &self.snapshot {
                    self.state
                        .restore(snapshot)
                        .context("StateStore::restore")?;
                }
            }
            StateOp::Flush => self.state.flush().context("StateStore::flush")?,
        }
        Ok(())
    }
}
