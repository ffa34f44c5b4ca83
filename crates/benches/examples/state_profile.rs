//! Runs one `StateStore` operation of the report on one backend for a while, so a profiler
//! (`perf record`, `valgrind --tool=callgrind`) sees that operation and little else, and
//! prints the mean time per call.
//!
//! ```text
//! cargo run --release -p benches --example state_profile -- BACKEND OP KEYS [SECONDS]
//!   BACKEND  mem | redb | lmdb | sled | sqlite
//!   OP       get | insert | update | delete | scan | snapshot | flush
//!   KEYS     the partition's size: 100k, 1M, ...
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use benches::BenchError;
use benches::backends::{BackendVisitor, for_each_backend};
use benches::measure::Bench;
use benches::ops::parse_size;
use benches::ops::state::{self, StateBench, StateOp};
use benches::raw::RawOpener;
use store_api::Backend;

struct Profile {
    backend: String,
    op: StateOp,
    n: u64,
    time: Duration,
    ran: bool,
}

fn parse_op(name: &str) -> Option<StateOp> {
    Some(match name {
        "get" => StateOp::GetHit,
        "insert" => StateOp::PutInsert,
        "update" => StateOp::PutUpdate,
        "delete" => StateOp::Delete,
        "scan" => StateOp::PrefixScan,
        "snapshot" => StateOp::Snapshot,
        "flush" => StateOp::Flush,
        _ => return None,
    })
}

impl BackendVisitor for Profile {
    fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
        if B::NAME != self.backend {
            return Ok(());
        }
        self.ran = true;
        let fixture = state::fixture::<B>(&[self.n])?;
        let mut bench = StateBench::open(fixture.backend(), &state::partition(self.n), self.n)?;
        let calls = self.op.workload(self.n).calls_per_sample;
        let mut timed = Duration::ZERO;
        let mut total = 0u64;
        let until = Instant::now() + self.time;
        while Instant::now() < until {
            timed += bench.sample(self.op, calls)?;
            total += calls as u64;
        }
        println!(
            "{} {:?} {} keys: {total} calls, mean {:.1} ns per call",
            B::NAME,
            self.op,
            self.n,
            timed.as_nanos() as f64 / total as f64
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [backend, op, n, rest @ ..] if rest.len() <= 1 => parse_op(op)
            .zip(parse_size(n))
            .zip(rest.first().map_or(Some(5.0), |s| s.parse::<f64>().ok()))
            .map(|((op, n), secs)| Profile {
                backend: backend.clone(),
                op,
                n,
                time: Duration::from_secs_f64(secs),
                ran: false,
            }),
        _ => None,
    };
    let Some(mut profile) = parsed else {
        eprintln!(
            "usage: state_profile BACKEND get|insert|update|delete|scan|snapshot|flush KEYS [SECONDS]"
        );
        return ExitCode::from(2);
    };
    if let Err(e) = for_each_backend(&mut profile) {
        eprintln!("state_profile: {e}");
        return ExitCode::FAILURE;
    }
    if !profile.ran {
        eprintln!(
            "state_profile: backend {:?} is not enabled",
            profile.backend
        );
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
