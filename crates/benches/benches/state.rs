//! Criterion: every `StateStore` operation at 1k, 100k and 1M keys, every enabled backend
//! side by side in each group (`StateStore/<op>/<size>_keys`).

use std::rc::Rc;

use benches::BenchError;
use benches::backends::{BackendVisitor, for_each_backend};
use benches::error::exit_on_error;
use benches::groups::{Entry, bench_all};
use benches::measure::Holding;
use benches::ops::state::{self, StateBench, StateOp};
use benches::raw::RawOpener;
use benches::workloads::STATE_SIZES;
use criterion::{Criterion, criterion_group, criterion_main};
use store_api::Backend;

/// Per dataset size, one entry per backend.
struct Collect(Vec<Vec<Entry<StateOp>>>);

impl BackendVisitor for Collect {
    fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
        let fixture = Rc::new(state::fixture::<B>(&STATE_SIZES)?);
        for (entries, &n) in self.0.iter_mut().zip(&STATE_SIZES) {
            let bench = StateBench::open(fixture.backend(), &state::partition(n), n)?;
            let keep = Rc::clone(&fixture);
            entries.push(Entry::new(B::NAME, Holding { bench, keep }));
        }
        Ok(())
    }
}

fn state_store(c: &mut Criterion) {
    let mut collect = Collect(STATE_SIZES.iter().map(|_| Vec::new()).collect());
    exit_on_error(for_each_backend(&mut collect));
    for (entries, &n) in collect.0.iter_mut().zip(&STATE_SIZES) {
        for op in StateOp::ALL {
            bench_all(c, &op.workload(n), entries, op);
        }
    }
}

criterion_group!(benches, state_store);
criterion_main!(benches);
