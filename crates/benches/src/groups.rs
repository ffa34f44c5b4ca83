//! The criterion side: one group per store and workload, every backend side by side in it,
//! timed with the report's samples ([`criterion_iters`]).

use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};

use crate::error::exit_on_error;
use crate::measure::{Bench, criterion_iters};
use crate::ops::Workload;

/// One backend's (or raw engine's) loaded bench, named as its column.
pub struct Entry<Op> {
    /// The backend name (`redb`, or `redb raw` for the raw engine).
    pub name: String,
    /// The bench, holding its fixture.
    pub bench: Box<dyn Bench<Op = Op>>,
}

impl<Op> Entry<Op> {
    /// An entry named `name`.
    pub fn new(name: impl Into<String>, bench: impl Bench<Op = Op> + 'static) -> Self {
        Entry {
            name: name.into(),
            bench: Box::new(bench),
        }
    }
}

/// Calls slower than this are sampled flat, 10 samples, so durable writes finish in
/// seconds rather than minutes.
const SLOW_CALL: Duration = Duration::from_micros(200);

/// A group for `workload`, configured for how slow its calls are (`probe` is one call's
/// time): fast calls keep criterion's defaults, slow ones get 10 flat samples.
pub fn group<'c>(
    c: &'c mut Criterion,
    workload: &Workload,
    probe: Duration,
) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(workload.criterion_group());
    group.throughput(Throughput::Elements(workload.items_per_call));
    if probe > SLOW_CALL {
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    }
    group
}

/// Benchmarks `op` on every entry, side by side in one group named after `workload`.
pub fn bench_all<Op: Copy>(
    c: &mut Criterion,
    workload: &Workload,
    entries: &mut [Entry<Op>],
    op: Op,
) {
    let Some(first) = entries.first_mut() else {
        return;
    };
    let probe = exit_on_error(first.bench.sample(op, 1));
    let mut group = group(c, workload, probe);
    for entry in entries.iter_mut() {
        let bench = &mut entry.bench;
        group.bench_function(entry.name.as_str(), |b| {
            b.iter_custom(|iters| {
                criterion_iters(&mut **bench, op, workload.calls_per_sample, iters)
            });
        });
    }
    group.finish();
}
