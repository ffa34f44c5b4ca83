//! Every store of `store-api` on [sled](https://docs.rs/sled/0.34) 0.34.
//!
//! One sled database per backend directory; each store kind lives in its own sled trees, so
//! the stores never see each other's keys. Every multi-key write is one sled transaction
//! (or one single-tree [`sled::Batch`]), so nothing is ever half applied, also across a
//! crash: sled seals the log records of one transaction as one recovery unit.
//!
//! ```
//! use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
//! use store_sled::SledBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let backend = SledBackend::open(&dir.path().join("db"), OpenOptions::default())?;
//! let seq = backend.engine().put_batch(&[(b"k", b"v")])?;
//! assert_eq!(seq, 1);
//! let mut state = backend.state_store("operator-1")?;
//! state.put(b"count", b"1")?;
//! state.flush()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Durability
//!
//! sled buffers writes in memory and makes them durable only when its log is flushed
//! (written and fsynced).
//!
//! - [`Durability::Immediate`] (the default): every write call commits its transaction and
//!   makes it durable before it returns: it `fsync`s the blob files sled wrote since the
//!   previous sync (sled never syncs them itself), calls `Db::flush` (sled writes its log
//!   buffer and pushes it with `sync_file_range` on Linux), then `fdatasync`s the log file
//!   (`sync_file_range` neither persists the file size nor flushes the device cache).
//!   That is one sync round per `put_batch`/`delete_batch`, per state `flush`, per
//!   side-effect or segment write that changes something, per `register_asset`/
//!   `open_account`, and per `commit_batch`; concurrent `commit` calls are grouped and
//!   share one transaction and one sync round. Expect each write to take about two of the
//!   device's sync latencies. sled's own periodic flusher is off in this mode: it only
//!   logs a failed `fsync`, which could drop data a later sync would then report durable.
//! - [`Durability::Relaxed`]: writes commit to sled's buffer and return; sled's background
//!   thread flushes and fsyncs every [`FLUSH_EVERY_MS`] (500 ms), and whenever a log buffer
//!   fills. A crash may lose the writes of the last flush interval, but recovery replays
//!   whole transactions only (never a torn batch) and never corrupts the database.
//!   **sled's flusher only logs a failed `fsync`**: on a failing disk the writes of that
//!   interval can be lost without any call returning an error (a later state `flush` or
//!   close syncs again and may succeed). Use `Immediate` where a disk error must surface.
//!
//! A state partition's `flush` is durable when it returns in both modes (it makes every
//! earlier write durable, `docs/contract.md` §4.5): under `Relaxed` it runs the same sync round as
//! `Immediate`, which also makes every earlier write of every store durable.
//!
//! In both modes, dropping the backend (its last store handle) flushes everything: a clean
//! close loses nothing.
//!
//! Reads see a write as soon as its transaction commits. The ledger, side-effect and
//! segment stores (on `store-kv`'s layer) are stricter: their readers wait while a write of
//! theirs commits and is flushed, so such a read never returns a write that is not yet
//! durable under `Immediate`.
//!
//! # A full disk, a failed write
//!
//! sled commits a write in memory before it flushes it, and keeps the error of a failed
//! flush for good. So the first failed flush (or failed write transaction) answers
//! [`StorageErrorKind::NoSpace`] for a full disk ([`StorageErrorKind::Io`] otherwise) and
//! shuts the backend: every later call of every store, **reads included**, answers
//! [`StorageErrorKind::Poisoned`] until the backend is reopened, also once space is freed
//! (the capability [`reads_after_failed_write`](store_api::Capabilities) is `false`). An
//! idempotent retry of the failed write is refused too, never acknowledged: sled would show
//! it, but it is not on disk, and after a reopen it is gone. sled needs about 512 KiB
//! free to reopen after a full disk.
//!
//! A disk that stops answering (`EIO`) would make sled 0.34.7 panic when its database is
//! let go (its shutdown ends in an `fsync` it unwraps), and a panic while unwinding aborts
//! the process. So before letting go, the backend `fsync`s sled's log itself: when that
//! fails, sled is leaked instead of shut down (its memory, thread and file lock stay until
//! the process exits, so that directory reopens only in a new process, recovering what
//! reached the disk), and no seal is written. An open whose later steps fail on such a disk
//! answers its typed [`OpenError`] the same way.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/STORE        marker naming the backend (store-kit)
//! <dir>/.store-lock  the process lock (flock), held while the backend is open
//! <dir>/sled.seal    the clean-close seal (see below); present only while closed
//! <dir>/sled/        sled's own files: conf, db (the log), snap.*, blobs/
//! ```
//!
//! Trees (one per table) and their keys; values are `postcard` records of the `store-kit`
//! types named, except where raw bytes are said.
//!
//! **Format 2** (this version): every stored value below is the value the table names
//! followed by a 4-byte checksum (`store_kit::checksum`: CRC-32 over the tree name, the
//! key and the value, little-endian), verified on every read; the `meta` tree holds the
//! format record `format` -> `store-sled/2`, stored as is. Format 1 (before checksums) had
//! no format record and stored values as given. Opening a format-1 database upgrades it
//! before any store reads it, in **one** sled transaction over every tree (every record
//! rewritten with its checksum, and the format record), then makes it durable. sled
//! recovers a transaction whole or not at all, so a process killed during the upgrade
//! leaves format 1 as it was, and the next open upgrades it again from the start; never a
//! mix of checksummed and bare records. The transaction holds a copy of every record in
//! memory while it runs. A newer format (or a format record that does not decode) is
//! refused at open with [`OpenError::ForeignData`]; builds before format 2 do not read
//! format 2.
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `format` | `store-sled/2` (no checksum) |
//! | `engine.data` | the caller's key | the caller's value (raw) |
//! | `engine.log` | sequence number, u64 big-endian | the batch's mutations (`store_kit::engine` encoding) |
//! | `engine.meta` | `sequence` | last committed sequence number, u64 big-endian |
//! | `state.entries` | partition id (u32 big-endian) ‖ the caller's key | the caller's value (raw) |
//! | `state.partitions` | partition name (UTF-8) | partition id, u32 big-endian |
//! | `state.meta` | `next-partition-id` | next id to hand out, u32 big-endian |
//! | `ledger.assets` | asset id | `AssetDef` |
//! | `ledger.accounts` | book NUL path NUL | `AccountRecord` |
//! | `ledger.postings` | book NUL path NUL seq(u64 BE) index(u32 BE) | `PostingRecord` |
//! | `ledger.events` | book NUL seq(u64 BE) | `Sequenced<LedgerEvent>` |
//! | `ledger.heads` | book name | `BookHead` |
//! | `ledger.idempotency` | book NUL idempotency key | `Committed` |
//! | `ledger.transactions` | txid (16 bytes) | `TxLocation` |
//! | `ledger.totals` | book NUL asset NUL | `AssetTotals` |
//! | `side_effect.outputs` | lyquid(20) pos(u128 BE) kind(1) | `EventOutputs` |
//! | `side_effect.call_outputs` | callee(20) pos(u128 BE) seq(u32 BE) | `CallEventOutput` |
//! | `side_effect.inbound` | callee(20) order.pos(u128 BE) order.seq(u32 BE) | `InboundInterCall` |
//! | `segment.meta` | segment id (16 bytes) | `SegmentMeta` |
//! | `segment.sessions` | session id(16) segment id(16), live segments only | empty |
//! | `segment.entries` | segment id(16) index(u64 BE) | the entry (raw) |
//! | `segment.traces` | segment id(16) index(u64 BE) | the trace entry (raw) |
//!
//! A state partition gets its id at its first flush (opening one writes nothing) and is
//! loaded whole into its handle's memory when opened: `StateStore::get` is a hash lookup
//! that never reaches sled.
//!
//! # Damaged directories
//!
//! sled 0.34 silently recovers a truncated or partly overwritten log to whatever prefix
//! still checks out (a log cut in half opens as an empty database), rewrites parts of its
//! file while recovering, and panics on some damage. So:
//!
//! - a clean close writes `<dir>/sled.seal`: every file under `<dir>/sled` with its length
//!   and a 64-bit checksum. `open` verifies it **before** starting sled and refuses any
//!   difference with [`OpenError::Corrupted`], leaving every file as it was, then removes
//!   it. After a crash there is no seal, and sled's own recovery decides;
//! - a snapshot sled was still writing when its process died (`sled/snap.<lsn>.generating`)
//!   is removed before sled starts: sled 0.34.7 would take it for its newest snapshot and
//!   refuse the database as corrupted (see `remove_unfinished_snapshots`);
//! - a panic inside sled's `Config::open` is caught and reported as
//!   [`OpenError::Corrupted`]; sled's checksum failures are `Corrupted` too;
//! - every record carries its checksum (format 2, above), so a record sled's recovery
//!   lets through damaged, after a crash (no seal), is a [`StorageErrorKind::Corrupted`]
//!   error naming the tree and the key when it is read, never wrong data. sled's own
//!   recovery may instead stop at a damaged log record and drop what follows: that data is
//!   then absent, which no record checksum can report.
//!
//! # Limits
//!
//! - Keys 1 to [`MAX_KEY_LEN`](store_api::MAX_KEY_LEN) (480) bytes, values up to
//!   [`MAX_VALUE_LEN`](store_api::MAX_VALUE_LEN) (16 MiB): the common limits; sled has no
//!   smaller ones. sled writes a log record larger than about 128 KiB (a page holding a
//!   large value, or the batch-log entry of a large batch) to its own file under
//!   `sled/blobs/`.
//! - At most 2^32 state partitions are ever created in one database.
//! - Opening and cleanly closing read every database file once (the seal), so both take
//!   time proportional to the database size.
//! - sled caches up to 1 GiB of pages in memory (its default `cache_capacity`, capped by
//!   the cgroup memory limit).
//! - sled serializes transactions process-wide: once any sled transaction has run in the
//!   process, every sled read takes a shared lock that commits of any sled database
//!   exclude. Writers of each store are serialized by the store anyway (so sequence numbers
//!   follow commit order and transactions never conflict).

mod db;
mod engine;
mod kv;
mod seal;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::db::SledDb;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use sled::IVec;
use sled::transaction::Transactional;
use store_api::limits::check_partition_name;
use store_api::{
    Backend, Capabilities, Durability, OpenError, OpenOptions, StateError, StorageError,
    StorageErrorKind,
};
use store_kit::checksum::{Framing, format_record, framing_of_format, open_value, seal_value};
use store_kit::dir::{DirGuard, DirLayout, open_dir};
use store_kit::gate::WriteGate;
use store_kit::gated::Gated;
use store_kit::open_step;
use store_kit::state::{BufferedState, PartitionLeases};
use store_kv::{
    KvLedger, KvPartition, KvPartitions, KvSegmentLog, KvSideEffects, LEDGER_TABLES,
    SEGMENT_TABLES, SIDE_EFFECT_TABLES, StateTables,
};

pub use engine::SledEngine;

/// Where the flushes of a [`SledBackend`]'s state partition go: `store-kv`'s, in the
/// `state.*` trees.
pub type SledPartition = KvPartition<Shared>;

/// The state trees; partition ids start at 0.
const STATE: StateTables = StateTables {
    entries: "state.entries",
    partitions: "state.partitions",
    meta: "state.meta",
    first_id: 0,
};

/// The ledger of a [`SledBackend`]: `store-kv`'s, in the `ledger.*` trees.
pub type SledLedger = KvLedger<Shared>;

/// The segment log of a [`SledBackend`]: `store-kv`'s, in the `segment.*` trees.
pub type SledSegmentLog = KvSegmentLog<Shared>;

/// The side-effect store of a [`SledBackend`]: `store-kv`'s, in the `side_effect.*` trees.
pub type SledSideEffects = KvSideEffects<Shared>;

/// The backend's name, in errors and in the directory marker.
pub const BACKEND_NAME: &str = "sled";

/// The subdirectory of the backend directory that holds sled's own files.
pub const SLED_SUBDIR: &str = "sled";

/// The files of a backend directory, beside store-kit's marker and lock: sled's
/// subdirectory and the clean-close seal (with the temporary file it is written through).
const LAYOUT: DirLayout = DirLayout {
    backend: BACKEND_NAME,
    owned: &[SLED_SUBDIR, seal::SEAL_FILE, seal::SEAL_TEMP_FILE],
};

/// How often sled's background thread flushes (and fsyncs) buffered writes, in
/// milliseconds: the most a crash can lose under [`Durability::Relaxed`].
pub const FLUSH_EVERY_MS: u64 = 500;

/// The names of the sled trees of the stores not on the ordered-KV layer, one per table
/// (the state trees are named by `STATE`, the ledger, side-effect and segment trees by
/// `store_kv`). Each store kind has its own
/// trees, so the stores never see each other's keys.
pub(crate) mod trees {
    pub(crate) const ENGINE_DATA: &str = "engine.data";
    pub(crate) const ENGINE_LOG: &str = "engine.log";
    pub(crate) const ENGINE_META: &str = "engine.meta";
}

/// The open database, shared by every store of one backend. When the last store holding
/// it is dropped, its fields drop in order: sled flushes and shuts down, the seal is
/// written, and the directory lock is released.
pub struct Shared {
    /// Dropped first: sled shuts down and the seal is written, or, on a disk that stopped
    /// answering, sled is leaked rather than let panic (module `db`).
    db: SledDb,
    /// Serializes the writes of the stores on the ordered-KV layer (`kv`).
    kv_writer: Mutex<()>,
    /// Held exclusively while a write of the ordered-KV layer commits and is made
    /// durable; its reads hold it shared.
    kv_visible: RwLock<()>,
    /// Our own handle on sled's log file, to `fdatasync` it (see [`Shared::sync`]).
    db_file: File,
    /// The newest blob file already synced (blob files are named by their log sequence
    /// number).
    blobs_synced: Mutex<i64>,
    durability: Durability,
    /// Shut once a durability step fails: sled has by then committed the write in memory,
    /// and its flush error is sticky, so nothing written afterwards would become durable.
    /// Refuses the writes of a read-only open, and everything once the backend is closed.
    gate: Arc<WriteGate>,
    dir: DirGuard,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("path", &self.dir.path())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Opens (or creates) the tree `name`.
    pub(crate) fn tree(&self, name: &'static str) -> Result<sled::Tree, StorageError> {
        self.db
            .open_tree(name)
            .map_err(|e| storage_error("opening a sled tree", e))
    }

    /// `Ok` while the backend accepts writes; [`StorageErrorKind::Poisoned`] once a
    /// durability step has failed. Every write checks it under its store's writer lock
    /// before it plans anything, so an idempotent replay cannot acknowledge a write that
    /// was visible but never made durable.
    pub(crate) fn writable(&self) -> Result<(), StorageError> {
        self.gate.check()
    }

    /// `Ok` unless a write has failed: after a failed write sled sets a sticky error that
    /// some of its own reads return too, and a transaction that failed part way may leave
    /// its trees disagreeing in memory, so every read is refused with
    /// [`StorageErrorKind::Poisoned`] until the backend is reopened, rather than risk an
    /// answer that is not on disk (see [`Capabilities::reads_after_failed_write`]).
    #[inline]
    pub(crate) fn readable(&self) -> Result<(), StorageError> {
        self.gate.check_unpoisoned()
    }

    /// Passes a failed write's error through, shutting the gate when the engine failed
    /// (an I/O error, a full disk): sled's state after that is not to be trusted.
    pub(crate) fn poisoning(&self, error: StorageError) -> StorageError {
        if matches!(
            error.kind(),
            StorageErrorKind::Io | StorageErrorKind::NoSpace
        ) {
            self.gate.poison(&error);
        }
        error
    }

    /// Makes every write committed so far durable under [`Durability::Immediate`]; nothing
    /// under [`Durability::Relaxed`], where sled's background thread flushes within
    /// [`FLUSH_EVERY_MS`].
    pub(crate) fn sync(&self, context: &'static str) -> Result<(), StorageError> {
        if self.durability == Durability::Immediate {
            self.make_durable(context)?;
        }
        Ok(())
    }

    /// Makes every write committed so far durable, in both modes. A failure shuts the
    /// write gate: the writes sled already shows may never reach the disk.
    ///
    /// `Db::flush` alone is not enough: on Linux sled pushes its log with
    /// `sync_file_range`, which neither persists the file's size nor flushes the device's
    /// write cache, and it never syncs its blob files. So this syncs the blob files written
    /// since the last call, then flushes sled, then `fdatasync`s the log file.
    pub(crate) fn make_durable(&self, context: &'static str) -> Result<(), StorageError> {
        self.gate.check()?;
        self.flush_everything(context)
    }

    /// The backend's gate.
    pub(crate) fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// What `close` does (the gate is already closed): makes every write durable, unless
    /// the open was read-only, and reports why it could not. A poisoned backend reports
    /// the failure that poisoned it: what it showed since may not be durable.
    fn close(&self) -> Result<(), StorageError> {
        if self.gate.is_poisoned() {
            return Err(StorageError::without_source(
                BACKEND_NAME,
                StorageErrorKind::Poisoned,
                "closing after a failed durability step: the writes acknowledged since may \
                 not be on disk",
            ));
        }
        self.flush_everything("making every write durable at close")
    }

    /// Syncs the new blob files, flushes sled and `fdatasync`s its log; a failure poisons
    /// the gate.
    fn flush_everything(&self, context: &'static str) -> Result<(), StorageError> {
        let io = |e: std::io::Error| {
            StorageError::new(BACKEND_NAME, StorageErrorKind::of_io(&e), context, e)
        };
        let synced = self
            .sync_new_blobs()
            .map_err(io)
            .and_then(|()| self.db.flush().map_err(|e| storage_error(context, e)))
            .and_then(|_| self.db_file.sync_data().map_err(io));
        if let Err(e) = &synced {
            self.gate.poison(e);
        }
        synced
    }

    /// `fsync`s every blob file newer than the last one synced, and the blob directory.
    fn sync_new_blobs(&self) -> std::io::Result<()> {
        let mut synced = self.blobs_synced.lock();
        let dir = self.dir.path().join(SLED_SUBDIR).join("blobs");
        let mut newest = *synced;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(lsn) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            if lsn <= *synced {
                continue;
            }
            match File::open(entry.path()) {
                Ok(blob) => blob.sync_all()?,
                // Collected by sled meanwhile: nothing to make durable.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            newest = newest.max(lsn);
        }
        if newest > *synced {
            File::open(&dir)?.sync_all()?;
            *synced = newest;
        }
        Ok(())
    }
}

/// The suffix sled 0.34 gives a snapshot while it writes it: `snap.<lsn>.generating`.
const UNFINISHED_SNAPSHOT_SUFFIX: &str = ".generating";

/// Removes the snapshot files sled was still writing when its process died.
///
/// sled 0.34.7 writes a snapshot as `snap.<lsn>.generating`, fsyncs it and only then
/// renames it to `snap.<lsn>`, so a file of that name is never a finished snapshot. But its
/// recovery lists it among the snapshots, reads the newest one, finds it empty or its
/// checksum wrong, and refuses the whole database as corrupted (sled issues #1527 and
/// #1533): a kill at the wrong moment, under either durability mode, left a directory that
/// never opened again. Removing the file leaves the directory as a kill just before sled
/// began that snapshot would have: sled recovers from its previous snapshot, or none, and
/// replays its log from there, which is the recovery sled is built for.
fn remove_unfinished_snapshots(sled_dir: &Path) -> Result<(), OpenError> {
    // No sled directory yet (a new database), or something else in its place, which
    // `open_db` refuses: nothing to clean.
    if !std::fs::metadata(sled_dir).is_ok_and(|meta| meta.is_dir()) {
        return Ok(());
    }
    let entries = std::fs::read_dir(sled_dir).map_err(|e| OpenError::from_io(sled_dir, e))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| OpenError::from_io(sled_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("snap.") && name.ends_with(UNFINISHED_SNAPSHOT_SUFFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| OpenError::from_io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        File::open(sled_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| OpenError::from_io(sled_dir, e))?;
    }
    Ok(())
}

/// Makes the files sled created at open durable (sled writes its `conf` without `fsync`
/// and never syncs its directories), and returns a handle on the log file.
fn sync_new_database(dir: &Path, path: &Path) -> Result<File, OpenError> {
    let synced = |p: &Path| {
        File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| OpenError::from_io(p, e))
    };
    synced(&path.join("conf"))?;
    synced(&path.join("blobs"))?;
    synced(path)?;
    synced(dir)?;
    let db_file = path.join("db");
    let file = File::open(&db_file).map_err(|e| OpenError::from_io(&db_file, e))?;
    file.sync_all()
        .map_err(|e| OpenError::from_io(&db_file, e))?;
    Ok(file)
}

/// Wraps a sled error met while doing `context`, keeping it as the source.
pub(crate) fn storage_error(context: &'static str, error: sled::Error) -> StorageError {
    let kind = match &error {
        sled::Error::Io(e) => StorageErrorKind::of_io(e),
        sled::Error::Corruption { .. } => StorageErrorKind::Corrupted,
        _ => StorageErrorKind::Engine,
    };
    StorageError::new(BACKEND_NAME, kind, context, error)
}

/// The error of a sled transaction whose closure aborts with `E`: the abort itself, or the
/// storage failure wrapped as `E`.
pub(crate) fn from_tx<E: From<StorageError>>(
    context: &'static str,
    error: sled::transaction::TransactionError<E>,
) -> E {
    match error {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => storage_error(context, e).into(),
    }
}

/// Values up to this size are copied out of sled's buffer; larger ones are shared with it.
const COPY_LIMIT: usize = 1024;

/// A sled key as [`Bytes`]: a copy for small keys, the same buffer for large ones.
#[inline]
pub(crate) fn to_bytes(value: IVec) -> Bytes {
    if value.len() <= COPY_LIMIT {
        Bytes::copy_from_slice(&value)
    } else {
        Bytes::from_owner(value)
    }
}

/// The value of the stored record `key -> stored` of the tree `table`, its checksum
/// verified (a `Corrupted` error naming the tree and key when it does not match), as
/// [`Bytes`]: a copy for small values, a slice of sled's buffer for large ones.
#[inline]
pub(crate) fn opened_bytes(table: &str, key: &[u8], stored: IVec) -> Result<Bytes, StorageError> {
    let len = open_value(BACKEND_NAME, table, key, &stored)?.len();
    Ok(if len <= COPY_LIMIT {
        Bytes::copy_from_slice(stored.get(..len).unwrap_or_default())
    } else {
        Bytes::from_owner(stored).slice(..len)
    })
}

/// The tree holding the format record (`format` -> `store-sled/2`). The record is stored
/// as is, without a checksum, so it can be read before the format is known; a damaged one
/// is refused at open like an unknown format.
const META_TREE: &str = "meta";
/// The key of the format record in [`META_TREE`].
const FORMAT_KEY: &[u8] = b"format";
/// The name in the format record.
const FORMAT_NAME: &str = "store-sled";
/// The format this build writes: 2, every record checksummed. Format 1 (no format
/// record) stored values as given.
const FORMAT_VERSION: u32 = 2;

/// Every tree of the stores, whose records the upgrade from format 1 rewrites.
fn store_trees() -> Vec<&'static str> {
    let mut names = vec![trees::ENGINE_DATA, trees::ENGINE_LOG, trees::ENGINE_META];
    names.extend([STATE.entries, STATE.partitions, STATE.meta]);
    names.extend(LEDGER_TABLES.names());
    names.extend(SIDE_EFFECT_TABLES.names());
    names.extend(SEGMENT_TABLES.names());
    names
}

/// Checks the format record of the database and, when there is none (format 1, or a new
/// database), rewrites every record of every tree with its checksum and writes the format
/// record, in **one** sled transaction over every tree, then makes it durable.
///
/// sled recovers a transaction whole or not at all, so a process killed during the
/// upgrade leaves format 1 as it was (the next open upgrades it again from the start) or
/// format 2 complete with its record: never a mix of upgraded and bare records. The
/// transaction holds a copy of every record in memory while it runs. An unknown format
/// (a newer one) is refused with [`OpenError::ForeignData`] before anything is written.
fn check_format(shared: &Shared, path: &Path) -> Result<(), OpenError> {
    const CONTEXT: &str = "upgrading the database to checksummed records (format 2)";
    let storage = |e: StorageError| load_error(path, e);
    let meta = shared.tree(META_TREE).map_err(storage)?;
    let record = meta
        .get(FORMAT_KEY)
        .map_err(|e| storage(storage_error("reading the format record", e)))?;
    match framing_of_format(FORMAT_NAME, FORMAT_VERSION, record.as_deref()) {
        Ok(Framing::Checksummed) => return Ok(()),
        Ok(Framing::Bare) => {}
        Err(detail) => {
            return Err(OpenError::ForeignData {
                path: path.to_path_buf(),
                detail,
            });
        }
    }
    let names = store_trees();
    let mut trees = Vec::with_capacity(names.len() + 1);
    let mut batches = Vec::with_capacity(names.len() + 1);
    for name in names {
        let tree = shared.tree(name).map_err(storage)?;
        let mut batch = sled::Batch::default();
        for row in tree.iter() {
            let (key, value) = row.map_err(|e| storage(storage_error(CONTEXT, e)))?;
            let sealed = seal_value(name, &key, &value);
            batch.insert(key, sealed);
        }
        trees.push(tree);
        batches.push(batch);
    }
    let mut format = sled::Batch::default();
    format.insert(FORMAT_KEY, format_record(FORMAT_NAME, FORMAT_VERSION));
    trees.push(meta);
    batches.push(format);
    trees
        .as_slice()
        .transaction(|views: &Vec<sled::transaction::TransactionalTree>| {
            for (view, batch) in views.iter().zip(&batches) {
                view.apply_batch(batch)?;
            }
            Ok::<_, sled::transaction::ConflictableTransactionError<StorageError>>(())
        })
        .map_err(|e| storage(from_tx(CONTEXT, e)))?;
    shared.flush_everything(CONTEXT).map_err(storage)
}

/// The sled backend: one sled database in `<dir>/sled`, every store in its own trees.
pub struct SledBackend {
    shared: Arc<Shared>,
    engine: Arc<Gated<SledEngine>>,
    ledger: Arc<Gated<SledLedger>>,
    segments: Arc<Gated<SledSegmentLog>>,
    side_effects: Arc<Gated<SledSideEffects>>,
    partitions: KvPartitions<Shared>,
    leases: PartitionLeases,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Opens the sled database at `path`, mapping every failure to the matching [`OpenError`].
///
/// sled's periodic flusher thread runs under [`Durability::Relaxed`] only. sled 0.34's
/// flusher logs a failed `fsync` and carries on; on Linux a failed `fsync` may drop the
/// dirty pages it could not write ("fsyncgate"), so a later `fdatasync` of this backend
/// would succeed and acknowledge a write whose bytes are gone. Under
/// [`Durability::Immediate`] every write makes itself durable and sees its own sync fail,
/// so the flusher is off (found by reliability's `power_cut` test, which failed the
/// flusher's `fsync` when the machine was loaded).
fn open_db(path: &Path, durability: Durability) -> Result<sled::Db, OpenError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => {
            return Err(OpenError::Corrupted {
                path: path.to_path_buf(),
                source: "the sled database directory is not a directory".into(),
            });
        }
        _ => {}
    }
    let config = sled::Config::new()
        .path(path)
        .flush_every_ms(match durability {
            Durability::Immediate => None,
            Durability::Relaxed => Some(FLUSH_EVERY_MS),
        });
    // sled 0.34 panics on some damaged files (a snapshot pointing past the end of the log,
    // for one) instead of returning an error: such a panic is reported as corruption.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
        Ok(opened) => opened.map_err(|e| open_error(path, e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("sled panicked");
            Err(OpenError::Corrupted {
                path: path.to_path_buf(),
                source: format!("sled could not recover the database: {what}").into(),
            })
        }
    }
}

/// Classifies a sled error met while opening the database at `path`: I/O failures by their
/// kind, anything sled refuses to recover (bad checksums, a damaged or unreadable
/// configuration) as corruption.
fn open_error(path: &Path, error: sled::Error) -> OpenError {
    match error {
        sled::Error::Io(source)
            if !matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            OpenError::from_io(path, source)
        }
        other => OpenError::Corrupted {
            path: path.to_path_buf(),
            source: Box::new(other),
        },
    }
}

/// Classifies a failure met while loading the stores of a freshly opened database.
fn load_error(path: &Path, error: StorageError) -> OpenError {
    match error.kind() {
        StorageErrorKind::Corrupted => OpenError::Corrupted {
            path: path.to_path_buf(),
            source: Box::new(error),
        },
        _ => OpenError::Storage(error),
    }
}

impl Backend for SledBackend {
    type Location = Path;
    type Engine = Gated<SledEngine>;
    type State = BufferedState<SledPartition>;
    type Ledger = Gated<SledLedger>;
    type Segments = Gated<SledSegmentLog>;
    type SideEffects = Gated<SledSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities {
            reads_after_failed_write: false,
            close_releases_store: false,
            shared_read_only: false,
            read_only_open: false,
            ..Capabilities::PERSISTENT
        }
    }

    /// A read-only open is [`OpenError::Unsupported`]: sled writes to its files (its log
    /// and a snapshot) whenever it opens, so it cannot leave them byte-identical.
    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        if options.read_only {
            return Err(OpenError::Unsupported {
                backend: BACKEND_NAME,
                what: "read-only opens: sled writes to its files whenever it opens; copy the \
                       directory and open the copy, or migrate the store to a backend that \
                       opens read-only"
                    .to_owned(),
            });
        }
        let location: Arc<String> = dir.display().to_string().into();
        open_dir(dir, &LAYOUT, &options, |guard| {
            let path = dir.join(SLED_SUBDIR);
            if !options.may_create() && !path.is_dir() {
                return Err(OpenError::NotFound {
                    location: path.display().to_string(),
                });
            }
            open_step::timed(BACKEND_NAME, "seal check", || {
                seal::SEAL.verify_and_break(dir)
            })?;
            remove_unfinished_snapshots(&path)?;
            let db = SledDb::new(
                open_step::timed(BACKEND_NAME, "sled open and log recovery", || {
                    open_db(&path, options.durability)
                })?,
                dir,
            );
            let db_file = sync_new_database(dir, &path)?;
            let shared = Arc::new(Shared {
                db,
                kv_writer: Mutex::new(()),
                kv_visible: RwLock::new(()),
                db_file,
                blobs_synced: Mutex::new(i64::MIN),
                durability: options.durability,
                gate: Arc::new(WriteGate::new(BACKEND_NAME).with_location(Arc::clone(&location))),
                dir: guard,
            });
            check_format(&shared, &path)?;
            let gate = &shared.gate;
            let load = || -> Result<SledBackend, StorageError> {
                Ok(SledBackend {
                    engine: Gated::shared(gate, SledEngine::open(Arc::clone(&shared))?),
                    ledger: Gated::shared(
                        gate,
                        KvLedger::open(
                            Arc::clone(&shared),
                            LEDGER_TABLES,
                            Arc::clone(&options.clock),
                        )?,
                    ),
                    segments: Gated::shared(
                        gate,
                        KvSegmentLog::open(Arc::clone(&shared), SEGMENT_TABLES)?,
                    ),
                    side_effects: Gated::shared(
                        gate,
                        KvSideEffects::open(
                            Arc::clone(&shared),
                            SIDE_EFFECT_TABLES,
                            options.side_effect_cache_size,
                        )?,
                    ),
                    partitions: KvPartitions::open(Arc::clone(&shared), STATE)?,
                    leases: PartitionLeases::default(),
                    shared: Arc::clone(&shared),
                })
            };
            load().map_err(|e| load_error(&path, e))
        })
        .map_err(|e| e.located(&location))
    }

    /// Makes every write durable and marks every handle closed. sled's files and the
    /// directory lock are released once the backend and every handle taken from it are
    /// dropped: sled's trees, which the stores hold, keep its database open
    /// (`Capabilities::close_releases_store` is `false`).
    fn close(&self) -> Result<(), StorageError> {
        if !self.shared.gate.close() {
            return Ok(());
        }
        self.engine.inner().close();
        self.shared.gate.locating(|| self.shared.close())
    }

    fn durability(&self) -> Durability {
        self.shared.durability
    }

    fn engine(&self) -> Arc<Gated<SledEngine>> {
        Arc::clone(&self.engine)
    }

    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        self.shared.gate.check_open()?;
        let lease = self.leases.acquire(name)?;
        self.shared
            .gate
            .locating(|| Ok(self.partitions.open_partition(lease)?))
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        self.shared
            .gate
            .locating(|| self.partitions.list(after, limit))
    }

    fn ledger(&self) -> Arc<Gated<SledLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<SledSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<SledSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}

#[cfg(test)]
mod tests;
