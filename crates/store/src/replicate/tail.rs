//! Tailing: the leader's batch log applied batch by batch on the follower under the
//! leader's numbers, waiting for new batches with `wait_for_sequence`.

use std::time::{Duration, Instant};

use serde::Serialize;
use store_api::{EngineError, StoreEngine};
use tracing::{debug, info, trace};

use super::error::FollowError;
use super::follower::Start;
use super::stop::StopHandle;
use crate::migrate::{NoProgress, Progress};

/// How often [`FollowProgress::status`] is called at most, and the window its rate covers.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// How often a progress event is logged while the follower is behind.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How long a follower must have been behind for catching up to be logged.
const CATCH_UP_NOTED: Duration = Duration::from_secs(1);
/// Batches applied between two reads of the leader's sequence number.
const CHUNK: u64 = 1024;

/// How a follower tails its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// Stop once every batch the leader has is applied, rather than wait for more
    /// (`store-migrate --follow --catch-up`).
    pub until_caught_up: bool,
    /// How long one `wait_for_sequence` on the leader lasts at most. The wait returns as
    /// soon as the leader commits a batch; this only bounds how long a stop request goes
    /// unnoticed while the leader is idle. Default 200 ms.
    pub wait_slice: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            until_caught_up: false,
            wait_slice: Duration::from_millis(200),
        }
    }
}

/// Where a follower stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FollowStatus {
    /// The follower's sequence number: the last batch it applied.
    pub applied: u64,
    /// The leader's sequence number when last read.
    pub leader: u64,
    /// Batches applied per second over the last half second or so.
    pub batches_per_second: f64,
}

impl FollowStatus {
    /// How many batches the follower is behind the leader.
    pub fn behind(&self) -> u64 {
        self.leader.saturating_sub(self.applied)
    }
}

/// Receives a follower's progress: the first copy's through [`Progress`], how it started,
/// then each batch applied and the follower's status. Every call comes from the follower's thread. The
/// methods do nothing by default.
pub trait FollowProgress: Progress {
    /// The follower's store is open and ready to tail: copied now, or resumed.
    fn started(&self, start: &Start) {
        let _ = start;
    }

    /// Batch `seq` was applied (it is committed on the follower).
    fn applied(&self, seq: u64) {
        let _ = seq;
    }

    /// Where the follower stands: about twice a second while it applies or waits, and
    /// when it catches up.
    fn status(&self, status: &FollowStatus) {
        let _ = status;
    }
}

impl FollowProgress for NoProgress {}

/// Why a tail ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// A stop was requested ([`StopHandle::stop`]).
    Stopped,
    /// Every batch the leader had was applied, and
    /// [`FollowOptions::until_caught_up`] asked to stop there.
    CaughtUp,
}

/// What one run of the tail did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TailOutcome {
    /// Why it ended.
    pub ended: Ended,
    /// The follower's sequence number when the run began.
    pub started_at: u64,
    /// The follower's sequence number when it ended.
    pub at: u64,
    /// The leader's sequence number when last read.
    pub leader_at: u64,
    /// Batches applied by this run.
    pub applied: u64,
    /// How long the run took, in seconds.
    pub seconds: f64,
}

impl TailOutcome {
    /// Batches applied per second over the whole run.
    pub fn batches_per_second(&self) -> f64 {
        self.applied as f64 / self.seconds.max(1e-9)
    }
}

/// Checks that `follower` can continue from what it holds: it is not ahead of `leader`,
/// and where both logs still hold its last batch, they hold the same batch.
pub fn check_prefix(
    leader: &dyn StoreEngine,
    follower: &dyn StoreEngine,
) -> Result<(), FollowError> {
    let at = follower.current_sequence();
    let leader_at = leader.current_sequence();
    if at > leader_at {
        return Err(FollowError::AheadOfLeader {
            follower_at: at,
            leader_at,
        });
    }
    if at == 0 {
        return Ok(());
    }
    let ours = follower.get_batch(at).map_err(FollowError::ReadFollower)?;
    let theirs = leader
        .get_batch(at)
        .map_err(|source| FollowError::ReadLeader { seq: at, source })?;
    match (ours, theirs) {
        (Some(ours), Some(theirs)) if ours != theirs => Err(FollowError::Diverged { seq: at }),
        _ => Ok(()),
    }
}

/// The status reports and log events of a run, at their pace.
struct Meter {
    window_start: Instant,
    window_at: u64,
    logged: Instant,
    behind_since: Option<Instant>,
}

impl Meter {
    fn new(at: u64) -> Self {
        let now = Instant::now();
        Meter {
            window_start: now,
            window_at: at,
            logged: now,
            behind_since: None,
        }
    }

    /// Notes where the follower stands, and reports it when half a second has passed since
    /// the last report (or at once with `now`).
    fn tick(&mut self, at: u64, leader_at: u64, progress: &dyn FollowProgress, now: bool) {
        let caught_up = at >= leader_at;
        if !caught_up {
            self.behind_since.get_or_insert_with(Instant::now);
        } else if let Some(since) = self.behind_since.take() {
            // A follower keeping pace catches up after every batch: only a real backlog
            // is worth an event.
            if since.elapsed() >= CATCH_UP_NOTED {
                info!(
                    applied = at,
                    seconds_behind = since.elapsed().as_secs_f64(),
                    "follower caught up with the leader"
                );
            }
        }
        let elapsed = self.window_start.elapsed();
        if elapsed < STATUS_EVERY && !now {
            return;
        }
        let status = FollowStatus {
            applied: at,
            leader: leader_at,
            batches_per_second: (at - self.window_at) as f64 / elapsed.as_secs_f64().max(1e-3),
        };
        progress.status(&status);
        if !caught_up && self.logged.elapsed() >= LOG_EVERY {
            self.logged = Instant::now();
            info!(
                applied = at,
                leader = leader_at,
                behind = status.behind(),
                batches_per_second = status.batches_per_second,
                "follower behind the leader"
            );
        } else {
            debug!(
                applied = at,
                leader = leader_at,
                behind = status.behind(),
                batches_per_second = status.batches_per_second,
                "follower status"
            );
        }
        self.window_start = Instant::now();
        self.window_at = at;
    }
}

/// The error for batch `seq`, which the leader no longer has although its log reaches
/// `leader_at`: the follower (at `at`) needs `seq` up to the leader's oldest retained batch.
fn pruned(leader: &dyn StoreEngine, at: u64, seq: u64, leader_at: u64) -> FollowError {
    let oldest = match leader.oldest_retained_batch() {
        Ok(oldest) => oldest,
        Err(source) => return FollowError::ReadLeader { seq, source },
    };
    let last_missing = match oldest {
        Some(oldest) if oldest > seq => oldest - 1,
        Some(_) => seq,
        None => leader_at.max(seq),
    };
    FollowError::Pruned {
        follower_at: at,
        first_missing: seq,
        last_missing,
        oldest_retained: oldest,
    }
}

/// Tails `leader`'s batch log into `follower` until `stop` is requested (or, with
/// [`FollowOptions::until_caught_up`], until every batch the leader has is applied).
///
/// Resumes after the follower's `current_sequence()`: each later batch is read with
/// `get_batch` and applied with `apply_batch` under the leader's number, in order; once
/// caught up, it sleeps in `wait_for_sequence` until the leader commits the next one.
/// Before anything is applied, [`check_prefix`] checks the follower can continue. A batch
/// the leader pruned is [`FollowError::Pruned`]: the follower stops there, nothing is
/// skipped. Any engine works on either side (the leader's engine from another backend, or
/// a shared backend's engine written by other processes).
pub fn tail(
    leader: &dyn StoreEngine,
    follower: &dyn StoreEngine,
    options: &FollowOptions,
    stop: &StopHandle,
    progress: &dyn FollowProgress,
) -> Result<TailOutcome, FollowError> {
    let started = Instant::now();
    check_prefix(leader, follower)?;
    let started_at = follower.current_sequence();
    let mut at = started_at;
    let mut meter = Meter::new(at);
    let read = |seq| move |source: EngineError| FollowError::ReadLeader { seq, source };
    info!(applied = at, "follower tailing the leader's batch log");
    let ended = loop {
        if stop.is_stopped() {
            break (Ended::Stopped, leader.current_sequence());
        }
        let leader_at = leader.current_sequence();
        if leader_at < at {
            return Err(FollowError::AheadOfLeader {
                follower_at: at,
                leader_at,
            });
        }
        if leader_at == at {
            meter.tick(at, leader_at, progress, false);
            if options.until_caught_up {
                break (Ended::CaughtUp, leader_at);
            }
            leader
                .wait_for_sequence(at, options.wait_slice)
                .map_err(read(at + 1))?;
            continue;
        }
        let chunk_from = at;
        for seq in at + 1..=leader_at.min(at + CHUNK) {
            let batch = leader
                .get_batch(seq)
                .map_err(read(seq))?
                .ok_or_else(|| pruned(leader, at, seq, leader_at))?;
            follower
                .apply_batch(seq, &batch)
                .map_err(|source| FollowError::Apply { seq, source })?;
            at = seq;
            trace!(seq, "follower applied batch");
            progress.applied(seq);
            meter.tick(at, leader_at, progress, false);
            if stop.is_stopped() {
                break;
            }
        }
        debug!(
            first = chunk_from + 1,
            last = at,
            batches = at - chunk_from,
            leader = leader_at,
            "follower applied batches"
        );
    };
    let (ended, leader_at) = ended;
    meter.tick(at, leader_at, progress, true);
    let outcome = TailOutcome {
        ended,
        started_at,
        at,
        leader_at,
        applied: at - started_at,
        seconds: started.elapsed().as_secs_f64(),
    };
    info!(
        applied = outcome.applied,
        at,
        leader = leader_at,
        ended = ?ended,
        "follower stopped"
    );
    Ok(outcome)
}
