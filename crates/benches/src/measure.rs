//! How an operation is timed, the same way for criterion and for the report.
//!
//! A [`Bench`] holds a loaded store and knows its operations. One *sample* is: the
//! operation's untimed [`prepare`](Bench::prepare) step, then `calls` timed calls in a row
//! measured with one pair of [`Instant`] reads. Operations far below a microsecond are
//! sampled with many calls per sample (their `calls_per_sample`), so the clock's own cost
//! does not dominate; the report then gives percentiles of the per-call average of each
//! sample and says so.

use std::time::{Duration, Instant};

use crate::error::{BenchError, exit_on_error};

/// A loaded store and the operations that can be timed on it.
pub trait Bench {
    /// Names one operation.
    type Op: Copy;

    /// Untimed work before each sample (re-inserting what a delete sample removed, ...).
    fn prepare(&mut self, op: Self::Op) -> Result<(), BenchError> {
        let _ = op;
        Ok(())
    }

    /// One call of `op`: the timed part.
    fn run(&mut self, op: Self::Op) -> Result<(), BenchError>;

    /// One sample: prepares, then times `calls` calls of `op`; returns the time of the
    /// calls. (Through a `dyn Bench` only this call is dynamic; the loop is not.)
    fn sample(&mut self, op: Self::Op, calls: usize) -> Result<Duration, BenchError> {
        self.prepare(op)?;
        let start = Instant::now();
        for _ in 0..calls {
            self.run(op)?;
        }
        Ok(start.elapsed())
    }
}

/// A bench together with what must outlive it (its fixture, its directory): dropped
/// after the bench.
pub struct Holding<T, K> {
    /// The bench.
    pub bench: T,
    /// What it needs kept alive.
    pub keep: K,
}

impl<T: Bench, K> Bench for Holding<T, K> {
    type Op = T::Op;

    fn prepare(&mut self, op: T::Op) -> Result<(), BenchError> {
        self.bench.prepare(op)
    }

    fn run(&mut self, op: T::Op) -> Result<(), BenchError> {
        self.bench.run(op)
    }

    fn sample(&mut self, op: T::Op, calls: usize) -> Result<Duration, BenchError> {
        self.bench.sample(op, calls)
    }
}

/// How long the report measures one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Samples always taken (even past `time`).
    pub min_samples: usize,
    /// Samples never exceeded.
    pub max_samples: usize,
    /// Timed time after which sampling stops once `min_samples` are taken.
    pub time: Duration,
    /// Untimed warm-up time before the first sample.
    pub warm_up: Duration,
}

impl Budget {
    /// The quick report's budget: a quarter second per workload.
    pub const QUICK: Budget = Budget {
        min_samples: 10,
        max_samples: 20_000,
        time: Duration::from_millis(250),
        warm_up: Duration::from_millis(50),
    };

    /// The full report's budget: two seconds per workload.
    pub const FULL: Budget = Budget {
        min_samples: 50,
        max_samples: 200_000,
        time: Duration::from_secs(2),
        warm_up: Duration::from_millis(300),
    };
}

/// The samples of one workload: per-call nanoseconds of each sample, and the totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// Per-call time of each sample, in nanoseconds (sample time / calls per sample).
    pub per_call_ns: Vec<f64>,
    /// Calls made in all samples.
    pub calls: u64,
    /// The time those calls took (timed parts only), or the wall time of a concurrent run.
    pub elapsed: Duration,
}

/// Warms up, then samples `op` within `budget`, `calls` calls per sample.
pub fn measure<B: Bench + ?Sized>(
    bench: &mut B,
    op: B::Op,
    calls: usize,
    budget: Budget,
) -> Result<Samples, BenchError> {
    let calls = calls.max(1);
    let warm_until = Instant::now() + budget.warm_up;
    while Instant::now() < warm_until {
        bench.sample(op, calls)?;
    }
    let mut samples = Samples::default();
    let wall_until = Instant::now() + budget.time * WALL_FACTOR;
    while samples.per_call_ns.len() < budget.min_samples
        || (samples.per_call_ns.len() < budget.max_samples
            && samples.elapsed < budget.time
            && Instant::now() < wall_until)
    {
        let took = bench.sample(op, calls)?;
        samples.elapsed += took;
        samples.calls += calls as u64;
        samples
            .per_call_ns
            .push(took.as_nanos() as f64 / calls as f64);
    }
    Ok(samples)
}

/// [`measure`] stops taking samples (once it has `min_samples`) after this many times the
/// budget's time in wall time, untimed `prepare` steps included. A prepare step costs
/// about what its timed calls cost on every store here; this bounds the run where one does
/// not (laminar-core's `MmapStateStore` re-inserting deleted keys, each insert scanning the
/// whole store once enough keys were deleted).
pub const WALL_FACTOR: u32 = 5;

/// Like [`measure`] on two benches at once, alternating their samples so that both see
/// the same machine: on a shared, noisy machine a slow spell hits both sides alike, which
/// keeps their ratio honest. Each side gets the whole `budget`.
///
/// The order flips every round (`a b`, `b a`, `a b`, ...): the two sides draw the same
/// seeded inputs, so whichever runs second repeats the other's keys on a warm CPU (its
/// branch predictor trained on the same search path, the keys in cache) and ran some 15%
/// faster on LMDB gets. Flipping gives each side the second place half of the time.
pub fn measure_pair<A, B>(
    a: &mut A,
    b: &mut B,
    op: A::Op,
    calls: usize,
    budget: Budget,
) -> Result<(Samples, Samples), BenchError>
where
    A: Bench + ?Sized,
    B: Bench<Op = A::Op> + ?Sized,
{
    let calls = calls.max(1);
    let warm_until = Instant::now() + budget.warm_up * 2;
    while Instant::now() < warm_until {
        a.sample(op, calls)?;
        b.sample(op, calls)?;
    }
    let mut sa = Samples::default();
    let mut sb = Samples::default();
    let taken = |s: &Samples| s.per_call_ns.len();
    let mut a_first = true;
    while taken(&sa) < budget.min_samples
        || (taken(&sa) < budget.max_samples && sa.elapsed + sb.elapsed < budget.time * 2)
    {
        let order = if a_first {
            [true, false]
        } else {
            [false, true]
        };
        for side_a in order {
            let (took, samples) = if side_a {
                (a.sample(op, calls)?, &mut sa)
            } else {
                (b.sample(op, calls)?, &mut sb)
            };
            samples.elapsed += took;
            samples.calls += calls as u64;
            samples
                .per_call_ns
                .push(took.as_nanos() as f64 / calls as f64);
        }
        a_first = !a_first;
    }
    Ok((sa, sb))
}

/// Runs `op` for criterion's `iters` iterations in samples of `calls` calls (the same
/// samples as the report's) and returns the timed total. Exits the process on a store
/// error (see [`exit_on_error`]).
pub fn criterion_iters<B: Bench + ?Sized>(
    bench: &mut B,
    op: B::Op,
    calls: usize,
    iters: u64,
) -> Duration {
    let calls = calls.max(1) as u64;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(calls);
        total += exit_on_error(bench.sample(op, n as usize));
        left -= n;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter {
        prepared: u32,
        runs: u64,
    }

    impl Bench for Counter {
        type Op = ();
        fn prepare(&mut self, _: ()) -> Result<(), BenchError> {
            self.prepared += 1;
            Ok(())
        }
        fn run(&mut self, _: ()) -> Result<(), BenchError> {
            self.runs += 1;
            Ok(())
        }
    }

    #[test]
    fn measure_respects_the_budget_and_prepares_every_sample() {
        let mut c = Counter {
            prepared: 0,
            runs: 0,
        };
        let budget = Budget {
            min_samples: 5,
            max_samples: 7,
            time: Duration::from_secs(60),
            warm_up: Duration::ZERO,
        };
        let s = measure(&mut c, (), 3, budget).unwrap();
        assert_eq!(s.per_call_ns.len(), 7);
        assert_eq!(s.calls, 21);
        assert_eq!(c.runs, 21);
        assert_eq!(c.prepared, 7);
        criterion_iters(&mut c, (), 4, 10);
        assert_eq!(c.runs, 31);
        assert_eq!(c.prepared, 10);
        let mut d = Counter {
            prepared: 0,
            runs: 0,
        };
        let (sa, sb) = measure_pair(&mut c, &mut d, (), 2, budget).unwrap();
        assert_eq!((sa.per_call_ns.len(), sb.per_call_ns.len()), (7, 7));
        assert_eq!((c.runs - 31, d.runs), (14, 14));
    }
}
