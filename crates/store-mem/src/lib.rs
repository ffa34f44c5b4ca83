//! The in-memory backend: every store of `store-api`, in process memory.
//!
//! It is the reference the other backends are compared with and the one a new user starts
//! on. It ignores the directory it is opened on and keeps nothing across a drop, so it
//! declares [`Capabilities::IN_MEMORY`] (not persistent); within one backend value,
//! flushed state partitions survive dropping their handle, exactly like on disk.
//!
//! Durability modes are accepted and have no effect: there is no disk.
//!
//! ```
//! use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
//! use store_mem::MemBackend;
//!
//! let backend = MemBackend::open(std::path::Path::new(""), OpenOptions::default())?;
//! let engine = backend.engine();
//! let seq = engine.put_batch(&[(b"k", b"v")])?;
//! assert_eq!(seq, 1);
//! let mut state = backend.state_store("operator-1")?;
//! state.put(b"count", b"1")?;
//! assert_eq!(state.get(b"count")?.as_deref(), Some(&b"1"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod ledger;
mod segment;
mod side_effect;
mod state;

use std::path::Path;
use std::sync::Arc;

use store_api::limits::{check_partition_cursor, check_partition_name};
use store_api::{
    Backend, Capabilities, Durability, OpenError, OpenOptions, StateError, StorageError,
};
use store_kit::gate::WriteGate;
use store_kit::gated::Gated;
use store_kit::state::{BufferedState, PartitionLeases};

pub use engine::MemEngine;
pub use ledger::MemLedger;
pub use segment::MemSegmentLog;
pub use side_effect::MemSideEffects;
pub use state::MemPartition;

/// The backend's name in errors.
pub const BACKEND_NAME: &str = "mem";

/// The in-memory backend.
#[derive(Debug)]
pub struct MemBackend {
    durability: Durability,
    gate: Arc<WriteGate>,
    engine: Arc<Gated<MemEngine>>,
    ledger: Arc<Gated<MemLedger>>,
    segments: Arc<Gated<MemSegmentLog>>,
    side_effects: Arc<Gated<MemSideEffects>>,
    partitions: state::MemPartitions,
    leases: PartitionLeases,
}

impl MemBackend {
    /// A fresh, empty in-memory backend, read-write whatever `options` say (see
    /// [`Backend::open`] for the open modes).
    pub fn new(options: OpenOptions) -> Self {
        let gate = Arc::new(WriteGate::new(BACKEND_NAME));
        MemBackend {
            durability: options.durability,
            engine: Gated::shared(&gate, MemEngine::default()),
            ledger: Gated::shared(&gate, MemLedger::new(Arc::clone(&options.clock))),
            segments: Gated::shared(&gate, MemSegmentLog::default()),
            side_effects: Gated::shared(&gate, MemSideEffects::new(options.side_effect_cache_size)),
            partitions: state::MemPartitions::new(Arc::clone(&gate)),
            leases: PartitionLeases::default(),
            gate,
        }
    }
}

impl Backend for MemBackend {
    type Location = Path;
    type Engine = Gated<MemEngine>;
    type State = BufferedState<MemPartition>;
    type Ledger = Gated<MemLedger>;
    type Segments = Gated<MemSegmentLog>;
    type SideEffects = Gated<MemSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities::IN_MEMORY
    }

    /// Always a new, empty store: an in-memory backend has nothing to reopen, so an open
    /// that may not create ([`OpenOptions::may_create`] false: `create_if_missing` off, or
    /// `read_only`) is [`OpenError::NotFound`].
    fn open(_dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        if !options.may_create() {
            return Err(OpenError::NotFound {
                location: "memory (an in-memory backend holds no store before an open creates one)"
                    .to_owned(),
            });
        }
        Ok(MemBackend::new(options))
    }

    /// Nothing to make durable or release: marks every handle closed.
    fn close(&self) -> Result<(), StorageError> {
        if self.gate.close() {
            self.engine.inner().close();
        }
        Ok(())
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn engine(&self) -> Arc<Gated<MemEngine>> {
        Arc::clone(&self.engine)
    }

    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        self.gate.check_open()?;
        let lease = self.leases.acquire(name)?;
        Ok(self.partitions.open(lease))
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        check_partition_cursor(after)?;
        self.gate.check_open()?;
        Ok(self.partitions.list(after, limit))
    }

    fn ledger(&self) -> Arc<Gated<MemLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<MemSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<MemSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}
