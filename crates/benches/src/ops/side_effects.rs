//! `SideEffectStore` operations on [`SIDE_EFFECT_SLOTS`] preloaded slots and
//! [`INBOUND_CALLS`] inbound calls of one callee.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use store_api::{Backend, CallOrderKey, ChainPos, Durability, SideEffectStore};

use crate::backends::{Fixture, options};
use crate::error::{BenchError, Context};
use crate::measure::Bench;
use crate::ops::Workload;
use crate::workloads::{
    HOT_SLOTS, INBOUND_CALLS, OUTPUTS_PER_SLOT, PAGE, Rng, SIDE_EFFECT_SLOTS, inbound_call, lyquid,
    side_effect_key, side_effect_outputs,
};

/// Slots per `write_outputs` call while loading.
const LOAD_BATCH: u64 = 1_000;

/// A backend (durability `Immediate`) with a read cache of `cache_size` slots whose
/// side-effect store holds the dataset of [`load`].
pub fn fixture<B: Backend>(cache_size: usize) -> Result<Fixture<B>, BenchError> {
    let options = options(Durability::Immediate).side_effect_cache_size(cache_size);
    Fixture::loaded(options, |b: &B| load(&*b.side_effects()))
}

/// Writes slots `0..SIDE_EFFECT_SLOTS` and the callee's inbound calls.
pub fn load<S: SideEffectStore + ?Sized>(store: &S) -> Result<(), BenchError> {
    let mut start = 0;
    while start < SIDE_EFFECT_SLOTS {
        let end = (start + LOAD_BATCH).min(SIDE_EFFECT_SLOTS);
        let map: BTreeMap<_, _> = (start..end)
            .map(|i| (side_effect_key(i), side_effect_outputs(i)))
            .collect();
        store
            .write_outputs(&map)
            .context("SideEffectStore::write_outputs")?;
        start = end;
    }
    let calls: Vec<_> = (0..INBOUND_CALLS).map(inbound_call).collect();
    store
        .append_inbound_inter_calls(&calls)
        .context("SideEffectStore::append_inbound_inter_calls")
}

/// A `SideEffectStore` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideEffectOp {
    /// `write_outputs` of one fresh slot of 3 payloads.
    WriteOutputs,
    /// `read_outputs` of a random slot among [`HOT_SLOTS`], all in the read cache.
    ReadCached,
    /// `read_outputs` of a random preloaded slot, on a store opened with no read cache.
    ReadUncached,
    /// `read_inbound_inter_calls` page of 100 from a random place in the queue.
    InboundPage,
}

impl SideEffectOp {
    /// The operations run on a store with the default cache, in report order.
    pub const CACHED_STORE: [SideEffectOp; 3] = [
        SideEffectOp::WriteOutputs,
        SideEffectOp::ReadCached,
        SideEffectOp::InboundPage,
    ];

    /// The workload of this operation; writes name the durability mode `mode`.
    pub fn workload(self, mode: &str) -> Workload {
        let (op, param, calls_per_sample, items_per_call) = match self {
            SideEffectOp::WriteOutputs => (
                "write_outputs",
                format!("1 slot of {OUTPUTS_PER_SLOT}, {mode}"),
                1,
                1,
            ),
            SideEffectOp::ReadCached => ("read_outputs", "cached".to_owned(), 100, 1),
            SideEffectOp::ReadUncached => ("read_outputs", "uncached".to_owned(), 10, 1),
            SideEffectOp::InboundPage => (
                "read_inbound_inter_calls",
                format!("{PAGE} calls"),
                1,
                PAGE as u64,
            ),
        };
        Workload {
            store: "SideEffectStore",
            op,
            param,
            calls_per_sample,
            items_per_call,
        }
    }
}

/// A side-effect store loaded by [`load`], and the operations on it.
pub struct SideEffectBench<S: SideEffectStore + ?Sized> {
    store: Arc<S>,
    rng: Rng,
    next_slot: u64,
}

impl<S: SideEffectStore + ?Sized> SideEffectBench<S> {
    /// Benchmarks `store`, loaded by [`load`].
    pub fn new(store: Arc<S>) -> Self {
        SideEffectBench {
            store,
            rng: Rng::new(0x5E5E),
            next_slot: SIDE_EFFECT_SLOTS,
        }
    }
}

impl<S: SideEffectStore + ?Sized> Bench for SideEffectBench<S> {
    type Op = SideEffectOp;

    #[inline]
    fn run(&mut self, op: SideEffectOp) -> Result<(), BenchError> {
        match op {
            SideEffectOp::WriteOutputs => {
                let i = self.next_slot;
                self.next_slot += 1;
                let map = BTreeMap::from([(side_effect_key(i), side_effect_outputs(i))]);
                self.store
                    .write_outputs(&map)
                    .context("SideEffectStore::write_outputs")?;
            }
            SideEffectOp::ReadCached | SideEffectOp::ReadUncached => {
                let range = if op == SideEffectOp::ReadCached {
                    HOT_SLOTS
                } else {
                    SIDE_EFFECT_SLOTS
                };
                let key = side_effect_key(self.rng.below(range));
                match self
                    .store
                    .read_outputs(&key)
                    .context("SideEffectStore::read_outputs")?
                {
                    Some(outputs) => {
                        black_box(outputs);
                    }
                    None => return Err(BenchError::msg("read_outputs missed a loaded slot")),
                }
            }
            SideEffectOp::InboundPage => {
                let from = CallOrderKey {
                    pos: ChainPos::new(self.rng.below(INBOUND_CALLS - PAGE as u64), 0),
                    seq: 0,
                };
                let page = self
                    .store
                    .read_inbound_inter_calls(&lyquid(2), Some(&from), None, PAGE)
                    .context("SideEffectStore::read_inbound_inter_calls")?;
                if page.len() != PAGE {
                    return Err(BenchError::msg(format!(
                        "read_inbound_inter_calls returned {} calls, expected {PAGE}",
                        page.len()
                    )));
                }
                black_box(page);
            }
        }
        Ok(())
    }
}
