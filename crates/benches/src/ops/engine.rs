//! `StoreEngine` operations on an engine preloaded with [`ENGINE_KEYS`] seeded keys:
//! [`KvBench`] for the operations compared with the raw engine (run on the store and on
//! the raw engine alike), [`EngineBench`] for the store-only ones.

use std::hint::black_box;
use std::sync::Arc;

use store_api::{Backend, Durability, StoreEngine};
use tempfile::TempDir;

use crate::backends::{Fixture, durability_word, options, temp_dir};
use crate::error::{BenchError, Context};
use crate::measure::{Bench, Holding};
use crate::ops::{Workload, size_label};
use crate::raw::{Kv, RawOpener, StoreKv};
use crate::workloads::{
    ENGINE_KEYS, ENGINE_LOAD_BATCH, GROUP_LEN, KEY_LEN, MANY, PAGE, Rng, VALUE_LEN, group_range,
    key, pairs, value,
};

/// A backend opened with `durability` whose engine holds the dataset of [`load`].
pub fn fixture<B: Backend>(durability: Durability) -> Result<Fixture<B>, BenchError> {
    Fixture::loaded(options(durability), |b: &B| load(&StoreKv(b.engine())))
}

/// A raw engine in a fresh temporary directory, opened with `durability` and holding the
/// dataset of [`load`] (written with Relaxed, then reopened, like [`Fixture::loaded`]).
pub fn raw_fixture(
    open: RawOpener,
    durability: Durability,
) -> Result<Holding<KvBench, TempDir>, BenchError> {
    let dir = temp_dir("raw")?;
    let loader = open(dir.path(), Durability::Relaxed).context("opening the raw engine")?;
    load(&*loader)?;
    drop(loader);
    let kv = open(dir.path(), durability).context("reopening the raw engine")?;
    Ok(Holding {
        bench: KvBench::new(kv),
        keep: dir,
    })
}

/// Loads keys `0..ENGINE_KEYS` in batches of [`ENGINE_LOAD_BATCH`], so a fresh store's
/// batch log holds batches `1..=ENGINE_KEYS / ENGINE_LOAD_BATCH` of that many puts.
pub fn load(kv: &dyn Kv) -> Result<(), BenchError> {
    let mut start = 0;
    while start < ENGINE_KEYS {
        let end = (start + ENGINE_LOAD_BATCH).min(ENGINE_KEYS);
        let batch = pairs(start..end);
        let refs: Vec<(&[u8], &[u8])> = batch.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        kv.put_batch(&refs)?;
        start = end;
    }
    Ok(())
}

/// An operation compared with the raw engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// `get` of a random present key.
    Get,
    /// `put_batch` overwriting this many random present keys.
    PutBatch(usize),
    /// `range_scan` of 100 keys, forward or reverse.
    RangeScan {
        /// Ascending when true.
        forward: bool,
    },
}

impl KvOp {
    /// The read operations (durability does not matter to them).
    pub const READS: [KvOp; 3] = [
        KvOp::Get,
        KvOp::RangeScan { forward: true },
        KvOp::RangeScan { forward: false },
    ];

    /// The write operations, measured in both durability modes.
    pub const WRITES: [KvOp; 2] = [KvOp::PutBatch(1), KvOp::PutBatch(1_000)];

    /// The workload of this operation; writes name the durability mode.
    pub fn workload(self, durability: Durability) -> Workload {
        let keys = size_label(ENGINE_KEYS);
        let (op, param, calls_per_sample, items_per_call) = match self {
            KvOp::Get => ("get", format!("{keys} keys"), 10, 1),
            KvOp::PutBatch(n) => (
                "put_batch",
                format!("{n}, {}", durability_word(durability)),
                1,
                n as u64,
            ),
            KvOp::RangeScan { forward } => (
                "range_scan 100",
                (if forward { "forward" } else { "reverse" }).to_owned(),
                1,
                PAGE as u64,
            ),
        };
        Workload {
            store: "StoreEngine",
            op,
            param,
            calls_per_sample,
            items_per_call,
        }
    }
}

/// A store's engine or a raw engine, loaded by [`load`], and the compared operations.
pub struct KvBench {
    kv: Box<dyn Kv>,
    rng: Rng,
    version: u64,
    batch: Vec<([u8; KEY_LEN], [u8; VALUE_LEN])>,
}

impl KvBench {
    /// Benchmarks `kv`, loaded by [`load`].
    pub fn new(kv: Box<dyn Kv>) -> Self {
        KvBench {
            kv,
            rng: Rng::new(0xE491E),
            version: 0,
            batch: Vec::new(),
        }
    }
}

impl Bench for KvBench {
    type Op = KvOp;

    fn prepare(&mut self, op: KvOp) -> Result<(), BenchError> {
        if let KvOp::PutBatch(n) = op {
            self.version += 1;
            self.batch.clear();
            for _ in 0..n {
                let i = self.rng.below(ENGINE_KEYS);
                self.batch.push((key(i), value(i, self.version)));
            }
        }
        Ok(())
    }

    #[inline]
    fn run(&mut self, op: KvOp) -> Result<(), BenchError> {
        match op {
            KvOp::Get => {
                let k = key(self.rng.below(ENGINE_KEYS));
                if self.kv.get(&k)?.is_none() {
                    return Err(BenchError::msg("get missed a loaded key"));
                }
            }
            KvOp::PutBatch(_) => {
                let refs: Vec<(&[u8], &[u8])> =
                    self.batch.iter().map(|(k, v)| (&k[..], &v[..])).collect();
                self.kv.put_batch(&refs)?;
            }
            KvOp::RangeScan { forward } => {
                let (first, last) = group_range(self.rng.below(ENGINE_KEYS / GROUP_LEN));
                let rows = self.kv.range_scan(&first, &last, PAGE, forward)?;
                if rows != PAGE {
                    return Err(BenchError::msg(format!(
                        "range_scan returned {rows} rows, expected {PAGE}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A store-only `StoreEngine` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOp {
    /// `get_many` of 100 random present keys.
    GetMany,
    /// `delete_batch` of 100 random present keys (put back, untimed, before each sample).
    DeleteBatch,
    /// `get_batch` of a random preloaded batch (100 puts).
    GetBatch,
}

impl EngineOp {
    /// Every operation, in report order.
    pub const ALL: [EngineOp; 3] = [EngineOp::GetMany, EngineOp::DeleteBatch, EngineOp::GetBatch];

    /// The workload of this operation.
    pub fn workload(self, durability: Durability) -> Workload {
        let (op, param) = match self {
            EngineOp::GetMany => ("get_many 100", String::new()),
            EngineOp::DeleteBatch => ("delete_batch 100", durability_word(durability).to_owned()),
            EngineOp::GetBatch => ("get_batch", format!("{ENGINE_LOAD_BATCH} puts")),
        };
        Workload {
            store: "StoreEngine",
            op,
            param,
            calls_per_sample: 1,
            items_per_call: MANY as u64,
        }
    }
}

/// A store's engine loaded by [`load`] on a fresh backend, and the store-only operations.
pub struct EngineBench<E: StoreEngine> {
    engine: Arc<E>,
    rng: Rng,
    loaded_batches: u64,
    keys: Vec<[u8; KEY_LEN]>,
    deleted: Vec<u64>,
}

impl<E: StoreEngine> EngineBench<E> {
    /// Benchmarks `engine`, loaded by [`load`] on a fresh backend.
    pub fn new(engine: Arc<E>) -> Self {
        EngineBench {
            engine,
            rng: Rng::new(0xE491E2),
            loaded_batches: ENGINE_KEYS.div_ceil(ENGINE_LOAD_BATCH),
            keys: Vec::new(),
            deleted: Vec::new(),
        }
    }
}

impl<E: StoreEngine> Bench for EngineBench<E> {
    type Op = EngineOp;

    /// Puts back the keys the last delete sample removed, then draws the next sample's
    /// 100 keys.
    fn prepare(&mut self, op: EngineOp) -> Result<(), BenchError> {
        if !self.deleted.is_empty() {
            let batch = self
                .deleted
                .drain(..)
                .map(|i| (key(i), value(i, 0)))
                .collect::<Vec<_>>();
            let refs: Vec<(&[u8], &[u8])> = batch.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            self.engine
                .put_batch(&refs)
                .context("StoreEngine::put_batch")?;
        }
        self.keys.clear();
        if op != EngineOp::GetBatch {
            for _ in 0..MANY {
                let i = self.rng.below(ENGINE_KEYS);
                self.keys.push(key(i));
                if op == EngineOp::DeleteBatch {
                    self.deleted.push(i);
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn run(&mut self, op: EngineOp) -> Result<(), BenchError> {
        match op {
            EngineOp::GetMany => {
                let refs: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
                black_box(
                    self.engine
                        .get_many(&refs)
                        .context("StoreEngine::get_many")?,
                );
            }
            EngineOp::DeleteBatch => {
                let refs: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
                self.engine
                    .delete_batch(&refs)
                    .context("StoreEngine::delete_batch")?;
            }
            EngineOp::GetBatch => {
                let seq = 1 + self.rng.below(self.loaded_batches);
                match self
                    .engine
                    .get_batch(seq)
                    .context("StoreEngine::get_batch")?
                {
                    Some(batch) => {
                        black_box(batch);
                    }
                    None => {
                        return Err(BenchError::msg(format!(
                            "get_batch({seq}) found no preloaded batch"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
