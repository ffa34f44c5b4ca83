//! Why a migration stopped, and which exit code of `store-migrate` each reason maps to.

use std::path::PathBuf;

use store_api::{Book, EngineError, LedgerError, SegmentError, SideEffectError, StateError};

use super::report::StoreKind;
use crate::stores::StoresError;

/// Why a migration (or a dry run, or a verification) stopped. A migration that ran to the
/// end but found differences is not an error: its report lists them.
///
/// Each message says what happened and what to do; a source error (`#[source]`) is kept
/// for [`store_api::error_chain`], which prints each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The source directory does not exist. Nothing was created.
    #[error(
        "the source {path} does not exist: check the path (store-migrate never creates its source)"
    )]
    SourceMissing {
        /// The directory named by the source URL.
        path: PathBuf,
    },
    /// The source path exists but holds no database of the backend the URL names.
    #[error("the source {path} is not a database of the {backend} backend: {detail}")]
    SourceNotADatabase {
        /// The directory named by the source URL.
        path: PathBuf,
        /// The backend the URL names.
        backend: &'static str,
        /// What was found instead.
        detail: String,
    },
    /// The source is itself the destination of an unfinished migration.
    #[error(
        "the source {path} holds an unfinished migration (its {marker} file is there): it is \
         incomplete, so it is not copied"
    )]
    SourceUnfinished {
        /// The directory.
        path: PathBuf,
        /// The marker's file name.
        marker: &'static str,
    },
    /// The source and the destination are the same directory.
    #[error("the source and the destination are the same directory, {path}")]
    SameDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// `--verify-only` needs an existing destination database.
    #[error(
        "the destination {path} holds no database of the {backend} backend, so there is \
         nothing to verify"
    )]
    DestinationMissing {
        /// The directory named by the destination URL.
        path: PathBuf,
        /// The backend the URL names.
        backend: &'static str,
    },
    /// The destination holds what an interrupted migration left: it is incomplete.
    #[error(
        "the destination {path} holds an unfinished migration (its {marker} file says: {note}); \
         it is incomplete and is not reused: remove the directory and run store-migrate again"
    )]
    DestinationUnfinished {
        /// The directory.
        path: PathBuf,
        /// The marker's file name.
        marker: &'static str,
        /// What the marker says (when and from where the copy started).
        note: String,
    },
    /// The destination already holds data, and `--into-existing` was not given.
    #[error(
        "the destination {url} is not empty ({holds}): migrate into a new or empty directory, \
         or pass --into-existing to copy stores that are empty there into it"
    )]
    DestinationNotEmpty {
        /// The destination's URL.
        url: String,
        /// What it holds, store by store.
        holds: String,
    },
    /// With `--into-existing`: a store to copy already holds data in the destination.
    #[error(
        "the destination's {store} is not empty ({holds}): even with --into-existing a store \
         is only copied into a destination whose same store is empty (nothing is merged or \
         overwritten)"
    )]
    DestinationStoreNotEmpty {
        /// The store.
        store: StoreKind,
        /// What it holds.
        holds: String,
    },
    /// An item named to narrow the copy is not in the source.
    #[error("{what} {name} is not in the source: {hint}")]
    NotInSource {
        /// What kind of item (`partition`, `book`, ...).
        what: &'static str,
        /// The name as given.
        name: String,
        /// What the source does hold, or how to list it.
        hint: String,
    },
    /// The source could not be opened.
    #[error("cannot open the source {url}")]
    OpenSource {
        /// The source's URL.
        url: String,
        /// Why.
        #[source]
        source: StoresError,
    },
    /// The destination could not be opened.
    #[error("cannot open the destination {url}")]
    OpenDestination {
        /// The destination's URL.
        url: String,
        /// Why.
        #[source]
        source: StoresError,
    },
    /// The destination's `MIGRATING` marker could not be written, read or removed.
    #[error("cannot {action} the migration marker {path}")]
    Marker {
        /// `write`, `read` or `remove`.
        action: &'static str,
        /// The marker file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A path could not be inspected.
    #[error("cannot inspect {path}")]
    Inspect {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A source batch cannot be written as one batch through the API.
    #[error("engine batch {seq} cannot be replayed: {reason}")]
    UnreplayableBatch {
        /// The batch's sequence number.
        seq: u64,
        /// Why.
        reason: &'static str,
    },
    /// A batch inside the source's retained log is missing.
    #[error("engine batch {seq} is missing from the source's batch log, inside its retained range")]
    BatchLogGap {
        /// The missing sequence number.
        seq: u64,
    },
    /// The destination gave a replayed ledger transaction another sequence number.
    #[error("the destination numbered transaction seq {expected} of book {book} as {got}")]
    LedgerSequence {
        /// The book.
        book: Book,
        /// The source's number.
        expected: u64,
        /// The destination's number.
        got: u64,
    },
    /// The destination refused a replayed ledger event.
    #[error("replaying event seq {seq} of book {book} failed")]
    LedgerReplay {
        /// The book.
        book: Book,
        /// The event's sequence number in the source.
        seq: u64,
        /// The destination's error.
        #[source]
        source: Box<LedgerError>,
    },
    /// A verification thread stopped without a result (it panicked).
    #[error("the {store} verification of the {side} stopped without a result")]
    VerifierStopped {
        /// The store being verified.
        store: StoreKind,
        /// `source` or `destination`.
        side: &'static str,
    },
    /// The engine store failed.
    #[error("engine store")]
    Engine(#[from] EngineError),
    /// A state partition failed.
    #[error("state partition {partition:?}")]
    State {
        /// The partition (empty when listing partitions failed).
        partition: String,
        /// The error.
        #[source]
        source: StateError,
    },
    /// The ledger failed.
    #[error("ledger")]
    Ledger(#[source] Box<LedgerError>),
    /// The segment log failed.
    #[error("segment log")]
    Segment(#[from] SegmentError),
    /// The side-effect store failed.
    #[error("side-effect store")]
    SideEffect(#[from] SideEffectError),
}

impl From<LedgerError> for MigrateError {
    fn from(error: LedgerError) -> Self {
        MigrateError::Ledger(Box::new(error))
    }
}

impl MigrateError {
    /// Whether the error is in what the caller asked for (an item named to narrow the copy
    /// that the source does not hold) rather than in the source or the destination:
    /// `store-migrate` exits 2 for these, 3 for the others.
    pub fn is_bad_argument(&self) -> bool {
        matches!(self, MigrateError::NotInSource { .. })
    }

    /// A state error of `partition`.
    pub(crate) fn state(partition: &str) -> impl FnOnce(StateError) -> MigrateError + '_ {
        move |source| MigrateError::State {
            partition: partition.to_owned(),
            source,
        }
    }
}
