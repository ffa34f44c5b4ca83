//! The crash writer: the child process of the crash-recovery tests.
//!
//! ```text
//! crash_writer run  <backend> <dir> <immediate|relaxed> <seed> <len>
//! crash_writer hold <backend> <dir>
//! ```
//!
//! `run` opens the backend, prints `ready`, then applies the seeded workload of
//! [`reliability::workload`] and prints `ack <i>` (flushed) after operation `i` returned,
//! and `done` at the end. The test kills it with `SIGKILL` at a random moment.
//!
//! `hold` opens the backend, prints `ready` and keeps it open until its standard input
//! closes: another process holding the directory, for the lock tests.
//!
//! Any failure is printed to standard error and exits with status 2.

use std::io::{Read, Write};
use std::path::Path;

use reliability::Failure;
use reliability::crash::parse_durability;
use reliability::failure::OrFail;
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let backend = args.get(1).map(String::as_str).unwrap_or("");
    let dir = Path::new(args.get(2).map(String::as_str).unwrap_or(""));
    let job = match (command, args.len()) {
        ("run", 6) => {
            let durability = parse_durability(&args[3])
                .ok_or_else(|| Failure(format!("unknown durability {:?}", args[3])))?;
            let seed: u64 = args[4].parse().or_fail("seed")?;
            let len: usize = args[5].parse().or_fail("len")?;
            Job::Run {
                durability,
                seed,
                len,
            }
        }
        ("hold", 3) => Job::Hold,
        _ => {
            return Err(Failure::new(
                "usage: crash_writer run <backend> <dir> <immediate|relaxed> <seed> <len> \
                 | crash_writer hold <backend> <dir>",
            ));
        }
    };

    macro_rules! dispatch {
        ($name:ident, $ty:ty) => {
            if backend == stringify!($name) {
                return job.execute::<$ty>(dir);
            }
        };
    }
    reliability::for_each_persistent_backend!(dispatch);
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
}

impl Job {
    fn execute<B: Backend<Location = Path>>(self, dir: &Path) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        match self {
            Job::Run {
                durability,
                seed,
                len,
            } => {
                let ops = workload::generate(seed, len)?;
                let mut writer = Writer::<B>::open(dir, durability)?;
                say(&mut out, "ready")?;
                for (i, op) in ops.iter().enumerate() {
                    writer.apply(i, op)?;
                    say(&mut out, &format!("ack {i}"))?;
                }
                say(&mut out, "done")
            }
            Job::Hold => {
                let backend = workload::open_released::<B>(dir, OpenOptions::default())
                    .or_fail(format!("opening {} in {}", B::NAME, dir.display()))?;
                say(&mut out, "ready")?;
                let mut sink = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut sink);
                drop(backend);
                Ok(())
            }
        }
    }
}

fn say(out: &mut impl Write, line: &str) -> Result<(), Failure> {
    writeln!(out, "{line}").or_fail("writing to stdout")?;
    out.flush().or_fail("flushing stdout")
}
