//! Copy every store from one backend to another, then verify the copy store by store.
//!
//! [`migrate`] is the whole job (the `store-migrate` binary calls it): open the source,
//! open the empty destination with a replay clock, [`copy`], close and reopen the
//! destination when it is persistent (so what is verified is what is on disk), and
//! [`verify`]. The pieces are public so a program can migrate stores it already holds.
//!
//! # What is preserved, store by store
//! - **Engine**: everything the API shows. The retained batch log is replayed batch by
//!   batch, so every retained batch keeps its sequence number and its exact mutations.
//!   When the source's log was pruned, the data those batches left behind is written first
//!   as base batches numbered just below the oldest retained one (after filler batches
//!   that delete a key the empty destination does not hold), and those log entries are
//!   then pruned: `current_sequence`, `oldest_retained_batch`, the retained log and the
//!   data all end up equal to the source's. Filler batches cost one write each: a source pruned up to sequence
//!   `N` costs about `N` writes, so open the destination with `?durability=relaxed` for a
//!   large `N` (verification after the reopen still checks everything).
//! - **State partitions**: the [`Backend`](store_api::Backend) trait cannot list
//!   partitions, so only the partitions named in [`Plan::partitions`] are copied (through
//!   portable snapshots) and verified. A partition not named is not migrated and cannot be
//!   detected.
//! - **Ledger**: the ledger cannot list its books, so the reserved `_system` book (asset
//!   registrations) and the books named in [`Plan::books`] are replayed, event by event in
//!   per-book sequence order from `read_events`, with the destination's clock set to each
//!   event's time: sequence numbers, timestamps, transaction ids, idempotency keys,
//!   metadata and balances all match. A book not named is not migrated.
//! - **Segment logs**: every listed session and segment with its entries and its trace. A
//!   segment holding only trace entries is invisible to the listings (`docs/contract.md` §7.6), so
//!   it cannot be found and is not migrated.
//! - **Side effects**: the API cannot enumerate output slots or inter-call outputs, so
//!   neither is migratable. The inbound call queues of the callees named in
//!   [`Plan::callees`] are copied, except calls made at position `u128::MAX` (the read
//!   bound is exclusive).

mod args;
mod engine;
mod ledger;
mod report;
mod segments;
mod side_effects;
mod state;

use std::sync::Arc;

use store_api::{
    Book, EngineError, LedgerError, LyquidId, ManualClock, SegmentError, SideEffectError,
    StateError, SystemClock, Timestamp,
};

pub use args::{ArgsError, Command, USAGE, parse_args, parse_lyquid};
pub use report::{CopySummary, Difference, MigrationReport, StoreKind};

use crate::config::BackendConfig;
use crate::stores::{Stores, StoresError};

/// Rows read per call while paging through a store.
const PAGE: usize = 512;
/// Differences recorded per store before verification stops looking in that store.
const MAX_DIFFERENCES: usize = 50;

/// What to copy beyond what the stores can enumerate themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// State partitions to copy (the backend cannot list them).
    pub partitions: Vec<String>,
    /// Ledger books to copy besides `_system` (the ledger cannot list them).
    pub books: Vec<Book>,
    /// Callees whose inbound call queues to copy (side effects cannot be enumerated).
    pub callees: Vec<LyquidId>,
}

/// Why a migration stopped. A migration that ran to the end but found differences is not
/// an error: it returns a [`MigrationReport`] listing them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The source could not be opened.
    #[error("cannot open the source {url}: {source}")]
    OpenSource {
        /// The source's URL.
        url: String,
        /// Why.
        #[source]
        source: StoresError,
    },
    /// The destination could not be opened.
    #[error("cannot open the destination {url}: {source}")]
    OpenDestination {
        /// The destination's URL.
        url: String,
        /// Why.
        #[source]
        source: StoresError,
    },
    /// The destination already holds data: migrating into it could mix two histories.
    #[error(
        "the destination's {store} is not empty ({detail}): migrate into a new, empty directory"
    )]
    DestinationNotEmpty {
        /// The store that holds data.
        store: StoreKind,
        /// What it holds.
        detail: String,
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
    /// The destination gave a replayed batch another sequence number.
    #[error("the destination numbered replayed engine batch {expected} as {got}")]
    EngineSequence {
        /// The source's number.
        expected: u64,
        /// The destination's number.
        got: u64,
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
    #[error("replaying event seq {seq} of book {book} failed: {source}")]
    LedgerReplay {
        /// The book.
        book: Book,
        /// The event's sequence number in the source.
        seq: u64,
        /// The destination's error.
        #[source]
        source: Box<LedgerError>,
    },
    /// The engine store failed.
    #[error("engine store: {0}")]
    Engine(#[from] EngineError),
    /// A state partition failed.
    #[error("state partition {partition:?}: {source}")]
    State {
        /// The partition.
        partition: String,
        /// The error.
        #[source]
        source: StateError,
    },
    /// The ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[source] Box<LedgerError>),
    /// The segment log failed.
    #[error("segment log: {0}")]
    Segment(#[from] SegmentError),
    /// The side-effect store failed.
    #[error("side-effect store: {0}")]
    SideEffect(#[from] SideEffectError),
}

impl From<LedgerError> for MigrateError {
    fn from(error: LedgerError) -> Self {
        MigrateError::Ledger(Box::new(error))
    }
}

/// Copies every store of `from` into the empty `to`, following `plan` where the stores
/// cannot enumerate themselves, and says what was copied and what was not.
///
/// `to` must have been opened with `clock` as its clock: the ledger replay sets it to each
/// event's time so timestamps match (and leaves it at the last one: reopen `to` with a
/// real clock before writing to it). Every destination store the plan covers is checked
/// empty first ([`MigrateError::DestinationNotEmpty`]); nothing is written before those
/// checks pass. `from` is only read.
pub fn copy(
    from: &Stores,
    to: &Stores,
    clock: &ManualClock,
    plan: &Plan,
) -> Result<Vec<CopySummary>, MigrateError> {
    let books = ledger::books(plan);
    engine::check_empty(to)?;
    state::check_empty(to, plan)?;
    ledger::check_empty(to, &books)?;
    segments::check_empty(to)?;
    side_effects::check_empty(to, plan)?;
    Ok(vec![
        engine::copy(from, to)?,
        state::copy(from, to, plan)?,
        ledger::copy(from, to, clock, &books)?,
        segments::copy(from, to)?,
        side_effects::copy(from, to, plan)?,
    ])
}

/// Compares every store of `from` and `to` that `plan` covers and returns each difference
/// found (at most 50 per store). Only reads.
pub fn verify(from: &Stores, to: &Stores, plan: &Plan) -> Result<Vec<Difference>, MigrateError> {
    let mut differences = Vec::new();
    engine::verify(from, to, &mut differences)?;
    state::verify(from, to, plan, &mut differences)?;
    ledger::verify(from, to, &ledger::books(plan), &mut differences)?;
    segments::verify(from, to, &mut differences)?;
    side_effects::verify(from, to, plan, &mut differences)?;
    Ok(differences)
}

/// Migrates `from` into `to` (which must be empty) and verifies the copy: opens both,
/// [`copy`]s, reopens `to` when it is persistent so the verification reads what is on
/// disk, then [`verify`]s. The report's [`is_exact`](MigrationReport::is_exact) says
/// whether the copy matched.
pub fn migrate(
    from: &BackendConfig,
    to: &BackendConfig,
    plan: &Plan,
) -> Result<MigrationReport, MigrateError> {
    let source = Stores::open(from).map_err(|source| MigrateError::OpenSource {
        url: from.to_string(),
        source,
    })?;
    let open_destination = |clock: Arc<dyn store_api::Clock>| {
        Stores::open_with_clock(to, clock).map_err(|source| MigrateError::OpenDestination {
            url: to.to_string(),
            source,
        })
    };
    let clock = Arc::new(ManualClock::new(Timestamp::default()));
    let mut destination = open_destination(clock.clone())?;
    let copied = copy(&source, &destination, &clock, plan)?;
    if destination.capabilities().persistent {
        drop(destination);
        destination = open_destination(Arc::new(SystemClock))?;
    }
    let differences = verify(&source, &destination, plan)?;
    Ok(MigrationReport {
        from: from.to_string(),
        to: to.to_string(),
        copied,
        differences,
    })
}

/// Records a difference unless the store already has [`MAX_DIFFERENCES`]; returns whether
/// verification of that store should go on.
fn record(differences: &mut Vec<Difference>, store: StoreKind, detail: String) -> bool {
    let in_store = differences.iter().filter(|d| d.store == store).count();
    if in_store < MAX_DIFFERENCES {
        differences.push(Difference { store, detail });
    }
    in_store + 1 < MAX_DIFFERENCES
}
