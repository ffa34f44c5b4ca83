//! The write gate of an open backend: whether it still accepts writes.
//!
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

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use store_api::{StorageError, StorageErrorKind};

/// Whether a backend accepts writes; see the [module docs](self).
#[derive(Debug)]
pub struct WriteGate {
    backend: &'static str,
    poisoned: AtomicBool,
    /// What poisoned the gate, for the refusals' message.
    cause: Mutex<Option<String>>,
}

impl WriteGate {
    /// An open gate of `backend`.
    pub fn new(backend: &'static str) -> Self {
        WriteGate {
            backend,
            poisoned: AtomicBool::new(false),
            cause: Mutex::new(None),
        }
    }

    /// `Ok` while writes are accepted; a [`StorageErrorKind::Poisoned`] error naming the
    /// first failure once the gate is poisoned.
    #[inline]
    pub fn check(&self) -> Result<(), StorageError> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(self.refusal())
        } else {
            Ok(())
        }
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

    fn refusal(&self) -> StorageError {
        let cause = self
            .cause
            .lock()
            .clone()
            .unwrap_or_else(|| "an earlier write failed".to_owned());
        StorageError::new(
            self.backend,
            StorageErrorKind::Poisoned,
            "refusing a write: an earlier durability step failed, so acknowledged data may \
             not be on disk; reopen the backend",
            cause,
        )
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
    fn a_full_disk_or_an_engine_refusal_does_not_poison() {
        let gate = WriteGate::new("t");
        for kind in [StorageErrorKind::NoSpace, StorageErrorKind::Engine] {
            let _ = gate.observe(StorageError::without_source("t", kind, "writing"));
        }
        assert!(gate.check().is_ok());
        assert!(!gate.is_poisoned());
    }
}
