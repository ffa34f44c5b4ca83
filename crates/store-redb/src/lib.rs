//! Every store of `store-api` on [redb](https://www.redb.org): one redb file per backend
//! directory, each store kind in its own tables, atomicity from redb's write transactions.
//!
//! ```
//! use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
//! use store_redb::RedbBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let backend = RedbBackend::open(dir.path(), OpenOptions::default())?;
//! let engine = backend.engine();
//! assert_eq!(engine.put_batch(&[(b"k", b"v")])?, 1);
//! let mut state = backend.state_store("operator-1")?;
//! state.put(b"count", b"1")?;
//! state.flush()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # On disk
//!
//! The backend directory holds the `STORE` marker and the `.store-lock` lock file of
//! [`store_kit::dir`], and one redb database, `store.redb`. Every table maps bytes to bytes;
//! records are `postcard` encodings of the `store-api`/`store-kit` types, and integers in
//! keys are big-endian so that byte order is numeric order. Names in keys are followed by a
//! NUL byte (names never hold NUL), which keeps the encodings prefix-free.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `format` | `store-redb/1` |
//! | `engine.data` | caller's key | caller's value |
//! | `engine.log` | `seq:u64be` | the batch's mutations (`Vec<Mutation>`) |
//! | `engine.meta` | `sequence` | last committed `seq:u64be` |
//! | `state.entries` | `partition_id:u32be key` | value |
//! | `state.partitions` | partition name (UTF-8) | `partition_id:u32be` |
//! | `state.meta` | `next-partition-id` | `u32be` |
//! | `ledger.assets` | asset id | `AssetDef` |
//! | `ledger.accounts` | `book NUL path NUL` | `AccountRecord` (definition, config, balance) |
//! | `ledger.postings` | `book NUL path NUL seq:u64be index:u32be` | `PostingRecord` |
//! | `ledger.events` | `book NUL seq:u64be` | `Sequenced<LedgerEvent>` |
//! | `ledger.heads` | book name | `BookHead` (last seq and time) |
//! | `ledger.idempotency` | `book NUL idempotency-key` | `Committed` |
//! | `ledger.transactions` | txid (16 bytes) | `TxLocation` (book and seq of its event) |
//! | `ledger.totals` | `book NUL asset NUL` | `AssetTotals` (lifetime `u128` sums) |
//! | `side_effect.outputs` | `lyquid(20) pos:u128be kind(1)` | `EventOutputs` |
//! | `side_effect.call_outputs` | `callee(20) pos:u128be inter_call_seq:u32be` | `Option<Bytes>` |
//! | `side_effect.inbound` | `callee(20) order_pos:u128be order_seq:u32be` | `InboundInterCall` |
//! | `segment.meta` | segment id (16 bytes) | `SegmentMeta` |
//! | `segment.sessions` | `session(16) segment(16)`, live segments only | empty |
//! | `segment.entries` | `segment(16) index:u64be` | entry |
//! | `segment.traces` | `segment(16) index:u64be` | trace entry |
//!
//! The engine's sequence counter lives in `engine.meta`, apart from the log, and is written
//! in the same transaction as the batch's data and log entry, so pruning the whole log never
//! resets it.
//!
//! # Durability
//!
//! Every write of every store (a put or delete batch, a state flush, a ledger write, a
//! side-effect write, a segment write) is exactly one redb write transaction: all of it or
//! nothing is visible, to readers and after a crash. redb runs one write transaction at a
//! time per database, so writes of all stores of a backend are serialized; reads run
//! concurrently on MVCC snapshots.
//!
//! - [`Durability::Immediate`] (the default) commits with redb's `Durability::Immediate`:
//!   redb's 1-phase commit with checksums, one `fsync` per commit, done before the call
//!   returns. The ledger's concurrent [`commit`](store_api::LedgerStore::commit)s are
//!   grouped into one write transaction, so they share that `fsync`.
//! - [`Durability::Relaxed`] commits with redb's `Durability::None`: the commit is visible at
//!   once but is only written to the file's durable state by a later durable commit. This
//!   backend makes a write transaction durable when it begins at least
//!   [`RELAXED_SYNC_INTERVAL`] (1 s) after the last durable commit, and redb makes every
//!   pending commit durable when the database is closed (the last handle dropped). After a
//!   crash the database reopens at its last durable commit: the non-durable commits after it
//!   are lost together, newest first — what survives is always a prefix of the commit
//!   history, never part of a transaction, and the file is never corrupted. With no write
//!   for a while, the last writes stay non-durable until the next write or the close.
//!
//! [`StateStore::flush`](store_api::StateStore::flush) is one write transaction committed
//! with redb's `Durability::Immediate` in both modes: a flush is durable when it returns
//! (under `Relaxed` it also makes every earlier commit of the backend durable).
//!
//! # A full disk, a failed write
//!
//! A write that finds the disk full fails with
//! [`StorageErrorKind::NoSpace`](store_api::StorageErrorKind::NoSpace) and keeps nothing.
//! redb then refuses every later write (its `PreviousIo`), reported as
//! [`StorageErrorKind::Poisoned`](store_api::StorageErrorKind::Poisoned) until the
//! backend is reopened, also once space is freed; reads keep working. Nothing
//! acknowledged is lost (`crates/reliability`, `disk_full`).
//!
//! # Opening, damaged files, repair
//!
//! A new database is created as `store.redb.new`, given its tables, closed and renamed to
//! `store.redb`, so a crash during creation never leaves a half-made `store.redb`.
//!
//! An existing `store.redb` is opened with redb's integrity check on open: every page of the
//! committed trees is read and its checksum verified, so opening costs a read of the whole
//! file. A damaged or truncated file gives [`OpenError::Corrupted`], as does a file that is
//! not a redb database or an empty file; a redb file without this backend's format record
//! gives [`OpenError::ForeignData`]. A refused file that was closed cleanly is left byte for
//! byte as it was: the check fails before anything is written. (A file left by a crash has
//! its header rewritten by redb's recovery before the check runs.) As a last line of defence, a panic inside
//! redb while opening is caught and reported as [`OpenError::Corrupted`].
//!
//! Repair, said plainly: after a crash, redb's recovery rebuilds its allocator state and
//! writes it back; that changes no data. If the newest commit slot does not verify and was
//! written with redb's 1-phase commit (every commit of a store write; the commits redb
//! makes itself when opening and closing the file are 2-phase), redb treats it as a commit
//! torn by the crash and rolls back to the previous commit, writing the rollback to the
//! file. A commit whose `fsync` completed
//! (every commit acknowledged under `Immediate`) verifies, so only a commit that was still
//! in flight is rolled back — unless the file was also damaged after the crash, which redb
//! cannot tell apart. A file closed cleanly ends with a 2-phase commit, so damage to it is
//! always reported as corruption, never rolled back.
//!
//! A read-only open (`OpenOptions::read_only`) never repairs, since repairing writes: a file
//! left by a crash, or by a process that never closed it, gives
//! [`OpenError::NeedsRecovery`] until one read-write open has recovered it.
//!
//! # Limits
//!
//! The common limits of `store-api`: keys of 1 to [`MAX_KEY_LEN`](store_api::MAX_KEY_LEN)
//! (480) bytes, values up to [`MAX_VALUE_LEN`](store_api::MAX_VALUE_LEN) (16 MiB), far
//! below redb's own limits. A state partition is held in memory by its handle (keys, values
//! and two indexes) while it is open. redb's page cache is left at its default of 1 GiB and
//! fills only as pages are read. At most `u32::MAX - 1` state partitions can ever be named.
//! One process per directory: a second open fails with [`OpenError::Locked`] (our lock file
//! first, redb's own file lock behind it).

mod db;
mod engine;
mod kv;
mod tables;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use redb::{Builder, Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, TableError};
use store_api::limits::check_partition_name;
use store_api::{
    Backend, Capabilities, Durability, OpenError, OpenOptions, StateError, StorageError,
};
use store_kit::dir::{DirLayout, open_dir};
use store_kit::gate::WriteGate;
use store_kit::gated::Gated;
use store_kit::open_step;
use store_kit::state::{BufferedState, PartitionLeases};
use store_kv::{
    KvLedger, KvPartition, KvPartitions, KvSegmentLog, KvSideEffects, LEDGER_TABLES,
    SEGMENT_TABLES, SIDE_EFFECT_TABLES,
};

pub use db::RELAXED_SYNC_INTERVAL;
pub use engine::RedbEngine;

/// Where the flushes of a [`RedbBackend`]'s state partition go: `store-kv`'s, in the
/// `state.*` tables.
pub type RedbPartition = KvPartition<Db>;

/// The ledger of a [`RedbBackend`]: `store-kv`'s, in the `ledger.*` tables.
pub type RedbLedger = KvLedger<Db>;

/// The segment log of a [`RedbBackend`]: `store-kv`'s, in the `segment.*` tables.
pub type RedbSegmentLog = KvSegmentLog<Db>;

/// The side-effect store of a [`RedbBackend`]: `store-kv`'s, in the `side_effect.*`
/// tables.
pub type RedbSideEffects = KvSideEffects<Db>;

use db::{Context, Db, Handle, storage_error};

/// The backend's name in errors and in the directory marker.
pub const BACKEND_NAME: &str = "redb";

/// The database file inside the backend directory.
pub const DB_FILE: &str = "store.redb";

/// Where a new database is built before it is renamed to [`DB_FILE`].
const NEW_DB_FILE: &str = "store.redb.new";

/// The files of a backend directory, beside store-kit's marker and lock.
const LAYOUT: DirLayout = DirLayout {
    backend: BACKEND_NAME,
    owned: &[DB_FILE, NEW_DB_FILE],
};

/// The redb backend: every store in one redb database in one directory.
#[derive(Debug)]
pub struct RedbBackend {
    durability: Durability,
    engine: Arc<Gated<RedbEngine>>,
    ledger: Arc<Gated<RedbLedger>>,
    segments: Arc<Gated<RedbSegmentLog>>,
    side_effects: Arc<Gated<RedbSideEffects>>,
    partitions: KvPartitions<Db>,
    leases: PartitionLeases,
    db: Arc<Db>,
}

/// Maps a redb error met while opening `file` in `dir`.
fn open_error(dir: &Path, file: &Path, error: DatabaseError) -> OpenError {
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            OpenError::Locked {
                path: dir.to_path_buf(),
            }
        }
        DatabaseError::Storage(redb::StorageError::Corrupted(_)) | DatabaseError::RepairAborted => {
            OpenError::Corrupted {
                path: file.to_path_buf(),
                source: Box::new(error),
            }
        }
        DatabaseError::Storage(redb::StorageError::Io(io)) => match io.kind() {
            // A bad magic number, an empty file, a short read: the file is damaged.
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                OpenError::Corrupted {
                    path: file.to_path_buf(),
                    source: Box::new(io),
                }
            }
            _ => OpenError::from_io(file, io),
        },
        other => OpenError::Storage(storage_error("opening the database", other)),
    }
}

/// Creates an empty database with every table and the format record at `file`, building it
/// under a temporary name first.
fn create_database(dir: &Path, file: &Path) -> Result<(), OpenError> {
    const CONTEXT: &str = "creating the database";
    let new = dir.join(NEW_DB_FILE);
    match fs::remove_file(&new) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(OpenError::from_io(&new, e)),
    }
    let database = Builder::new()
        .create(&new)
        .map_err(|e| open_error(dir, &new, e))?;
    let txn = database.begin_write().ctx(CONTEXT)?;
    for table in tables::ALL {
        txn.open_table(table).ctx(CONTEXT)?;
    }
    {
        let mut meta = txn.open_table(tables::META).ctx(CONTEXT)?;
        meta.insert(tables::FORMAT_KEY, tables::FORMAT_VERSION)
            .ctx(CONTEXT)?;
    }
    txn.commit().ctx(CONTEXT)?;
    database.close().ctx(CONTEXT)?;
    fs::rename(&new, file).map_err(|e| OpenError::from_io(file, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OpenError::from_io(dir, e))
}

/// Opens the existing database at `file`, verifying every committed page.
fn open_database(dir: &Path, file: &Path) -> Result<Database, OpenError> {
    let mut builder = Builder::new();
    builder.set_check_integrity_on_open(true);
    // Called only when redb repairs (recovers) the file: say so once.
    let repairing = std::cell::Cell::new(false);
    builder.set_repair_callback(move |_| {
        if !repairing.replace(true) {
            open_step::note(
                BACKEND_NAME,
                "redb repairs the file (it was not closed cleanly)",
            );
        }
    });
    match catch_unwind(AssertUnwindSafe(|| builder.open(file))) {
        Ok(Ok(database)) => Ok(database),
        Ok(Err(error)) => Err(open_error(dir, file, error)),
        Err(_) => Err(OpenError::Corrupted {
            path: file.to_path_buf(),
            source: "redb panicked while opening the file: it is damaged".into(),
        }),
    }
}

/// Opens the existing database at `file` read-only: redb modifies nothing, and refuses a
/// file that needs recovery (one not closed cleanly) instead of repairing it, with
/// [`OpenError::NeedsRecovery`]. (A read-only redb open answers `RepairAborted` for exactly
/// that: its header says recovery is required, or it holds no allocator state because the
/// last writer never closed it.)
fn open_read_only(dir: &Path, file: &Path) -> Result<ReadOnlyDatabase, OpenError> {
    match catch_unwind(AssertUnwindSafe(|| Builder::new().open_read_only(file))) {
        Ok(Ok(database)) => Ok(database),
        Ok(Err(DatabaseError::RepairAborted)) => Err(OpenError::NeedsRecovery {
            path: file.to_path_buf(),
        }),
        Ok(Err(error)) => Err(open_error(dir, file, error)),
        Err(_) => Err(OpenError::Corrupted {
            path: file.to_path_buf(),
            source: "redb panicked while opening the file: it is damaged".into(),
        }),
    }
}

/// Checks that the database carries this backend's format record.
fn check_format(database: &Handle, file: &Path) -> Result<(), OpenError> {
    const CONTEXT: &str = "reading the format record";
    let foreign = |detail: String| OpenError::ForeignData {
        path: file.to_path_buf(),
        detail,
    };
    let txn = match database {
        Handle::Writable(database) => database.begin_read(),
        Handle::ReadOnly(database) => database.begin_read(),
    }
    .ctx(CONTEXT)?;
    let meta = match txn.open_table(tables::META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            return Err(foreign(
                "a redb database without the store-redb format record".into(),
            ));
        }
        Err(e) => return Err(storage_error(CONTEXT, e).into()),
    };
    match db::get_with(&meta, tables::FORMAT_KEY, CONTEXT, |v| Ok(v.to_vec()))? {
        Some(found) if found == tables::FORMAT_VERSION => Ok(()),
        Some(found) => Err(foreign(format!(
            "store-redb format {:?}, this build reads {:?}",
            String::from_utf8_lossy(&found),
            String::from_utf8_lossy(tables::FORMAT_VERSION)
        ))),
        None => Err(foreign(
            "a redb database without the store-redb format record".into(),
        )),
    }
}

impl Backend for RedbBackend {
    type Location = Path;
    type Engine = Gated<RedbEngine>;
    type State = BufferedState<RedbPartition>;
    type Ledger = Gated<RedbLedger>;
    type Segments = Gated<RedbSegmentLog>;
    type SideEffects = Gated<RedbSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities::PERSISTENT
    }

    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        let location: Arc<String> = dir.display().to_string().into();
        open_dir(dir, &LAYOUT, &options, |guard| {
            let file = dir.join(DB_FILE);
            match fs::symlink_metadata(&file) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.may_create() => {
                    create_database(dir, &file)?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(OpenError::NotFound {
                        location: file.display().to_string(),
                    });
                }
                Err(e) => return Err(OpenError::from_io(&file, e)),
            }
            let database = if options.read_only {
                Handle::ReadOnly(open_step::timed(BACKEND_NAME, "open read-only", || {
                    open_read_only(dir, &file)
                })?)
            } else {
                Handle::Writable(open_step::timed(
                    BACKEND_NAME,
                    "integrity check and recovery",
                    || open_database(dir, &file),
                )?)
            };
            check_format(&database, &file)?;
            let gate = Arc::new(
                WriteGate::new(BACKEND_NAME)
                    .with_read_only(options.read_only)
                    .with_location(Arc::clone(&location)),
            );
            let db = Arc::new(Db::new(
                database,
                Arc::clone(&gate),
                options.durability,
                guard,
            ));
            let engine = RedbEngine::open(Arc::clone(&db))?;
            Ok(RedbBackend {
                durability: options.durability,
                engine: Gated::shared(&gate, engine),
                ledger: Gated::shared(
                    &gate,
                    KvLedger::open(Arc::clone(&db), LEDGER_TABLES, Arc::clone(&options.clock))?,
                ),
                segments: Gated::shared(
                    &gate,
                    KvSegmentLog::open(Arc::clone(&db), SEGMENT_TABLES)?,
                ),
                side_effects: Gated::shared(
                    &gate,
                    KvSideEffects::open(
                        Arc::clone(&db),
                        SIDE_EFFECT_TABLES,
                        options.side_effect_cache_size,
                    )?,
                ),
                partitions: KvPartitions::open(Arc::clone(&db), tables::STATE)?,
                leases: PartitionLeases::default(),
                db,
            })
        })
        .map_err(|e| e.located(&location))
    }

    fn close(&self) -> Result<(), StorageError> {
        if !self.db.gate().close() {
            return Ok(());
        }
        self.engine.inner().close();
        self.db.gate().locating(|| self.db.close())
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn engine(&self) -> Arc<Gated<RedbEngine>> {
        Arc::clone(&self.engine)
    }

    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        self.db.gate().check_open()?;
        let lease = self.leases.acquire(name)?;
        self.db
            .gate()
            .locating(|| Ok(self.partitions.open_partition(lease)?))
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        self.db
            .gate()
            .locating(|| self.partitions.list(after, limit))
    }

    fn ledger(&self) -> Arc<Gated<RedbLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<RedbSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<RedbSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}

#[cfg(test)]
mod tests;
