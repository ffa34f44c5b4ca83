//! The database handle every store of a backend shares: transactions with the durability
//! mode applied, record helpers, and the mapping of redb errors to [`StorageError`].

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    WriteTransaction,
};
use store_api::{Durability, StorageError, StorageErrorKind};
use store_kit::dir::DirGuard;
use store_kit::gate::{EngineSlot, WriteGate, read_only_error};

use crate::BACKEND_NAME;
use crate::tables::Bytes2Bytes;

/// Under [`Durability::Relaxed`], a write transaction that begins this long after the last
/// durable commit is committed durably, which also makes every earlier non-durable commit
/// durable. This bounds what a crash can lose to about this much time of writes.
pub const RELAXED_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The open database of one backend directory.
#[derive(Debug)]
pub struct Db {
    // Dropped before `dir`: the file is closed (and pending non-durable commits made durable)
    // before the directory lock is released.
    database: EngineSlot<Handle>,
    gate: Arc<WriteGate>,
    durability: Durability,
    last_sync: Mutex<Instant>,
    dir: Mutex<Option<DirGuard>>,
}

/// The redb database, opened for writing or read-only.
pub(crate) enum Handle {
    /// A read-write open.
    Writable(Database),
    /// A read-only open (`OpenOptions::read_only`): redb opens the file without modifying
    /// it, and refuses one that needs recovery.
    ReadOnly(ReadOnlyDatabase),
}

/// A write transaction of a [`Db`], committed with the backend's durability mode. Dropping it
/// without [`commit`](Self::commit) aborts it: nothing is written.
pub(crate) struct WriteTxn<'db> {
    txn: WriteTransaction,
    db: &'db Db,
    durable: bool,
}

/// One item of a range over a byte table.
pub(crate) type RangeEntry<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// A table of a write transaction.
pub(crate) type WriteTable<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handle::Writable(database) => f.debug_tuple("Writable").field(database).finish(),
            Handle::ReadOnly(_) => f.write_str("ReadOnly"),
        }
    }
}

impl Db {
    pub(crate) fn new(
        database: Handle,
        gate: Arc<WriteGate>,
        durability: Durability,
        dir: DirGuard,
    ) -> Self {
        Db {
            database: EngineSlot::new(BACKEND_NAME, database),
            gate,
            durability,
            last_sync: Mutex::new(Instant::now()),
            dir: Mutex::new(Some(dir)),
        }
    }

    /// The backend's gate.
    pub(crate) fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// Closes the database (the backend's gate is already closed): once the calls in
    /// progress are done, commits durably (which makes every earlier non-durable commit
    /// durable), closes the file and releases the directory lock. Every failure is
    /// reported; the lock is released whatever happens.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        const CONTEXT: &str = "closing the database";
        let closed = match self.database.take() {
            Some(Handle::Writable(database)) => {
                // Waits for a write transaction still in progress, then syncs.
                let synced = database
                    .begin_write()
                    .ctx(CONTEXT)
                    .and_then(|txn| txn.commit().ctx(CONTEXT));
                let closed = database.close().ctx(CONTEXT);
                synced.and(closed)
            }
            Some(Handle::ReadOnly(database)) => database.close().ctx(CONTEXT),
            None => Ok(()),
        };
        drop(self.dir.lock().take());
        closed
    }

    /// Begins a write transaction (waiting for the one in progress, if any). Under
    /// `Relaxed` it is non-durable unless a durable commit is due.
    pub(crate) fn begin_write(&self, context: &'static str) -> Result<WriteTxn<'_>, StorageError> {
        self.begin(context, false)
    }

    /// Begins a write transaction that is durable when it commits, whatever the mode (a
    /// state flush). Under `Relaxed` its commit also makes every earlier commit durable.
    pub(crate) fn begin_durable_write(
        &self,
        context: &'static str,
    ) -> Result<WriteTxn<'_>, StorageError> {
        self.begin(context, true)
    }

    fn begin(
        &self,
        context: &'static str,
        force_durable: bool,
    ) -> Result<WriteTxn<'_>, StorageError> {
        self.gate.check()?;
        let mut txn = match &*self.database.get()? {
            Handle::Writable(database) => database.begin_write().ctx(context)?,
            Handle::ReadOnly(_) => return Err(read_only_error(BACKEND_NAME)),
        };
        let durable = force_durable
            || match self.durability {
                Durability::Immediate => true,
                Durability::Relaxed => self.last_sync.lock().elapsed() >= RELAXED_SYNC_INTERVAL,
            };
        if !durable {
            txn.set_durability(redb::Durability::None).ctx(context)?;
        }
        Ok(WriteTxn {
            txn,
            db: self,
            durable,
        })
    }

    /// Begins a read transaction: a consistent snapshot of the last commit.
    pub(crate) fn begin_read(
        &self,
        context: &'static str,
    ) -> Result<ReadTransaction, StorageError> {
        match &*self.database.get()? {
            Handle::Writable(database) => database.begin_read().ctx(context),
            Handle::ReadOnly(database) => database.begin_read().ctx(context),
        }
    }
}

impl WriteTxn<'_> {
    /// Opens `table` for writing.
    pub(crate) fn table(
        &self,
        table: Bytes2Bytes,
        context: &'static str,
    ) -> Result<WriteTable<'_>, StorageError> {
        self.txn.open_table(table).ctx(context)
    }

    /// Commits: durable when this returns under `Immediate`; visible at once and durable
    /// with the next durable commit under `Relaxed`.
    pub(crate) fn commit(self, context: &'static str) -> Result<(), StorageError> {
        self.txn.commit().ctx(context)?;
        if self.durable && self.db.durability == Durability::Relaxed {
            *self.db.last_sync.lock() = Instant::now();
        }
        Ok(())
    }
}

impl Deref for WriteTxn<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        &self.txn
    }
}

/// Opens `table` in a read transaction.
pub(crate) fn read_table(
    txn: &ReadTransaction,
    table: Bytes2Bytes,
    context: &'static str,
) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>, StorageError> {
    txn.open_table(table).ctx(context)
}

/// Reads the value at `key` and passes it to `decode` (without copying it out first).
pub(crate) fn get_with<T>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
    context: &'static str,
    decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    match table.get(key).ctx(context)? {
        Some(value) => decode(value.value()).map(Some),
        None => Ok(None),
    }
}

/// The error of a failed redb call made while doing `context`, with redb's error as the
/// source.
pub(crate) fn storage_error(
    context: impl Into<Cow<'static, str>>,
    error: impl Into<redb::Error>,
) -> StorageError {
    let error: redb::Error = error.into();
    let kind = match &error {
        redb::Error::Io(e) => StorageErrorKind::of_io(e),
        // redb refuses every write after a failed one, until it is reopened.
        redb::Error::PreviousIo => StorageErrorKind::Poisoned,
        redb::Error::Corrupted(_) => StorageErrorKind::Corrupted,
        // A read transaction that outlived a close.
        redb::Error::DatabaseClosed => StorageErrorKind::Closed,
        _ => StorageErrorKind::Engine,
    };
    StorageError::new(BACKEND_NAME, kind, context, error)
}

/// Maps a redb result to a [`StorageError`] naming what the backend was doing.
pub(crate) trait Context<T> {
    /// The result, with an error mapped by [`storage_error`].
    fn ctx(self, context: &'static str) -> Result<T, StorageError>;
}

impl<T, E: Into<redb::Error>> Context<T> for Result<T, E> {
    #[inline]
    fn ctx(self, context: &'static str) -> Result<T, StorageError> {
        self.map_err(|e| storage_error(context, e))
    }
}
