//! The report's follower section (`benches::follow`: lag at a steady write rate and
//! catch-up from a backlog, per pair of backends) with any rate, duration, backlog and
//! pairs; prints the section's Markdown.
//!
//! ```text
//! cargo run --release -p benches --example follow_lag -- [--rate R] [--seconds S]
//!     [--backlog N] [--immediate] [LEADER:FOLLOWER ...]
//!   --rate       leader batches per second in the lag run (default 1000)
//!   --seconds    length of the lag run (default 2, the report's quick mode)
//!   --backlog    batches in the catch-up run (default 5000, the report's quick mode; its --full: 100000)
//!   --immediate  open the follower Immediate (default Relaxed, which is safe for a
//!                follower: batches a crash takes back are fetched again)
//!   pairs        default: the report's (every persistent backend following itself,
//!                redb:sqlite sqlite:lmdb lmdb:sled sled:redb mem:redb, and postgres:redb
//!                with `--features postgres`)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use benches::follow::{FollowConfig, Pair};
use store::Durability;

fn parse() -> Result<FollowConfig, String> {
    let mut config = FollowConfig::quick();
    let mut pairs = Vec::new();
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut number = |what: &str| -> Result<u64, String> {
            let value = words
                .next()
                .ok_or_else(|| format!("{what} needs a number"))?;
            value
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{what} {value:?} is not a positive number"))
        };
        match word.as_str() {
            "--rate" => config.rate = number("--rate")?,
            "--seconds" => config.lag_time = Duration::from_secs(number("--seconds")?),
            "--backlog" => config.backlog = number("--backlog")?,
            "--immediate" => config.follower_durability = Durability::Immediate,
            pair => pairs.push(Pair::parse(pair)?),
        }
    }
    if !pairs.is_empty() {
        config.pairs = pairs;
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("follow_lag: {e}");
            return ExitCode::from(2);
        }
    };
    let (section, failures) = config.run();
    print!("{}", section.markdown());
    for failure in &failures {
        eprintln!("follow_lag: {}: {}", failure.backend, failure.error);
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
