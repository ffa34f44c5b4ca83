//! Every store of `store-api` on a PostgreSQL server (through the synchronous `postgres`
//! client and an `r2d2` connection pool): the first **shared** backend. Any number of
//! backend instances, in any processes on any hosts, may open the same store at once and
//! together behave as one store (`docs/contract.md` §9.3).
//!
//! ```no_run
//! use store_api::{Backend, OpenOptions, StoreEngine};
//! use store_postgres::{PostgresBackend, PostgresLocation};
//!
//! let location: PostgresLocation =
//!     "postgres://app@db.internal:5432/main?schema=orders&pool=16".parse()?;
//! let backend = PostgresBackend::open(&location, OpenOptions::default())?;
//! backend.engine().put_batch(&[(b"k", b"v")])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where a store lives
//! One store per PostgreSQL schema ([`PostgresLocation`], parsed from a URL): the schema is
//! created when missing, with every table of schema version [`SCHEMA_VERSION`] and a
//! `store_version` row. A schema holding another version is
//! [`OpenError::SchemaVersion`], one holding tables of something else
//! [`OpenError::ForeignSchema`], a server that cannot be reached
//! [`OpenError::Unreachable`]. The crate's `README.md` documents every table and column.
//!
//! # Durability
//! [`Durability::Immediate`] is `synchronous_commit = on` (a commit returns once its WAL
//! record is flushed on the server, and on synchronous standbys if the server has them);
//! [`Durability::Relaxed`] is `synchronous_commit = off` (a server crash may lose the
//! latest commits, never tears one). A state flush is durable when it returns in both
//! modes: it commits with `SET LOCAL synchronous_commit = on`.
//!
//! # Sharing
//! Writers on one store may be in any process. Engine batches take their number from the
//! `engine_meta` counter row inside the writing transaction (`UPDATE ... RETURNING` holds
//! its row lock until commit), so numbers are contiguous across writers. Ledger writes take
//! a transaction-level advisory lock per book they touch before reading anything, so the
//! planner's reads (heads, balances, idempotency keys) are current and `min_balance` and
//! gapless per-book sequences hold across processes. A segment write locks its segment's
//! row. A state partition is owned through a session-level advisory lock held by a
//! connection of its own while its handle lives (`PartitionInUse` everywhere else); the
//! server releases it when the handle drops or the owner's connection dies. Serialization
//! failures, deadlocks and lost insert races are retried inside the backend
//! ([`MAX_WRITE_ATTEMPTS`] attempts, with backoff).
//!
//! `apply_batch` decides inside the transaction that holds the counter row, and every
//! engine batch sends a PostgreSQL notification on commit: `wait_for_sequence` listens for
//! it on a connection of its own, so a commit of any instance, in any process, wakes it
//! without polling (`docs/contract.md` §3.7).
//!
//! # When the server goes away
//! Every call answers a typed error, never a panic:
//! [`StorageErrorKind::Unavailable`] when no
//! connection can be had or the connection broke. Connecting, and waiting for a pooled
//! connection, take at most the URL's `connect_timeout` (default
//! [`DEFAULT_CONNECT_TIMEOUT`](location::DEFAULT_CONNECT_TIMEOUT)), and on TCP a
//! connection whose server host vanished fails after `tcp_user_timeout` (default
//! [`DEFAULT_TCP_USER_TIMEOUT`](location::DEFAULT_TCP_USER_TIMEOUT)). Once the server is
//! back, the same backend works again (broken connections are replaced).
//!
//! # Tests
//! [`scratch`] starts a throwaway server for tests (or uses the one
//! `STORE_TEST_POSTGRES_URL` names): [`Backend::scratch_location`] is a fresh schema on it.

mod commits;
mod db;
mod engine;
mod ledger;
pub mod location;
#[cfg(test)]
mod plans;
pub mod scratch;
mod segment;
mod side_effect;
mod state;

use std::sync::Arc;

use store_api::limits::check_partition_name;
use store_api::{
    Backend, Capabilities, Durability, LocationBuf, OpenError, OpenOptions, StateError,
    StorageError, StorageErrorKind,
};
use store_kit::gated::Gated;
use store_kit::state::{BufferedState, PartitionLeases};

pub use db::MAX_WRITE_ATTEMPTS;
pub use engine::PostgresEngine;
pub use ledger::PostgresLedger;
pub use location::PostgresLocation;
pub use segment::PostgresSegmentLog;
pub use side_effect::PostgresSideEffects;
pub use state::PostgresPartition;

/// The backend's name in errors.
pub const BACKEND_NAME: &str = "postgres";

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// The schema, version [`SCHEMA_VERSION`]: every `CREATE` statement of a store, run in
/// the store's PostgreSQL schema.
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// The PostgreSQL backend: one store in one schema of one server, shared by every
/// instance opened on it.
pub struct PostgresBackend {
    durability: Durability,
    db: Arc<db::Db>,
    engine: Arc<Gated<PostgresEngine>>,
    ledger: Arc<Gated<PostgresLedger>>,
    segments: Arc<Gated<PostgresSegmentLog>>,
    side_effects: Arc<Gated<PostgresSideEffects>>,
    leases: PartitionLeases,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("location", self.db.location())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Where this backend's store lives.
    pub fn location(&self) -> &PostgresLocation {
        self.db.location()
    }
}

impl Backend for PostgresBackend {
    type Location = PostgresLocation;
    type Engine = Gated<PostgresEngine>;
    type State = BufferedState<PostgresPartition>;
    type Ledger = Gated<PostgresLedger>;
    type Segments = Gated<PostgresSegmentLog>;
    type SideEffects = Gated<PostgresSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities {
            exclusive_open: false,
            shared: true,
            close_releases_store: false,
            ..Capabilities::PERSISTENT
        }
    }

    fn open(location: &PostgresLocation, options: OpenOptions) -> Result<Self, OpenError> {
        let db = Arc::new(db::Db::open(location, &options).map_err(|e| {
            // The location's `Display` leaves the password out.
            e.located(&Arc::new(location.to_string()))
        })?);
        let gate = db.gate();
        Ok(PostgresBackend {
            durability: options.durability,
            engine: Gated::shared(gate, PostgresEngine::new(Arc::clone(&db))),
            ledger: Gated::shared(gate, PostgresLedger::new(Arc::clone(&db), options.clock)),
            segments: Gated::shared(gate, PostgresSegmentLog::new(Arc::clone(&db))),
            side_effects: Gated::shared(
                gate,
                PostgresSideEffects::new(Arc::clone(&db), options.side_effect_cache_size),
            ),
            leases: PartitionLeases::default(),
            db,
        })
    }

    /// Makes every commit of this instance durable, wakes its waiters and closes its
    /// connection pool; other instances on the same store go on. A live state partition
    /// keeps its own connection (and with it the partition's ownership) until its handle
    /// is dropped (`Capabilities::close_releases_store` is `false`).
    fn close(&self) -> Result<(), StorageError> {
        if !self.db.gate().close() {
            return Ok(());
        }
        self.engine.inner().close();
        self.db
            .gate()
            .locating(|| self.db.close(self.engine.inner().channel_name()))
    }

    /// A fresh schema on the test server of [`scratch`]; `_dir` is not used.
    fn scratch_location(_dir: &std::path::Path) -> Result<LocationBuf<Self>, OpenError> {
        scratch::fresh_location()
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn engine(&self) -> Arc<Gated<PostgresEngine>> {
        Arc::clone(&self.engine)
    }

    /// The partition `name`, loaded into memory; its owner holds a session-level advisory
    /// lock on a connection of its own until the handle drops, so every other instance
    /// (in any process) gets [`StateError::PartitionInUse`] meanwhile.
    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        self.db.gate().check_open()?;
        let lease = self.leases.acquire(name)?;
        self.db
            .gate()
            .locating(|| state::open_partition(&self.db, lease))
    }

    /// The partitions whose flushed contents hold a key, by the byte order of their names
    /// (§9.1), read in one statement.
    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        self.db
            .gate()
            .locating(|| state::list(&self.db, after, limit))
    }

    fn ledger(&self) -> Arc<Gated<PostgresLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<PostgresSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<PostgresSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}

/// The kind of failure a PostgreSQL error reports.
fn error_kind(error: &postgres::Error) -> StorageErrorKind {
    if let Some(code) = error.code() {
        let code = code.code();
        return match code {
            // disk_full
            "53100" => StorageErrorKind::NoSpace,
            // data_corrupted, index_corrupted
            "XX001" | "XX002" => StorageErrorKind::Corrupted,
            // io_error
            "58030" => StorageErrorKind::Io,
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            "57P01" | "57P02" | "57P03" | "53300" => StorageErrorKind::Unavailable,
            // connection_exception and its subclasses
            _ if code.starts_with("08") => StorageErrorKind::Unavailable,
            _ => StorageErrorKind::Engine,
        };
    }
    let io = std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>());
    if error.is_closed() || io {
        return StorageErrorKind::Unavailable;
    }
    StorageErrorKind::Engine
}

/// Wraps a PostgreSQL error met while doing `context`, keeping it as the source.
pub(crate) fn pg_error(context: &'static str, error: postgres::Error) -> StorageError {
    StorageError::new(BACKEND_NAME, error_kind(&error), context, error)
}

/// A stored record that does not hold what this crate writes.
pub(crate) fn corrupted(context: &'static str) -> StorageError {
    StorageError::corrupted(BACKEND_NAME, context)
}

/// `.ctx("what we were doing")` on PostgreSQL results.
pub(crate) trait PgContext<T> {
    /// Wraps the error with `context`.
    fn ctx(self, context: &'static str) -> Result<T, StorageError>;
}

impl<T> PgContext<T> for Result<T, postgres::Error> {
    #[inline]
    fn ctx(self, context: &'static str) -> Result<T, StorageError> {
        self.map_err(|e| pg_error(context, e))
    }
}

/// A `u64` as the `bigint` stored for it (two's complement above `i64::MAX`; timestamps
/// never get there).
#[inline]
pub(crate) fn u64_to_sql(n: u64) -> i64 {
    n as i64
}

/// The `u64` a `bigint` written by [`u64_to_sql`] stands for.
#[inline]
pub(crate) fn u64_from_sql(n: i64) -> u64 {
    n as u64
}

/// A sequence number or count as a `bigint`; one above `i64::MAX` is an engine error
/// (never reached: it would take 2^63 writes).
pub(crate) fn seq_to_sql(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|e| {
        StorageError::new(
            BACKEND_NAME,
            StorageErrorKind::Engine,
            "a sequence number or count left the bigint range",
            e,
        )
    })
}

/// A stored sequence number or count.
pub(crate) fn seq_from_sql(n: i64, context: &'static str) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| corrupted(context))
}
