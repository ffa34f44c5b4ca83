//! The open sled database, and how the backend lets go of it.
//!
//! sled 0.34.7 shuts its log down when the last handle on the database is dropped, and
//! that shutdown ends with `self.config.file.sync_all().unwrap()` (`Log::drop`,
//! `pagecache/logger.rs:467`) unless sled has already recorded an I/O error of its own.
//! On a disk that has started failing (`EIO` after a power loss, a dead device) the
//! `unwrap` panics, and a drop while the thread is already unwinding aborts the whole
//! process. Any caller could hit it: a backend dropped after its disk failed, or an open
//! whose steps after sled's own open fail, which drops the half-opened database.
//!
//! [`SledDb`] owns the database and decides at its drop, by asking the disk first: it
//! `fsync`s sled's log file through a handle of its own. When the disk answers, the
//! database drops as usual (sled flushes and syncs) and the clean-close seal is written.
//! When it does not, the database is deliberately leaked: sled's handle count never
//! reaches zero, so its failing shutdown never runs, and no seal is written (nothing
//! written since is known to be on disk). The leak is the price of not panicking on a
//! dead disk: sled's memory, its flusher thread and its file handles stay until the
//! process exits, and sled's lock on its log file with them, so the same directory
//! cannot be opened again in this process. A later open in a new process recovers the
//! database from what reached the disk, as after a crash.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use store_kit::seal::SealOnDrop;

use crate::SLED_SUBDIR;
use crate::seal::SEAL;

/// The name of sled's log file in its directory.
const LOG_FILE: &str = "db";

/// An open sled database that never panics when dropped (see the [module docs](self)).
pub(crate) struct SledDb {
    /// Dropped first: the database, or (when the disk failed) a handle whose count a
    /// leaked clone keeps above zero.
    db: sled::Db,
    /// Dropped second: writes the clean-close seal once sled has let go of its files;
    /// `None` once the disk failed.
    seal: Option<SealOnDrop>,
}

impl SledDb {
    /// Takes ownership of `db`, opened in `<dir>/sled`; its drop seals `dir`'s database.
    pub(crate) fn new(db: sled::Db, dir: &Path) -> Self {
        SledDb {
            db,
            seal: Some(SEAL.on_drop(dir)),
        }
    }

    /// Whether the disk under the database still makes its log durable: the same
    /// `fsync` sled's shutdown ends with, on a handle of our own.
    fn disk_answers(dir: &Path) -> bool {
        File::open(dir.join(SLED_SUBDIR).join(LOG_FILE)).is_ok_and(|log| log.sync_all().is_ok())
    }
}

impl Deref for SledDb {
    type Target = sled::Db;

    fn deref(&self) -> &sled::Db {
        &self.db
    }
}

impl Drop for SledDb {
    fn drop(&mut self) {
        let answers = self
            .seal
            .as_ref()
            .is_some_and(|seal| Self::disk_answers(seal.dir()));
        if !answers {
            std::mem::forget(self.db.clone());
            if let Some(seal) = self.seal.take() {
                seal.disarm();
            }
        }
    }
}
