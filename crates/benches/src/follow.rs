//! The follower section of the report: what `store::replicate`'s [`Follower`] costs, per
//! pair of backends (leader → follower).
//!
//! - **Lag** at a steady write rate: one thread commits batches on the leader at
//!   [`FollowConfig::rate`] batches/s for [`FollowConfig::lag_time`] while the follower
//!   runs [`Follower::run`] in another thread. Per batch: the time from the leader's commit
//!   acknowledgement (its `put_batch` call returned) to the follower's apply (its
//!   `apply_batch` returned, as [`FollowProgress::applied`] reports it), and how many
//!   batches the leader had acknowledged beyond that batch at that moment; p50 and p99 of
//!   each. The follower is woken as the leader commits, inside the leader's call, so it can
//!   apply a batch before that call returns: such a batch counts as 0 and is counted in
//!   [`Lag::applied_before_ack`].
//! - **Catch-up**: a follower started while the leader was empty, stopped, then run with
//!   [`FollowOptions::until_caught_up`] once the leader holds a backlog of
//!   [`FollowConfig::backlog`] batches; batches/s until it holds them all.
//!
//! Each pair runs on fresh stores: leader and follower each in a temporary directory (or
//! a fresh schema on the PostgreSQL test server, with the `postgres` feature), the leader
//! opened `Relaxed`, the follower as [`FollowConfig::follower_durability`] says. An
//! embedded leader is followed in-process, through the API: its directory is locked to
//! the process that writes it (contract §1.2). Each batch is [`PUTS_PER_BATCH`] puts of a
//! [`KEY_LEN`]-byte key and a [`VALUE_LEN`]-byte value over [`KEYS`] keys.
//!
//! The report runs this part (`--only follow`) with [`FollowConfig::quick`] or
//! [`FollowConfig::full`]; the `follow_lag` example runs it with any rate, duration,
//! backlog and pairs.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use store::migrate::{NoProgress, Progress};
use store::replicate::{FollowOptions, FollowProgress, Follower, StopHandle};
use store::{BackendConfig, BackendKind, Durability, StoreEngine, Stores};
use tempfile::TempDir;

use crate::backends::{durability_word, temp_dir};
use crate::error::{BenchError, Context};
use crate::ops::size_label;
use crate::report::stats::Summary;
use crate::report::{Failure, fmt_ns, fmt_rate};
use crate::workloads::{KEY_LEN, VALUE_LEN, key, value};

/// Puts in each batch the leader commits.
pub const PUTS_PER_BATCH: u64 = 4;

/// Keys the batches write over.
pub const KEYS: u64 = 10_000;

/// The leader's write rate in the lag run, batches per second.
pub const RATE: u64 = 1_000;

/// How long the follower may go without applying a batch, once the leader has stopped
/// writing, before the lag run gives up on it.
const STALL: Duration = Duration::from_secs(30);

/// A leader and the follower that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The backend written to.
    pub leader: BackendKind,
    /// The backend that follows it.
    pub follower: BackendKind,
}

impl Pair {
    /// `leader → follower`.
    pub fn label(&self) -> String {
        format!("{} → {}", self.leader, self.follower)
    }

    /// The pair `LEADER:FOLLOWER` names (`redb:sqlite`); both backends must be enabled
    /// by this crate's features.
    pub fn parse(text: &str) -> Result<Pair, String> {
        let (leader, follower) = text
            .split_once(':')
            .ok_or_else(|| format!("not LEADER:FOLLOWER: {text:?}"))?;
        let kind = |name: &str| {
            let kind = BackendKind::from_name(name)
                .ok_or_else(|| format!("no backend is called {name:?}"))?;
            if compiled_in(kind) {
                Ok(kind)
            } else {
                Err(format!(
                    "{name} is not compiled in (enable the `{}` feature of benches)",
                    kind.feature()
                ))
            }
        };
        Ok(Pair {
            leader: kind(leader)?,
            follower: kind(follower)?,
        })
    }

    /// The pairs the report measures: every persistent backend following itself, then
    /// redb → sqlite, sqlite → lmdb, lmdb → sled, sled → redb, postgres → redb and an
    /// in-memory leader, mem → redb; those whose backends are compiled in.
    pub fn defaults() -> Vec<Pair> {
        use BackendKind::*;
        let selves = BackendKind::ALL
            .into_iter()
            .filter(|kind| kind.is_persistent())
            .map(|kind| (kind, kind));
        let across = [
            (Redb, Sqlite),
            (Sqlite, Lmdb),
            (Lmdb, Sled),
            (Sled, Redb),
            (Postgres, Redb),
            (Mem, Redb),
        ];
        selves
            .chain(across)
            .filter(|(leader, follower)| compiled_in(*leader) && compiled_in(*follower))
            .map(|(leader, follower)| Pair { leader, follower })
            .collect()
    }
}

/// Whether this crate's features enable `kind`. Its own features, not the facade's: a
/// build with dev-dependencies (tests, examples) compiles every backend into `store`, but
/// PostgreSQL needs the `postgres` feature here to find a server.
fn compiled_in(kind: BackendKind) -> bool {
    match kind {
        BackendKind::Mem => cfg!(feature = "mem"),
        BackendKind::Redb => cfg!(feature = "redb"),
        BackendKind::Lmdb => cfg!(feature = "lmdb"),
        BackendKind::Sled => cfg!(feature = "sled"),
        BackendKind::Fjall => cfg!(feature = "fjall"),
        BackendKind::Sqlite => cfg!(feature = "sqlite"),
        BackendKind::Postgres => cfg!(feature = "postgres"),
    }
}

/// What the follower section measures.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowConfig {
    /// Batches per second the leader commits in the lag run.
    pub rate: u64,
    /// How long the leader writes in the lag run.
    pub lag_time: Duration,
    /// Batches the leader holds when the catch-up run starts.
    pub backlog: u64,
    /// How each follower is opened (the leader is always `Relaxed`).
    pub follower_durability: Durability,
    /// The pairs measured, in order.
    pub pairs: Vec<Pair>,
}

impl FollowConfig {
    /// The report's quick mode: 2 s of lag run and a backlog of 5k batches per pair.
    pub fn quick() -> Self {
        FollowConfig {
            rate: RATE,
            lag_time: Duration::from_secs(2),
            backlog: 5_000,
            follower_durability: Durability::Relaxed,
            pairs: Pair::defaults(),
        }
    }

    /// The report's full mode: 10 s of lag run and a backlog of 100k batches per pair.
    pub fn full() -> Self {
        FollowConfig {
            lag_time: Duration::from_secs(10),
            backlog: 100_000,
            ..Self::quick()
        }
    }

    /// The configuration of the report's mode (`quick` or `full`).
    pub fn for_mode(mode: &str) -> Self {
        if mode == "full" {
            Self::full()
        } else {
            Self::quick()
        }
    }

    /// Batches the leader commits in the lag run.
    pub fn lag_batches(&self) -> u64 {
        (self.rate as f64 * self.lag_time.as_secs_f64()).round() as u64
    }

    /// How the section was measured, for its header.
    pub fn setup(&self) -> String {
        format!(
            "Each pair on fresh stores: the leader opened Relaxed, the follower {:?}; a \
             batch is {PUTS_PER_BATCH} puts of a {KEY_LEN} B key and a {VALUE_LEN} B value \
             over {} keys. Lag: the leader commits {} batches/s for {:.1} s ({} batches) while \
             the follower runs `Follower::run` in another thread; per batch, the batches the \
             leader had acknowledged beyond it when the follower applied it, and the time \
             from the leader's acknowledgement (its `put_batch` returned) to the follower's \
             `apply_batch` returning (0 when the follower applied it first), p50 / p99. \
             Catch-up: a follower started on the empty leader runs until caught up once the \
             leader holds {} batches; batches applied per second, and the run's time.",
            self.follower_durability,
            size_label(KEYS),
            self.rate,
            self.lag_time.as_secs_f64(),
            self.lag_batches(),
            size_label(self.backlog),
        )
    }

    /// Measures every pair; a pair that fails is a [`Failure`] (named `follower LEADER →
    /// FOLLOWER`) and the next pair runs. A progress line per pair goes to stderr.
    pub fn run(&self) -> (FollowSection, Vec<Failure>) {
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        for pair in &self.pairs {
            let started = Instant::now();
            match measure_pair(self, *pair) {
                Ok(row) => {
                    eprintln!(
                        "[follow] {:<18} lag {} batches ({}): behind p50 {:.0} p99 {:.0}, \
                         apply p50 {} p99 {}; catch-up {} batches/s; {:.1} s",
                        pair.label(),
                        row.lag.batches,
                        fmt_rate(row.lag.achieved_rate),
                        row.lag.behind_p50,
                        row.lag.behind_p99,
                        fmt_ns(row.lag.apply_p50_ns),
                        fmt_ns(row.lag.apply_p99_ns),
                        fmt_rate(row.catch_up.batches_per_sec).trim_end_matches("/s"),
                        started.elapsed().as_secs_f64()
                    );
                    rows.push(row);
                }
                Err(e) => {
                    let error = error_chain(&e);
                    eprintln!("[follow] {} failed: {}", pair.label(), error);
                    failures.push(Failure {
                        backend: format!("follower {}", pair.label()),
                        error,
                    });
                }
            }
        }
        let section = FollowSection {
            setup: self.setup(),
            rate: self.rate,
            backlog: self.backlog,
            rows,
        };
        (section, failures)
    }
}

/// The follower section of one run: how it was measured and a row per pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowSection {
    /// How it was measured, as the section's header says.
    pub setup: String,
    /// Batches per second the leader was asked to commit in the lag runs.
    pub rate: u64,
    /// Batches of each catch-up run.
    pub backlog: u64,
    /// A row per pair measured.
    pub rows: Vec<FollowRow>,
}

/// The figures of one pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowRow {
    /// The leader's backend.
    pub leader: String,
    /// The follower's backend.
    pub follower: String,
    /// The follower's durability (`relaxed` or `durable`).
    pub follower_durability: String,
    /// The lag at a steady write rate.
    pub lag: Lag,
    /// The catch-up from a backlog.
    pub catch_up: CatchUp,
}

/// The lag run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lag {
    /// Batches the leader committed.
    pub batches: u64,
    /// Batches per second the leader achieved (its own commits bound it).
    pub achieved_rate: f64,
    /// Median of the batches the leader had acknowledged beyond a batch when the follower
    /// applied it.
    pub behind_p50: f64,
    /// 99th percentile of the same.
    pub behind_p99: f64,
    /// Median time from the leader's acknowledgement to the follower's apply, ns.
    pub apply_p50_ns: f64,
    /// 99th percentile of the same, ns.
    pub apply_p99_ns: f64,
    /// Batches the follower applied before the leader's call returned (counted as 0).
    pub applied_before_ack: u64,
}

/// The catch-up run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatchUp {
    /// Batches the follower applied: the whole backlog.
    pub batches: u64,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Batches applied per second.
    pub batches_per_sec: f64,
}

impl CatchUp {
    /// `batches` applied in `seconds`.
    pub fn new(batches: u64, seconds: f64) -> Self {
        CatchUp {
            batches,
            seconds,
            batches_per_sec: batches as f64 / seconds.max(1e-9),
        }
    }
}

impl FollowSection {
    /// The section as Markdown: a heading, how it was measured, and a table with a row per
    /// pair.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n## Follower (store::replicate)\n\n{}\n", self.setup);
        let _ = writeln!(
            out,
            "| leader → follower | lag run: batches (achieved rate) | behind p50 / p99 \
             (batches) | leader ack to follower apply p50 / p99 | catch-up from {} batches |",
            size_label(self.backlog)
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
        for row in &self.rows {
            let follower = match row.follower_durability.as_str() {
                "relaxed" => row.follower.clone(),
                word => format!("{} ({word})", row.follower),
            };
            let _ = writeln!(
                out,
                "| {} → {follower} | {} ({}) | {:.0} / {:.0} | {} / {} | {} batches/s ({:.1} s) |",
                row.leader,
                row.lag.batches,
                fmt_rate(row.lag.achieved_rate),
                row.lag.behind_p50,
                row.lag.behind_p99,
                fmt_ns(row.lag.apply_p50_ns),
                fmt_ns(row.lag.apply_p99_ns),
                fmt_rate(row.catch_up.batches_per_sec).trim_end_matches("/s"),
                row.catch_up.seconds,
            );
        }
        out
    }
}

/// The error and its causes, one line.
fn error_chain(e: &BenchError) -> String {
    let mut error = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        error.push_str(&format!(" / caused by: {c}"));
        cause = c.source();
    }
    error
}

/// Measures `pair`: a lag run, then a catch-up run, each on fresh stores.
pub fn measure_pair(config: &FollowConfig, pair: Pair) -> Result<FollowRow, BenchError> {
    let lag = {
        let site = Site::new(pair, config.follower_durability)?;
        let leader = site.leader("lag-leader")?;
        let follower = site.follower(&leader, "lag-follower")?;
        lag(config, &leader, &follower)?
    };
    let catch_up = {
        let site = Site::new(pair, config.follower_durability)?;
        let leader = site.leader("backlog-leader")?;
        let follower = site.follower(&leader, "backlog-follower")?;
        catch_up(config.backlog, &leader, &follower)?
    };
    Ok(FollowRow {
        leader: pair.leader.name().to_owned(),
        follower: pair.follower.name().to_owned(),
        follower_durability: durability_word(config.follower_durability).to_owned(),
        lag,
        catch_up,
    })
}

/// Where a pair's stores live: a temporary directory, removed when dropped.
struct Site {
    pair: Pair,
    follower_durability: Durability,
    dir: TempDir,
}

impl Site {
    fn new(pair: Pair, follower_durability: Durability) -> Result<Self, BenchError> {
        Ok(Site {
            pair,
            follower_durability,
            dir: temp_dir("follow")?,
        })
    }

    /// Where a fresh store of `kind` named `name` goes.
    fn config(&self, kind: BackendKind, name: &str) -> Result<BackendConfig, BenchError> {
        if kind.is_server() {
            return server_config(kind);
        }
        Ok(BackendConfig::new(kind, self.dir.path().join(name)))
    }

    /// A fresh leader, `Relaxed`.
    fn leader(&self, name: &str) -> Result<Stores, BenchError> {
        let config = self
            .config(self.pair.leader, name)?
            .with_durability(Durability::Relaxed);
        Stores::open(&config).context("opening the leader")
    }

    /// A new follower of `leader` (its first copy copies whatever `leader` holds).
    fn follower(&self, leader: &Stores, name: &str) -> Result<Follower, BenchError> {
        let config = self
            .config(self.pair.follower, name)?
            .with_durability(self.follower_durability);
        Follower::start(leader, &config, &NoProgress).context("starting the follower")
    }
}

/// A fresh schema on the PostgreSQL test server (`store_postgres::scratch`).
#[cfg(feature = "postgres")]
fn server_config(kind: BackendKind) -> Result<BackendConfig, BenchError> {
    let location = store::postgres::scratch::fresh_location()
        .context("making a schema on the PostgreSQL test server")?;
    Ok(BackendConfig::server(kind, location.to_string()))
}

/// Without the `postgres` feature there is no server to open.
#[cfg(not(feature = "postgres"))]
fn server_config(kind: BackendKind) -> Result<BackendConfig, BenchError> {
    Err(BenchError::msg(format!(
        "{kind} needs the `postgres` feature of benches"
    )))
}

/// Commits batch `i` on `engine`: [`PUTS_PER_BATCH`] puts over [`KEYS`] keys, the values
/// versioned by `i`. Returns its sequence number.
fn write_batch(engine: &dyn StoreEngine, i: u64) -> Result<u64, BenchError> {
    let rows: Vec<([u8; KEY_LEN], [u8; VALUE_LEN])> = (0..PUTS_PER_BATCH)
        .map(|j| {
            let index = (i * PUTS_PER_BATCH + j) * 7_919 % KEYS;
            (key(index), value(index, i))
        })
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = rows.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    engine
        .put_batch(&pairs)
        .context("committing a batch on the leader")
}

/// One batch the follower applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Apply {
    /// Its sequence number.
    pub seq: u64,
    /// When `apply_batch` had returned, in ns since the run's origin.
    pub at_ns: u64,
    /// The leader's last acknowledged sequence number then.
    pub leader_acked: u64,
}

/// Records every batch the follower applies (the follower's thread calls it).
struct Recorder<'a> {
    origin: Instant,
    acked: &'a AtomicU64,
    applies: Mutex<Vec<Apply>>,
}

impl Progress for Recorder<'_> {}

impl FollowProgress for Recorder<'_> {
    fn applied(&self, seq: u64) {
        let at_ns = nanos_since(self.origin);
        let leader_acked = self.acked.load(Ordering::SeqCst);
        if let Ok(mut applies) = self.applies.lock() {
            applies.push(Apply {
                seq,
                at_ns,
                leader_acked,
            });
        }
    }
}

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What the leader's thread did in the lag run.
struct Written {
    /// When batch `first + i` was acknowledged, ns since the origin, at `i`.
    acks_ns: Vec<u64>,
    /// How long the writes took.
    elapsed: Duration,
}

/// The lag run: `config.rate` batches/s on `leader` for `config.lag_time`, `follower`
/// running in another thread.
fn lag(config: &FollowConfig, leader: &Stores, follower: &Follower) -> Result<Lag, BenchError> {
    let engine = leader.engine();
    let first = engine.current_sequence() + 1;
    let acked = AtomicU64::new(first - 1);
    let origin = Instant::now();
    let total = config.lag_batches();
    let recorder = Recorder {
        origin,
        acked: &acked,
        applies: Mutex::new(Vec::with_capacity(usize::try_from(total).unwrap_or(0))),
    };
    let stop = StopHandle::new();
    let (written, tailed) = std::thread::scope(|scope| {
        let tail = scope
            .spawn(|| follower.run(engine.as_ref(), &FollowOptions::default(), &stop, &recorder));
        let written = write_steadily(config.rate, total, engine.as_ref(), first, origin, &acked)
            .and_then(|written| {
                drain(follower, first + total - 1)?;
                Ok(written)
            });
        // Stopped whatever happened, so the scope's join returns.
        stop.stop();
        (written, tail.join())
    });
    let written = written?;
    tailed
        .map_err(|_| BenchError::msg("the follower's thread panicked"))?
        .context("following the leader")?;
    let applies = recorder
        .applies
        .into_inner()
        .map_err(|_| BenchError::msg("the follower's recorder was poisoned"))?;
    summarize_lag(first, &written.acks_ns, written.elapsed, &applies)
}

/// Commits `total` batches on `engine`, batch `i` due at `i / rate` s after the start (at
/// once when late), storing each acknowledged number in `acked`.
fn write_steadily(
    rate: u64,
    total: u64,
    engine: &dyn StoreEngine,
    first: u64,
    origin: Instant,
    acked: &AtomicU64,
) -> Result<Written, BenchError> {
    let interval = 1.0 / rate.max(1) as f64;
    let started = Instant::now();
    let mut acks_ns = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        let due = started + Duration::from_secs_f64(interval * i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let seq = write_batch(engine, i)?;
        acks_ns.push(nanos_since(origin));
        acked.store(seq, Ordering::SeqCst);
        if seq != first + i {
            return Err(BenchError::msg(format!(
                "the leader numbered batch {} as {seq}: something else writes to it",
                first + i
            )));
        }
    }
    Ok(Written {
        acks_ns,
        elapsed: started.elapsed(),
    })
}

/// Waits until `follower` has applied batch `last`, woken by its commits; fails when it
/// applies nothing for [`STALL`].
fn drain(follower: &Follower, last: u64) -> Result<(), BenchError> {
    let engine = follower.stores().engine();
    let mut at = engine.current_sequence();
    let mut progressed = Instant::now();
    while at < last {
        if progressed.elapsed() >= STALL {
            return Err(BenchError::msg(format!(
                "the follower applied nothing for {} s, at batch {at} of {last}",
                STALL.as_secs()
            )));
        }
        let now = engine
            .wait_for_sequence(at, Duration::from_secs(1))
            .context("waiting for the follower")?;
        if now > at {
            at = now;
            progressed = Instant::now();
        }
    }
    Ok(())
}

/// The lag figures of a run whose leader acknowledged batch `first + i` at `acks_ns[i]`
/// (writing them all took `elapsed`), from what the follower applied; every acknowledged
/// batch must have been applied.
pub fn summarize_lag(
    first: u64,
    acks_ns: &[u64],
    elapsed: Duration,
    applies: &[Apply],
) -> Result<Lag, BenchError> {
    let mut apply_ns = Vec::with_capacity(acks_ns.len());
    let mut behind = Vec::with_capacity(acks_ns.len());
    let mut applied_before_ack = 0;
    for apply in applies {
        let Some(&ack_ns) = apply
            .seq
            .checked_sub(first)
            .and_then(|i| acks_ns.get(usize::try_from(i).ok()?))
        else {
            continue;
        };
        if apply.at_ns < ack_ns {
            applied_before_ack += 1;
        }
        apply_ns.push(apply.at_ns.saturating_sub(ack_ns) as f64);
        behind.push(apply.leader_acked.saturating_sub(apply.seq) as f64);
    }
    if apply_ns.len() != acks_ns.len() {
        return Err(BenchError::msg(format!(
            "the follower applied {} of the leader's {} batches",
            apply_ns.len(),
            acks_ns.len()
        )));
    }
    let times = Summary::of(&apply_ns);
    let behind = Summary::of(&behind);
    let batches = acks_ns.len() as u64;
    Ok(Lag {
        batches,
        achieved_rate: batches as f64 / elapsed.as_secs_f64().max(1e-9),
        behind_p50: behind.p50,
        behind_p99: behind.p99,
        apply_p50_ns: times.p50,
        apply_p99_ns: times.p99,
        applied_before_ack,
    })
}

/// The catch-up run: `backlog` batches committed on `leader`, then `follower` (started
/// on the empty leader) runs until it holds them all.
fn catch_up(backlog: u64, leader: &Stores, follower: &Follower) -> Result<CatchUp, BenchError> {
    let engine = leader.engine();
    for i in 0..backlog {
        write_batch(engine.as_ref(), i)?;
    }
    let options = FollowOptions {
        until_caught_up: true,
        ..FollowOptions::default()
    };
    let outcome = follower
        .run(engine.as_ref(), &options, &StopHandle::new(), &NoProgress)
        .context("catching up with the leader")?;
    if outcome.applied != backlog {
        return Err(BenchError::msg(format!(
            "the follower caught up {} of the {backlog} batches",
            outcome.applied
        )));
    }
    Ok(CatchUp::new(outcome.applied, outcome.seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(seq: u64, at_ns: u64, leader_acked: u64) -> Apply {
        Apply {
            seq,
            at_ns,
            leader_acked,
        }
    }

    #[test]
    fn lag_percentiles_count_each_acknowledged_batch_once() {
        // Batches 5..=8 acknowledged at 100, 200, 300, 400 ns; batch 4 was applied before
        // the run (ignored); batch 6 was applied before its acknowledgement.
        let acks = [100, 200, 300, 400];
        let applies = [
            apply(4, 50, 4),
            apply(5, 150, 5),
            apply(6, 190, 6),
            apply(7, 1_300, 8),
            apply(8, 1_400, 8),
        ];
        let lag = summarize_lag(5, &acks, Duration::from_millis(2), &applies).unwrap();
        assert_eq!(lag.batches, 4);
        assert!((lag.achieved_rate - 2_000.0).abs() < 1e-6);
        // Times 50, 0, 1000, 1000 ns; behind 0, 0, 1, 0.
        assert_eq!(lag.apply_p50_ns, 50.0);
        assert_eq!(lag.apply_p99_ns, 1_000.0);
        assert_eq!(lag.behind_p50, 0.0);
        assert_eq!(lag.behind_p99, 1.0);
        assert_eq!(lag.applied_before_ack, 1);
    }

    #[test]
    fn a_batch_never_applied_is_an_error() {
        let acks = [100, 200];
        let applies = [apply(1, 150, 1)];
        let e = summarize_lag(1, &acks, Duration::from_millis(1), &applies).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the follower applied 1 of the leader's 2 batches"
        );
    }

    #[test]
    fn catch_up_throughput() {
        let c = CatchUp::new(100_000, 40.0);
        assert_eq!(c.batches_per_sec, 2_500.0);
        assert!(CatchUp::new(10, 0.0).batches_per_sec.is_finite());
    }

    #[test]
    fn pairs_parse_and_defaults_are_compiled_in() {
        let pair = Pair::parse("mem:mem").unwrap();
        assert_eq!(pair.label(), "mem → mem");
        assert!(Pair::parse("mem").is_err());
        assert!(Pair::parse("mem:nothing").is_err());
        // The facade may hold PostgreSQL (tests build it with every backend); without
        // this crate's `postgres` feature no pair uses it.
        assert_eq!(
            Pair::parse("postgres:redb").is_ok(),
            cfg!(feature = "postgres")
        );
        for pair in Pair::defaults() {
            assert!(compiled_in(pair.leader) && compiled_in(pair.follower));
        }
        assert_eq!(FollowConfig::full().backlog, 100_000);
        assert_eq!(FollowConfig::quick().lag_batches(), 2_000);
    }

    #[test]
    fn the_report_carries_the_section_in_markdown_and_json() {
        use crate::report::{json, markdown};
        let report = markdown::tests::sample_report();
        let plain = json::render(&report).unwrap();
        assert!(!plain.contains("\"follow\""));
        let row = FollowRow {
            leader: "redb".into(),
            follower: "sqlite".into(),
            follower_durability: "relaxed".into(),
            lag: Lag {
                batches: 2_000,
                achieved_rate: 999.6,
                behind_p50: 1.0,
                behind_p99: 100.0,
                apply_p50_ns: 442_000.0,
                apply_p99_ns: 102e6,
                applied_before_ack: 0,
            },
            catch_up: CatchUp::new(100_000, 57.5),
        };
        let section = FollowSection {
            setup: "How.".into(),
            rate: 1_000,
            backlog: 100_000,
            rows: vec![row],
        };
        let report = report.with_follow(Some(section));
        let md = markdown::render(&report);
        assert!(md.contains("## Follower (store::replicate)\n\nHow.\n"));
        assert!(md.contains("catch-up from 100k batches |"));
        assert!(md.contains(
            "| redb → sqlite | 2000 (1000/s) | 1 / 100 | 442 µs / 102 ms | 1.74k batches/s (57.5 s) |"
        ));
        let value: serde_json::Value =
            serde_json::from_str(&json::render(&report).unwrap()).unwrap();
        assert_eq!(value["follow"]["backlog"], 100_000);
        assert_eq!(value["follow"]["rows"][0]["lag"]["apply_p99_ns"], 102e6);
        assert_eq!(value["follow"]["rows"][0]["catch_up"]["batches"], 100_000);
    }

    /// A tiny run end to end on the in-memory backend: 100 batches at 2,000/s, a backlog
    /// of 200.
    #[test]
    fn a_tiny_run_measures_every_batch() {
        let config = FollowConfig {
            rate: 2_000,
            lag_time: Duration::from_millis(50),
            backlog: 200,
            follower_durability: Durability::Relaxed,
            pairs: vec![Pair::parse("mem:mem").unwrap()],
        };
        let (section, failures) = config.run();
        assert!(failures.is_empty(), "{failures:?}");
        let row = &section.rows[0];
        assert_eq!(row.lag.batches, 100);
        assert!(row.lag.apply_p50_ns <= row.lag.apply_p99_ns);
        assert!(row.lag.behind_p50 <= row.lag.behind_p99);
        assert_eq!(row.catch_up.batches, 200);
        assert!(row.catch_up.batches_per_sec > 0.0);
        let md = section.markdown();
        assert!(md.contains("## Follower (store::replicate)"));
        assert!(md.contains("| mem → mem | 100 ("));
        assert!(md.contains("catch-up from 200 batches |"));
    }
}
