//! Progress of a long migration, reported as it goes: the `store-migrate` binary draws
//! it (bars on a terminal, plain lines otherwise); a library caller may ignore it.

use super::report::StoreKind;

/// What a migration is doing with a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Counting what a dry run would copy.
    Survey,
    /// Copying into the destination.
    Copy,
    /// Comparing the source and the destination.
    Verify,
}

impl Phase {
    /// The phase as a verb: `surveying`, `copying`, `verifying`.
    pub const fn verb(self) -> &'static str {
        match self {
            Phase::Survey => "surveying",
            Phase::Copy => "copying",
            Phase::Verify => "verifying",
        }
    }
}

/// Receives a migration's progress. Every call comes from the thread that called
/// [`migrate`](super::migrate) (or the other entry points), in order: `begin`, any number
/// of `advance`, `end`, store after store. The methods do nothing by default.
pub trait Progress {
    /// `phase` of `store` starts.
    fn begin(&self, phase: Phase, store: StoreKind) {
        let _ = (phase, store);
    }

    /// `items` more items (keys, batches, events, segments, slots, ...) were handled.
    fn advance(&self, phase: Phase, store: StoreKind, items: u64) {
        let _ = (phase, store, items);
    }

    /// `phase` of `store` is over.
    fn end(&self, phase: Phase, store: StoreKind) {
        let _ = (phase, store);
    }
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// The progress of one phase of one store, ended when dropped (also on an early return).
pub(super) struct Step<'p> {
    progress: &'p dyn Progress,
    phase: Phase,
    store: StoreKind,
}

impl<'p> Step<'p> {
    pub(super) fn begin(progress: &'p dyn Progress, phase: Phase, store: StoreKind) -> Self {
        progress.begin(phase, store);
        Step {
            progress,
            phase,
            store,
        }
    }

    pub(super) fn advance(&self, items: u64) {
        self.progress.advance(self.phase, self.store, items);
    }
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        self.progress.end(self.phase, self.store);
    }
}
