//! The gate of an open backend: whether it accepts writes, and whether it is still open.
//!
//! # Poisoning
//! A write whose durability step fails (a full disk, an I/O error, a failed `fsync`) may
//! leave data visible that is not on disk: sled commits in memory before it flushes, and
//! after a failed `fsync` the kernel may have dropped the dirty pages of earlier writes
//! (the PostgreSQL "fsyncgate" lesson). Acknowledging anything after that, even an
//! idempotent replay that finds its data already there, could report as durable what a
//! reopen will not find. So the first such failure *poisons* the gate, and every later
//! write of every store of the backend is refused with
//! [`StorageErrorKind::Poisoned`] until the backend is reopened. Reads are not gated:
//! they keep working.
//!
//! Each backend owns one gate, checks it under its writer lock before planning a write
//! (so a replay is refused too), and reports its write failures through
//! [`WriteGate::observe`], which poisons on failures that leave the disk in doubt
//! ([`StorageErrorKind::Io`]). A backend whose engine shows a write before it is durable
//! (sled) poisons on any failure of that step with [`WriteGate::poison`]. A full disk
//! ([`StorageErrorKind::NoSpace`]) poisons only there: engines that abort the transaction
//! on it (redb, LMDB, SQLite) keep nothing of the failed write.
//!
//! # Location
//! A gate knows where its backend's store lives ([`with_location`](WriteGate::with_location)):
//! the errors it builds name it, and [`locate`](WriteGate::locate) adds it to the errors
//! the stores underneath return, at the one place they leave the backend
//! ([`Gated`](crate::gated::Gated), [`BufferedState`](crate::state::BufferedState)).
//!
//! # Read-only and closed
//! A backend opened read-only refuses every write with [`StorageErrorKind::ReadOnly`]
//! before it reaches the engine. Once [`close`](WriteGate::close)d, the gate refuses reads
//! too, with [`StorageErrorKind::Closed`]: that is how every handle a caller still holds
//! learns of the close, including the paths that never reach the engine (a state
//! partition's in-memory reads, the side-effect cache). The engine's own handle lives in
//! an [`EngineSlot`], which `close` empties once the calls in progress are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};
use store_api::{StorageError, StorageErrorKind, StoreError};

/// Whether a backend accepts writes and reads; see the [module docs](self).
#[derive(Debug)]
pub struct WriteGate {
    backend: &'static str,
    /// Where the backend's store lives, for its errors; `None` for the in-memory backend.
    location: Option<Arc<String>>,
    read_only: bool,
    closed: AtomicBool,
    poisoned: AtomicBool,
    /// What poisoned the gate, for the refusals' message.
    cause: Mutex<Option<String>>,
}

impl WriteGate {
    /// An open gate of `backend`, accepting writes.
    pub fn new(backend: &'static str) -> Self {
        WriteGate {
            backend,
            location: None,
            read_only: false,
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            cause: Mutex::new(None),
        }
    }

    /// The same gate, refusing every write with [`StorageErrorKind::ReadOnly`] when
    /// `read_only` (a backend opened with `OpenOptions::read_only`).
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The same gate, naming `location` (a directory, or a server URL without its
    /// password) in its errors and in those [`locate`](Self::locate) passes through.
    pub fn with_location(mut self, location: impl Into<Arc<String>>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Where the backend's store lives, as its errors name it.
    pub fn location(&self) -> Option<&Arc<String>> {
        self.location.as_ref()
    }

    /// `error`, naming this backend's location when it is an engine failure that names
    /// none yet: what every store of the backend passes its errors through. Only a
    /// failing call pays for it.
    #[cold]
    #[inline(never)]
    pub fn locate<E: StoreError>(&self, error: E) -> E {
        match &self.location {
            Some(location) => error.located(location),
            None => error,
        }
    }

    /// What `call` returns, its error naming this backend's location: for the backend's
    /// own calls that do not go through a [`Gated`](crate::gated::Gated) store (opening a
    /// state partition, listing partitions, closing).
    #[inline]
    pub fn locating<T, E: StoreError>(&self, call: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        call().map_err(|e| self.locate(e))
    }

    /// `Ok` while writes are accepted; otherwise the reason, in this order: the backend is
    /// closed ([`StorageErrorKind::Closed`]), read-only ([`StorageErrorKind::ReadOnly`]),
    /// or poisoned ([`StorageErrorKind::Poisoned`], naming the first failure).
    #[inline]
    pub fn check(&self) -> Result<(), StorageError> {
        self.check_open()?;
        if self.read_only {
            return Err(self.read_only_refusal());
        }
        if self.poisoned.load(Ordering::Acquire) {
            Err(self.refusal())
        } else {
            Ok(())
        }
    }

    /// `Ok` while the backend is open (reads are accepted); a
    /// [`StorageErrorKind::Closed`] error once it is closed.
    #[inline(always)]
    pub fn check_open(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            Err(self.closed_refusal())
        } else {
            Ok(())
        }
    }

    /// `Ok` while the backend is open and not poisoned, whatever its open mode: the check
    /// of a backend that refuses reads after a failed write (sled), where a read-only open
    /// must still read.
    #[inline]
    pub fn check_unpoisoned(&self) -> Result<(), StorageError> {
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            Err(self.refusal())
        } else {
            Ok(())
        }
    }

    /// Whether the backend was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Marks the backend closed: every later check fails with
    /// [`StorageErrorKind::Closed`]. Returns `true` the first time, `false` when it was
    /// already closed (a second `close` has nothing to do).
    pub fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Whether the backend is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the gate refuses writes.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Refuses every later write: `cause` failed after its data may have become visible.
    /// The first cause is the one later refusals name.
    pub fn poison(&self, cause: &StorageError) {
        let mut first = self.cause.lock();
        if first.is_none() {
            *first = Some(store_api::error_chain(cause));
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// Passes a write's failure through, poisoning the gate when it leaves the disk in
    /// doubt (kind [`StorageErrorKind::Io`]).
    pub fn observe(&self, error: StorageError) -> StorageError {
        if error.kind() == StorageErrorKind::Io {
            self.poison(&error);
        }
        error
    }

    /// `error` as [`StorageErrorKind::NoSpace`] when it is a plain I/O error and the
    /// filesystem holding `dir` has (almost) no space left: some engines report a write cut
    /// short by a full disk as `EIO` (LMDB does), which would otherwise read as a broken
    /// disk and poison the backend.
    pub fn classify_full_disk(error: StorageError, dir: &std::path::Path) -> StorageError {
        if error.kind() == StorageErrorKind::Io && crate::dir::nearly_full(dir) {
            error.with_kind(StorageErrorKind::NoSpace)
        } else {
            error
        }
    }

    /// The error of a call to a closed backend. Out of line, like the other refusals, so
    /// the checks inlined into every call stay one load and one branch.
    #[cold]
    #[inline(never)]
    fn closed_refusal(&self) -> StorageError {
        self.locate(closed_error(self.backend))
    }

    /// The error of a write to a read-only backend.
    #[cold]
    #[inline(never)]
    fn read_only_refusal(&self) -> StorageError {
        self.locate(read_only_error(self.backend))
    }

    #[cold]
    #[inline(never)]
    fn refusal(&self) -> StorageError {
        let cause = self
            .cause
            .lock()
            .clone()
            .unwrap_or_else(|| "an earlier write failed".to_owned());
        self.locate(StorageError::new(
            self.backend,
            StorageErrorKind::Poisoned,
            "refusing a write: an earlier durability step failed, so acknowledged data may \
             not be on disk; reopen the backend",
            cause,
        ))
    }
}

/// The error every handle of a closed backend answers.
pub fn closed_error(backend: &'static str) -> StorageError {
    StorageError::without_source(
        backend,
        StorageErrorKind::Closed,
        "the backend was closed; open it again to use its stores",
    )
}

/// The error every write of a read-only backend answers.
pub fn read_only_error(backend: &'static str) -> StorageError {
    StorageError::without_source(
        backend,
        StorageErrorKind::ReadOnly,
        "refusing a write: the backend was opened read-only",
    )
}

/// The engine handle of an open backend (a database, an environment, a connection pool),
/// which [`take`](Self::take) removes when the backend closes, so that the files and locks
/// it holds are released even while callers keep the stores' `Arc`s.
///
/// Every use of the engine goes through [`get`](Self::get), which holds a read guard for
/// as long as the caller keeps it: `take` waits for those guards, so a call in progress
/// finishes before the engine is closed, and every call after answers
/// [`StorageErrorKind::Closed`]. The guard is recursive (a call may nest a second `get`
/// while `take` waits) and costs one uncontended atomic read-modify-write.
#[derive(Debug)]
pub struct EngineSlot<T> {
    backend: &'static str,
    engine: RwLock<Option<T>>,
}

impl<T> EngineSlot<T> {
    /// A slot holding `engine`, the open engine of `backend`.
    pub fn new(backend: &'static str, engine: T) -> Self {
        EngineSlot {
            backend,
            engine: RwLock::new(Some(engine)),
        }
    }

    /// The engine, held until the guard drops; [`StorageErrorKind::Closed`] once taken.
    #[inline]
    pub fn get(&self) -> Result<MappedRwLockReadGuard<'_, T>, StorageError> {
        RwLockReadGuard::try_map(self.engine.read_recursive(), Option::as_ref)
            .map_err(|_| closed_error(self.backend))
    }

    /// Takes the engine out, once every guard of a call in progress is dropped; `None`
    /// when it was already taken. Later [`get`](Self::get)s answer
    /// [`StorageErrorKind::Closed`].
    pub fn take(&self) -> Option<T> {
        self.engine.write().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error() -> StorageError {
        StorageError::new(
            "t",
            StorageErrorKind::Io,
            "syncing",
            std::io::Error::other("fsync failed"),
        )
    }

    #[test]
    fn an_io_failure_poisons_and_names_the_first_cause() {
        let gate = WriteGate::new("t");
        assert!(gate.check().is_ok());
        let _ = gate.observe(io_error());
        gate.poison(&StorageError::without_source(
            "t",
            StorageErrorKind::Io,
            "a second failure",
        ));
        let refused = gate.check().unwrap_err();
        assert_eq!(refused.kind(), StorageErrorKind::Poisoned);
        let text = store_api::error_chain(&refused);
        assert!(text.contains("fsync failed"), "{text}");
        assert!(!text.contains("a second failure"), "{text}");
    }

    #[test]
    fn a_closed_gate_refuses_reads_and_writes_and_closes_once() {
        let gate = WriteGate::new("t");
        assert!(gate.close());
        assert!(!gate.close());
        assert_eq!(gate.check().unwrap_err().kind(), StorageErrorKind::Closed);
        assert_eq!(
            gate.check_open().unwrap_err().kind(),
            StorageErrorKind::Closed
        );
    }

    #[test]
    fn a_read_only_gate_refuses_writes_only() {
        let gate = WriteGate::new("t").with_read_only(true);
        assert!(gate.check_open().is_ok());
        assert_eq!(gate.check().unwrap_err().kind(), StorageErrorKind::ReadOnly);
    }

    #[test]
    fn a_taken_slot_answers_closed_after_the_guards_in_progress() {
        let slot = EngineSlot::new("t", 7_u32);
        {
            let engine = slot.get().unwrap();
            assert_eq!(*engine, 7);
            let nested = slot.get().unwrap();
            assert_eq!(*nested, 7);
        }
        assert_eq!(slot.take(), Some(7));
        assert_eq!(slot.take(), None);
        assert_eq!(slot.get().unwrap_err().kind(), StorageErrorKind::Closed);
    }

    #[test]
    fn a_located_gate_names_its_location_in_every_refusal_and_passed_error() {
        let gate = WriteGate::new("t")
            .with_read_only(true)
            .with_location("/data/t".to_owned());
        let read_only = gate.check().unwrap_err();
        assert_eq!(read_only.location(), Some("/data/t"));
        assert!(read_only.to_string().starts_with("t store at /data/t: "));
        let passed = gate.locate(store_api::EngineError::Storage(io_error()));
        assert_eq!(
            store_api::StoreError::storage(&passed).and_then(StorageError::location),
            Some("/data/t")
        );
        gate.close();
        assert_eq!(gate.check_open().unwrap_err().location(), Some("/data/t"));
        let unplaced = WriteGate::new("t");
        unplaced.close();
        assert_eq!(unplaced.check_open().unwrap_err().location(), None);
    }

    #[test]
    fn a_full_disk_or_an_engine_refusal_does_not_poison() {
        let gate = WriteGate::new("t");
        for kind in [StorageErrorKind::NoSpace, StorageErrorKind::Engine] {
            let _ = gate.observe(StorageError::without_source("t", kind, "writing"));
        }
        assert!(gate.check().is_ok());
        assert!(!gate.is_poisoned());
    }
}
