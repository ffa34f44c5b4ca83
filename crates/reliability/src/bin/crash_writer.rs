//! The crash writer: the child process of the crash-recovery tests.
//!
//! ```text
//! crash_writer run  <backend> <location> <immediate|relaxed> <seed> <len>
//! crash_writer hold <backend> <location>
//! crash_writer own  <backend> <location> <immediate|relaxed>
//! crash_writer stress <backend> <location> <scale> <results-file>
//! ```
//!
//! The location is a directory for the embedded backends, a URL for PostgreSQL (see
//! `reliability::site::Site`).
//!
//! `run` opens the backend, prints `ready`, then applies the seeded workload of
//! [`reliability::workload`] and prints `ack <i>` (flushed) after operation `i` returned,
//! and `done` at the end. The test kills it with `SIGKILL` at a random moment.
//!
//! `hold` opens the backend, prints `ready` and keeps it open until its standard input
//! closes: another process holding the directory, for the lock tests.
//!
//! `own` opens the backend and takes the workload's state partition, waiting up to
//! `reliability::crash::RELEASE_BOUND` while it is in use (a dead owner the server has not
//! noticed yet), prints `ready <µs waited>` and keeps both until its standard input
//! closes: on a shared backend, the new owner of a killed writer's partition.
//!
//! `stress` opens the backend, prints `ready`, runs share 1 of 2 of a concurrency stress
//! run (`reliability::stress::run_other_share`) and writes what it wrote to the results
//! file: the other process of a stress run split across two processes on one shared store.
//!
//! Any failure is printed to standard error and exits with status 2.

use std::ffi::OsStr;
use std::io::{Read, Write};

use reliability::Failure;
use reliability::crash::{RELEASE_BOUND, parse_durability};
use reliability::failure::OrFail;
use reliability::site::Site;
use reliability::workload::{self, Writer};
use store_api::{Backend, Durability, OpenOptions};

fn main() {
    let code = match real_main() {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("crash_writer: {failure}");
            2
        }
    };
    std::process::exit(code);
}

fn real_main() -> Result<(), Failure> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let text = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    let command = text(0);
    let backend = text(1);
    let location = args.get(2).map(|a| a.as_os_str()).unwrap_or(OsStr::new(""));
    let durability = |i: usize| {
        parse_durability(text(i))
            .ok_or_else(|| Failure(format!("unknown durability {:?}", text(i))))
    };
    let job = match (command, args.len()) {
        ("run", 6) => {
            let seed: u64 = text(4).parse().or_fail("seed")?;
            let len: usize = text(5).parse().or_fail("len")?;
            Job::Run {
                durability: durability(3)?,
                seed,
                len,
            }
        }
        ("hold", 3) => Job::Hold,
        ("stress", 5) => Job::Stress {
            scale: text(3).parse().or_fail("scale")?,
            results: std::path::PathBuf::from(&args[4]),
        },
        ("own", 4) => Job::Own {
            durability: durability(3)?,
        },
        _ => {
            return Err(Failure::new(
                "usage: crash_writer run <backend> <location> <immediate|relaxed> <seed> <len> \
                 | crash_writer hold <backend> <location> \
                 | crash_writer own <backend> <location> <immediate|relaxed> \
                 | crash_writer stress <backend> <location> <scale> <results-file>",
            ));
        }
    };

    macro_rules! dispatch {
        ($name:ident, $ty:ty) => {
            if backend == stringify!($name) {
                return job.execute::<$ty>(location);
            }
        };
    }
    reliability::for_each_persistent_backend!(dispatch);
    dispatch!(postgres, store_postgres::PostgresBackend);
    Err(Failure(format!(
        "unknown or not persistent backend {backend:?}"
    )))
}

enum Job {
    Run {
        durability: Durability,
        seed: u64,
        len: usize,
    },
    Hold,
    Own {
        durability: Durability,
    },
    Stress {
        scale: usize,
        results: std::path::PathBuf,
    },
}

impl Job {
    fn execute<B: Backend<Location: Site>>(self, location: &OsStr) -> Result<(), Failure> {
        let location = B::Location::from_arg(location)?;
        let location: &B::Location = std::borrow::Borrow::borrow(&location);
        let mut out = std::io::stdout().lock();
        match self {
            Job::Run {
                durability,
                seed,
                len,
            } => {
                let ops = workload::generate(seed, len)?;
                let mut writer = Writer::<B>::open(location, durability)?;
                say(&mut out, "ready")?;
                for (i, op) in ops.iter().enumerate() {
                    writer.apply(i, op)?;
                    say(&mut out, &format!("ack {i}"))?;
                }
                say(&mut out, "done")
            }
            Job::Hold => {
                let backend = workload::open_released::<B>(location, OpenOptions::default())
                    .or_fail(format!("opening {} at {location:?}", B::NAME))?;
                say(&mut out, "ready")?;
                wait_for_stdin_to_close();
                drop(backend);
                Ok(())
            }
            Job::Stress { scale, results } => {
                reliability::stress::run_other_share::<B>(location, scale, &results, || {
                    say(&mut out, "ready")
                })
            }
            Job::Own { durability } => {
                let (writer, waited) =
                    Writer::<B>::open_waiting(location, durability, RELEASE_BOUND)?;
                say(&mut out, &format!("ready {}", waited.as_micros()))?;
                wait_for_stdin_to_close();
                drop(writer);
                Ok(())
            }
        }
    }
}

fn wait_for_stdin_to_close() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn say(out: &mut impl Write, line: &str) -> Result<(), Failure> {
    writeln!(out, "{line}").or_fail("writing to stdout")?;
    out.flush().or_fail("flushing stdout")
}
