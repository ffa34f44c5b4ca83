//! Measures a follower (`store::replicate::tail`, what `store-migrate --follow` runs after
//! its first copy) per pair of backends:
//!
//! - **lag** at a steady write rate: a thread commits batches on the leader at `RATE`
//!   batches/s for `SECONDS`; the follower tails it in another thread. Per batch, the time
//!   from the leader's commit to the follower's apply (its `apply_batch` returned), and how
//!   many batches the leader was ahead at that moment; p50 and p99 of each. The commit
//!   happens inside the leader's `put_batch` call, and the follower is woken as it
//!   publishes, often before the call returns: the time is taken from the call's start, so
//!   it is an upper bound that includes the leader's own commit.
//! - **catch-up** throughput: a leader holding a backlog of `BACKLOG` batches and a new,
//!   empty follower engine; batches/s until the follower has them all.
//!
//! ```text
//! cargo run --release -p benches --example follow_lag -- [--rate R] [--seconds S]
//!     [--backlog N] [--immediate] [LEADER:FOLLOWER ...]
//!   --rate       leader batches per second in the lag run (default 1000)
//!   --seconds    length of the lag run (default 5)
//!   --backlog    batches in the catch-up run (default 10000)
//!   --immediate  open the follower Immediate (default Relaxed, which is safe for a
//!                follower: batches a crash takes back are fetched again)
//!   pairs        default redb:sqlite sqlite:lmdb lmdb:sled sled:redb postgres:redb
//! ```
//!
//! Each batch is 4 puts of a 16-byte key and a 100-byte value over 10,000 keys. Embedded
//! backends live in a temporary directory; `postgres` is a fresh schema on the throwaway
//! test server (`store_postgres::scratch`), or on the server `STORE_TEST_POSTGRES_URL`
//! names. The leader is opened `Relaxed`.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use store::migrate::{NoProgress, Progress};
use store::replicate::{self, FollowOptions, FollowProgress, StopHandle};
use store::{BackendConfig, BackendKind, Durability, StoreEngine, Stores};

struct Args {
    rate: u64,
    seconds: u64,
    backlog: u64,
    follower_durability: Durability,
    pairs: Vec<(BackendKind, BackendKind)>,
}

fn kind(name: &str) -> Result<BackendKind, String> {
    BackendKind::from_name(name)
        .filter(|kind| kind.is_persistent())
        .ok_or_else(|| format!("not a persistent backend: {name}"))
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        rate: 1000,
        seconds: 5,
        backlog: 10_000,
        follower_durability: Durability::Relaxed,
        pairs: Vec::new(),
    };
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
            "--rate" => args.rate = number("--rate")?,
            "--seconds" => args.seconds = number("--seconds")?,
            "--backlog" => args.backlog = number("--backlog")?,
            "--immediate" => args.follower_durability = Durability::Immediate,
            pair => {
                let (leader, follower) = pair
                    .split_once(':')
                    .ok_or_else(|| format!("not LEADER:FOLLOWER: {pair}"))?;
                args.pairs.push((kind(leader)?, kind(follower)?));
            }
        }
    }
    if args.pairs.is_empty() {
        use BackendKind::*;
        args.pairs = vec![
            (Redb, Sqlite),
            (Sqlite, Lmdb),
            (Lmdb, Sled),
            (Sled, Redb),
            (Postgres, Redb),
        ];
    }
    Ok(args)
}

type Error = Box<dyn std::error::Error>;

/// Opens a fresh store of `kind`: in `dir` (named `name`), or on the test server.
fn open(
    kind: BackendKind,
    dir: &std::path::Path,
    name: &str,
    durability: Durability,
) -> Result<Stores, Error> {
    let config = if kind.is_server() {
        let location = store::postgres::scratch::fresh_location()?;
        BackendConfig::server(kind, location.to_string())
    } else {
        BackendConfig::new(kind, dir.join(name))
    };
    Ok(Stores::open(&config.with_durability(durability))?)
}

/// Batch `i`: 4 puts over 10,000 keys.
fn write_batch(engine: &dyn StoreEngine, i: u64) -> Result<u64, Error> {
    let rows: Vec<([u8; 16], [u8; 100])> = (0..4u64)
        .map(|j| {
            let n = (i * 4 + j) * 7919 % 10_000;
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(b"key/");
            key[8..].copy_from_slice(&n.to_be_bytes());
            (key, [(i % 251) as u8; 100])
        })
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = rows.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    Ok(engine.put_batch(&pairs)?)
}

/// The `p`th percentile (0..=100) of sorted `values`.
fn percentile<T: Copy>(sorted: &[T], p: usize) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last * p).div_ceil(100)).copied()
}

/// When each batch was applied, and how far behind the leader the follower was then.
struct Applies<'a> {
    leader_at: &'a AtomicU64,
    applied: Mutex<Vec<(u64, Instant, u64)>>,
}

impl Progress for Applies<'_> {}

impl FollowProgress for Applies<'_> {
    fn applied(&self, seq: u64) {
        let now = Instant::now();
        let behind = self.leader_at.load(Ordering::SeqCst).saturating_sub(seq);
        if let Ok(mut applied) = self.applied.lock() {
            applied.push((seq, now, behind));
        }
    }
}

struct Lag {
    batches: u64,
    achieved_rate: f64,
    behind_p50: u64,
    behind_p99: u64,
    millis_p50: f64,
    millis_p99: f64,
}

fn lag(args: &Args, leader: &Stores, follower: &Stores) -> Result<Lag, Error> {
    let (leader, follower) = (leader.engine(), follower.engine());
    let leader_at = AtomicU64::new(leader.current_sequence());
    let applies = Applies {
        leader_at: &leader_at,
        applied: Mutex::new(Vec::new()),
    };
    let stop = StopHandle::new();
    let total = args.rate * args.seconds;
    let (committed, elapsed) = std::thread::scope(|scope| -> Result<_, Error> {
        let tail = scope.spawn(|| {
            replicate::tail(
                leader.as_ref(),
                follower.as_ref(),
                &FollowOptions::default(),
                &stop,
                &applies,
            )
        });
        let mut committed = Vec::with_capacity(total as usize);
        let started = Instant::now();
        let interval = Duration::from_secs(1).as_secs_f64() / args.rate as f64;
        for i in 0..total {
            let due = started + Duration::from_secs_f64(interval * i as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let called = Instant::now();
            let seq = write_batch(leader.as_ref(), i)?;
            committed.push((seq, called));
            leader_at.store(seq, Ordering::SeqCst);
        }
        let elapsed = started.elapsed();
        let last = leader.current_sequence();
        let deadline = Instant::now() + Duration::from_secs(120);
        while follower.current_sequence() < last && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.stop();
        tail.join().map_err(|_| "the follower panicked")??;
        Ok((committed, elapsed))
    })?;
    let applied = applies.applied.into_inner().map_err(|_| "poisoned")?;
    let first = committed.first().map_or(1, |(seq, _)| *seq);
    let mut millis = Vec::with_capacity(applied.len());
    let mut behind = Vec::with_capacity(applied.len());
    for (seq, at, ahead) in applied {
        let Some((_, commit)) = committed.get((seq - first) as usize) else {
            continue;
        };
        millis.push(at.saturating_duration_since(*commit).as_secs_f64() * 1e3);
        behind.push(ahead);
    }
    millis.sort_by(f64::total_cmp);
    behind.sort_unstable();
    if millis.len() as u64 != total {
        return Err(format!(
            "the follower applied {} of the {total} batches",
            millis.len()
        )
        .into());
    }
    Ok(Lag {
        batches: total,
        achieved_rate: total as f64 / elapsed.as_secs_f64(),
        behind_p50: percentile(&behind, 50).unwrap_or(0),
        behind_p99: percentile(&behind, 99).unwrap_or(0),
        millis_p50: percentile(&millis, 50).unwrap_or(0.0),
        millis_p99: percentile(&millis, 99).unwrap_or(0.0),
    })
}

/// Batches per second applied by a new follower from a leader holding `backlog` batches.
fn catch_up(backlog: u64, leader: &Stores, follower: &Stores) -> Result<f64, Error> {
    let (leader, follower) = (leader.engine(), follower.engine());
    for i in 0..backlog {
        write_batch(leader.as_ref(), i)?;
    }
    let options = FollowOptions {
        until_caught_up: true,
        ..FollowOptions::default()
    };
    let outcome = replicate::tail(
        leader.as_ref(),
        follower.as_ref(),
        &options,
        &StopHandle::new(),
        &NoProgress,
    )?;
    if outcome.applied != backlog {
        return Err(format!("caught up {} of {backlog} batches", outcome.applied).into());
    }
    Ok(outcome.batches_per_second())
}

fn run(args: &Args) -> Result<(), Error> {
    println!(
        "follower lag at {} batches/s for {} s, catch-up from {} batches; follower {:?}, \
         leader Relaxed",
        args.rate, args.seconds, args.backlog, args.follower_durability
    );
    println!();
    println!(
        "| leader | follower | lag run: batches (achieved rate/s) | behind p50 / p99 (batches) \
         | leader call to follower apply p50 / p99 (ms) | catch-up (batches/s) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (leader_kind, follower_kind) in &args.pairs {
        let root = tempfile::tempdir()?;
        let path = root.path();
        let leader = open(*leader_kind, path, "leader", Durability::Relaxed)?;
        let follower = open(*follower_kind, path, "follower", args.follower_durability)?;
        let lag = lag(args, &leader, &follower)?;
        drop((leader, follower));
        let leader = open(*leader_kind, path, "backlog-leader", Durability::Relaxed)?;
        let follower = open(
            *follower_kind,
            path,
            "backlog-follower",
            args.follower_durability,
        )?;
        let catch_up = catch_up(args.backlog, &leader, &follower)?;
        println!(
            "| {leader_kind} | {follower_kind} | {} ({:.0}) | {} / {} | {:.2} / {:.2} | {catch_up:.0} |",
            lag.batches,
            lag.achieved_rate,
            lag.behind_p50,
            lag.behind_p99,
            lag.millis_p50,
            lag.millis_p99
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("follow_lag: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("follow_lag: {}", store::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
