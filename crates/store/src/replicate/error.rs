//! Why a follower stopped with an error, and which of those need a resync.

use std::path::PathBuf;

use store_api::{EngineError, OpenError};

use crate::migrate::MigrateError;
use crate::stores::StoresError;

/// How to start a follower over, said by every error that needs it.
pub const RESYNC: &str = "resync: remove the follower's store (its directory, or its schema \
     on a server) and follow again; a new follower copies everything once";

/// Why a follower stopped other than on request. Each message says what happened and,
/// where the follower cannot go on from what it holds, how to resync
/// ([`needs_resync`](Self::needs_resync)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The leader pruned batches the follower has not applied yet: they cannot be
    /// replayed, so the follower stops rather than skip them. Nothing was applied past
    /// `follower_at`.
    #[error(
        "the leader pruned batches {first_missing}..={last_missing} from its log, and this \
         follower (at batch {follower_at}) still needs them: they cannot be replayed, so \
         nothing past batch {follower_at} was applied ({oldest}); {RESYNC}. To avoid this, \
         prune the leader's log only below its followers' next batch",
        oldest = oldest_note(.oldest_retained)
    )]
    Pruned {
        /// The follower's sequence number (the last batch it applied).
        follower_at: u64,
        /// The first batch it needs that the leader no longer has (`follower_at + 1`).
        first_missing: u64,
        /// The last batch it needs that the leader no longer has.
        last_missing: u64,
        /// The leader's oldest retained batch (`None`: its log is empty).
        oldest_retained: Option<u64>,
    },
    /// The follower holds more batches than the leader: it follows another leader, or the
    /// leader lost batches it had acknowledged (a restore, or a crash under `Relaxed`).
    #[error(
        "the follower is at batch {follower_at} but the leader only at batch {leader_at}: \
         it holds batches the leader does not (another leader, or the leader lost batches \
         it had acknowledged); {RESYNC}"
    )]
    AheadOfLeader {
        /// The follower's sequence number.
        follower_at: u64,
        /// The leader's.
        leader_at: u64,
    },
    /// The follower's log entry of a batch differs from the leader's: the two diverged.
    #[error(
        "the follower's batch {seq} differs from the leader's: they diverged (another \
         leader, or something else wrote to the follower); {RESYNC}"
    )]
    Diverged {
        /// The batch both logs hold, with different mutations.
        seq: u64,
    },
    /// The follower's directory holds a first copy that never finished (its `MIGRATING`
    /// file is there): its stores are partly copied, so it is not resumed.
    #[error(
        "the follower {path} holds a first copy that never finished (its MIGRATING file \
         says: {note}); {RESYNC}"
    )]
    UnfinishedCopy {
        /// The follower's directory.
        path: PathBuf,
        /// What the marker says (when and from where the copy started).
        note: String,
    },
    /// The leader's directory is locked by another process (an embedded backend allows
    /// one process per directory, contract §1.2).
    #[error(
        "cannot open the leader {url}: its directory is locked by the process that writes \
         it (an embedded backend is opened by one process at a time). Follow it from inside \
         that process with swapstore::replicate, or use a shared leader (postgres://) that other \
         processes can open"
    )]
    LeaderLocked {
        /// The leader's URL.
        url: String,
        /// The open's error.
        #[source]
        source: StoresError,
    },
    /// The leader could not be opened.
    #[error("cannot open the leader {url}")]
    OpenLeader {
        /// The leader's URL.
        url: String,
        /// Why.
        #[source]
        source: StoresError,
    },
    /// The follower could not be opened.
    #[error("cannot open the follower {place}")]
    OpenFollower {
        /// The follower's URL, or its backend and directory.
        place: String,
        /// Why.
        #[source]
        source: OpenFailure,
    },
    /// Reading the leader's engine failed.
    #[error("reading the leader's batch log at batch {seq} failed")]
    ReadLeader {
        /// The batch being read (or the follower's next one).
        seq: u64,
        /// The leader engine's error.
        #[source]
        source: EngineError,
    },
    /// The follower's engine refused or failed to apply a batch (another writer on the
    /// follower makes it refuse with `SequenceGap` or `ConflictingBatch`).
    #[error("applying batch {seq} on the follower failed")]
    Apply {
        /// The batch.
        seq: u64,
        /// The follower engine's error.
        #[source]
        source: EngineError,
    },
    /// Reading the follower's engine failed.
    #[error("reading the follower's engine failed")]
    ReadFollower(#[source] EngineError),
    /// The first copy (or a check before it) failed.
    #[error(transparent)]
    Copy(#[from] MigrateError),
}

/// Why a follower's store did not open: the facade's error (a URL naming a backend this
/// build lacks, or the backend's refusal), or the backend's own when it was opened
/// generically.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenFailure {
    /// Opened from a URL.
    #[error(transparent)]
    Stores(#[from] StoresError),
    /// Opened as a backend type.
    #[error(transparent)]
    Backend(#[from] OpenError),
}

/// Where the leader's log starts now, in words.
fn oldest_note(oldest_retained: &Option<u64>) -> String {
    match oldest_retained {
        Some(seq) => format!("the leader's log now starts at batch {seq}"),
        None => "the leader's log is now empty".to_owned(),
    }
}

impl FollowError {
    /// Whether the follower cannot go on from what it holds: the leader pruned batches it
    /// needs, the two diverged, or its first copy never finished. Remove the follower's
    /// store and follow again (`store-migrate --follow` exits 4 for these).
    pub fn needs_resync(&self) -> bool {
        matches!(
            self,
            FollowError::Pruned { .. }
                | FollowError::AheadOfLeader { .. }
                | FollowError::Diverged { .. }
                | FollowError::UnfinishedCopy { .. }
        )
    }

    /// Whether the error is in what the caller asked for rather than in the stores
    /// (`store-migrate` exits 2 for these).
    pub fn is_bad_argument(&self) -> bool {
        matches!(self, FollowError::Copy(e) if e.is_bad_argument())
    }
}
