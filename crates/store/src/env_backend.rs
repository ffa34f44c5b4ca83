//! [`EnvBackend`]: the backend the `STORE_BACKEND` variable names, as a [`Backend`] type, so
//! that code generic over a backend — the conformance suite first of all — runs on a
//! backend chosen when the program starts:
//!
//! ```sh
//! STORE_BACKEND=sqlite: cargo test -p conformance      # the whole suite on SQLite, through dyn
//! ```
//!
//! Only the backend's name is taken from the variable (`mem:`, `redb:`, `lmdb:/any/dir`,
//! ...: the scheme of a backend URL, see [`crate::config`]). The directory and the options come
//! from the caller of [`Backend::open`], as for every backend; a directory or options in the
//! variable are ignored here. Unset or empty, the variable means `mem`.
//!
//! Every store is the chosen backend's own store behind a trait object (`Arc<dyn
//! StoreEngine>`, `Box<dyn StateStore>`, ...), so the results and errors are exactly the
//! backend's.

use std::path::Path;
use std::sync::Arc;

use store_api::{
    Backend, Capabilities, Durability, LedgerStore, OpenError, OpenOptions, SegmentLogStore,
    SideEffectStore, StateError, StateStore, StorageError, StoreEngine,
};

use crate::config::{BackendKind, STORE_BACKEND_VAR, UrlError, env_url};
use crate::stores::Stores;

/// The backend `STORE_BACKEND` names; see the [module docs](self).
#[derive(Debug)]
pub struct EnvBackend {
    stores: Stores,
}

/// Why `STORE_BACKEND` names no backend this build can open.
fn selection_error(detail: impl std::fmt::Display) -> OpenError {
    OpenError::Io {
        path: STORE_BACKEND_VAR.into(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{STORE_BACKEND_VAR}: {detail}"),
        ),
    }
}

impl EnvBackend {
    /// The backend `STORE_BACKEND` names (`mem` when it is unset or empty), or why it
    /// names none.
    pub fn selected() -> Result<BackendKind, UrlError> {
        match env_url()? {
            Some(url) => BackendKind::split_url(&url).map(|(kind, _)| kind),
            None => Ok(BackendKind::Mem),
        }
    }

    /// The name of the backend underneath (`mem`, `redb`, ...).
    pub fn backend_name(&self) -> &'static str {
        self.stores.backend_name()
    }
}

impl Backend for EnvBackend {
    type Location = Path;
    type Engine = Arc<dyn StoreEngine>;
    type State = Box<dyn StateStore>;
    type Ledger = Arc<dyn LedgerStore>;
    type Segments = Arc<dyn SegmentLogStore>;
    type SideEffects = Arc<dyn SideEffectStore>;

    const NAME: &'static str = "env";

    /// The chosen backend's capabilities. When the variable names no backend this build
    /// holds, those of an in-memory backend: [`open`](Backend::open) then fails and says
    /// why.
    fn capabilities() -> Capabilities {
        Self::selected()
            .ok()
            .and_then(crate::stores::capabilities_of)
            .unwrap_or(Capabilities::IN_MEMORY)
    }

    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        let kind = Self::selected().map_err(selection_error)?;
        if kind.is_server() {
            return Err(selection_error(format!(
                "the {kind} backend lives on a server, not in the directory EnvBackend is \
                 opened on: run the suite on it with `cargo test -p swapstore-{kind}` (its tests \
                 start a throwaway server, or use STORE_TEST_POSTGRES_URL); Stores::from_env \
                 opens a {kind} URL"
            )));
        }
        let place = crate::stores::Place::Dir(dir);
        let stores = match crate::stores::open_kind(kind, place, options) {
            Some(opened) => opened?,
            None => {
                return Err(selection_error(format!(
                    "the {kind} backend is not in this build: enable the store crate's \
                     feature \"{}\"",
                    kind.feature()
                )));
            }
        };
        Ok(EnvBackend { stores })
    }

    fn close(&self) -> Result<(), StorageError> {
        self.stores.close()
    }

    fn durability(&self) -> Durability {
        self.stores.durability()
    }

    fn engine(&self) -> Arc<Arc<dyn StoreEngine>> {
        Arc::new(self.stores.engine())
    }

    fn state_store(&self, name: &str) -> Result<Box<dyn StateStore>, StateError> {
        self.stores.state_store(name)
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        self.stores.list_partitions(after, limit)
    }

    fn ledger(&self) -> Arc<Arc<dyn LedgerStore>> {
        Arc::new(self.stores.ledger())
    }

    fn segment_log(&self) -> Arc<Arc<dyn SegmentLogStore>> {
        Arc::new(self.stores.segment_log())
    }

    fn side_effects(&self) -> Arc<Arc<dyn SideEffectStore>> {
        Arc::new(self.stores.side_effects())
    }
}
