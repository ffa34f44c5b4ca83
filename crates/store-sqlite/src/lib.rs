//! Every store of `store-api` on SQLite (through `rusqlite`, bundled SQLite), in a
//! documented relational schema that a user can inspect with the `sqlite3` shell.
//!
//! # Files
//! A backend directory holds the `STORE` marker and the `.store-lock` file of
//! [`store_kit::dir`], and one SQLite database, `store.sqlite3` (with its `-wal` and `-shm`
//! files while it is open). The database is created under a temporary name and renamed into
//! place once its schema is committed, so an existing `store.sqlite3` always holds a whole
//! schema: an empty, truncated or damaged file is [`OpenError::Corrupted`], an SQLite
//! database of something else (no `schema_version` table, another `application_id`, a
//! newer schema version) is [`OpenError::ForeignData`]. Opening never modifies a file it
//! refuses.
//!
//! # Checksums
//! SQLite keeps no page checksums, so the records the stores read back by key (engine
//! data and batch log, state entries, ledger postings, side-effect payloads, call outputs
//! and inbound calls, segment entries and traces) carry their own: a `crc` column,
//! [`store_kit::checksum`] (CRC-32) over the table name, the key and the value, verified
//! on every read before the row is decoded. A mismatch, or a column that does not decode
//! (a `TEXT` that is not UTF-8, a value of the wrong type), is
//! [`StorageErrorKind::Corrupted`] naming the table and the key, never wrong data; damage
//! SQLite itself meets (a broken b-tree page) is `Corrupted` too (`PRAGMA integrity_check`
//! finds it up front). A batch log row's checksum also covers its batch's length, and a
//! segment's entries are counted against its `segments` row, so a batch or segment that
//! lost rows is `Corrupted`, never returned shorter. A record that damage makes
//! unreachable by its key reads as absent: a checksum beside a record cannot report a
//! record the lookup never finds.
//!
//! Rows of a schema-version-1 database (before checksums) have `crc` `NULL` and are read
//! unverified; a read-write open upgrades such a database to version 2 in one transaction
//! ([`MIGRATE_V1_SQL`]), a read-only open reads it as it is.
//!
//! # Schema
//! Version 2, in `src/schema.sql` (every table `STRICT`, natural keys `WITHOUT ROWID`,
//! foreign keys on); the crate's `README.md` describes every column and gives queries for
//! the `sqlite3` shell.
//!
//! | store | tables |
//! | --- | --- |
//! | (file) | `schema_version` |
//! | [`StoreEngine`](store_api::StoreEngine) | `engine_kv(key, value)`, `engine_batch_log(seq, idx, op, key, value)` (one row per mutation), `engine_meta(key, value)` (the sequence counter under [`SEQUENCE_KEY`](store_kit::engine::SEQUENCE_KEY)) |
//! | [`StateStore`](store_api::StateStore) | `state_partitions(id, name)`, `state_entries(partition_id, key, value)` |
//! | [`LedgerStore`](store_api::LedgerStore) | `ledger_assets`, `ledger_accounts`, `ledger_transactions`, `ledger_transaction_metadata`, `ledger_postings`, `ledger_events`, `ledger_book_heads`, `ledger_totals` |
//! | [`SideEffectStore`](store_api::SideEffectStore) | `side_effect_outputs`, `side_effect_output_payloads`, `side_effect_call_outputs`, `side_effect_inbound` |
//! | [`SegmentLogStore`](store_api::SegmentLogStore) | `segments`, `segment_entries`, `segment_traces` |
//!
//! Keys and values are `BLOB`s (an empty value is a zero-length blob, never `NULL`); names
//! (books, partitions, assets, paths) are `TEXT` and always bound as parameters, never
//! spliced into SQL. Integers the API holds as `u64` (ledger amounts, sequence numbers,
//! timestamps) are `INTEGER`s; a value above `2^63 - 1` is stored as its two's-complement
//! bit pattern (a negative number), so it round-trips exactly. Lifetime ledger totals are
//! `u128` and stored as decimal `TEXT`. Ids (transactions, sessions, segments) are 16-byte
//! blobs, Lyquid ids 20-byte blobs, chain positions 16-byte big-endian blobs (so they order
//! by block, then index).
//!
//! # Durability
//! The database runs in WAL mode (`journal_mode=WAL`). Every write of every store is one
//! SQLite transaction (`BEGIN IMMEDIATE ... COMMIT`) on the one writer connection.
//! - [`Durability::Immediate`]: `synchronous=FULL`. The WAL is fsynced at every commit, so a
//!   write is durable when the call returns, and readers only see a commit after its fsync.
//! - [`Durability::Relaxed`]: `synchronous=NORMAL`. The WAL is fsynced only at checkpoints: a
//!   power failure or OS crash may roll back the most recent commits, but never tears a
//!   transaction and never corrupts the database (SQLite's WAL guarantees). A crash of the
//!   process alone loses nothing (the writes are in the OS's page cache).
//!
//! A state flush ([`StateStore::flush`](store_api::StateStore::flush)) is durable when it
//! returns in both modes: under `Relaxed` its transaction commits with `synchronous=FULL`,
//! and that WAL fsync makes every earlier commit durable too. Closing the backend
//! checkpoints the WAL into the database file (synced) and removes it.
//!
//! # A full disk, a failed write
//!
//! `SQLITE_FULL` is [`StorageErrorKind::NoSpace`]:
//! the transaction is rolled back, reads keep working, and writes work again as soon as
//! space is freed, without reopening. A commit that fails with another I/O error (a failed
//! `fsync`) shuts the write gate: every later write answers
//! [`StorageErrorKind::Poisoned`] until the
//! database is reopened.
//!
//! # Concurrency
//! One writer connection behind a mutex serializes every write of every store (so SQLite
//! never returns `SQLITE_BUSY` between them; a 30 s `busy_timeout` is a safety net). Reads
//! run on a pool of reader connections (`query_only`), each with its own cache of
//! prepared statements; WAL lets them read a consistent snapshot while the writer writes.
//! Every connection uses a 16 MiB page cache.
//!
//! # Limits
//! The common limits of `store-api` ([`MAX_KEY_LEN`](store_api::MAX_KEY_LEN) = 480 bytes,
//! [`MAX_VALUE_LEN`](store_api::MAX_VALUE_LEN) = 16 MiB), well inside SQLite's own (1 GB
//! per blob). A state partition is held in memory while it is open (see
//! [`store_kit::state`]); its `get` never touches SQLite.

mod db;
mod engine;
mod ledger;
mod segment;
mod side_effect;
mod state;

use std::path::Path;
use std::sync::Arc;

use rusqlite::ErrorCode;
use store_api::limits::check_partition_name;
use store_api::{
    Backend, Capabilities, Durability, OpenError, OpenOptions, StateError, StorageError,
    StorageErrorKind,
};
use store_kit::dir::open_dir;
use store_kit::gated::Gated;
use store_kit::state::{BufferedState, PartitionLeases};

pub use engine::SqliteEngine;
pub use ledger::SqliteLedger;
pub use segment::SqliteSegmentLog;
pub use side_effect::SqliteSideEffects;
pub use state::SqlitePartition;

/// The backend's name in errors and in the directory marker.
pub const BACKEND_NAME: &str = "sqlite";

/// The database file inside a backend directory.
pub const DB_FILE: &str = "store.sqlite3";

/// The schema version this build writes and reads. Version 1 (no checksum columns) is
/// still read: a read-write open upgrades it with [`MIGRATE_V1_SQL`] in one transaction,
/// a read-only open reads it as it is, unverified.
pub const SCHEMA_VERSION: i64 = 2;

/// Upgrades a version-1 database to version 2: adds the `crc` columns (`NULL` on the rows
/// already there, which are then read unverified) and records version 2.
pub const MIGRATE_V1_SQL: &str = include_str!("migrate_v1.sql");

/// The schema, version [`SCHEMA_VERSION`]: every `CREATE` statement of the database.
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// The SQLite backend: one database file in one directory.
pub struct SqliteBackend {
    durability: Durability,
    db: Arc<db::Db>,
    engine: Arc<Gated<SqliteEngine>>,
    ledger: Arc<Gated<SqliteLedger>>,
    segments: Arc<Gated<SqliteSegmentLog>>,
    side_effects: Arc<Gated<SqliteSideEffects>>,
    leases: PartitionLeases,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.db.path())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Backend for SqliteBackend {
    type Location = Path;
    type Engine = Gated<SqliteEngine>;
    type State = BufferedState<SqlitePartition>;
    type Ledger = Gated<SqliteLedger>;
    type Segments = Gated<SqliteSegmentLog>;
    type SideEffects = Gated<SqliteSideEffects>;

    const NAME: &'static str = BACKEND_NAME;

    fn capabilities() -> Capabilities {
        Capabilities::PERSISTENT
    }

    fn open(dir: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        let location: Arc<String> = dir.display().to_string().into();
        open_dir(dir, &db::LAYOUT, &options, |guard| {
            let db = Arc::new(db::Db::open(guard, &options)?);
            let gate = db.gate();
            Ok(SqliteBackend {
                durability: options.durability,
                engine: Gated::shared(gate, SqliteEngine::open(Arc::clone(&db))?),
                ledger: Gated::shared(
                    gate,
                    SqliteLedger::new(Arc::clone(&db), Arc::clone(&options.clock)),
                ),
                segments: Gated::shared(gate, SqliteSegmentLog::new(Arc::clone(&db))),
                side_effects: Gated::shared(
                    gate,
                    SqliteSideEffects::new(Arc::clone(&db), options.side_effect_cache_size),
                ),
                leases: PartitionLeases::default(),
                db,
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
        self.durability
    }

    fn engine(&self) -> Arc<Gated<SqliteEngine>> {
        Arc::clone(&self.engine)
    }

    fn state_store(&self, name: &str) -> Result<Self::State, StateError> {
        check_partition_name(name)?;
        self.db.gate().check_open()?;
        let lease = self.leases.acquire(name)?;
        self.db
            .gate()
            .locating(|| state::open_partition(&self.db, lease))
    }

    fn list_partitions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        self.db
            .gate()
            .locating(|| state::list(&self.db, after, limit))
    }

    fn ledger(&self) -> Arc<Gated<SqliteLedger>> {
        Arc::clone(&self.ledger)
    }

    fn segment_log(&self) -> Arc<Gated<SqliteSegmentLog>> {
        Arc::clone(&self.segments)
    }

    fn side_effects(&self) -> Arc<Gated<SqliteSideEffects>> {
        Arc::clone(&self.side_effects)
    }
}

/// The kind of failure an SQLite error reports.
fn error_kind(error: &rusqlite::Error) -> StorageErrorKind {
    match error {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StorageErrorKind::Corrupted,
            ErrorCode::DiskFull => StorageErrorKind::NoSpace,
            ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::NoLargeFileSupport => StorageErrorKind::Io,
            _ => StorageErrorKind::Engine,
        },
        // A stored value of the wrong type or range: the file does not hold what this
        // crate wrote.
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StorageErrorKind::Corrupted,
        _ => StorageErrorKind::Engine,
    }
}

/// Wraps an SQLite error met while doing `context`, keeping it as the source.
pub(crate) fn sql_error(context: &'static str, error: rusqlite::Error) -> StorageError {
    StorageError::new(BACKEND_NAME, error_kind(&error), context, error)
}

/// A stored record that does not hold what this crate writes.
pub(crate) fn corrupted(context: &'static str) -> StorageError {
    StorageError::corrupted(BACKEND_NAME, context)
}

/// The `crc` column of a row of `table` about to be written: the checksum of `key -> value`.
#[inline]
pub(crate) fn crc(table: &str, key: &[u8], value: &[u8]) -> i64 {
    i64::from(store_kit::checksum::checksum(table, key, value))
}

/// Verifies the `crc` column read from a row of `table` (column `stored`, `NULL` on a row
/// written before checksums) against its key and value: a mismatch, or a `crc` that is not
/// a checksum, is [`StorageErrorKind::Corrupted`] naming the table and the key.
#[inline]
pub(crate) fn verify_crc(
    row: &rusqlite::Row<'_>,
    stored: usize,
    table: &str,
    key: &[u8],
    value: &[u8],
) -> Result<(), StorageError> {
    let mismatch = || store_kit::checksum::mismatch(BACKEND_NAME, table, key);
    match row.get_ref(stored) {
        Ok(rusqlite::types::ValueRef::Null) => Ok(()),
        Ok(rusqlite::types::ValueRef::Integer(n)) => {
            let n = u32::try_from(n).map_err(|_| mismatch())?;
            store_kit::checksum::verify(BACKEND_NAME, table, key, value, n)
        }
        _ => Err(mismatch()),
    }
}

/// `.ctx("what we were doing")` on SQLite results.
pub(crate) trait SqlContext<T> {
    /// Wraps the error with `context`.
    fn ctx(self, context: &'static str) -> Result<T, StorageError>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    #[inline]
    fn ctx(self, context: &'static str) -> Result<T, StorageError> {
        self.map_err(|e| sql_error(context, e))
    }
}

/// A listing's `limit` as the `INTEGER` bound to `LIMIT` (a limit beyond `i64::MAX` rows
/// lists everything, as `i64::MAX` does).
#[inline]
pub(crate) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Runs the prepared listing `sql` with `params` and makes each row into an item with
/// `item`; the rows come in the order and number the statement gives.
pub(crate) fn query_page<T, E: From<StorageError>>(
    conn: &rusqlite::Connection,
    sql: &'static str,
    params: impl rusqlite::Params,
    context: &'static str,
    mut item: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StorageError>,
) -> Result<Vec<T>, E> {
    let mut stmt = conn.prepare_cached(sql).ctx(context)?;
    let mut rows = stmt.query(params).ctx(context)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(context)? {
        out.push(item(row)?);
    }
    Ok(out)
}

/// One page of distinct `W`-byte ids, ascending, after `after`, at most `limit`, by a skip
/// scan in one read transaction: `seek_sql` gives the first id at or after its `?1` (an
/// empty blob before the first), one index seek per id listed. An id shorter than `W`
/// bytes is the error `short_id` makes.
pub(crate) fn distinct_ids<const W: usize>(
    db: &db::Db,
    seek_sql: &'static str,
    after: Option<[u8; W]>,
    limit: usize,
    context: &'static str,
    short_id: impl Fn() -> StorageError,
) -> Result<Vec<[u8; W]>, StorageError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    db.read_tx(|conn| {
        let mut stmt = conn.prepare_cached(seek_sql).ctx(context)?;
        let mut seek = |from: Option<&[u8]>| -> Result<Option<Vec<u8>>, StorageError> {
            stmt.query_row([from.unwrap_or_default()], |r| r.get(0))
                .ctx(context)
        };
        store_kit::listing::distinct(after, limit, |last| {
            store_kit::listing::next_leading(last, &mut seek, &short_id)
        })
    })
}

/// A `u64` as the `INTEGER` stored for it (two's complement above `i64::MAX`).
#[inline]
pub(crate) fn u64_to_sql(n: u64) -> i64 {
    n as i64
}

/// The `u64` an `INTEGER` written by [`u64_to_sql`] stands for.
#[inline]
pub(crate) fn u64_from_sql(n: i64) -> u64 {
    n as u64
}
