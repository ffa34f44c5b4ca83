//! Criterion: `SegmentLogStore` append (durable and relaxed) and read_all of a 10k-entry
//! segment, every enabled backend side by side in each group.

use std::rc::Rc;

use benches::BenchError;
use benches::backends::{BackendVisitor, for_each_backend};
use benches::error::exit_on_error;
use benches::groups::{Entry, bench_all};
use benches::measure::Holding;
use benches::ops::segments::{self, SegmentBench, SegmentOp};
use benches::raw::RawOpener;
use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability};

const MODES: [Durability; 2] = [Durability::Immediate, Durability::Relaxed];

/// Per durability mode (as in `MODES`), one entry per backend.
#[derive(Default)]
struct Collect([Vec<Entry<SegmentOp>>; 2]);

impl BackendVisitor for Collect {
    fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
        for (entries, durability) in self.0.iter_mut().zip(MODES) {
            let fixture = Rc::new(segments::fixture::<B>(durability)?);
            let bench = SegmentBench::new(fixture.backend().segment_log());
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

fn segment_log(c: &mut Criterion) {
    let mut collect = Collect::default();
    exit_on_error(for_each_backend(&mut collect));
    for (entries, durability) in collect.0.iter_mut().zip(MODES) {
        let op = SegmentOp::Append;
        bench_all(c, &op.workload(durability), entries, op);
    }
    let op = SegmentOp::ReadAll;
    bench_all(
        c,
        &op.workload(Durability::Immediate),
        &mut collect.0[0],
        op,
    );
}

criterion_group!(benches, segment_log);
criterion_main!(benches);
