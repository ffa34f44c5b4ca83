//! Runs one store/raw-compared `StoreEngine` operation on one backend for a while, so a
//! profiler (`perf record`, `valgrind --tool=callgrind`) sees that operation and little
//! else, and prints the mean time per call of each side.
//!
//! ```text
//! cargo run --release -p benches --example kv_profile -- BACKEND OP SIDE [SECONDS]
//!   BACKEND  redb | lmdb | sled | sqlite
//!   OP       get | scan | rscan | put1 | put1000 | rput1 | rput1000 (r: relaxed)
//!   SIDE     store | raw | both (both alternates samples, as the report does)
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use benches::BenchError;
use benches::backends::{BackendVisitor, for_each_backend};
use benches::measure::Bench;
use benches::ops::engine::{self, KvBench, KvOp};
use benches::raw::{RawOpener, StoreKv};
use store_api::{Backend, Durability};

struct Profile {
    backend: String,
    op: KvOp,
    durability: Durability,
    store: bool,
    raw: bool,
    time: Duration,
}

fn parse_op(name: &str) -> Option<(KvOp, Durability)> {
    let (name, durability) = match name.strip_prefix('r') {
        Some(rest) if rest.starts_with("put") => (rest, Durability::Relaxed),
        _ => (name, Durability::Immediate),
    };
    let op = match name {
        "get" => KvOp::Get,
        "scan" => KvOp::RangeScan { forward: true },
        "rscan" => KvOp::RangeScan { forward: false },
        "put1" => KvOp::PutBatch(1),
        "put1000" => KvOp::PutBatch(1_000),
        _ => return None,
    };
    Some((op, durability))
}

impl BackendVisitor for Profile {
    fn with_backend<B: Backend>(&mut self, raw: Option<RawOpener>) -> Result<(), BenchError> {
        if B::NAME != self.backend {
            return Ok(());
        }
        let open = raw.ok_or_else(|| BenchError::msg("this backend has no raw engine"))?;
        let fixture = engine::fixture::<B>(self.durability)?;
        let mut store = KvBench::new(Box::new(StoreKv(fixture.backend().engine())));
        let mut raw = engine::raw_fixture(open, self.durability)?;
        let calls = self.op.workload(self.durability).calls_per_sample;
        let mut sides: Vec<(&str, &mut dyn Bench<Op = KvOp>, Duration, u64)> = Vec::new();
        if self.store {
            sides.push(("store", &mut store, Duration::ZERO, 0));
        }
        if self.raw {
            sides.push(("raw", &mut raw, Duration::ZERO, 0));
        }
        eprintln!("loaded; running {:?} for {:?}", self.op, self.time);
        let until = Instant::now() + self.time;
        // The order flips every round, as in `measure::measure_pair`: the side that runs
        // second repeats the other's keys on a warm CPU.
        while Instant::now() < until {
            for (_, bench, took, n) in sides.iter_mut() {
                *took += bench.sample(self.op, calls)?;
                *n += calls as u64;
            }
            sides.reverse();
        }
        sides.sort_by_key(|(name, ..)| *name != "store");
        for (name, _, took, n) in &sides {
            println!(
                "{} {:?} {name}: {:.0} ns/call over {n} calls",
                B::NAME,
                self.op,
                took.as_nanos() as f64 / *n as f64
            );
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [backend, op, side, rest @ ..] if rest.len() <= 1 => parse_op(op).and_then(|(op, d)| {
            let (store, raw) = match side.as_str() {
                "store" => (true, false),
                "raw" => (false, true),
                "both" => (true, true),
                _ => return None,
            };
            let secs = match rest.first() {
                Some(s) => s.parse::<f64>().ok()?,
                None => 10.0,
            };
            Some(Profile {
                backend: backend.clone(),
                op,
                durability: d,
                store,
                raw,
                time: Duration::from_secs_f64(secs),
            })
        }),
        _ => None,
    };
    let Some(mut profile) = parsed else {
        eprintln!(
            "usage: kv_profile BACKEND get|scan|rscan|[r]put1|[r]put1000 store|raw|both [SECONDS]"
        );
        return ExitCode::from(2);
    };
    match for_each_backend(&mut profile) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv_profile: {e}");
            ExitCode::FAILURE
        }
    }
}
