//! Criterion: every `StoreEngine` operation on 100k keys, every enabled backend side by
//! side in each group, with the raw engine beneath each persistent backend (`<name> raw`)
//! beside it for get, put_batch and range_scan.

use std::rc::Rc;

use benches::BenchError;
use benches::backends::{BackendVisitor, for_each_backend};
use benches::error::exit_on_error;
use benches::groups::{Entry, bench_all};
use benches::measure::Holding;
use benches::ops::engine::{self, EngineBench, EngineOp, KvBench, KvOp};
use benches::raw::{RawOpener, StoreKv};
use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability};

const MODES: [Durability; 2] = [Durability::Immediate, Durability::Relaxed];

#[derive(Default)]
struct Collect {
    /// Per durability mode (as in `MODES`): the store and raw entries.
    kv: [Vec<Entry<KvOp>>; 2],
    /// The store-only operations, on the `Immediate` backend.
    engine: Vec<Entry<EngineOp>>,
}

impl BackendVisitor for Collect {
    fn with_backend<B: Backend>(&mut self, raw: Option<RawOpener>) -> Result<(), BenchError> {
        for (entries, durability) in self.kv.iter_mut().zip(MODES) {
            let fixture = Rc::new(engine::fixture::<B>(durability)?);
            let bench = KvBench::new(Box::new(StoreKv(fixture.backend().engine())));
            let keep = Rc::clone(&fixture);
            entries.push(Entry::new(B::NAME, Holding { bench, keep }));
            if let Some(open) = raw {
                entries.push(Entry::new(
                    format!("{} raw", B::NAME),
                    engine::raw_fixture(open, durability)?,
                ));
            }
            if durability == Durability::Immediate {
                let bench = EngineBench::new(fixture.backend().engine());
                self.engine.push(Entry::new(
                    B::NAME,
                    Holding {
                        bench,
                        keep: fixture,
                    },
                ));
            }
        }
        Ok(())
    }
}

fn store_engine(c: &mut Criterion) {
    let mut collect = Collect::default();
    exit_on_error(for_each_backend(&mut collect));
    for op in KvOp::READS {
        bench_all(
            c,
            &op.workload(Durability::Immediate),
            &mut collect.kv[0],
            op,
        );
    }
    for op in KvOp::WRITES {
        for (entries, durability) in collect.kv.iter_mut().zip(MODES) {
            bench_all(c, &op.workload(durability), entries, op);
        }
    }
    for op in EngineOp::ALL {
        bench_all(
            c,
            &op.workload(Durability::Immediate),
            &mut collect.engine,
            op,
        );
    }
}

criterion_group!(benches, store_engine);
criterion_main!(benches);
