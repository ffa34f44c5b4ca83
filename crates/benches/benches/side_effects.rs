//! Criterion: `SideEffectStore` write_outputs (durable), cached and uncached read_outputs
//! and a read_inbound_inter_calls page, every enabled backend side by side in each group.

use benches::BenchError;
use benches::backends::{BackendVisitor, durability_word, for_each_backend};
use benches::error::exit_on_error;
use benches::groups::{Entry, bench_all};
use benches::measure::Holding;
use benches::ops::side_effects::{self, SideEffectBench, SideEffectOp};
use benches::raw::RawOpener;
use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability, OpenOptions};

#[derive(Default)]
struct Collect {
    /// Backends with the default read cache.
    cached: Vec<Entry<SideEffectOp>>,
    /// Backends opened with no read cache.
    uncached: Vec<Entry<SideEffectOp>>,
}

impl BackendVisitor for Collect {
    fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
        for (entries, cache) in [
            (
                &mut self.cached,
                OpenOptions::DEFAULT_SIDE_EFFECT_CACHE_SIZE,
            ),
            (&mut self.uncached, 0),
        ] {
            let fixture = side_effects::fixture::<B>(cache)?;
            let bench = SideEffectBench::new(fixture.backend().side_effects());
            entries.push(Entry::new(
                B::NAME,
                Holding {
                    bench,
                    keep: fixture,
                },
            ));
        }
        Ok(())
    }
}

fn side_effect_store(c: &mut Criterion) {
    let mut collect = Collect::default();
    exit_on_error(for_each_backend(&mut collect));
    let mode = durability_word(Durability::Immediate);
    for op in SideEffectOp::CACHED_STORE {
        bench_all(c, &op.workload(mode), &mut collect.cached, op);
    }
    let op = SideEffectOp::ReadUncached;
    bench_all(c, &op.workload(mode), &mut collect.uncached, op);
}

criterion_group!(benches, side_effect_store);
criterion_main!(benches);
