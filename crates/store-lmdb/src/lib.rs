//! The LMDB backend: every store of `store-api` in one LMDB environment (through `heed`),
//! one environment per backend directory.
//!
//! ```
//! use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
//! use store_lmdb::LmdbBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let backend = LmdbBackend::open(&dir.path().join("db"), OpenOptions::default())?;
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
//! | mode | LMDB setting | what a crash can lose |
//! | --- | --- | --- |
//! | [`Durability::Immediate`] (default) | default flags: every commit `fdatasync`s the data pages, then writes and syncs the meta page | nothing that was acknowledged |
//! | [`Durability::Relaxed`] | `MDB_NOMETASYNC`: every commit syncs the data pages but not the meta page (one sync instead of two); the meta page reaches disk with the next commit's sync or when the OS flushes | after a system crash (power loss, kernel panic), the last committed transaction may be undone; a process crash loses nothing. The database stays consistent: LMDB's copy-on-write pages and double meta page never expose a torn transaction |
//!
//! `StateStore::flush` always ends durable: under `Relaxed` it forces a full sync
//! (`mdb_env_sync`) after its commit, because a flush promises that every earlier write
//! survives a crash. A clean close (dropping the backend) also forces that sync under
//! `Relaxed`, so it loses nothing. `MDB_NOSYNC` is never used: LMDB documents that it may
//! corrupt the database on a system crash.
//!
//! # A full disk, a failed write
//!
//! A write that finds the disk full fails with
//! [`StorageErrorKind::NoSpace`] and keeps nothing;
//! LMDB reports a write cut short by a full disk as `EIO`, so an `EIO` while the
//! filesystem has less than 1 MiB free is reported as `NoSpace` too. Writes work again as
//! soon as space is freed, without reopening; reads keep working. Any other I/O failure of
//! a write (a failed `fsync`) shuts the backend's write gate: every later write answers
//! [`StorageErrorKind::Poisoned`] until it is
//! reopened.
//!
//! # On-disk layout
//!
//! The backend directory holds `STORE` (the marker naming this backend), `.store-lock`
//! (the process lock), and LMDB's `data.mdb` and `lock.mdb`. The environment holds 22
//! named databases; keys order by unsigned bytes; records are `postcard`-encoded unless
//! stated otherwise.
//!
//! **Format 2** (this version): every stored value below is the value the table names
//! followed by a 4-byte checksum (`store_kit::checksum`: CRC-32 over the database name,
//! the key and the value, little-endian), verified on every read; the `meta` database
//! holds the format record `format` -> `store-lmdb/2`, stored as is. Format 1 (before
//! checksums) had no `meta` database and stored values as given. A read-write open of a
//! format-1 environment upgrades it in one write transaction (every record rewritten with
//! its checksum, then the format record): a crash or a failure during the upgrade leaves
//! format 1 as it was, and the next open upgrades it again. A read-only open of format 1
//! reads it as it is, unverified. A format record of a newer format (or one that does not
//! decode) is refused at open with [`OpenError::ForeignData`], before anything is written;
//! builds before format 2 do not read format 2.
//!
//! | database | key | value |
//! | --- | --- | --- |
//! | `meta` | `format` | `store-lmdb/2` (no checksum) |
//! | `engine.data` | the caller's key | the caller's value, as given |
//! | `engine.log` | sequence number, u64 big-endian | the batch's mutations (`Vec<Mutation>`) |
//! | `engine.meta` | `sequence` | the last sequence number, u64 big-endian |
//! | `state.data` | partition id (u32 big-endian) ++ the caller's key | the caller's value, as given |
//! | `state.names` | partition name (UTF-8) | partition id, u32 big-endian |
//! | `state.meta` | `next-partition-id` | the next id to hand out, u32 big-endian |
//! | `ledger.assets` | asset id | `AssetDef` |
//! | `ledger.accounts` | `book NUL path NUL` | `AccountRecord` (definition, configuration, balance) |
//! | `ledger.postings` | `book NUL path NUL seq(u64be) index(u32be)` | `PostingRecord` |
//! | `ledger.events` | `book NUL seq(u64be)` | `Sequenced<LedgerEvent>` |
//! | `ledger.heads` | book name | `BookHead` (last seq and time) |
//! | `ledger.idempotency` | `book NUL idempotency-key` | `Committed` |
//! | `ledger.transactions` | transaction id (16 bytes) | `TxLocation` (book, seq of its event) |
//! | `ledger.totals` | `book NUL asset NUL` | `AssetTotals` (128-bit debit and credit sums) |
//! | `side_effect.outputs` | `lyquid(20) pos(u128be) kind(1)` | `EventOutputs` |
//! | `side_effect.call_outputs` | `callee(20) pos(u128be) seq(u32be)` | `Option<Bytes>` |
//! | `side_effect.inbound` | `callee(20) order.pos(u128be) order.seq(u32be)` | `InboundInterCall` |
//! | `segment.meta` | segment id (16 bytes) | `SegmentMeta` (owner, counts, live) |
//! | `segment.sessions` | `session(16) segment(16)` | empty |
//! | `segment.entries` | `segment(16) index(u64be)` | the entry, as given |
//! | `segment.traces` | `segment(16) index(u64be)` | the trace entry, as given |
//!
//! # How each store works here
//!
//! - **Engine**: one write transaction per batch writes the data, the log entry and the
//!   sequence counter; writers are serialized, and the counter is cached in memory for
//!   [`StoreEngine::current_sequence`](store_api::StoreEngine::current_sequence). Reads
//!   open a read transaction per call and copy each value once into the returned `Bytes`.
//! - **State**: a partition is loaded into memory when its handle is taken (the shared
//!   `BufferedState`), so `get` is a hash lookup that never touches LMDB; `flush` writes
//!   every change since the previous flush in one write transaction.
//! - **Ledger**: the shared planner reads through the write transaction and its writes
//!   are committed in that transaction; concurrent `commit`s are grouped into one
//!   `commit_batch`, one transaction and one durable write.
//! - **Side effects and segments**: one write transaction per call, under the backend's
//!   writer lock.
//!
//! # Limits
//!
//! - Keys: 1 to [`MAX_KEY_LEN`](store_api::MAX_KEY_LEN) (480) bytes, values up to
//!   [`MAX_VALUE_LEN`](store_api::MAX_VALUE_LEN) (16 MiB), like every backend. LMDB's own
//!   key limit is 511 bytes (`mdb_env_get_maxkeysize`); the 31 bytes between them leave
//!   room for the 4-byte partition prefix of state keys.
//! - The memory map starts at 64 MiB (or twice the existing data file) and doubles
//!   whenever a write finds it full; the write is then retried, so callers never see
//!   `MDB_MAP_FULL`. Growing waits until no transaction of this process is active.
//! - Read transactions use thread-local reader slots: at most 1024 threads can hold one
//!   at the same time (each call opens and ends its own, a thread keeps its slot until it
//!   exits).
//! - An open state partition lives in memory (keys plus values).
//! - Damaged files: a `data.mdb` that is emptied, shorter than its last committed page,
//!   or whose meta pages or engine counter do not decode or fail their checksum is refused
//!   at open with [`OpenError::Corrupted`], and a refused open puts LMDB's `lock.mdb` back
//!   as it was. LMDB keeps no page checksums, so every record carries its own (format 2,
//!   above): a changed byte in a stored value, or in the key it is stored under, is a
//!   [`StorageErrorKind::Corrupted`] error naming the database and the key when the record
//!   is read, never wrong data. What a record checksum cannot report is a record the
//!   lookup never reaches: damage to a key or to a branch page that sends a lookup
//!   elsewhere reads as an absent key (or as LMDB's own page error). A damaged page number
//!   can also send a read past the end of `data.mdb`, which LMDB reads through a memory
//!   map: the process is then killed with `SIGBUS`, which no backend code can turn into
//!   an error. The upgrade from
//!   format 1 rewrites every record in one transaction, so it needs room for a second copy
//!   of the data while it runs (the map grows as for any write).

mod engine;
mod kv;
mod tables;

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
    KvLedger, KvPartition, KvPartitions, KvSegmentLog, KvSideEffects, LEDGER_TABLES,
    SEGMENT_TABLES, SIDE_EFFECT_TABLES,
};

pub use engine::LmdbEngine;

/// Where the flushes of an [`LmdbBackend`]'s state partition go: `store-kv`'s, in the
/// `state.*` databases.
pub type LmdbPartition = KvPartition<Db>;

/// The ledger of an [`LmdbBackend`]: `store-kv`'s, in the `ledger.*` databases.
pub type LmdbLedger = KvLedger<Db>;

/// The segment log of an [`LmdbBackend`]: `store-kv`'s, in the `segment.*` databases.
pub type LmdbSegmentLog = KvSegmentLog<Db>;

/// The side-effect store of an [`LmdbBackend`]: `store-kv`'s, in the `side_effect.*`
/// databases.
pub type LmdbSideEffects = KvSideEffects<Db>;

use tables::Db;

/// The backend's short name, in errors and in the directory marker.
pub const BACKEND_NAME: &str = "lmdb";

/// The LMDB backend: one environment in one directory, holding every store.
#[derive(Debug)]
pub struct LmdbBackend {
    db: Arc<Db>,
    engine: Arc<Gated<LmdbEngine>>,
    ledger: Arc<Gated<LmdbLedger>>,
    segments: Arc<Gated<LmdbSegmentLog>>,
    side_effects: Arc<Gated<LmdbSideEffects>>,
    partitions: KvPartitions<Db>,
    leases: PartitionLeases,
}

/// The files of a backend directory, beside store-kit's marker and lock: LMDB's data and
/// lock files.
const LAYOUT: DirLayout = DirLayout {
    backend: BACKEND_NAME,
    owned: &[tables::DATA_FILE, tables::LOCK_FILE],
};

impl Backend for LmdbBackend {
    type Location = Path;
    type Engine = Gated<LmdbEngine>;
    type State = BufferedState<LmdbPartition>;
    type Ledger = Gated<LmdbLedger>;
    type Segments = Gated<LmdbSegmentLog>;
    type SideEffects = Gated<LmdbSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    /// A second open of the same environment in one process is refused by heed (LMDB
    /// allows one environment handle per file and process), so read-only opens do not
    /// share a directory here, though LMDB would allow it across processes.
    fn capabilities() -> Capabilities {
        Capabilities {
            shared_read_only: false,
            ..Capabilities::PERSISTENT
        }
    }

    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        let location: Arc<String> = dir.display().to_string().into();
        open_dir(dir, &LAYOUT, &options, |guard| {
            let db = Arc::new(Db::open(guard, &options)?);
            let gate = db.gate();
            Ok(LmdbBackend {
                engine: Gated::shared(gate, LmdbEngine::new(Arc::clone(&db))),
                ledger: Gated::shared(
                    gate,
                    KvLedger::open(Arc::clone(&db), LEDGER_TABLES, Arc::clone(&options.clock))?,
                ),
                segments: Gated::shared(gate, KvSegmentLog::open(Arc::clone(&db), SEGMENT_TABLES)?),
                side_effects: Gated::shared(
                    gate,
                    KvSideEffects::open(
                        Arc::clone(&db),
                        SIDE_EFFECT_TABLES,
                        options.side_effect_cache_size,
                    )?,
                ),
                partitions: KvPartitions::open(Arc::clone(&db), tables::STATE)?,
                db,
                leases: PartitionLeases::default(),
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
        self.db.durability()
    }

    fn engine(&self) -> Arc<Gated<LmdbEngine>> {
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

    fn ledger(&self) -> Arc<Gated<LmdbLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<LmdbSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<LmdbSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}

/// What kind of failure an LMDB error is.
fn kind_of(e: &heed::Error) -> StorageErrorKind {
    use heed::MdbError;
    match e {
        heed::Error::Io(e) => StorageErrorKind::of_io(e),
        heed::Error::Mdb(
            MdbError::Corrupted
            | MdbError::PageNotFound
            | MdbError::Invalid
            | MdbError::VersionMismatch,
        ) => StorageErrorKind::Corrupted,
        heed::Error::Mdb(MdbError::Other(code)) => {
            StorageErrorKind::of_io(&std::io::Error::from_raw_os_error(*code))
        }
        heed::Error::Decoding(_) => StorageErrorKind::Corrupted,
        _ => StorageErrorKind::Engine,
    }
}

/// An LMDB failure while doing `what`, with the LMDB error kept as the source.
pub(crate) fn storage(what: &'static str, e: heed::Error) -> StorageError {
    StorageError::new(BACKEND_NAME, kind_of(&e), what, e)
}

/// Adds the context of a failed LMDB call.
pub(crate) trait HeedExt<T> {
    /// The result, its error wrapped as a [`StorageError`] of `what`.
    fn ctx(self, what: &'static str) -> Result<T, StorageError>;
}

impl<T> HeedExt<T> for heed::Result<T> {
    #[inline]
    fn ctx(self, what: &'static str) -> Result<T, StorageError> {
        self.map_err(|e| storage(what, e))
    }
}

/// Classifies an LMDB failure met while opening the database file `path`.
pub(crate) fn open_error(path: &Path, e: heed::Error) -> OpenError {
    match e {
        heed::Error::Io(source) => OpenError::from_io(path, source),
        heed::Error::Mdb(heed::MdbError::Other(code)) => {
            OpenError::from_io(path, std::io::Error::from_raw_os_error(code))
        }
        heed::Error::EnvAlreadyOpened => OpenError::Locked {
            path: path.parent().unwrap_or(path).to_path_buf(),
        },
        e if kind_of(&e) == StorageErrorKind::Corrupted => OpenError::Corrupted {
            path: path.to_path_buf(),
            source: Box::new(e),
        },
        e => OpenError::Storage(storage("opening the LMDB environment", e)),
    }
}

/// The database file `path` is damaged: `detail` says how.
pub(crate) fn corrupted_at_open(path: &Path, detail: impl Into<String>) -> OpenError {
    OpenError::Corrupted {
        path: path.to_path_buf(),
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            detail.into(),
        )),
    }
}

#[cfg(test)]
mod tests;
