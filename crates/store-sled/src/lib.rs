//! Every store of `store-api` on [sled](https://docs.rs/sled/0.34) 0.34.
//!
//! DOCS-PLACEHOLDER

mod engine;
mod ledger;
mod seal;
mod segment;
mod side_effect;
mod state;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sled::IVec;
use store_api::limits::check_partition_name;
use store_api::{
    Backend, Capabilities, Durability, OpenError, OpenOptions, StateError, StorageError,
    StorageErrorKind,
};
use store_kit::dir::{DirGuard, prepare_dir};
use store_kit::state::{BufferedState, PartitionLeases};

pub use engine::SledEngine;
pub use ledger::SledLedger;
pub use segment::SledSegmentLog;
pub use side_effect::SledSideEffects;
pub use state::SledPartition;

/// The backend's name, in errors and in the directory marker.
pub const BACKEND_NAME: &str = "sled";

/// The subdirectory of the backend directory that holds sled's own files.
pub const SLED_SUBDIR: &str = "sled";

/// How often sled's background thread flushes (and fsyncs) buffered writes, in
/// milliseconds: the most a crash can lose under [`Durability::Relaxed`].
pub const FLUSH_EVERY_MS: u64 = 500;

/// The names of the sled trees, one per table. Each store kind has its own trees, so the
/// stores never see each other's keys.
pub(crate) mod trees {
    pub(crate) const ENGINE_DATA: &str = "engine.data";
    pub(crate) const ENGINE_LOG: &str = "engine.log";
    pub(crate) const ENGINE_META: &str = "engine.meta";
    pub(crate) const STATE_ENTRIES: &str = "state.entries";
    pub(crate) const STATE_PARTITIONS: &str = "state.partitions";
    pub(crate) const STATE_META: &str = "state.meta";
    pub(crate) const LEDGER_ASSETS: &str = "ledger.assets";
    pub(crate) const LEDGER_ACCOUNTS: &str = "ledger.accounts";
    pub(crate) const LEDGER_POSTINGS: &str = "ledger.postings";
    pub(crate) const LEDGER_EVENTS: &str = "ledger.events";
    pub(crate) const LEDGER_HEADS: &str = "ledger.heads";
    pub(crate) const LEDGER_IDEMPOTENCY: &str = "ledger.idempotency";
    pub(crate) const LEDGER_TRANSACTIONS: &str = "ledger.transactions";
    pub(crate) const LEDGER_TOTALS: &str = "ledger.totals";
    pub(crate) const SIDE_EFFECT_OUTPUTS: &str = "side_effect.outputs";
    pub(crate) const SIDE_EFFECT_CALL_OUTPUTS: &str = "side_effect.call_outputs";
    pub(crate) const SIDE_EFFECT_INBOUND: &str = "side_effect.inbound";
    pub(crate) const SEGMENT_META: &str = "segment.meta";
    pub(crate) const SEGMENT_SESSIONS: &str = "segment.sessions";
    pub(crate) const SEGMENT_ENTRIES: &str = "segment.entries";
    pub(crate) const SEGMENT_TRACES: &str = "segment.traces";
}

/// The open database, shared by every store of one backend. When the last store holding
/// it is dropped, its fields drop in order: sled flushes and shuts down, the seal is
/// written, and the directory lock is released.
pub(crate) struct Shared {
    db: sled::Db,
    _seal: SealOnDrop,
    durability: Durability,
    dir: DirGuard,
}

/// Writes the clean-close seal when dropped (after the `Db` and before the lock).
struct SealOnDrop {
    dir: std::path::PathBuf,
}

impl Drop for SealOnDrop {
    fn drop(&mut self) {
        seal::write(&self.dir, SLED_SUBDIR);
    }
}

impl Shared {
    /// Opens (or creates) the tree `name`.
    pub(crate) fn tree(&self, name: &'static str) -> Result<sled::Tree, StorageError> {
        self.db
            .open_tree(name)
            .map_err(|e| storage_error("opening a sled tree", e))
    }

    /// Makes every write committed so far durable under [`Durability::Immediate`] (one
    /// `Db::flush`: sled writes its log buffer and fsyncs); nothing under
    /// [`Durability::Relaxed`], where sled's background flush does it within
    /// [`FLUSH_EVERY_MS`].
    pub(crate) fn sync(&self, context: &'static str) -> Result<(), StorageError> {
        if self.durability == Durability::Immediate {
            self.db.flush().map_err(|e| storage_error(context, e))?;
        }
        Ok(())
    }
}

/// Wraps a sled error met while doing `context`, keeping it as the source.
pub(crate) fn storage_error(context: &'static str, error: sled::Error) -> StorageError {
    let kind = match &error {
        sled::Error::Io(_) => StorageErrorKind::Io,
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

/// A sled value as [`Bytes`]: a copy for small values, the same buffer for large ones.
#[inline]
pub(crate) fn to_bytes(value: IVec) -> Bytes {
    if value.len() <= COPY_LIMIT {
        Bytes::copy_from_slice(&value)
    } else {
        Bytes::from_owner(value)
    }
}

/// The sled backend: one sled database in `<dir>/sled`, every store in its own trees.
pub struct SledBackend {
    shared: Arc<Shared>,
    engine: Arc<SledEngine>,
    ledger: Arc<SledLedger>,
    segments: Arc<SledSegmentLog>,
    side_effects: Arc<SledSideEffects>,
    partitions: state::SledPartitions,
    leases: PartitionLeases,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend")
            .field("path", &self.shared.dir.path())
            .field("durability", &self.shared.durability)
            .finish_non_exhaustive()
    }
}

/// Opens the sled database at `path`, mapping every failure to the matching [`OpenError`].
fn open_db(path: &Path) -> Result<sled::Db, OpenError> {
    match std::fs::symlink_metadata(path) {
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
        .flush_every_ms(Some(FLUSH_EVERY_MS));
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
    type Engine = SledEngine;
    type State = BufferedState<SledPartition>;
    type Ledger = SledLedger;
    type Segments = SledSegmentLog;
    type SideEffects = SledSideEffects;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities::PERSISTENT
    }

    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        let guard = prepare_dir(dir, BACKEND_NAME)?;
        let path = dir.join(SLED_SUBDIR);
        seal::verify_and_break(dir, SLED_SUBDIR)?;
        let db = open_db(&path)?;
        let shared = Arc::new(Shared {
            db,
            _seal: SealOnDrop {
                dir: dir.to_path_buf(),
            },
            durability: options.durability,
            dir: guard,
        });
        let load = || -> Result<SledBackend, StorageError> {
            Ok(SledBackend {
                engine: Arc::new(SledEngine::open(Arc::clone(&shared))?),
                ledger: Arc::new(SledLedger::open(
                    Arc::clone(&shared),
                    Arc::clone(&options.clock),
                )?),
                segments: Arc::new(SledSegmentLog::open(Arc::clone(&shared))?),
                side_effects: Arc::new(SledSideEffects::open(
                    Arc::clone(&shared),
                    options.side_effect_cache_size,
                )?),
                partitions: state::SledPartitions::open(Arc::clone(&shared))?,
                leases: PartitionLeases::default(),
                shared: Arc::clone(&shared),
            })
        };
        load().map_err(|e| load_error(&path, e))
    }

    fn durability(&self) -> Durability {
        self.shared.durability
    }

    fn engine(&self) -> Arc<SledEngine> {
        Arc::clone(&self.engine)
    }

    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        let lease = self.leases.acquire(name)?;
        Ok(self.partitions.open_partition(lease)?)
    }

    fn ledger(&self) -> Arc<SledLedger> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<SledSegmentLog> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<SledSideEffects> {
        Arc::clone(&self.side_effects)
    }
}

#[cfg(test)]
mod tests;
