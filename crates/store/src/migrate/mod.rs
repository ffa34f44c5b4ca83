//! Copy every store from one backend to another, then verify the copy store by store.
//!
//! [`migrate`] is the whole job (the `store-migrate` binary calls it):
//!
//! 1. The source must already hold a database of its backend: a missing or foreign source
//!    is an error naming the path, and nothing is created ([`MigrateError::SourceMissing`]).
//!    It is opened read-only wherever its backend can (contract §1.3), so its files are
//!    left byte-identical; read-write only where the backend cannot open read-only (sled, fjall)
//!    or the store needs recovery after an unclean shutdown that a read-only open cannot
//!    run (redb). Every report says which ([`SourceAccess`]).
//! 2. The destination must be absent, an empty directory or an empty database, unless
//!    [`Options::into_existing`] (then each store to copy must still be empty there:
//!    nothing is ever merged or overwritten). A destination an interrupted migration left
//!    is refused ([`MigrateError::DestinationUnfinished`]).
//! 3. The destination is opened `Relaxed` (no `fsync` per write, however many batches)
//!    and marked incomplete with a [`MIGRATING_FILE`] file beside the backend's files.
//! 4. Every store is copied ([`copy`]), then the destination is closed, which makes every
//!    write durable at once (contract §1.6), and reopened as its URL says.
//! 5. Every store is compared ([`verify`]): counts and a SHA-256 digest per store on both
//!    sides, streamed a page at a time, and the first differences named. Only when every
//!    store matches is the marker removed.
//!
//! A copy killed at any point (SIGINT, SIGKILL, a full disk) therefore leaves a
//! destination that still carries the marker: [`migrate`] refuses it and says so, and
//! [`verify_only`] reports it unfinished. Remove such a directory and migrate again.
//!
//! # What is copied, store by store
//! By default everything every store lists (contract §9.1); a [`Plan`] narrows it.
//! - **Engine**: the retained batch log applied batch by batch with `apply_batch` under
//!   the source's sequence numbers (contract §3.7), so data, log entries,
//!   `current_sequence` and `oldest_retained_batch` match. Batches pruned from the source
//!   are gone: the data they left is written as base batches numbered below the oldest
//!   retained one, the remaining numbers as empty filler batches, and those log entries
//!   are pruned again; the report says so.
//! - **State**: every partition holding data, through portable snapshots, one at a time.
//! - **Ledger**: `_system` (asset registrations) first, then every book, event by event
//!   in sequence order with the destination's clock set to each event's time: sequence
//!   numbers, timestamps, transaction ids, idempotency keys, metadata and balances match.
//! - **Segment log**: every session and segment with its entries and trace entries. A
//!   segment holding only trace entries is not listed (contract §7.6), so it cannot be
//!   found; every report says so.
//! - **Side effects**: every output slot, inter-call output and inbound call queue.

mod compare;
pub(crate) mod dirs;
mod engine;
mod error;
mod ledger;
mod progress;
mod report;
mod segments;
mod side_effects;
mod state;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use store_api::{
    Book, Clock, Durability, LyquidId, ManualClock, OpenError, SessionId, SystemClock, Timestamp,
};

pub use dirs::MIGRATING_FILE;
pub use error::MigrateError;
pub use progress::{NoProgress, Phase, Progress};
pub use report::{
    CopySummary, Counts, DestinationState, DryRunReport, MigrationReport, ReportKind, SourceAccess,
    StoreCheck, StoreKind, Tally,
};

use crate::config::BackendConfig;
use crate::stores::{Stores, StoresError};

/// Rows read per call while paging through a listing.
const PAGE: usize = 512;

/// What to copy. Empty everywhere (the default) means everything; each non-empty field
/// narrows one store (or, for `stores`, which stores are copied at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The stores to copy; empty: all five.
    pub stores: Vec<StoreKind>,
    /// The state partitions to copy; empty: every partition.
    pub partitions: Vec<String>,
    /// The ledger books to copy besides `_system` (always copied: it registers the
    /// assets); empty: every book.
    pub books: Vec<Book>,
    /// The segment-log sessions to copy; empty: every session.
    pub sessions: Vec<SessionId>,
    /// The Lyquids whose side effects (output slots, inter-call outputs and inbound calls,
    /// by the slot's Lyquid and the call's callee) to copy; empty: all.
    pub callees: Vec<LyquidId>,
}

impl Plan {
    /// Whether `store` is copied.
    pub fn covers(&self, store: StoreKind) -> bool {
        self.stores.is_empty() || self.stores.contains(&store)
    }

    /// The stores copied, in copying order.
    fn covered(&self) -> impl Iterator<Item = StoreKind> + '_ {
        StoreKind::ALL
            .into_iter()
            .filter(|store| self.covers(*store))
    }

    /// How this plan narrows a full copy, in words (empty: it does not).
    pub fn narrowing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.stores.is_empty() {
            let names: Vec<&str> = self.covered().map(StoreKind::name).collect();
            out.push(format!("stores {}", names.join(", ")));
        }
        let list = |items: Vec<String>| items.join(", ");
        if !self.partitions.is_empty() {
            out.push(format!(
                "state partitions {}",
                list(self.partitions.clone())
            ));
        }
        if !self.books.is_empty() {
            let books = self.books.iter().map(Book::to_string).collect();
            out.push(format!("ledger books _system, {}", list(books)));
        }
        if !self.sessions.is_empty() {
            let sessions = self.sessions.iter().map(SessionId::to_string).collect();
            out.push(format!("sessions {}", list(sessions)));
        }
        if !self.callees.is_empty() {
            let lyquids = self.callees.iter().map(LyquidId::to_string).collect();
            out.push(format!("side effects of Lyquids {}", list(lyquids)));
        }
        out
    }
}

/// How [`migrate`] treats the destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Accept a destination that already holds data, as long as every store to copy is
    /// empty there (`--into-existing`).
    pub into_existing: bool,
}

/// Every item of a paged listing: `fetch(after, limit)` gives one page after the exclusive
/// cursor, `cursor_of` makes the cursor of an item.
fn paged<T, C, E>(
    mut fetch: impl FnMut(Option<&C>, usize) -> Result<Vec<T>, E>,
    cursor_of: impl Fn(&T) -> C,
) -> impl Iterator<Item = Result<T, E>> {
    let mut cursor: Option<C> = None;
    let mut page = VecDeque::new();
    let mut done = false;
    std::iter::from_fn(move || {
        if page.is_empty() && !done {
            match fetch(cursor.as_ref(), PAGE) {
                Ok(items) => {
                    done = items.len() < PAGE;
                    if let Some(last) = items.last() {
                        cursor = Some(cursor_of(last));
                    }
                    page.extend(items);
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        }
        page.pop_front().map(Ok)
    })
}

/// What `store` of `stores` holds, in a few words; `None` when it is empty.
fn store_holds(stores: &Stores, store: StoreKind) -> Result<Option<String>, MigrateError> {
    match store {
        StoreKind::Engine => engine::holds(stores),
        StoreKind::State => state::holds(stores),
        StoreKind::Ledger => ledger::holds(stores),
        StoreKind::Segments => segments::holds(stores),
        StoreKind::SideEffects => side_effects::holds(stores),
    }
}

/// What each store of `stores` holds, for the stores that hold anything.
pub fn holdings(stores: &Stores) -> Result<Vec<(StoreKind, String)>, MigrateError> {
    let mut out = Vec::new();
    for store in StoreKind::ALL {
        if let Some(holds) = store_holds(stores, store)? {
            out.push((store, holds));
        }
    }
    Ok(out)
}

/// Refuses a plan naming a partition, book, session or Lyquid the source does not hold (a
/// typo would otherwise copy nothing of it, silently).
pub fn check_plan(from: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    for store in plan.covered() {
        match store {
            StoreKind::Engine => {}
            StoreKind::State => state::check_named(from, plan)?,
            StoreKind::Ledger => ledger::check_named(from, plan)?,
            StoreKind::Segments => segments::check_named(from, plan)?,
            StoreKind::SideEffects => side_effects::check_named(from, plan)?,
        }
    }
    Ok(())
}

/// Copies every store `plan` covers from `from` into `to`, and says what was copied, what
/// was handled specially and what cannot be copied.
///
/// `to` must have been opened with `clock` as its clock: the ledger replay sets it to each
/// event's time so timestamps match (and leaves it at the last one: reopen `to` with a
/// real clock before writing to it). Every store the plan covers must be empty in `to`
/// ([`MigrateError::DestinationStoreNotEmpty`]) and every item it names must be in `from`
/// ([`MigrateError::NotInSource`]); nothing is written before those checks pass. `from`
/// is only read. Writes are as durable as `to`'s durability mode makes them: open it
/// `Relaxed` and close it afterwards to copy at bulk speed, as [`migrate`] does.
pub fn copy(
    from: &Stores,
    to: &Stores,
    clock: &ManualClock,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<Vec<CopySummary>, MigrateError> {
    check_plan(from, plan)?;
    for store in plan.covered() {
        if let Some(holds) = store_holds(to, store)? {
            return Err(MigrateError::DestinationStoreNotEmpty { store, holds });
        }
    }
    plan.covered()
        .map(|store| {
            let _span = tracing::info_span!("copy", %store).entered();
            let started = Instant::now();
            let summary = match store {
                StoreKind::Engine => engine::copy(from, to, progress),
                StoreKind::State => state::copy(from, to, plan, progress),
                StoreKind::Ledger => ledger::copy(from, to, clock, plan, progress),
                StoreKind::Segments => segments::copy(from, to, plan, progress),
                StoreKind::SideEffects => side_effects::copy(from, to, plan, progress),
            }?;
            tracing::info!(
                counts = %summary.counts,
                seconds = started.elapsed().as_secs_f64(),
                "store copied"
            );
            Ok(summary)
        })
        .collect()
}

/// Compares every store `plan` covers on `from` and `to`, streaming both at once: counts,
/// a digest per side and the first differences of each store. Only reads.
pub fn verify(
    from: &Stores,
    to: &Stores,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<Vec<StoreCheck>, MigrateError> {
    use compare::compare;
    plan.covered()
        .map(|store| match store {
            StoreKind::Engine => compare(store, from, to, plan, engine::walk, progress),
            StoreKind::State => compare(store, from, to, plan, state::walk, progress),
            StoreKind::Ledger => compare(store, from, to, plan, ledger::walk, progress),
            StoreKind::Segments => compare(store, from, to, plan, segments::walk, progress),
            StoreKind::SideEffects => compare(store, from, to, plan, side_effects::walk, progress),
        })
        .collect()
}

/// Counts what [`copy`] would copy from `from`, with what it would handle specially and
/// what it cannot copy. Only reads.
pub fn survey(
    from: &Stores,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<Vec<CopySummary>, MigrateError> {
    use compare::survey as count;
    plan.covered()
        .map(|store| {
            let (counts, handled, not_migrated) = match store {
                StoreKind::Engine => (
                    count(store, from, plan, engine::walk, progress)?,
                    engine::caveats(from)?,
                    Vec::new(),
                ),
                StoreKind::State => (
                    count(store, from, plan, state::walk, progress)?,
                    Vec::new(),
                    Vec::new(),
                ),
                StoreKind::Ledger => (
                    count(store, from, plan, ledger::walk, progress)?,
                    Vec::new(),
                    Vec::new(),
                ),
                StoreKind::Segments => (
                    count(store, from, plan, segments::walk, progress)?,
                    Vec::new(),
                    vec![segments::TRACE_ONLY_NOTE.to_owned()],
                ),
                StoreKind::SideEffects => (
                    count(store, from, plan, side_effects::walk, progress)?,
                    Vec::new(),
                    Vec::new(),
                ),
            };
            Ok(CopySummary {
                store,
                counts,
                handled,
                not_migrated,
            })
        })
        .collect()
}

/// Opens the source without ever creating it (a mistyped path is an error naming it, not
/// an empty store "copied" successfully), read-only wherever its backend can, and says how
/// it was opened. An in-memory source is a new, empty store.
fn open_source(from: &BackendConfig) -> Result<(Stores, SourceAccess), MigrateError> {
    let open = |read_only: bool| {
        Stores::open_adjusted(from, |options| {
            options.create_if_missing(false).read_only(read_only)
        })
    };
    let open_error = |source| MigrateError::OpenSource {
        url: from.to_string(),
        source,
    };
    let capabilities = crate::stores::capabilities_of(from.kind());
    if capabilities.is_some_and(|caps| !caps.persistent) {
        let stores = Stores::open(from).map_err(open_error)?;
        return Ok((stores, SourceAccess::InMemory));
    }
    let refused = if capabilities.is_none_or(|caps| caps.read_only_open) {
        match open(true) {
            Ok(stores) => return Ok((stores, SourceAccess::ReadOnly)),
            Err(refused) => Some(refused),
        }
    } else {
        None
    };
    let access = read_write_instead(refused).map_err(open_error)?;
    Ok((open(false).map_err(open_error)?, access))
}

/// Why the source is opened read-write rather than read-only, given how the read-only open
/// was `refused` (`None`: none was tried, because the backend cannot open a store
/// read-only, `Capabilities::read_only_open`: sled, fjall).
///
/// The one refusal that falls back to read-write is a store that needs recovery after an
/// unclean shutdown (`OpenError::NeedsRecovery`, redb): its read-only open cannot run the
/// recovery, a read-write open does, and the report says so. Every other refusal is the
/// migration's error, returned as it is: a read-write open would not make a missing,
/// locked, damaged or foreign source readable, and might write to it.
fn read_write_instead(refused: Option<StoresError>) -> Result<SourceAccess, StoresError> {
    match refused {
        None => Ok(SourceAccess::ReadWriteNoReadOnlyOpen),
        Some(StoresError::Open {
            source: OpenError::NeedsRecovery { .. },
            ..
        }) => Ok(SourceAccess::ReadWriteToRecover),
        Some(other) => Err(other),
    }
}

fn open_destination(to: &BackendConfig, clock: Arc<dyn Clock>) -> Result<Stores, MigrateError> {
    Stores::open_with_clock(to, clock).map_err(|source| MigrateError::OpenDestination {
        url: to.to_string(),
        source,
    })
}

/// The destination as the copy opens it: `Relaxed`, so no write waits for an `fsync`
/// (however many filler batches a pruned log needs); closing it afterwards makes every
/// write durable at once.
fn bulk(to: &BackendConfig) -> BackendConfig {
    to.clone().with_durability(Durability::Relaxed)
}

/// Checks `from` and `to` as [`migrate`] does before it opens anything.
fn check_paths(from: &BackendConfig, to: &BackendConfig) -> Result<DestinationState, MigrateError> {
    dirs::check_source(from)?;
    dirs::check_distinct(from, to)?;
    dirs::probe_destination(to)
}

/// Refuses a destination holding data unless `options` allow it, and then still one whose
/// stores to copy are not all empty; returns its state. Runs before anything is written.
fn check_destination(
    destination: &Stores,
    to: &BackendConfig,
    state: DestinationState,
    plan: &Plan,
    options: Options,
) -> Result<DestinationState, MigrateError> {
    let holds = holdings(destination)?;
    if holds.is_empty() {
        return Ok(state);
    }
    if !options.into_existing {
        let holds: Vec<String> = holds
            .into_iter()
            .map(|(store, what)| format!("{store}: {what}"))
            .collect();
        return Err(MigrateError::DestinationNotEmpty {
            url: to.to_string(),
            holds: holds.join("; "),
        });
    }
    if let Some((store, holds)) = holds.into_iter().find(|(store, _)| plan.covers(*store)) {
        return Err(MigrateError::DestinationStoreNotEmpty { store, holds });
    }
    Ok(DestinationState::ExistingDatabase)
}

/// Migrates `from` into `to` and verifies the copy; see the [module docs](self) for each
/// step. The report's [`is_exact`](MigrationReport::is_exact) says whether the copy
/// matched; when it did not, the destination keeps its [`MIGRATING_FILE`] marker.
pub fn migrate(
    from: &BackendConfig,
    to: &BackendConfig,
    plan: &Plan,
    options: Options,
    progress: &dyn Progress,
) -> Result<MigrationReport, MigrateError> {
    let state = check_paths(from, to)?;
    let (source, source_access) = open_source(from)?;
    check_plan(&source, plan)?;
    let clock = Arc::new(ManualClock::new(Timestamp::default()));
    let mut destination = open_destination(&bulk(to), clock.clone())?;
    let state = check_destination(&destination, to, state, plan, options)?;
    dirs::mark(to, from)?;
    let copied = copy(&source, &destination, &clock, plan, progress)?;
    if destination.capabilities().persistent {
        // Closing makes every write durable at once; verification reads what a reopen
        // finds, with the durability the URL asks for.
        drop(destination);
        destination = open_destination(to, Arc::new(SystemClock))?;
    }
    let checks = verify(&source, &destination, plan, progress)?;
    let unfinished = if checks.iter().all(StoreCheck::matches) {
        dirs::unmark(to)?;
        None
    } else {
        to.dir().map(|dir| {
            format!(
                "{} is left in {}: the copy does not match, so the destination stays \
                 marked incomplete",
                MIGRATING_FILE,
                dir.display()
            )
        })
    };
    Ok(MigrationReport {
        kind: ReportKind::Migration,
        from: from.to_string(),
        to: to.to_string(),
        source: source_access,
        destination: Some(state),
        narrowed: plan.narrowing(),
        copied,
        checks,
        unfinished,
    })
}

/// Says what [`migrate`] would copy, with counts, after the same checks, and writes
/// nothing to the destination: one that does not exist yet is not created. The source is
/// opened as [`migrate`] opens it (read-write where the report says so).
pub fn dry_run(
    from: &BackendConfig,
    to: &BackendConfig,
    plan: &Plan,
    options: Options,
    progress: &dyn Progress,
) -> Result<DryRunReport, MigrateError> {
    let mut state = check_paths(from, to)?;
    let (source, source_access) = open_source(from)?;
    check_plan(&source, plan)?;
    if state == DestinationState::EmptyDatabase {
        // Something is there: open it (it exists, so nothing is created) to see what.
        let destination = open_destination(to, Arc::new(SystemClock))?;
        state = check_destination(&destination, to, state, plan, options)?;
    }
    Ok(DryRunReport {
        from: from.to_string(),
        to: to.to_string(),
        source: source_access,
        destination: state,
        narrowed: plan.narrowing(),
        would_copy: survey(&source, plan, progress)?,
    })
}

/// Compares an existing destination with its source, as the end of [`migrate`] does, and
/// writes nothing. A destination still marked [`MIGRATING_FILE`] is reported unfinished
/// (not exact) whatever the comparison finds.
pub fn verify_only(
    from: &BackendConfig,
    to: &BackendConfig,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<MigrationReport, MigrateError> {
    dirs::check_source(from)?;
    dirs::check_distinct(from, to)?;
    dirs::check_destination_exists(to)?;
    let (source, source_access) = open_source(from)?;
    check_plan(&source, plan)?;
    let destination = open_destination(to, Arc::new(SystemClock))?;
    let checks = verify(&source, &destination, plan, progress)?;
    let unfinished = dirs::unfinished(to)?.map(|note| {
        format!(
            "the destination carries the {MIGRATING_FILE} marker of a migration that never \
             passed verification ({note}); remove the directory and migrate again"
        )
    });
    Ok(MigrationReport {
        kind: ReportKind::Verification,
        from: from.to_string(),
        to: to.to_string(),
        source: source_access,
        destination: None,
        narrowed: plan.narrowing(),
        copied: Vec::new(),
        checks,
        unfinished,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_writes_relaxed_whatever_the_url_says() {
        let to: BackendConfig = "redb:/srv/copy?cache=7".parse().unwrap();
        assert_eq!(to.durability(), Durability::Immediate);
        let bulk = bulk(&to);
        assert_eq!(bulk.durability(), Durability::Relaxed);
        assert_eq!(bulk, to.with_durability(Durability::Relaxed));
    }

    #[test]
    fn only_a_source_needing_recovery_falls_back_to_read_write() {
        use crate::config::BackendKind;
        let refused = |source| StoresError::Open {
            backend: BackendKind::Redb,
            source,
        };
        let path = std::path::PathBuf::from("/data/orders/store.redb");
        assert!(matches!(
            read_write_instead(None),
            Ok(SourceAccess::ReadWriteNoReadOnlyOpen)
        ));
        assert!(matches!(
            read_write_instead(Some(refused(OpenError::NeedsRecovery {
                path: path.clone()
            }))),
            Ok(SourceAccess::ReadWriteToRecover)
        ));
        let others = [
            OpenError::Locked { path: path.clone() },
            OpenError::NotFound {
                location: "/data/ordrs".into(),
            },
            OpenError::Corrupted {
                path: path.clone(),
                source: "bad checksum".into(),
            },
            OpenError::Unsupported {
                backend: "sled",
                what: "read-only opens".into(),
            },
        ];
        for other in others {
            let kept = format!("{other:?}");
            match read_write_instead(Some(refused(other))) {
                Err(StoresError::Open { source, .. }) => assert_eq!(format!("{source:?}"), kept),
                unexpected => panic!("{kept} gave {unexpected:?}"),
            }
        }
    }

    #[test]
    fn a_plan_says_how_it_narrows() {
        assert!(Plan::default().narrowing().is_empty());
        let plan = Plan {
            stores: vec![StoreKind::Ledger, StoreKind::Engine],
            books: vec![Book::new("shop").unwrap()],
            ..Plan::default()
        };
        assert_eq!(
            plan.narrowing(),
            ["stores engine, ledger", "ledger books _system, shop"]
        );
        assert!(plan.covers(StoreKind::Engine) && !plan.covers(StoreKind::State));
    }
}
