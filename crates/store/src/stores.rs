//! [`Stores`]: an open backend behind trait objects, chosen at run time from a
//! [`BackendConfig`] or a URL; and the one place each backend is wired in
//! (`with_backend`).

// A build with no backend feature compiles the wiring below with nothing to wire.
#![cfg_attr(
    not(any(
        feature = "mem",
        feature = "redb",
        feature = "lmdb",
        feature = "sled",
        feature = "fjall",
        feature = "sqlite",
        feature = "postgres"
    )),
    allow(unused_variables, dead_code)
)]

use std::borrow::Borrow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use store_api::{
    Backend, Capabilities, Clock, Durability, LedgerStore, OpenError, OpenOptions, SegmentLogStore,
    SideEffectStore, StateError, StateStore, StorageError, StoreEngine, StoreLocation, SystemClock,
};

use crate::config::{BackendConfig, BackendKind, UrlError};

/// Why [`Stores`] could not be opened from a config or URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoresError {
    /// The URL (or the `STORE_BACKEND` variable) did not parse.
    ///
    /// Like every error of this crate, `Display` says what failed and
    /// [`source`](std::error::Error::source) carries the cause: print the whole chain with
    /// [`error_chain`](crate::error_chain).
    #[error("invalid backend URL")]
    Url(#[from] UrlError),
    /// The backend exists but this build does not include it. The message names the
    /// feature of this crate (`swapstore`) and the Cargo.toml line that enables it.
    #[error(
        "the {backend} backend is not compiled in: enable the \"{feature}\" feature of the \
         {package} crate, in Cargo.toml: {package} = {{ version = \"{version}\", features = [\"{feature}\"] }} \
         (or `cargo build -p {package} --features {feature}` inside this workspace)",
        package = env!("CARGO_PKG_NAME"),
        version = env!("CARGO_PKG_VERSION")
    )]
    NotCompiledIn {
        /// The backend asked for.
        backend: BackendKind,
        /// The Cargo feature that compiles it in.
        feature: &'static str,
    },
    /// The backend refused to open its directory (or its store on the server).
    #[error("cannot open the {backend} backend")]
    Open {
        /// The backend.
        backend: BackendKind,
        /// Why it refused.
        #[source]
        source: OpenError,
    },
}

/// The object-safe part of [`Backend`] that [`Stores`] keeps: handing out and listing
/// state partitions. Holding it also keeps the backend (and its directory lock) alive.
trait DynBackend: Send + Sync {
    fn state_store(&self, name: &str) -> Result<Box<dyn StateStore>, StateError>;
    fn list_partitions(&self, after: Option<&str>, limit: usize)
    -> Result<Vec<String>, StateError>;
    fn close(&self) -> Result<(), StorageError>;
}

impl<B: Backend> DynBackend for B {
    fn state_store(&self, name: &str) -> Result<Box<dyn StateStore>, StateError> {
        Ok(Box::new(Backend::state_store(self, name)?))
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        Backend::list_partitions(self, after, limit)
    }

    fn close(&self) -> Result<(), StorageError> {
        Backend::close(self)
    }
}

/// An open backend, whichever it is, with its five stores as trait objects.
///
/// # Guarantees
/// - Every store behaves exactly as the same store of the backend used directly: these are
///   the backend's own stores behind `dyn`.
/// - [`close`](Self::close) makes every write durable, reports a failure, releases the
///   store at once (see `Capabilities::close_releases_store` for the exceptions), and
///   every handle taken from it answers `Closed` afterwards.
/// - Without `close`, the backend stays open, and its directory locked against a second
///   open, as long as this value or any handle taken from it ([`engine`](Self::engine),
///   [`state_store`](Self::state_store), ...) lives; dropping the last of them closes it,
///   making every write durable but unable to report a failure.
pub struct Stores {
    name: &'static str,
    capabilities: Capabilities,
    durability: Durability,
    dir: Option<PathBuf>,
    engine: Arc<dyn StoreEngine>,
    ledger: Arc<dyn LedgerStore>,
    segments: Arc<dyn SegmentLogStore>,
    side_effects: Arc<dyn SideEffectStore>,
    // Declared last so the stores above are dropped before the backend that owns them.
    backend: Box<dyn DynBackend>,
}

/// Opens backend `B` at `location` (its directory, for the embedded backends) with
/// `options` and wraps its stores as trait objects.
///
/// This is the generic half of runtime selection: [`Stores::open`] maps a config to one
/// call of this per backend. It is also how a backend that is not one of this crate's
/// features is put behind [`Stores`].
pub fn open_as<B: Backend>(
    location: &B::Location,
    options: OpenOptions,
) -> Result<Stores, OpenError> {
    let backend = B::open(location, options)?;
    let engine: Arc<dyn StoreEngine> = backend.engine();
    let ledger: Arc<dyn LedgerStore> = backend.ledger();
    let segments: Arc<dyn SegmentLogStore> = backend.segment_log();
    let side_effects: Arc<dyn SideEffectStore> = backend.side_effects();
    let capabilities = B::capabilities();
    Ok(Stores {
        name: B::NAME,
        capabilities,
        durability: backend.durability(),
        dir: location
            .dir()
            .filter(|_| capabilities.persistent)
            .map(Path::to_path_buf),
        engine,
        ledger,
        segments,
        side_effects,
        backend: Box::new(backend),
    })
}

impl Stores {
    /// Opens the backend `config` names, with the system clock.
    pub fn open(config: &BackendConfig) -> Result<Stores, StoresError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens the backend `url` names (see [`crate::config`] for the form).
    pub fn open_url(url: &str) -> Result<Stores, StoresError> {
        Self::open(&url.parse()?)
    }

    /// Opens the backend named by the `STORE_BACKEND` environment variable, or `mem:` when
    /// it is unset or empty.
    pub fn from_env() -> Result<Stores, StoresError> {
        Self::open(&BackendConfig::from_env()?.unwrap_or_else(BackendConfig::mem))
    }

    /// Opens the backend `config` names, its ledger stamping records with `clock`.
    ///
    /// A backend whose feature is off gives [`StoresError::NotCompiledIn`] naming the
    /// feature.
    pub fn open_with_clock(
        config: &BackendConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Stores, StoresError> {
        Self::open_adjusted(config, |options| options.clock(clock))
    }

    /// Opens the backend `config` names, with the options `config` gives (durability,
    /// cache) changed by `adjust`: `|o| o.create_if_missing(false)` opens only a store
    /// that exists, `|o| o.read_only(true)` opens one read-only (`docs/contract.md` §1.3).
    pub fn open_adjusted(
        config: &BackendConfig,
        adjust: impl FnOnce(OpenOptions) -> OpenOptions,
    ) -> Result<Stores, StoresError> {
        let kind = config.kind();
        let options = adjust(config.open_options());
        let place = match config.server_url() {
            Some(url) => Place::Server(url),
            None => Place::Dir(config.dir().unwrap_or(Path::new(""))),
        };
        let read_only = options.read_only;
        let started = Instant::now();
        let opened = match open_kind(kind, place, options) {
            Some(opened) => opened.map_err(|source| StoresError::Open {
                backend: kind,
                source,
            }),
            None => Err(StoresError::NotCompiledIn {
                backend: kind,
                feature: kind.feature(),
            }),
        };
        // The directory, never a server URL: that may hold a password.
        let dir = config.dir().map(Path::display);
        match &opened {
            Ok(_) => tracing::info!(
                backend = %kind,
                dir = dir.map(tracing::field::display),
                read_only,
                seconds = started.elapsed().as_secs_f64(),
                "backend opened"
            ),
            Err(err) => tracing::debug!(
                backend = %kind,
                dir = dir.map(tracing::field::display),
                seconds = started.elapsed().as_secs_f64(),
                error = %crate::error_chain(err),
                "backend not opened"
            ),
        }
        opened
    }

    /// The backend's short name (`mem`, `redb`, ...).
    pub fn backend_name(&self) -> &'static str {
        self.name
    }

    /// What the backend can do.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The durability mode it was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The directory it was opened on; `None` for a backend that is not persistent or not
    /// kept in a directory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The engine store (the same one on every call).
    pub fn engine(&self) -> Arc<dyn StoreEngine> {
        Arc::clone(&self.engine)
    }

    /// The ledger (the same one on every call).
    pub fn ledger(&self) -> Arc<dyn LedgerStore> {
        Arc::clone(&self.ledger)
    }

    /// The segment log (the same one on every call).
    pub fn segment_log(&self) -> Arc<dyn SegmentLogStore> {
        Arc::clone(&self.segments)
    }

    /// The side-effect store (the same one on every call).
    pub fn side_effects(&self) -> Arc<dyn SideEffectStore> {
        Arc::clone(&self.side_effects)
    }

    /// The state partition `name`; [`StateError::PartitionInUse`] while another live handle
    /// holds it, exactly as [`Backend::state_store`].
    pub fn state_store(&self, name: &str) -> Result<Box<dyn StateStore>, StateError> {
        self.backend.state_store(name)
    }

    /// Closes the backend, exactly as [`Backend::close`]: everything durable, a failure
    /// reported, every handle answering `Closed` afterwards. Closing again is `Ok`.
    pub fn close(&self) -> Result<(), StorageError> {
        self.backend.close()
    }

    /// One page of the names of the state partitions holding data, exactly as
    /// [`Backend::list_partitions`]: ascending, after the exclusive cursor `after`, at most
    /// `limit`.
    pub fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        self.backend.list_partitions(after, limit)
    }
}

/// Something to do with the backend type a [`BackendKind`] stands for (see
/// [`with_backend`]).
pub(crate) trait WithBackend {
    /// What it gives.
    type Output;
    /// Does it with backend `B`.
    fn with<B: Backend>(self) -> Self::Output;
}

/// The one place each backend is wired in: runs `job` with the type of `kind`; `None` when
/// `kind` is not compiled in.
pub(crate) fn with_backend<J: WithBackend>(kind: BackendKind, job: J) -> Option<J::Output> {
    match kind {
        #[cfg(feature = "mem")]
        BackendKind::Mem => Some(job.with::<store_mem::MemBackend>()),
        #[cfg(feature = "redb")]
        BackendKind::Redb => Some(job.with::<store_redb::RedbBackend>()),
        #[cfg(feature = "lmdb")]
        BackendKind::Lmdb => Some(job.with::<store_lmdb::LmdbBackend>()),
        #[cfg(feature = "sled")]
        BackendKind::Sled => Some(job.with::<store_sled::SledBackend>()),
        #[cfg(feature = "fjall")]
        BackendKind::Fjall => Some(job.with::<store_fjall::FjallBackend>()),
        #[cfg(feature = "sqlite")]
        BackendKind::Sqlite => Some(job.with::<store_sqlite::SqliteBackend>()),
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => Some(job.with::<store_postgres::PostgresBackend>()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Where a config says a backend lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place<'a> {
    /// A directory (ignored by `mem`).
    Dir(&'a Path),
    /// A server backend's connection URL.
    Server(&'a str),
}

/// Opens server backend `kind` at `url`: `None` when it is not compiled in.
fn open_server(
    kind: BackendKind,
    url: &str,
    options: OpenOptions,
) -> Option<Result<Stores, OpenError>> {
    match kind {
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => Some(
            url.parse::<store_postgres::PostgresLocation>()
                .and_then(|location| {
                    open_as::<store_postgres::PostgresBackend>(&location, options)
                }),
        ),
        _ => {
            let _ = (url, options);
            None
        }
    }
}

/// Opens `kind` at `place`: `None` when it is not compiled in.
pub(crate) fn open_kind(
    kind: BackendKind,
    place: Place<'_>,
    options: OpenOptions,
) -> Option<Result<Stores, OpenError>> {
    let dir = match place {
        Place::Server(url) => return open_server(kind, url, options),
        Place::Dir(dir) => dir,
    };
    struct Open<'d> {
        dir: &'d Path,
        options: OpenOptions,
    }
    impl WithBackend for Open<'_> {
        type Output = Result<Stores, OpenError>;
        fn with<B: Backend>(self) -> Self::Output {
            let location = B::Location::from_dir(self.dir).ok_or_else(|| OpenError::Io {
                path: self.dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the {} backend is not opened on a directory", B::NAME),
                ),
            })?;
            open_as::<B>(location.borrow(), self.options)
        }
    }
    with_backend(kind, Open { dir, options })
}

/// The capabilities `kind` declares: `None` when it is not compiled in.
pub(crate) fn capabilities_of(kind: BackendKind) -> Option<Capabilities> {
    struct CapabilitiesOf;
    impl WithBackend for CapabilitiesOf {
        type Output = Capabilities;
        fn with<B: Backend>(self) -> Capabilities {
            B::capabilities()
        }
    }
    with_backend(kind, CapabilitiesOf)
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores")
            .field("backend", &self.name)
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_compiled_in_gives_the_cargo_toml_line_of_this_crate() {
        for kind in BackendKind::ALL {
            let text = StoresError::NotCompiledIn {
                backend: kind,
                feature: kind.feature(),
            }
            .to_string();
            let line = format!(
                "swapstore = {{ version = \"{}\", features = [\"{}\"] }}",
                env!("CARGO_PKG_VERSION"),
                kind.feature()
            );
            assert!(text.contains(&line), "{text}");
            assert!(text.contains("Cargo.toml"), "{text}");
            assert!(!text.contains(&format!("store-{}", kind.name())), "{text}");
        }
    }

    #[test]
    fn a_backend_not_compiled_in_names_its_feature() {
        for kind in BackendKind::ALL.into_iter().filter(|k| !k.is_enabled()) {
            let config = BackendConfig::new(kind, "/nonexistent/never-created");
            match Stores::open(&config) {
                Err(err @ StoresError::NotCompiledIn { .. }) => {
                    let text = err.to_string();
                    assert!(text.contains(&format!("\"{}\"", kind.feature())), "{text}");
                }
                other => panic!("{kind}: expected NotCompiledIn, got {other:?}"),
            }
        }
    }

    /// Each cause of a nested error is printed once: by the chain walker, not also inside
    /// the `Display` of the error above it.
    #[test]
    fn a_nested_error_prints_each_cause_once() {
        let cause = "disk on fire (os error 28)";
        let err = crate::migrate::MigrateError::OpenDestination {
            url: "redb:/srv/new".into(),
            source: StoresError::Open {
                backend: BackendKind::Redb,
                source: OpenError::Storage(StorageError::new(
                    "redb",
                    store_api::StorageErrorKind::Io,
                    "opening the database",
                    std::io::Error::other(cause),
                )),
            },
        };
        let chain = crate::error_chain(&err);
        assert_eq!(chain.matches(cause).count(), 1, "{chain}");
        assert!(
            chain.starts_with("cannot open the destination redb:/srv/new"),
            "{chain}"
        );
        assert!(
            chain.contains("caused by: cannot open the redb backend\n"),
            "{chain}"
        );

        // The facade's own levels say what failed and leave the cause to `source`.
        let opened = match &err {
            crate::migrate::MigrateError::OpenDestination { source, .. } => source,
            other => panic!("{other:?}"),
        };
        assert_eq!(opened.to_string(), "cannot open the redb backend");
        let url: Result<BackendConfig, _> = "nope".parse();
        let url = StoresError::from(url.unwrap_err());
        let cause = std::error::Error::source(&url).map(ToString::to_string);
        assert_eq!(url.to_string(), "invalid backend URL");
        let chain = crate::error_chain(&url);
        let cause = cause.unwrap_or_default();
        assert!(!cause.is_empty());
        assert_eq!(chain.matches(cause.as_str()).count(), 1, "{chain}");
    }

    #[cfg(feature = "mem")]
    #[test]
    fn mem_opens_from_a_url_and_hands_out_every_store() {
        let stores = Stores::open_url("mem:?cache=8").unwrap();
        assert_eq!(stores.backend_name(), "mem");
        assert!(!stores.capabilities().persistent);
        assert_eq!(stores.dir(), None);
        assert_eq!(stores.engine().put_batch(&[(b"k", b"v")]).unwrap(), 1);
        let mut state = stores.state_store("p").unwrap();
        state.put(b"a", b"1").unwrap();
        assert!(matches!(
            stores.state_store("p"),
            Err(StateError::PartitionInUse { .. })
        ));
        drop(state);
        assert!(stores.state_store("p").is_ok());
        assert!(stores.segment_log().list_sessions().unwrap().is_empty());
        assert!(format!("{stores:?}").contains("mem"));
    }

    #[test]
    fn a_bad_url_is_a_url_error() {
        assert!(matches!(
            Stores::open_url("nope"),
            Err(StoresError::Url(UrlError::MissingColon { .. }))
        ));
    }
}
