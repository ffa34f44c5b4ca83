//! Criterion: every `LedgerStore` operation and the concurrent commit from 1, 8 and 64
//! threads (durable), every enabled backend side by side in each group.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use benches::BenchError;
use benches::backends::{BackendVisitor, durability_word, for_each_backend};
use benches::error::exit_on_error;
use benches::groups::{Entry, bench_all, group};
use benches::measure::Holding;
use benches::ops::ledger::{
    self, LedgerBench, LedgerOp, THREADS, concurrent_commits, concurrent_workload,
};
use benches::raw::RawOpener;
use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability, LedgerStore};

/// A concurrent run never stops on time in criterion: it stops on its commit count.
const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// A backend's ledger for the concurrent runs, with its fixture.
struct Shared {
    name: &'static str,
    ledger: Arc<dyn LedgerStore>,
    _keep: Rc<dyn std::any::Any>,
}

#[derive(Default)]
struct Collect {
    single: Vec<Entry<LedgerOp>>,
    shared: Vec<Shared>,
}

impl BackendVisitor for Collect {
    fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
        let fixture = Rc::new(ledger::fixture::<B>()?);
        let ledger: Arc<dyn LedgerStore> = fixture.backend().ledger();
        let bench = LedgerBench::new(Arc::clone(&ledger))?;
        let keep = Rc::clone(&fixture);
        self.single
            .push(Entry::new(B::NAME, Holding { bench, keep }));
        self.shared.push(Shared {
            name: B::NAME,
            ledger,
            _keep: fixture,
        });
        Ok(())
    }
}

fn ledger_store(c: &mut Criterion) {
    let mut collect = Collect::default();
    exit_on_error(for_each_backend(&mut collect));
    let mode = durability_word(Durability::Immediate);
    for op in LedgerOp::ALL {
        bench_all(c, &op.workload(mode), &mut collect.single, op);
    }
    for threads in THREADS {
        let workload = concurrent_workload(threads, mode);
        let Some(first) = collect.shared.first() else {
            return;
        };
        let probe = exit_on_error(concurrent_commits(&first.ledger, 1, 1, NO_DEADLINE)).elapsed;
        let mut group = group(c, &workload, probe);
        for shared in &collect.shared {
            group.bench_function(shared.name, |b| {
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(threads as u64);
                    let run = exit_on_error(concurrent_commits(
                        &shared.ledger,
                        threads,
                        per_thread,
                        NO_DEADLINE,
                    ));
                    run.elapsed.mul_f64(iters as f64 / run.calls.max(1) as f64)
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, ledger_store);
criterion_main!(benches);
