//! Every store of `store-api` on [fjall](https://docs.rs/fjall/3) 3, an LSM-tree engine in
//! pure Rust: one fjall database per backend directory, each table of the stores in its
//! own keyspace, every write one fjall transaction (one journal batch).
//!
//! This crate is the worked example of `store-kv`'s ordered-KV layer: `kv.rs` says how
//! fjall begins, reads, writes and commits a transaction, `db.rs` how its database is
//! opened, synced and closed; the engine, ledger, state, side-effect and segment stores are
//! `store-kv`'s.
//!
//! ```
//! use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
//! use store_fjall::FjallBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let backend = FjallBackend::open(&dir.path().join("db"), OpenOptions::default())?;
//! let seq = backend.engine().put_batch(&[(b"k", b"v")])?;
//! assert_eq!(seq, 1);
//! let mut state = backend.state_store("operator-1")?;
//! state.put(b"count", b"1")?;
//! state.flush()?;
//! assert_eq!(state.get(b"count")?.as_deref(), Some(&b"1"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Durability
//!
//! fjall writes every commit to its journal (a write-ahead log) as one batch, then applies
//! it to the in-memory tables; memtables are later flushed to sorted tables on disk by
//! fjall's worker threads, and the journal is replayed after a crash.
//!
//! | mode | fjall setting | what a crash can lose |
//! | --- | --- | --- |
//! | [`Durability::Immediate`] (default) | each commit is written with `PersistMode::SyncAll`: the journal is `fsync`ed before the write call returns | nothing that was acknowledged |
//! | [`Durability::Relaxed`] | each commit is written with `PersistMode::Buffer`: the journal's buffer is handed to the OS (`write`), not synced | a process crash loses nothing (the OS holds the data); a system crash (power loss, kernel panic) may lose the latest acknowledged writes, those the OS had not yet written back |
//!
//! Under either mode a crash never tears a batch: fjall's journal recovery replays whole
//! batches only, and stops at the first batch whose checksum or trailer does not check out
//! (a batch cut short by the crash), so what survives is a prefix of the commit history.
//!
//! `StateStore::flush` is durable when it returns in both modes (`docs/contract.md` §4.5):
//! under `Relaxed` its commit is synced (`SyncAll`), which also makes every earlier write
//! of every store durable. Closing the backend, or dropping its last handle, syncs the
//! journal too: a clean close loses nothing.
//!
//! # Checksums
//!
//! fjall checksums its own journal batches and its table blocks (xxh3), and reports a
//! mismatch as an error, so this backend adds no record checksums of its own
//! (`store_kit::checksum` is not used here). A checksum failure at open is
//! [`OpenError::Corrupted`]; at read time [`StorageErrorKind::Corrupted`].
//!
//! # A full disk, a failed write
//!
//! fjall poisons its database when a journal write or sync fails (a full disk included)
//! and refuses every later write. The backend follows it: the failed write answers
//! [`StorageErrorKind::NoSpace`] (full disk) or [`StorageErrorKind::Io`], and every later
//! write of every store answers [`StorageErrorKind::Poisoned`] until the backend is
//! reopened, also once space is freed. Reads keep working: a batch whose journal write
//! failed was never applied to fjall's memory.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/STORE        marker naming the backend (store-kit)
//! <dir>/.store-lock  the process lock (flock), held while the backend is open
//! <dir>/fjall.seal   the clean-close seal (see below); present only while closed
//! <dir>/fjall/       fjall's own files: its lock, version, journals, keyspaces' tables
//! <dir>/fjall.open-backup/  hard links to fjall's files, only while an open runs: a
//!                    refused open puts back what fjall's recovery removed
//! ```
//!
//! Keyspaces (one per table) and their keys; values are `postcard` records of the
//! `store-kit` types named, except where raw bytes are said:
//!
//! | keyspace | key | value |
//! | --- | --- | --- |
//! | `engine.data` | the caller's key | the caller's value (raw) |
//! | `engine.log` | sequence number, u64 big-endian | the batch's mutations (`store_kit::engine` encoding) |
//! | `engine.meta` | `sequence` | last committed sequence number, u64 big-endian |
//! | `state.entries` | partition id (u32 big-endian) ‖ the caller's key | the caller's value (raw) |
//! | `state.partitions` | partition name (UTF-8) | partition id, u32 big-endian |
//! | `state.meta` | `next-partition-id` | next id to hand out, u32 big-endian |
//! | `ledger.*`, `side_effect.*`, `segment.*` | as `store-kv` lays them out ([`LEDGER_TABLES`], [`SIDE_EFFECT_TABLES`], [`SEGMENT_TABLES`]) | |
//!
//! # Damaged directories
//!
//! fjall's journal recovery cannot tell a journal cut short or damaged on disk from the
//! torn tail a crash leaves: it replays the whole batches before the damage and opens, and
//! the batches after it are gone without an error, acknowledged ones included (a journal
//! cut to 0 bytes opens as an empty database). So, as store-sled does for sled's log
//! (`store_kit::seal`):
//!
//! - a clean close (dropping the backend and every handle taken from it, after `close` or
//!   without it) writes `<dir>/fjall.seal` once fjall has synced its journal, stopped its
//!   worker threads and released its files: every file under `<dir>/fjall` with its
//!   length and a 64-bit checksum, after `fsync`ing them all. No seal is written when that
//!   final sync fails, after a failed write poisoned fjall, or when the open itself failed;
//! - `open` verifies the seal **before** starting fjall and refuses any difference (a file
//!   cut, changed, missing or added, a damaged seal) with [`OpenError::Corrupted`], leaving
//!   every file as it was; then it removes the seal (durably), so a crash from then on
//!   leaves no seal and fjall's own recovery decides, as before;
//! - after a crash there is no seal: fjall recovers from its journal, and damage that
//!   recovery takes for a torn tail is then not reported (no seal can tell it from one);
//! - a refused fjall open puts back the files fjall's recovery removed (`fjall.open-backup`,
//!   above), and a panic inside fjall's open is reported as [`OpenError::Corrupted`].
//!
//! Read-only opens are refused before the seal is looked at, so they never remove or write
//! it.
//!
//! # Limits
//!
//! - Keys 1 to [`MAX_KEY_LEN`](store_api::MAX_KEY_LEN) (480) bytes, values up to
//!   [`MAX_VALUE_LEN`](store_api::MAX_VALUE_LEN) (16 MiB): the common limits; fjall's own
//!   are larger (64 KiB keys, 4 GiB values).
//! - Read-only opens are not supported ([`OpenError::Unsupported`]): fjall writes to its
//!   directory whenever it opens (a new journal, recovery's flushes).
//! - The stores hold fjall keyspace handles, which keep the database open: `close` makes
//!   everything durable and refuses every later call, and fjall's files and the directory
//!   lock are released once the backend and every handle taken from it are dropped
//!   (`Capabilities::close_releases_store` is `false`).
//! - Opening and cleanly closing read every database file once (the seal), so both take
//!   time proportional to the database size.
//! - An open state partition lives in memory (keys plus values).
//! - fjall runs its own worker threads (memtable flushes, compaction) per open database.

mod db;
mod kv;
mod seal;

use std::path::Path;
use std::sync::Arc;

use store_api::limits::check_partition_name;
use store_api::{
    Backend, Capabilities, Durability, OpenError, OpenOptions, StateError, StorageError,
    StorageErrorKind,
};
use store_kit::dir::{DirLayout, open_dir};
use store_kit::gated::Gated;
use store_kit::state::{BufferedState, PartitionLeases};
use store_kv::{
    KvEngine, KvLedger, KvPartition, KvPartitions, KvSegmentLog, KvSideEffects, LEDGER_TABLES,
    SEGMENT_TABLES, SIDE_EFFECT_TABLES, StateTables,
};

use crate::db::Db;

pub use kv::{FjallRead, FjallTable, FjallWrite};

/// The backend's name, in errors and in the directory marker.
pub const BACKEND_NAME: &str = "fjall";

/// The subdirectory of the backend directory that holds fjall's own files.
pub const FJALL_SUBDIR: &str = "fjall";

/// The files of a backend directory, beside store-kit's marker and lock: fjall's
/// subdirectory, the links of an open under way, and the clean-close seal (with the
/// temporary file it is written through).
const LAYOUT: DirLayout = DirLayout {
    backend: BACKEND_NAME,
    owned: &[
        FJALL_SUBDIR,
        db::OPEN_BACKUP_DIR,
        seal::SEAL_FILE,
        seal::SEAL_TEMP_FILE,
    ],
};

/// The state keyspaces; partition ids start at 0.
const STATE: StateTables = StateTables {
    entries: "state.entries",
    partitions: "state.partitions",
    meta: "state.meta",
    first_id: 0,
};

/// The database handle the stores of a [`FjallBackend`] share.
pub type FjallDb = Db;

/// The engine store of a [`FjallBackend`]: `store-kv`'s, in the `engine.*` keyspaces.
pub type FjallEngine = KvEngine<Db>;

/// Where the flushes of a [`FjallBackend`]'s state partition go: `store-kv`'s, in the
/// `state.*` keyspaces.
pub type FjallPartition = KvPartition<Db>;

/// The ledger of a [`FjallBackend`]: `store-kv`'s, in the `ledger.*` keyspaces.
pub type FjallLedger = KvLedger<Db>;

/// The segment log of a [`FjallBackend`]: `store-kv`'s, in the `segment.*` keyspaces.
pub type FjallSegmentLog = KvSegmentLog<Db>;

/// The side-effect store of a [`FjallBackend`]: `store-kv`'s, in the `side_effect.*`
/// keyspaces.
pub type FjallSideEffects = KvSideEffects<Db>;

/// The fjall backend: one fjall database in `<dir>/fjall`, holding every store.
#[derive(Debug)]
pub struct FjallBackend {
    db: Arc<Db>,
    engine: Arc<Gated<FjallEngine>>,
    ledger: Arc<Gated<FjallLedger>>,
    segments: Arc<Gated<FjallSegmentLog>>,
    side_effects: Arc<Gated<FjallSideEffects>>,
    partitions: KvPartitions<Db>,
    leases: PartitionLeases,
}

impl Backend for FjallBackend {
    type Location = Path;
    type Engine = Gated<FjallEngine>;
    type State = BufferedState<FjallPartition>;
    type Ledger = Gated<FjallLedger>;
    type Segments = Gated<FjallSegmentLog>;
    type SideEffects = Gated<FjallSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities {
            close_releases_store: false,
            shared_read_only: false,
            read_only_open: false,
            ..Capabilities::PERSISTENT
        }
    }

    /// A read-only open is [`OpenError::Unsupported`]: fjall writes to its directory
    /// whenever it opens, so it cannot leave its files byte-identical.
    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        if options.read_only {
            return Err(OpenError::Unsupported {
                backend: BACKEND_NAME,
                what: "read-only opens: fjall writes to its directory whenever it opens; copy \
                       the directory and open the copy, or migrate the store to a backend \
                       that opens read-only"
                    .to_owned(),
            });
        }
        let location: Arc<String> = dir.display().to_string().into();
        open_dir(dir, &LAYOUT, &options, |guard| {
            let path = dir.join(FJALL_SUBDIR);
            if !options.may_create() && !path.is_dir() {
                return Err(OpenError::NotFound {
                    location: path.display().to_string(),
                });
            }
            let db = Arc::new(Db::open(guard, options.durability, Arc::clone(&location))?);
            let gate = db.gate();
            let load = || -> Result<FjallBackend, StorageError> {
                Ok(FjallBackend {
                    engine: Gated::shared(gate, FjallEngine::open(Arc::clone(&db))?),
                    ledger: Gated::shared(
                        gate,
                        KvLedger::open(Arc::clone(&db), LEDGER_TABLES, Arc::clone(&options.clock))?,
                    ),
                    segments: Gated::shared(
                        gate,
                        KvSegmentLog::open(Arc::clone(&db), SEGMENT_TABLES)?,
                    ),
                    side_effects: Gated::shared(
                        gate,
                        KvSideEffects::open(
                            Arc::clone(&db),
                            SIDE_EFFECT_TABLES,
                            options.side_effect_cache_size,
                        )?,
                    ),
                    partitions: KvPartitions::open(Arc::clone(&db), STATE)?,
                    leases: PartitionLeases::default(),
                    db: Arc::clone(&db),
                })
            };
            let backend = load().map_err(|e| match e.kind() {
                StorageErrorKind::Corrupted => OpenError::Corrupted {
                    path: path.clone(),
                    source: Box::new(e),
                },
                _ => OpenError::Storage(e),
            })?;
            db.sync_directories()?;
            db.seal_at_close();
            Ok(backend)
        })
        .map_err(|e| e.located(&location))
    }

    /// Makes every write durable and marks every handle closed. fjall's files and the
    /// directory lock are released once the backend and every handle taken from it are
    /// dropped.
    fn close(&self) -> Result<(), StorageError> {
        if !self.db.gate().close() {
            return Ok(());
        }
        self.engine.inner().close();
        self.db.gate().locating(|| self.db.close())
    }

    fn durability(&self) -> Durability {
        self.db.durability()
    }

    fn engine(&self) -> Arc<Gated<FjallEngine>> {
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

    fn ledger(&self) -> Arc<Gated<FjallLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<FjallSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<FjallSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}

/// What kind of failure a fjall error is.
pub(crate) fn kind_of(error: &fjall::Error) -> StorageErrorKind {
    match error {
        fjall::Error::Io(e) | fjall::Error::Storage(fjall::LsmError::Io(e)) => {
            StorageErrorKind::of_io(e)
        }
        fjall::Error::Poisoned => StorageErrorKind::Poisoned,
        fjall::Error::Storage(_)
        | fjall::Error::JournalRecovery(_)
        | fjall::Error::InvalidVersion(_)
        | fjall::Error::Decompress(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Unrecoverable => StorageErrorKind::Corrupted,
        _ => StorageErrorKind::Engine,
    }
}

/// A fjall failure while doing `what`, with the fjall error kept as the source.
pub(crate) fn storage(what: &'static str, error: fjall::Error) -> StorageError {
    StorageError::new(BACKEND_NAME, kind_of(&error), what, error)
}

#[cfg(test)]
mod tests;
