//! laminar-core 0.19.11's state stores on the report's state workload: the same seeded
//! keys and values, the same sequence of random indexes, the same samples as
//! [`StateBench`](crate::ops::state::StateBench).
//!
//! laminar-core's `put` takes the value as `Bytes`; this project's takes `&[u8]` and copies
//! it. So the timed `put` here includes `Bytes::copy_from_slice` of the value: both sides
//! start from the same borrowed bytes a caller holds.

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use laminar_core::state::{AHashMapStore, InMemoryStore, MmapStateStore, StateStore};

use crate::error::{BenchError, Context};
use crate::measure::Bench;
use crate::ops::state::StateOp;
use crate::workloads::{KEY_LEN, Rng, VALUE_LEN, key, miss_key, value};

/// Fresh keys the insert workload cycles through, as in `StateBench`.
const INSERT_POOL: u64 = 10_000;

/// The operations measured on a peer: the point reads and writes §8.2 compares.
pub const OPS: [StateOp; 5] = [
    StateOp::GetHit,
    StateOp::GetMiss,
    StateOp::PutInsert,
    StateOp::PutUpdate,
    StateOp::Delete,
];

/// An empty `InMemoryStore`.
pub fn in_memory() -> InMemoryStore {
    InMemoryStore::new()
}

/// An empty `AHashMapStore` sized for `n` keys.
pub fn ahash(n: u64) -> AHashMapStore {
    AHashMapStore::with_capacity(usize::try_from(n).unwrap_or(0))
}

/// An empty persistent `MmapStateStore` in file `path`, its file sized for `n` entries.
pub fn mmap(path: &Path, n: u64) -> Result<MmapStateStore, BenchError> {
    let capacity = usize::try_from(n)
        .unwrap_or(0)
        .saturating_mul(KEY_LEN + VALUE_LEN)
        .max(1 << 20);
    MmapStateStore::persistent(path, capacity).context("opening laminar's MmapStateStore")
}

/// A laminar-core store loaded with the keys `0..n`, and the operations on it.
pub struct LaminarBench<S: StateStore> {
    store: S,
    n: u64,
    rng: Rng,
    version: u64,
    next_insert: u64,
    inserted: Vec<u64>,
    deleted: Vec<u64>,
}

impl<S: StateStore> LaminarBench<S> {
    /// Loads `store` (empty) with the keys `0..n` at version 0, as `state::load` does.
    pub fn load(mut store: S, n: u64) -> Result<Self, BenchError> {
        for i in 0..n {
            store
                .put(&key(i), Bytes::copy_from_slice(&value(i, 0)))
                .context("loading a laminar-core store")?;
        }
        store.flush().context("flushing a laminar-core store")?;
        if store.len() as u64 != n {
            return Err(BenchError::msg(format!(
                "the laminar-core store holds {} keys, expected {n}",
                store.len()
            )));
        }
        Ok(LaminarBench {
            store,
            n,
            // The stream of `StateBench`: the same indexes in the same order.
            rng: Rng::new(0x57A7E ^ n),
            version: 1,
            next_insert: 0,
            inserted: Vec::new(),
            deleted: Vec::new(),
        })
    }

    #[inline]
    fn put(&mut self, i: u64, version: u64) -> Result<(), BenchError> {
        self.store
            .put(&key(i), Bytes::copy_from_slice(&value(i, version)))
            .context("laminar StateStore::put")
    }
}

impl<S: StateStore> Bench for LaminarBench<S> {
    type Op = StateOp;

    fn prepare(&mut self, op: StateOp) -> Result<(), BenchError> {
        for i in std::mem::take(&mut self.deleted) {
            self.put(i, 0)?;
        }
        for i in std::mem::take(&mut self.inserted) {
            self.store
                .delete(&key(i))
                .context("laminar StateStore::delete")?;
        }
        if op == StateOp::PutUpdate {
            self.version += 1;
        }
        Ok(())
    }

    #[inline]
    fn run(&mut self, op: StateOp) -> Result<(), BenchError> {
        match op {
            StateOp::GetHit => {
                let k = key(self.rng.below(self.n));
                black_box(self.store.get(&k));
            }
            StateOp::GetMiss => {
                let k = miss_key(self.rng.next_u64() >> 16);
                black_box(self.store.get(&k));
            }
            StateOp::PutInsert => {
                let i = self.n + self.next_insert;
                self.next_insert = (self.next_insert + 1) % INSERT_POOL;
                self.put(i, 0)?;
                self.inserted.push(i);
            }
            StateOp::PutUpdate => {
                let i = self.rng.below(self.n);
                self.put(i, self.version)?;
            }
            StateOp::Delete => {
                let i = self.rng.below(self.n);
                self.store
                    .delete(&key(i))
                    .context("laminar StateStore::delete")?;
                self.deleted.push(i);
            }
            other => {
                return Err(BenchError::msg(format!(
                    "{other:?} is not measured on laminar-core"
                )));
            }
        }
        Ok(())
    }
}
