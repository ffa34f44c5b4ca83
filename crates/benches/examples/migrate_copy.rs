//! Measures the engine copy of a migration (`store::migrate::copy`, what `store-migrate`
//! does for the engine) against writing the same keys with `put_batch` in batches of
//! 1000 on the destination backend, and prints the ratio (target: at most 2x).
//!
//! ```text
//! cargo run --release -p benches --example migrate_copy -- [KEYS] [FROM] [TO] [--pruned]
//!   KEYS      keys to copy (default 1000000): 16-byte keys, 100-byte values
//!   FROM, TO  redb | lmdb | sled | sqlite (default redb lmdb)
//!   --pruned  prune the source's whole batch log first, so the copy writes base batches
//!             and filler batches instead of replaying the log
//! ```
//!
//! Both sides open the destination `Relaxed`, as the migration does, and end by closing
//! it (a close makes every write durable, contract §1.6): each figure is the time until
//! the keys are durable. The source is written with `put_batch` in batches of 1000, so an
//! unpruned copy replays 1000-key batches with `apply_batch`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::migrate::{self, NoProgress, Plan, StoreKind};
use store::{BackendConfig, BackendKind, Clock, Durability, ManualClock, Stores, Timestamp};

/// Keys per `put_batch`, on the source and in the baseline.
const BATCH: usize = 1000;

struct Args {
    keys: usize,
    from: BackendKind,
    to: BackendKind,
    pruned: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        keys: 1_000_000,
        from: BackendKind::Redb,
        to: BackendKind::Lmdb,
        pruned: false,
    };
    let mut kinds = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--pruned" {
            args.pruned = true;
        } else if let Ok(keys) = arg.parse() {
            args.keys = keys;
        } else {
            let kind = BackendKind::from_name(&arg)
                .filter(|kind| kind.is_persistent())
                .ok_or_else(|| format!("not a persistent backend: {arg}"))?;
            kinds.push(kind);
        }
    }
    match kinds.as_slice() {
        [] => {}
        [from, to] => (args.from, args.to) = (*from, *to),
        _ => return Err("give both FROM and TO, or neither".to_owned()),
    }
    Ok(args)
}

fn key(i: usize) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(b"key/");
    key[4..].copy_from_slice(&(i as u128).to_be_bytes()[4..]);
    key
}

fn value(i: usize) -> [u8; 100] {
    [(i % 251) as u8; 100]
}

/// Writes every key with `put_batch` in batches of [`BATCH`].
fn write_keys(stores: &Stores, keys: usize) -> Result<(), Box<dyn std::error::Error>> {
    let engine = stores.engine();
    for start in (0..keys).step_by(BATCH) {
        let rows: Vec<([u8; 16], [u8; 100])> = (start..keys.min(start + BATCH))
            .map(|i| (key(i), value(i)))
            .collect();
        let pairs: Vec<(&[u8], &[u8])> = rows.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        engine.put_batch(&pairs)?;
    }
    Ok(())
}

fn relaxed(kind: BackendKind, dir: &std::path::Path) -> BackendConfig {
    BackendConfig::new(kind, dir).with_durability(Durability::Relaxed)
}

fn run(args: &Args) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    {
        let source = Stores::open(&relaxed(args.from, &root.path().join("source")))?;
        write_keys(&source, args.keys)?;
        if args.pruned {
            let engine = source.engine();
            engine.prune_batch_log(engine.current_sequence() + 1)?;
        }
    }
    let source = Stores::open(&relaxed(args.from, &root.path().join("source")))?;

    let started = Instant::now();
    let baseline = Stores::open(&relaxed(args.to, &root.path().join("baseline")))?;
    write_keys(&baseline, args.keys)?;
    drop(baseline);
    let put_batch = started.elapsed();

    let started = Instant::now();
    let clock = Arc::new(ManualClock::new(Timestamp::default()));
    let as_clock: Arc<dyn Clock> = clock.clone();
    let copy = Stores::open_with_clock(&relaxed(args.to, &root.path().join("copy")), as_clock)?;
    let plan = Plan {
        stores: vec![StoreKind::Engine],
        ..Plan::default()
    };
    migrate::copy(&source, &copy, &clock, &plan, &NoProgress)?;
    drop(copy);
    let copied = started.elapsed();
    Ok((put_batch, copied))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("migrate_copy: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok((put_batch, copied)) => {
            let ratio = copied.as_secs_f64() / put_batch.as_secs_f64().max(1e-9);
            println!(
                "{} keys, {} -> {}{}: put_batch x{BATCH} {:.2} s, migrate copy {:.2} s, \
                 ratio {ratio:.2}x (target at most 2x: {})",
                args.keys,
                args.from,
                args.to,
                if args.pruned {
                    ", source log pruned"
                } else {
                    ""
                },
                put_batch.as_secs_f64(),
                copied.as_secs_f64(),
                if ratio <= 2.0 { "met" } else { "missed" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate_copy: {}", store::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
