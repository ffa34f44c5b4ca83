//! [`Follower`]: a follower's store, copied from the leader once, then tailing it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use store_api::{
    Backend, Clock, Durability, ManualClock, OpenOptions, StoreEngine, StoreLocation, SystemClock,
    Timestamp,
};
use tracing::info;

use super::error::{FollowError, OpenFailure};
use super::stop::StopHandle;
use super::tail::{self, FollowOptions, FollowProgress, TailOutcome};
use crate::config::BackendConfig;
use crate::migrate::{self, CopySummary, Plan, dirs};
use crate::stores::{Stores, open_as};

/// What the marker of a follower's first copy calls it.
const FIRST_COPY: &str = "follower's first copy";

/// How a follower began: it copied everything, or resumed a store it had copied before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The follower was new: every store was copied from the leader, up to batch `at` of
    /// the engine.
    Copied {
        /// The follower's sequence number after the copy.
        at: u64,
        /// What was copied, store by store.
        copied: Vec<CopySummary>,
    },
    /// The follower already held a copy: it resumes after batch `at`, copying nothing.
    Resumed {
        /// The follower's sequence number.
        at: u64,
    },
}

/// How a follower's store is opened again.
enum Opening {
    /// For the first copy: `Relaxed` (no `fsync` per write; the copy ends with a close,
    /// which makes everything durable) and the manual clock the ledger replay sets.
    Bulk(Arc<dyn Clock>),
    /// As its URL or options say, with the system clock.
    AsConfigured,
}

/// Where a follower lives and how to open it.
struct Site<'a> {
    /// Its URL, or its backend and directory.
    place: String,
    /// Its directory, where the first copy's marker goes; `None` off a directory.
    dir: Option<PathBuf>,
    /// Whether a reopen finds what was written (not so for `mem`).
    persistent: bool,
    open: Box<dyn Fn(Opening) -> Result<Stores, OpenFailure> + 'a>,
}

impl Site<'_> {
    fn open(&self, opening: Opening) -> Result<Stores, FollowError> {
        (self.open)(opening).map_err(|source| FollowError::OpenFollower {
            place: self.place.clone(),
            source,
        })
    }
}

/// A follower: its own store, a copy of a leader's, kept up to date by
/// [`run`](Self::run).
///
/// [`start`](Self::start) opens the follower's store. A new one (every store empty, no
/// unfinished copy) first receives a copy of every store of the leader
/// ([`migrate::copy`]: the engine's data, retained log and sequence numbers; state
/// partitions; the ledger; the segment log; side effects), marked unfinished until it is
/// complete. A store that already holds a copy is resumed after its
/// `current_sequence()`, with nothing copied again, whichever side restarted since.
///
/// Only the engine keeps following: after the first copy, [`run`](Self::run) applies the
/// leader's engine batches. The other stores have no log to tail; they hold what the
/// first copy found.
///
/// # Guarantees
/// - The follower's engine holds, at every moment, the leader's data and log entries as of
///   its sequence number `n` (a prefix of the leader's batches, never part of a batch):
///   each batch is applied atomically under the leader's number, in order.
/// - Nothing is skipped: a batch the leader pruned before the follower applied it stops
///   the follower with [`FollowError::Pruned`].
/// - A follower whose first copy was interrupted is refused
///   ([`FollowError::UnfinishedCopy`]) when it lives in a directory (the copy's
///   `MIGRATING` marker is there). A follower on a server (PostgreSQL) carries no marker:
///   drop its schema before following again when its first copy was interrupted.
/// - The first copy is not verified against the leader, which may be writing meanwhile;
///   `store-migrate --verify-only` compares the two once the leader is quiet.
pub struct Follower {
    stores: Stores,
    start: Start,
}

/// A short name for the leader, for the first copy's marker.
fn describe(stores: &Stores) -> String {
    match stores.dir() {
        Some(dir) => format!("{}:{}", stores.backend_name(), dir.display()),
        None => stores.backend_name().to_owned(),
    }
}

impl Follower {
    /// Opens the follower `to` names: copies every store of `leader` into it when it is
    /// new, resumes it otherwise. `progress` sees the first copy. Durability: the copy is
    /// written `Relaxed` and made durable by a close; then `to`'s own durability applies
    /// (`Relaxed` is safe for a follower: batches a crash takes back are fetched again).
    pub fn start(
        leader: &Stores,
        to: &BackendConfig,
        progress: &dyn FollowProgress,
    ) -> Result<Follower, FollowError> {
        let site = Site {
            place: to.to_string(),
            dir: to.dir().map(PathBuf::from),
            persistent: to.kind().is_persistent(),
            open: Box::new(|opening| {
                let opened = match opening {
                    Opening::Bulk(clock) => Stores::open_with_clock(
                        &to.clone().with_durability(Durability::Relaxed),
                        clock,
                    ),
                    Opening::AsConfigured => Stores::open(to),
                };
                opened.map_err(OpenFailure::Stores)
            }),
        };
        Self::start_at(leader, &site, progress)
    }

    /// [`start`](Self::start) for backend `B` opened at `location` with `options` (their
    /// clock is replaced by the system clock; the first copy sets its own).
    pub fn start_as<B: Backend>(
        leader: &Stores,
        location: &B::Location,
        options: OpenOptions,
        progress: &dyn FollowProgress,
    ) -> Result<Follower, FollowError> {
        let dir = location
            .dir()
            .filter(|_| B::capabilities().persistent)
            .map(PathBuf::from);
        let site = Site {
            place: match &dir {
                Some(dir) => format!("{}:{}", B::NAME, dir.display()),
                None => B::NAME.to_owned(),
            },
            dir,
            persistent: B::capabilities().persistent,
            open: Box::new(move |opening| {
                let options = match opening {
                    Opening::Bulk(clock) => {
                        options.clone().durability(Durability::Relaxed).clock(clock)
                    }
                    Opening::AsConfigured => options.clone().clock(Arc::new(SystemClock)),
                };
                open_as::<B>(location, options).map_err(OpenFailure::Backend)
            }),
        };
        Self::start_at(leader, &site, progress)
    }

    fn start_at(
        leader: &Stores,
        site: &Site<'_>,
        progress: &dyn FollowProgress,
    ) -> Result<Follower, FollowError> {
        if let Some(dir) = &site.dir
            && let Some(note) = dirs::unfinished_in(dir)?
        {
            return Err(FollowError::UnfinishedCopy {
                path: dir.clone(),
                note,
            });
        }
        let stores = site.open(Opening::AsConfigured)?;
        if !migrate::holdings(&stores)?.is_empty() {
            let engine = stores.engine();
            tail::check_prefix(leader.engine().as_ref(), engine.as_ref())?;
            let at = engine.current_sequence();
            info!(follower = %site.place, applied = at, "follower resumes, nothing copied");
            drop(engine);
            let start = Start::Resumed { at };
            progress.started(&start);
            return Ok(Follower { stores, start });
        }
        drop(stores);
        let clock = Arc::new(ManualClock::new(Timestamp::default()));
        let bulk = site.open(Opening::Bulk(clock.clone()))?;
        let leader_name = describe(leader);
        if let Some(dir) = &site.dir {
            dirs::mark_in(dir, FIRST_COPY, &leader_name, "has not finished")?;
        }
        info!(follower = %site.place, leader = %leader_name, "follower is new: copying every store once");
        let copied = migrate::copy(leader, &bulk, &clock, &Plan::default(), progress)?;
        let stores = if site.persistent {
            // Closing makes the copy durable at once (contract §1.6).
            drop(bulk);
            site.open(Opening::AsConfigured)?
        } else {
            bulk
        };
        if let Some(dir) = &site.dir {
            dirs::unmark_in(dir)?;
        }
        let at = stores.engine().current_sequence();
        info!(follower = %site.place, applied = at, "follower's first copy is complete");
        let start = Start::Copied { at, copied };
        progress.started(&start);
        Ok(Follower { stores, start })
    }

    /// How this follower began.
    pub fn start_report(&self) -> &Start {
        &self.start
    }

    /// The follower's stores (read them freely; writing to its engine makes the next
    /// batch from the leader fail with `SequenceGap` or `ConflictingBatch`).
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The follower's stores, closing nothing.
    pub fn into_stores(self) -> Stores {
        self.stores
    }

    /// Tails `leader`'s batch log into this follower until `stop` is requested (or, with
    /// [`FollowOptions::until_caught_up`], until it has every batch the leader has); see
    /// [`tail::tail`]. Call it again after a stop, or after the leader was reopened: it
    /// resumes where it stopped.
    pub fn run(
        &self,
        leader: &dyn StoreEngine,
        options: &FollowOptions,
        stop: &StopHandle,
        progress: &dyn FollowProgress,
    ) -> Result<TailOutcome, FollowError> {
        tail::tail(
            leader,
            self.stores.engine().as_ref(),
            options,
            stop,
            progress,
        )
    }
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("stores", &self.stores)
            .field("start", &self.start)
            .finish()
    }
}
