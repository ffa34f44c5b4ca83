//! The backend family: opening a backend where it lives (a directory, or a database
//! server), its options and capabilities, and the stores it hands out.

use std::borrow::Borrow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::StoreEngine;
use crate::error::{StorageError, StoreError};
use crate::ledger::LedgerStore;
use crate::limits::{MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::segment::SegmentLogStore;
use crate::side_effect::SideEffectStore;
use crate::state::{StateError, StateStore};
use crate::time::{Clock, SystemClock};

/// When a write counts as done. The same two words on every backend; each backend's docs
/// say what they do on its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub enum Durability {
    /// A write returns only after it is durable (fsync or the engine's equivalent).
    #[default]
    Immediate,
    /// A crash may lose the most recent acknowledged writes, but never tears a batch and
    /// never corrupts the database. A clean close (dropping the backend) loses nothing.
    Relaxed,
}

/// Options for [`Backend::open`].
///
/// ```
/// # use store_api::*;
/// let options = OpenOptions::default()
///     .durability(Durability::Relaxed)
///     .side_effect_cache_size(0) // no read cache
///     .create_if_missing(false);
/// assert_eq!(options.durability, Durability::Relaxed);
/// assert!(!options.may_create());
/// assert!(!OpenOptions::default().read_only(true).may_create()); // read-only never creates
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct OpenOptions {
    /// The durability mode of every store of the backend.
    pub durability: Durability,
    /// How many slots the side-effect store's read cache holds (0 disables it).
    pub side_effect_cache_size: usize,
    /// The clock the ledger stamps records with.
    pub clock: Arc<dyn Clock>,
    /// Create the store when it does not exist yet (default `true`). With `false`, opening
    /// a missing store is [`OpenError::NotFound`] and creates nothing: no directory, no
    /// marker, no file (on a server: no schema, no table).
    pub create_if_missing: bool,
    /// Open for reading only (default `false`): every read works, every write through every
    /// store answers [`StorageErrorKind::ReadOnly`](crate::StorageErrorKind::ReadOnly) and
    /// changes nothing, and the store's data files are left byte-identical. A read-only
    /// open never creates a store: a missing one is [`OpenError::NotFound`]. Whether a
    /// read-only open may share a store with other opens is each backend's to say (its
    /// docs and [`Capabilities::shared_read_only`]).
    pub read_only: bool,
}

impl OpenOptions {
    /// The default number of cached side-effect slots.
    pub const DEFAULT_SIDE_EFFECT_CACHE_SIZE: usize = 4096;

    /// The same options with `durability`.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The same options with a side-effect cache of `entries` slots.
    pub fn side_effect_cache_size(mut self, entries: usize) -> Self {
        self.side_effect_cache_size = entries;
        self
    }

    /// The same options with `clock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same options, creating a missing store (`true`, the default) or refusing to
    /// with [`OpenError::NotFound`] (`false`).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// The same options, read-only (`true`) or read-write (`false`, the default).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Whether an open with these options may create the store: `create_if_missing` and
    /// not `read_only`.
    pub fn may_create(&self) -> bool {
        self.create_if_missing && !self.read_only
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Immediate,
            side_effect_cache_size: Self::DEFAULT_SIDE_EFFECT_CACHE_SIZE,
            clock: Arc::new(SystemClock),
            create_if_missing: true,
            read_only: false,
        }
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("durability", &self.durability)
            .field("side_effect_cache_size", &self.side_effect_cache_size)
            .field("clock", &self.clock)
            .field("create_if_missing", &self.create_if_missing)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// What a backend can do, declared as values the conformance suite and the benchmarks
/// read (never as Cargo features).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Data survives dropping the backend and opening its directory again.
    pub persistent: bool,
    /// A second open of the same directory fails with [`OpenError::Locked`].
    pub exclusive_open: bool,
    /// The longest key accepted (the common [`MAX_KEY_LEN`] on every backend).
    pub max_key_len: usize,
    /// The largest value accepted (the common [`MAX_VALUE_LEN`] on every backend).
    pub max_value_len: usize,
    /// Reads keep answering after a write failed (a full disk, an I/O error): `true` on
    /// every backend but sled, whose engine keeps a sticky error after a failed flush and
    /// may hold a half-applied transaction in memory, so it refuses reads with
    /// [`StorageErrorKind::Poisoned`](crate::StorageErrorKind::Poisoned) until reopened.
    pub reads_after_failed_write: bool,
    /// Any number of backend instances, in any processes on any hosts, may open the same
    /// store at once and together behave as one store (`docs/contract.md` §9.3): a database
    /// server. `false` on every embedded backend (one process per directory).
    pub shared: bool,
    /// Several read-only opens of the same store may be open at once, in this process and
    /// others ([`OpenOptions::read_only`]). A read-write open always excludes every other
    /// open of an embedded backend.
    pub shared_read_only: bool,
    /// [`Backend::close`] releases the store before it returns (an embedded backend's files
    /// and directory lock), even while handles taken from the backend are still held.
    /// `false` on sled, whose trees (held by the stores) keep its database open until the
    /// last handle is dropped; its `close` still makes everything durable and closes every
    /// handle.
    pub close_releases_store: bool,
    /// [`OpenOptions::read_only`] is supported: the store opens without a byte of its files
    /// changing. `false` on sled, which writes to its files whenever it opens; a read-only
    /// open there is [`OpenError::Unsupported`].
    pub read_only_open: bool,
}

impl Capabilities {
    /// The capabilities of a persistent backend with the common limits.
    pub const PERSISTENT: Capabilities = Capabilities {
        persistent: true,
        exclusive_open: true,
        max_key_len: MAX_KEY_LEN,
        max_value_len: MAX_VALUE_LEN,
        reads_after_failed_write: true,
        shared: false,
        shared_read_only: true,
        close_releases_store: true,
        read_only_open: true,
    };

    /// The capabilities of an in-memory backend with the common limits.
    pub const IN_MEMORY: Capabilities = Capabilities {
        persistent: false,
        exclusive_open: false,
        max_key_len: MAX_KEY_LEN,
        max_value_len: MAX_VALUE_LEN,
        reads_after_failed_write: true,
        shared: false,
        shared_read_only: false,
        close_releases_store: true,
        read_only_open: false,
    };
}

/// Where the store of a backend lives, as [`Backend::open`] takes it: [`Path`] (a
/// directory) for the embedded backends, a server's address and the store's name on it
/// for a server backend. Borrowed like a path (`&Path` / [`PathBuf`]): the owned form is
/// [`LocationBuf`].
pub trait StoreLocation:
    ToOwned<Owned: Borrow<Self> + fmt::Debug + Clone + Send + Sync + 'static>
    + fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The directory this location is, for a backend kept in a directory; `None` for one
    /// that is not (a server).
    fn dir(&self) -> Option<&Path>;

    /// The location that is the directory `dir`, for a backend kept in a directory; `None`
    /// for one that is not.
    fn from_dir(dir: &Path) -> Option<Self::Owned>;

    /// The location as text that [`from_text`](StoreLocation::from_text) turns back into
    /// the same store, so that another process (given it on its command line or in its
    /// environment) can open that store too. `None` when there is no such text. By default
    /// the directory's path, when it is UTF-8.
    ///
    /// ```
    /// use std::path::Path;
    /// use store_api::StoreLocation;
    ///
    /// let dir = Path::new("/var/lib/app/store");
    /// let text = dir.to_text().unwrap();
    /// assert_eq!(Path::from_text(&text).unwrap(), dir);
    /// ```
    fn to_text(&self) -> Option<String> {
        self.dir().and_then(Path::to_str).map(str::to_owned)
    }

    /// The location [`to_text`](StoreLocation::to_text) gave. By default the directory
    /// named by the text; [`OpenError::InvalidLocation`] for a backend not kept in a
    /// directory.
    fn from_text(text: &str) -> Result<Self::Owned, OpenError> {
        Self::from_dir(Path::new(text)).ok_or_else(|| OpenError::InvalidLocation {
            location: text.to_owned(),
            detail: "this backend's locations have no text form".to_owned(),
        })
    }
}

impl StoreLocation for Path {
    fn dir(&self) -> Option<&Path> {
        Some(self)
    }

    fn from_dir(dir: &Path) -> Option<PathBuf> {
        Some(dir.to_path_buf())
    }
}

/// The owned form of backend `B`'s location ([`PathBuf`] for the embedded backends).
pub type LocationBuf<B> = <<B as Backend>::Location as ToOwned>::Owned;

/// Why a backend could not be opened. The files in the directory (or the tables on the
/// server) are left as they were.
///
/// Unlike the stores' errors it is not `PartialEq`: several variants carry the operating
/// system's or the engine's error value, which cannot be compared. Match on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// There is no store at the location, and the options forbid creating one
    /// ([`OpenOptions::create_if_missing`] off, or [`OpenOptions::read_only`] on). Nothing
    /// was created.
    #[error("no store at {location} (the open was not allowed to create one)")]
    NotFound {
        /// Where the store was looked for (with any password left out).
        location: String,
    },
    /// The directory is already open, in this process or another.
    #[error("{path} is already open (locked by this or another process)")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The path exists and is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory holds files this backend does not recognise (another backend's
    /// database, or something else).
    #[error("{path} holds data this backend does not recognise: {detail}")]
    ForeignData {
        /// The file or directory.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The database file is damaged or truncated.
    #[error("database at {path} is corrupted")]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The operating system refused access.
    #[error("cannot open {path}: permission denied")]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another I/O failure.
    #[error("cannot open {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The location of a server backend is not valid (a malformed URL, a bad schema
    /// name, an unknown option).
    #[error("invalid location {location:?}: {detail}")]
    InvalidLocation {
        /// The location as given (with any password left out).
        location: String,
        /// What is wrong and what is accepted.
        detail: String,
    },
    /// The database server of a server backend could not be reached, or refused the
    /// connection (authentication, no such database, too many connections).
    #[error("cannot connect to the database server at {location}")]
    Unreachable {
        /// The server and store (with any password left out).
        location: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store holds a schema version this build does not read: older (written by an
    /// earlier build, to be migrated) or newer (written by a later build).
    #[error("{location} holds schema version {found}, this build reads version {supported} only")]
    SchemaVersion {
        /// The store (with any password left out).
        location: String,
        /// The version found.
        found: i64,
        /// The version this build reads and writes.
        supported: i64,
    },
    /// The place a server backend keeps its store holds tables this backend did not
    /// create (another application's schema).
    #[error("{location} holds tables this backend does not recognise: {detail}")]
    ForeignSchema {
        /// The store (with any password left out).
        location: String,
        /// What was found.
        detail: String,
    },
    /// The backend does not support what the options ask for (a read-only open of an
    /// engine that always writes when it opens). Nothing was changed.
    #[error("the {backend} backend does not support {what}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What it does not support, and what to do instead.
        what: String,
    },
    /// The store was not closed cleanly (a crash, a killed process) and its engine must run
    /// its recovery before it can be read, which a read-only open cannot do: it would write.
    /// Nothing was changed. A read-write open runs the recovery (redb rebuilds its
    /// allocator state; no data changes), after which read-only opens work again.
    #[error(
        "{path} was not closed cleanly and needs recovery, which a read-only open cannot run: \
         open it read-write once to recover it"
    )]
    NeedsRecovery {
        /// The database file.
        path: PathBuf,
    },
    /// The engine failed while opening.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl OpenError {
    /// Classifies an I/O error met while opening `path`.
    pub fn from_io(path: &Path, source: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            std::io::ErrorKind::PermissionDenied => OpenError::PermissionDenied { path, source },
            std::io::ErrorKind::NotADirectory => OpenError::NotADirectory { path },
            _ => OpenError::Io { path, source },
        }
    }

    /// The same error, naming `location` when it is an engine failure
    /// ([`Storage`](Self::Storage)) that names no location yet: the other variants
    /// already say where (see [`StorageError::at`]).
    pub fn located(self, location: &Arc<String>) -> Self {
        match self {
            OpenError::Storage(error) if error.location().is_none() => {
                OpenError::Storage(error.located(location))
            }
            other => other,
        }
    }
}

/// A storage backend: opened where it lives (a directory, or a store on a database
/// server), it hands out the five stores, all living in the same database and never seeing
/// each other's keys.
///
/// The conformance suite and the benchmarks are written once against this trait; they get
/// a fresh store from [`scratch_location`](Self::scratch_location).
///
/// ```
/// use std::path::Path;
/// use store_api::*;
/// use store_mem::MemBackend;
///
/// let backend = MemBackend::open(Path::new("unused-by-mem"), OpenOptions::default())?;
/// assert_eq!(backend.engine().put_batch(&[(b"k", b"v")])?, 1);
/// let mut state = backend.state_store("operator-1")?;
/// state.put(b"count", b"1")?;
/// assert_eq!(backend.ledger().list_books(None, 10)?, Vec::<Book>::new()); // nothing yet
/// backend.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Backend: Send + Sync + Sized + 'static {
    /// Where a store of this backend lives: [`Path`] (its directory) for the embedded
    /// backends, a server location for a server backend.
    type Location: StoreLocation + ?Sized;
    /// The ordered key-value engine.
    type Engine: StoreEngine + 'static;
    /// A state partition handle.
    type State: StateStore + 'static;
    /// The ledger.
    type Ledger: LedgerStore + 'static;
    /// The segment log.
    type Segments: SegmentLogStore + 'static;
    /// The side-effect store.
    type SideEffects: SideEffectStore + 'static;

    /// The backend's short name: `mem`, `redb`, `lmdb`, `sled`, `sqlite`.
    const NAME: &'static str;

    /// What this backend can do.
    ///
    /// ```
    /// # use store_api::*; use store_mem::MemBackend;
    /// assert_eq!(MemBackend::capabilities(), Capabilities::IN_MEMORY);
    /// assert!(!MemBackend::capabilities().persistent);
    /// assert_eq!(MemBackend::NAME, "mem");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn capabilities() -> Capabilities;

    /// Opens the backend at `location` (for the embedded backends: in the directory
    /// `location`), reopening what is there, or creating the directory and the database
    /// when [`OpenOptions::may_create`] allows it ([`OpenError::NotFound`] otherwise,
    /// having created nothing). The in-memory backend ignores `location`; it always starts
    /// empty, so with `create_if_missing` off it answers `NotFound`.
    ///
    /// ```
    /// # use store_api::*; use store_mem::MemBackend; use std::path::Path;
    /// let options = OpenOptions::default().durability(Durability::Relaxed);
    /// let backend = MemBackend::open(Path::new(""), options)?;
    /// assert_eq!(backend.durability(), Durability::Relaxed);
    /// // The in-memory backend has nothing to reopen: an open that may not create finds nothing.
    /// let no_create = OpenOptions::default().create_if_missing(false);
    /// let reopen = MemBackend::open(Path::new(""), no_create);
    /// assert!(matches!(reopen, Err(OpenError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn open(location: &Self::Location, options: OpenOptions) -> Result<Self, OpenError>;

    /// Closes the backend: makes every acknowledged write durable (under
    /// [`Durability::Relaxed`] too), releases the store (an embedded backend's directory
    /// lock and files, a server backend's connections) before it returns, and reports a
    /// failure of any of this instead of swallowing it. Unflushed writes of live state
    /// partitions are not flushed: they are discarded, as a drop of the partition would.
    ///
    /// Afterwards every handle still held (the engine, ledger, segment log and side-effect
    /// `Arc`s, state partitions, and this backend) answers every call with
    /// [`StorageErrorKind::Closed`](crate::StorageErrorKind::Closed), never a panic, and
    /// [`wait_for_sequence`](crate::StoreEngine::wait_for_sequence) calls in progress
    /// return at once with that error. A call in progress when `close` begins finishes
    /// first. Closing again is `Ok(())`.
    ///
    /// It takes `&self` rather than `self` because the stores are shared `Arc`s that a
    /// consuming `close` could not revoke: with `&self` any holder (a shutdown hook with an
    /// `Arc` of the backend) can close, and every handle learns it at once.
    ///
    /// **Dropping without `close`** also closes, but later and silently: the store is
    /// released when the backend *and* every handle it gave out are dropped, so an engine
    /// `Arc` kept alive keeps an embedded backend's directory locked; a failure of the
    /// final sync then cannot be reported (each backend makes its writes durable on drop
    /// where its engine allows, see its docs).
    ///
    /// ```
    /// # use store_api::*; use store_mem::MemBackend; use std::path::Path;
    /// let backend = MemBackend::open(Path::new(""), OpenOptions::default())?;
    /// let engine = backend.engine();
    /// backend.close()?;
    /// let err = engine.get(b"k").unwrap_err(); // every handle answers Closed
    /// assert_eq!(err.storage().map(|e| e.kind()), Some(StorageErrorKind::Closed));
    /// backend.close()?; // closing again is Ok
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn close(&self) -> Result<(), StorageError>;

    /// The location of a new, empty store for a throwaway instance (the conformance suite,
    /// benchmarks, reliability tests), given `dir`, a path that does not exist yet inside
    /// a fresh temporary directory the caller owns and removes afterwards.
    ///
    /// The default, for a backend kept in a directory, is `dir` itself. A server backend
    /// answers a new, empty store on a server it can reach for tests, and says in an
    /// [`OpenError`] why it has none.
    ///
    /// ```
    /// # use store_api::*; use store_mem::MemBackend;
    /// let dir = std::env::temp_dir().join("a-scratch-store");
    /// assert_eq!(MemBackend::scratch_location(&dir)?, dir); // a directory backend: `dir` itself
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn scratch_location(dir: &Path) -> Result<LocationBuf<Self>, OpenError> {
        Self::Location::from_dir(dir).ok_or_else(|| OpenError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "the {} backend is not kept in a directory and has no scratch location",
                    Self::NAME
                ),
            ),
        })
    }

    /// The durability mode it was opened with.
    ///
    /// ```
    /// # use store_api::*; use store_mem::MemBackend;
    /// let backend = MemBackend::new(OpenOptions::default());
    /// assert_eq!(backend.durability(), Durability::Immediate); // the default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn durability(&self) -> Durability;

    /// The engine store (the same one on every call).
    ///
    /// ```
    /// # use store_api::*; use std::sync::Arc;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// assert!(Arc::ptr_eq(&backend.engine(), &backend.engine())); // the same one
    /// backend.engine().put_batch(&[(b"k", b"v")])?;
    /// assert_eq!(backend.engine().get(b"k")?, Some("v".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn engine(&self) -> Arc<Self::Engine>;

    /// The state partition `name`, which must be a valid name and not already held by a
    /// live handle ([`StateError::PartitionInUse`]). Its owner may drop it and ask again.
    ///
    /// Writes become durable only at the partition's
    /// [`flush`](crate::StateStore::flush): dropping a handle with unflushed writes
    /// discards them (checkpoint semantics), and a `debug` event of the `tracing` target
    /// `store_kit::state` records how many.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// let mut state = backend.state_store("operator-1")?;
    /// state.put(b"k", b"v")?;
    /// let busy = backend.state_store("operator-1").err(); // one owner at a time
    /// assert_eq!(busy, Some(StateError::PartitionInUse { partition: "operator-1".into() }));
    /// drop(state); // the write was never flushed: it is discarded
    /// assert_eq!(backend.state_store("operator-1")?.get(b"k")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn state_store(&self, name: &str) -> Result<Self::State, StateError>;

    /// One page of the names of the state partitions that hold data: ascending by name (the
    /// byte order of the UTF-8 names, which is `str`'s `Ord`), strictly after the cursor
    /// `after` (from the first name when `None`), at most `limit` names (0 gives nothing).
    ///
    /// What is listed is what a reopen would find: a partition is listed when its flushed
    /// contents hold at least one key. Writes that are not flushed do not count, so a
    /// partition that was only opened, or written and never flushed, is not listed; a
    /// partition whose keys were all deleted (or cleared) and then flushed is not listed
    /// either, even where the engine keeps its name: it holds nothing, and
    /// [`state_store`](Self::state_store) opens it empty, exactly like a name never used.
    /// A live handle does not hide its partition, and its unflushed writes do not show.
    ///
    /// The cursor need not name a listed partition, but it must be a valid partition name
    /// ([`StateError::Input`] otherwise, as for [`state_store`](Self::state_store)): pass
    /// the last name of one page to get the next.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// for name in ["b", "a", "c"] {
    ///     let mut state = backend.state_store(name)?;
    ///     state.put(b"k", b"v")?;
    ///     if name != "c" {
    ///         state.flush()?; // "c" is never flushed, so it holds nothing and is not listed
    ///     }
    /// }
    /// assert_eq!(backend.list_partitions(None, 10)?, ["a", "b"]);
    /// assert_eq!(backend.list_partitions(Some("a"), 10)?, ["b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_partitions(&self, after: Option<&str>, limit: usize)
    -> Result<Vec<String>, StateError>;

    /// The ledger (the same one on every call).
    ///
    /// ```
    /// # use store_api::*; use std::sync::Arc;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// assert!(Arc::ptr_eq(&backend.ledger(), &backend.ledger())); // the same one
    /// let usd = AssetDef { id: AssetId::new("USD")?, precision: 2, name: "US dollar".into() };
    /// backend.ledger().register_asset(&usd)?;
    /// assert_eq!(backend.ledger().asset(&usd.id)?, Some(usd));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn ledger(&self) -> Arc<Self::Ledger>;

    /// The segment log (the same one on every call).
    ///
    /// ```
    /// # use store_api::*; use std::sync::Arc;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// assert!(Arc::ptr_eq(&backend.segment_log(), &backend.segment_log())); // the same one
    /// let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// assert_eq!(backend.segment_log().append(session, segment, b"entry")?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn segment_log(&self) -> Arc<Self::Segments>;

    /// The side-effect store (the same one on every call).
    ///
    /// ```
    /// # use store_api::*; use std::sync::Arc;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// assert!(Arc::ptr_eq(&backend.side_effects(), &backend.side_effects())); // the same one
    /// let (callee, pos) = (LyquidId([2; 20]), ChainPos::new(7, 0));
    /// let key = InterCallOutputKey { callee, pos, inter_call_seq: 0 };
    /// backend.side_effects().upsert_inter_call_output(&key, &None)?;
    /// assert_eq!(backend.side_effects().read_inter_call_output(&key)?, Some(None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn side_effects(&self) -> Arc<Self::SideEffects>;
}
