//! Follow a leader: copy every store once, then tail the leader engine's batch log and
//! apply each batch under the leader's number (contract §3.7), on any pair of backends.
//!
//! ```
//! use swapstore::replicate::{Follower, FollowOptions, StopHandle};
//! use swapstore::migrate::NoProgress;
//! use swapstore::{BackendConfig, Stores};
//!
//! let leader = Stores::open_url("mem:")?;
//! leader.engine().put_batch(&[(b"user/1", b"ada")])?;
//! // A new follower copies everything once; an existing one resumes where it stopped.
//! let follower = Follower::start(&leader, &BackendConfig::mem(), &NoProgress)?;
//! leader.engine().put_batch(&[(b"user/2", b"grace")])?;
//! let options = FollowOptions { until_caught_up: true, ..FollowOptions::default() };
//! follower.run(leader.engine().as_ref(), &options, &StopHandle::new(), &NoProgress)?;
//! assert_eq!(follower.stores().engine().current_sequence(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`Follower::start`] opens the follower's store. A new one receives a copy of every
//!   store ([`migrate::copy`](crate::migrate::copy)), marked unfinished in its directory
//!   until it is complete; one that already holds a copy resumes after its
//!   `current_sequence()`, nothing copied again, whichever side restarted meanwhile.
//! - [`Follower::run`] (or [`tail`] on any two engines) applies the leader's batches in
//!   order with `apply_batch`, then waits in `wait_for_sequence`, woken by the leader's
//!   next commit, until a [`StopHandle`] asks it to stop or, with
//!   [`FollowOptions::until_caught_up`], it has every batch the leader has.
//! - A batch the leader pruned before the follower applied it stops the follower with
//!   [`FollowError::Pruned`] naming the missing numbers (nothing is skipped); a follower
//!   ahead of its leader, or holding a different batch, stops too. Each such error says to
//!   resync ([`FollowError::needs_resync`]): remove the follower's store and follow again.
//! - Progress goes to a [`FollowProgress`] (the `store-migrate` binary draws a line with
//!   the batches behind and the rate on a terminal) and to `tracing` events: `info` when
//!   the follower copies, resumes, has been behind for ten seconds, catches up after a
//!   backlog and stops; `debug` for its status twice a second; `trace` per batch.
//!
//! # Which leaders a follower can reach
//! In one process, any: the leader is an open [`Stores`] (or any `StoreEngine`). A
//! follower in another process ([`follow`], `store-migrate --follow`) opens the leader
//! itself, which works only for a shared backend (PostgreSQL, contract §9.3): an embedded
//! backend locks its directory to the process that writes it (contract §1.2), so opening
//! a live embedded leader fails with [`FollowError::LeaderLocked`].

mod error;
mod follower;
mod stop;
mod tail;

use std::fmt;

use serde::Serialize;

pub use error::{FollowError, OpenFailure, RESYNC};
pub use follower::{Follower, Start};
pub use stop::StopHandle;
pub use tail::{
    Ended, FollowOptions, FollowProgress, FollowStatus, TailOutcome, check_prefix, tail,
};

use crate::config::BackendConfig;
use crate::migrate::dirs;
use crate::stores::{Stores, StoresError};

/// What [`follow`] did: how the follower began and what its tail applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowReport {
    /// The leader's URL.
    pub from: String,
    /// The follower's URL.
    pub to: String,
    /// How the follower began.
    pub start: Start,
    /// What the tail applied, and why it ended.
    pub tail: TailOutcome,
}

impl fmt::Display for FollowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "followed {} -> {}", self.from, self.to)?;
        match &self.start {
            Start::Copied { at, copied } => {
                writeln!(f, "  first copy, up to batch {at}:")?;
                for summary in copied {
                    writeln!(f, "  {:<12} copied {}", summary.store, summary.counts)?;
                    for note in summary.handled.iter().chain(&summary.not_migrated) {
                        writeln!(f, "  {:<12}   {note}", "")?;
                    }
                }
            }
            Start::Resumed { at } => writeln!(f, "  resumed after batch {at}, nothing copied")?,
        }
        let tail = &self.tail;
        if tail.applied == 0 {
            writeln!(f, "  applied no batch in {:.1} s", tail.seconds)?;
        } else {
            writeln!(
                f,
                "  applied {} batches ({}..={}) in {:.1} s, {:.0} batches/s",
                tail.applied,
                tail.started_at + 1,
                tail.at,
                tail.seconds,
                tail.batches_per_second()
            )?;
        }
        match tail.ended {
            Ended::Stopped => write!(
                f,
                "result: stopped on request at batch {} (the leader is at {}); run again to resume",
                tail.at, tail.leader_at
            ),
            Ended::CaughtUp => write!(f, "result: caught up with the leader at batch {}", tail.at),
        }
    }
}

/// Opens the leader `from` and the follower `to`, copies everything once when the
/// follower is new, and tails the leader until `stop` (or, with
/// [`FollowOptions::until_caught_up`], until caught up): what `store-migrate --follow`
/// does. The leader must already hold a database; since this opens it, a live embedded
/// leader is [`FollowError::LeaderLocked`] (see the [module docs](self)).
pub fn follow(
    from: &BackendConfig,
    to: &BackendConfig,
    options: &FollowOptions,
    stop: &StopHandle,
    progress: &dyn FollowProgress,
) -> Result<FollowReport, FollowError> {
    dirs::check_source(from)?;
    dirs::check_distinct(from, to)?;
    let leader = Stores::open(from).map_err(|source| open_leader_error(from, source))?;
    let follower = Follower::start(&leader, to, progress)?;
    let tail = follower.run(leader.engine().as_ref(), options, stop, progress)?;
    Ok(FollowReport {
        from: from.to_string(),
        to: to.to_string(),
        start: follower.start_report().clone(),
        tail,
    })
}

fn open_leader_error(from: &BackendConfig, source: StoresError) -> FollowError {
    let url = from.to_string();
    match source {
        StoresError::Open {
            source: store_api::OpenError::Locked { .. },
            ..
        } => FollowError::LeaderLocked { url, source },
        source => FollowError::OpenLeader { url, source },
    }
}
