//! The comparison report: runs the fixed matrix on every enabled backend and writes
//! `report.md` (also printed on stdout), `report.json` and `report.svg`.
//!
//! ```text
//! cargo run --release -p benches --bin report [-- --full] [-- --out DIR] [-- --only engine]
//! ```
//! Quick mode (the default) leaves out the 1M-key state dataset and gives each workload a
//! quarter second, and the follower section a backlog of 5k batches; `--full` adds 1M keys,
//! two seconds per workload and a backlog of 100k batches. `--only` runs some
//! parts of the matrix (e.g. `--only engine` for the store/raw comparison alone); the
//! targets of the parts left out are reported as not measured. A progress line per
//! workload goes to stderr. The files go to `target/bench-report/` unless `--out` says
//! otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use benches::BenchError;
use benches::backends::for_each_backend;
use benches::follow::FollowConfig;
use benches::matrix::{MatrixConfig, Part, Runner};
use benches::ops::parse_size;
use benches::report::machine::{Machine, now_utc};
use benches::report::{Report, json, markdown, svg};

const USAGE: &str = "usage: report [--quick | --full] [--sizes SIZES] [--out DIR] [--only PARTS]\n\
  --quick       state sizes 1k and 100k, 0.25 s per workload, follower backlog 5k (default)\n\
  --full        state sizes 1k, 100k and 1M, 2 s per workload, follower backlog 100k\n\
  --sizes SIZES comma-separated state sizes instead (multiples of 100: 100k,1M); the\n\
                largest is also the key count of the migration rows\n\
  --out DIR     where report.md, report.json and report.svg go (default target/bench-report)\n\
  --only PARTS  comma-separated parts to run: state, engine, ledger, segments, side_effects,\n\
                migration (store-migrate's engine copy of the largest state size), follow";

struct Args {
    config: MatrixConfig,
    out: PathBuf,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut config = MatrixConfig::quick();
    let mut out = None;
    let mut only = None;
    let mut sizes = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => config = MatrixConfig::quick(),
            "--full" => config = MatrixConfig::full(),
            "--out" => {
                out = Some(PathBuf::from(args.next().ok_or("--out needs a directory")?));
            }
            "--only" => {
                let list = args.next().ok_or("--only needs a list of parts")?;
                let parts = list
                    .split(',')
                    .map(|name| Part::parse(name).ok_or(format!("unknown part {name:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
                only = Some(parts);
            }
            "--sizes" => {
                let list = args.next().ok_or("--sizes needs a list of sizes")?;
                let parsed = list
                    .split(',')
                    .map(|label| parse_size(label).ok_or(format!("bad state size {label:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
                sizes = Some(parsed);
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(parts) = only {
        config.parts = parts;
    }
    if let Some(sizes) = sizes {
        config.state_sizes = sizes;
    }
    let out = out.unwrap_or_else(default_out_dir);
    Ok(Some(Args { config, out }))
}

/// `$CARGO_TARGET_DIR/bench-report`, or the workspace's `target/bench-report`.
fn default_out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let out = target.join("bench-report");
    // `crates/benches/../../target` reads better as the plain workspace path.
    std::fs::create_dir_all(&out)
        .and_then(|()| out.canonicalize())
        .unwrap_or(out)
}

fn run(args: &Args) -> Result<(), BenchError> {
    let date = now_utc();
    let machine = Machine::detect();
    eprintln!(
        "benchmark report, {} mode, on {}",
        args.config.mode,
        machine.line()
    );
    let mut runner = Runner::new(&args.config);
    for_each_backend(&mut runner)?;
    runner.references();
    let follow = args.config.parts.contains(&Part::Follow).then(|| {
        let (section, failures) = FollowConfig::for_mode(args.config.mode).run();
        runner.failures.extend(failures);
        section
    });
    let report = Report::new(
        date,
        args.config.mode,
        machine,
        args.config.setup_lines(),
        runner.backends,
        runner.failures,
        runner.measurements,
    )
    .with_follow(follow);
    let md = markdown::render(&report);
    let json = json::render(&report).map_err(|e| BenchError::new("encoding the JSON", e))?;
    let svg = svg::render(&report);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| BenchError::new(format!("creating {}", args.out.display()), e))?;
    for (name, text) in [
        ("report.md", &md),
        ("report.json", &json),
        ("report.svg", &svg),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| BenchError::new(format!("writing {}", path.display()), e))?;
    }
    println!("{md}");
    eprintln!(
        "wrote report.md, report.json and report.svg to {}",
        args.out.display()
    );
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::msg(format!(
            "{} backend(s) failed; see the Failures section",
            report.failures.len()
        )))
    }
}

fn main() -> ExitCode {
    #[cfg(feature = "postgres")]
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.first().map(String::as_str) == Some(benches::pg_procs::WORKER_ARG) {
            return match benches::pg_procs::worker(&args[1..]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ledger worker: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}
