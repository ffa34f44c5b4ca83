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
use store_api::{Backend, Capabilities, Durability, OpenError, OpenOptions, StateError};
use store_kit::state::{BufferedState, PartitionLeases};

pub use engine::MemEngine;
pub use ledger::MemLedger;
pub use segment::MemSegmentLog;
pub use side_effect::MemSideEffects;
pub use state::MemPartition;

/// The in-memory backend.
#[derive(Debug)]
pub struct MemBackend {
    durability: Durability,
    engine: Arc<MemEngine>,
    ledger: Arc<MemLedger>,
    segments: Arc<MemSegmentLog>,
    side_effects: Arc<MemSideEffects>,
    partitions: state::MemPartitions,
    leases: PartitionLeases,
}

impl MemBackend {
    /// A fresh, empty in-memory backend.
    pub fn new(options: OpenOptions) -> Self {
        MemBackend {
            durability: options.durability,
            engine: Arc::new(MemEngine::default()),
            ledger: Arc::new(MemLedger::new(Arc::clone(&options.clock))),
            segments: Arc::new(MemSegmentLog::default()),
            side_effects: Arc::new(MemSideEffects::new(options.side_effect_cache_size)),
            partitions: state::MemPartitions::default(),
            leases: PartitionLeases::default(),
        }
    }
}

impl Backend for MemBackend {
    type Location = Path;
    type Engine = MemEngine;
    type State = BufferedState<MemPartition>;
    type Ledger = MemLedger;
    type Segments = MemSegmentLog;
    type SideEffects = MemSideEffects;

    const NAME: &'static str = "mem";

    fn capabilities() -> Capabilities {
        Capabilities::IN_MEMORY
    }

    fn open(_dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        Ok(MemBackend::new(options))
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn engine(&self) -> Arc<MemEngine> {
        Arc::clone(&self.engine)
    }

    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        let lease = self.leases.acquire(name)?;
        Ok(self.partitions.open(lease))
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        check_partition_cursor(after)?;
        Ok(self.partitions.list(after, limit))
    }

    fn ledger(&self) -> Arc<MemLedger> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<MemSegmentLog> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<MemSideEffects> {
        Arc::clone(&self.side_effects)
    }
}
