//! The database of one backend: opening and checking the file, the one writer connection
//! behind a mutex, and a pool of reader connections.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use store_api::{Durability, OpenError, OpenOptions, StorageError};
use store_kit::dir::{DirGuard, DirLayout};
use store_kit::gate::{EngineSlot, WriteGate, read_only_error};

use crate::{DB_FILE, MIGRATE_V1_SQL, SCHEMA_SQL, SCHEMA_VERSION, SqlContext};

/// `PRAGMA application_id` of a store database: "STOR".
pub(crate) const APPLICATION_ID: i64 = 0x5354_4F52;

/// Every table of schema versions 1 and 2.
const TABLES: &[&str] = &[
    "schema_version",
    "engine_kv",
    "engine_batch_log",
    "engine_meta",
    "state_partitions",
    "state_entries",
    "ledger_assets",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_transaction_metadata",
    "ledger_postings",
    "ledger_events",
    "ledger_book_heads",
    "ledger_totals",
    "side_effect_outputs",
    "side_effect_output_payloads",
    "side_effect_call_outputs",
    "side_effect_inbound",
    "segments",
    "segment_entries",
    "segment_traces",
];

/// How long a connection waits on a lock held by another connection before failing. The
/// writer mutex means this only guards against outside tools holding the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 96;

/// Idle reader connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// The name the database is created under before it is renamed to [`DB_FILE`].
const INIT_FILE: &str = ".store.sqlite3.init";

/// The files of a backend directory, beside store-kit's marker and lock: the database,
/// the one it is created under, and SQLite's journal, WAL and WAL index of each.
pub(crate) const LAYOUT: DirLayout = DirLayout {
    backend: crate::BACKEND_NAME,
    owned: &[
        DB_FILE,
        "store.sqlite3-journal",
        "store.sqlite3-wal",
        "store.sqlite3-shm",
        INIT_FILE,
        ".store.sqlite3.init-journal",
        ".store.sqlite3.init-wal",
        ".store.sqlite3.init-shm",
    ],
};

/// The tables that gained a `crc` column in schema version 2.
const CHECKSUMMED: &[&str] = &[
    "engine_kv",
    "engine_batch_log",
    "state_entries",
    "ledger_postings",
    "side_effect_output_payloads",
    "side_effect_call_outputs",
    "side_effect_inbound",
    "segment_entries",
    "segment_traces",
];

/// Settings of every connection: page cache, foreign keys, busy timeout, statement cache.
const CONNECTION_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;";

/// The database of one backend.
pub(crate) struct Db {
    // Field order is drop order: the connections (the last one to close checkpoints the
    // WAL), then the directory lock.
    connections: EngineSlot<Connections>,
    path: PathBuf,
    durability: Durability,
    read_only: bool,
    /// A schema-version-1 database opened read-only (so not upgraded): reader connections
    /// see its checksummed tables through views with a `NULL` `crc` column.
    legacy_v1: bool,
    /// Shut by a commit that failed with an I/O error (not a full disk): after a failed
    /// `fsync` the pages of earlier writes may be gone, so nothing more is acknowledged
    /// until the database is reopened. Refuses writes of a read-only open, and everything
    /// once the backend is closed.
    gate: Arc<WriteGate>,
    guard: Mutex<Option<DirGuard>>,
}

/// The open connections of a [`Db`]; `close` takes them out.
struct Connections {
    // Drop order: readers first, so that the writer is the last connection to close.
    readers: Mutex<Vec<Connection>>,
    /// `None` on a read-only open.
    writer: Option<Mutex<Connection>>,
}

fn corrupted_file(path: &Path, detail: &str) -> OpenError {
    OpenError::Corrupted {
        path: path.to_path_buf(),
        source: Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            detail.to_owned(),
        )),
    }
}

fn foreign(path: &Path, detail: String) -> OpenError {
    OpenError::ForeignData {
        path: path.to_path_buf(),
        detail,
    }
}

/// Classifies an SQLite error met while opening `path`.
fn open_error(path: &Path, error: rusqlite::Error) -> OpenError {
    let code = match &error {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
        _ => None,
    };
    let path = path.to_path_buf();
    match code {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => OpenError::Corrupted {
            path,
            source: Box::new(error),
        },
        Some(ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => OpenError::PermissionDenied {
            path,
            source: io::Error::new(io::ErrorKind::PermissionDenied, error),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or(path);
            OpenError::Locked { path: dir }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull) => {
            OpenError::Io {
                path,
                source: io::Error::other(error),
            }
        }
        _ => OpenError::Storage(crate::sql_error("opening the database", error)),
    }
}

fn be_u32(header: &[u8; 100], at: usize) -> u64 {
    let mut buf = [0u8; 4];
    if let Some(bytes) = header.get(at..at + 4) {
        buf.copy_from_slice(bytes);
    }
    u64::from(u32::from_be_bytes(buf))
}

/// Checks the file before SQLite sees it: readable and writable by us, an SQLite header,
/// whole pages, and not shorter than its header says (a truncated file SQLite would
/// otherwise open and only fail on later reads).
fn check_file(path: &Path) -> Result<(), OpenError> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| OpenError::from_io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| OpenError::from_io(path, e))?
        .len();
    let mut header = [0u8; 100];
    if len < header.len() as u64 {
        return Err(corrupted_file(
            path,
            "the file is shorter than an SQLite header (truncated)",
        ));
    }
    file.read_exact(&mut header)
        .map_err(|e| OpenError::from_io(path, e))?;
    if !header.starts_with(b"SQLite format 3\0") {
        return Err(corrupted_file(path, "the file has no SQLite header"));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    if !page_size.is_power_of_two() || page_size < 512 {
        return Err(corrupted_file(
            path,
            "the SQLite header has an invalid page size",
        ));
    }
    if len % page_size != 0 {
        return Err(corrupted_file(
            path,
            "the file is not a whole number of pages (truncated)",
        ));
    }
    let change_counter = be_u32(&header, 24);
    let page_count = be_u32(&header, 28);
    let valid_for = be_u32(&header, 92);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_has_frames = fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false);
    // With frames in the WAL the file may legitimately lag behind its header (a checkpoint
    // cut short); SQLite recovers it from the WAL.
    if change_counter == valid_for && !wal_has_frames && page_count.saturating_mul(page_size) > len
    {
        return Err(corrupted_file(
            path,
            "the file is shorter than its header says (truncated)",
        ));
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), OpenError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(OpenError::from_io(path, e)),
    }
}

/// Creates the database: the schema is committed under a temporary name, the file is
/// fsynced and renamed to `path`. An existing `store.sqlite3` therefore always holds the
/// whole schema.
fn create_database(dir: &Path, path: &Path) -> Result<(), OpenError> {
    let init = dir.join(INIT_FILE);
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = init.as_os_str().to_owned();
        name.push(suffix);
        remove_if_exists(Path::new(&name))?;
    }
    let mut conn = Connection::open_with_flags(
        &init,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(&init, e))?;
    let created = (|| {
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        let tx = conn.transaction()?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.execute_batch(SCHEMA_SQL)?;
        tx.execute(
            "INSERT INTO schema_version (id, version, written_by) VALUES (1, ?1, ?2)",
            (
                SCHEMA_VERSION,
                concat!("store-sqlite ", env!("CARGO_PKG_VERSION")),
            ),
        )?;
        tx.commit()
    })();
    created.map_err(|e| open_error(&init, e))?;
    conn.close().map_err(|(_, e)| open_error(&init, e))?;
    fs::File::open(&init)
        .and_then(|f| f.sync_all())
        .map_err(|e| OpenError::from_io(&init, e))?;
    fs::rename(&init, path).map_err(|e| OpenError::from_io(path, e))?;
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| OpenError::from_io(dir, e))
}

/// Refuses a database this crate did not write, or wrote in a version it cannot read;
/// returns its schema version (1 or [`SCHEMA_VERSION`]).
fn check_schema(path: &Path, conn: &Connection) -> Result<i64, OpenError> {
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let has_version: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
             WHERE type = 'table' AND name = 'schema_version')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| open_error(path, e))?;
    if app_id != APPLICATION_ID || !has_version {
        return Err(foreign(
            path,
            "an SQLite database that is not a store-sqlite database \
             (no schema_version table or another application_id)"
                .to_owned(),
        ));
    }
    let version: Option<i64> = conn
        .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(|e| open_error(path, e))?;
    match version {
        None => return Err(corrupted_file(path, "the schema_version row is missing")),
        Some(v) if v == SCHEMA_VERSION || v == 1 => {}
        Some(v) if v > SCHEMA_VERSION => {
            return Err(foreign(
                path,
                format!("schema version {v} is newer than this build reads ({SCHEMA_VERSION})"),
            ));
        }
        Some(v) => {
            return Err(foreign(
                path,
                format!("unknown schema version {v} (this build reads {SCHEMA_VERSION})"),
            ));
        }
    }
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .map_err(|e| open_error(path, e))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .map_err(|e| open_error(path, e))?;
    if let Some(missing) = TABLES.iter().find(|t| !names.iter().any(|n| n == *t)) {
        return Err(corrupted_file(
            path,
            &format!("table {missing} of schema version {SCHEMA_VERSION} is missing"),
        ));
    }
    version.ok_or_else(|| corrupted_file(path, "the schema_version row is missing"))
}

/// Upgrades a schema-version-1 database to version 2 in one transaction: all the `crc`
/// columns and the new version, or nothing.
fn migrate_v1(path: &Path, conn: &mut Connection) -> Result<(), OpenError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| open_error(path, e))?;
    tx.execute_batch(MIGRATE_V1_SQL)
        .map_err(|e| open_error(path, e))?;
    tx.commit().map_err(|e| open_error(path, e))
}

/// On a reader connection of a version-1 database opened read-only: a temporary view per
/// checksummed table with a `NULL` `crc` column (temporary objects shadow the main
/// database's), so the statements of version 2 read it unverified.
fn legacy_views(conn: &Connection) -> rusqlite::Result<()> {
    for table in CHECKSUMMED {
        conn.execute_batch(&format!(
            "CREATE TEMP VIEW {table} AS SELECT *, NULL AS crc FROM main.{table};"
        ))?;
    }
    Ok(())
}

/// One write transaction on the writer connection `conn`, refused once `gate` is shut;
/// see [`Db::write_then`].
fn run_write<T, E: From<StorageError>>(
    gate: &WriteGate,
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
    after_commit: impl FnOnce(&T),
) -> Result<T, E> {
    gate.check()?;
    if !conn.is_autocommit() {
        // An earlier transaction whose rollback failed: end it before the next one.
        conn.execute_batch("ROLLBACK")
            .ctx("rolling back an unfinished write transaction")?;
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("beginning a write transaction")?;
    let out = f(&tx)?;
    tx.commit()
        .ctx("committing a write transaction")
        .map_err(|e| gate.observe(e))?;
    after_commit(&out);
    Ok(out)
}

/// A reader connection: `query_only`, and opened read-only when the backend is (SQLite then
/// never writes the database file).
fn open_reader(
    path: &Path,
    durability: Durability,
    read_only: bool,
    legacy_v1: bool,
) -> rusqlite::Result<Connection> {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    configure(&conn, durability)?;
    if legacy_v1 {
        legacy_views(&conn)?;
    }
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    conn.execute_batch(match durability {
        Durability::Immediate => "PRAGMA synchronous = FULL;",
        Durability::Relaxed => "PRAGMA synchronous = NORMAL;",
    })
}

impl Db {
    /// Opens the database of the directory held by `guard`, creating it when it is missing
    /// and `options` allow it.
    pub(crate) fn open(guard: DirGuard, options: &OpenOptions) -> Result<Db, OpenError> {
        let durability = options.durability;
        let read_only = options.read_only;
        let dir = guard.path().to_path_buf();
        let path = dir.join(DB_FILE);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(foreign(&path, format!("{DB_FILE} is not a regular file")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                if fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                    // Committed writes without their database: a fresh file would have the
                    // stale WAL replayed into it.
                    return Err(corrupted_file(
                        &path,
                        "the database file is missing but its write-ahead log is not",
                    ));
                }
                if !options.may_create() {
                    return Err(OpenError::NotFound {
                        location: path.display().to_string(),
                    });
                }
                create_database(&dir, &path)?
            }
            Err(e) => return Err(OpenError::from_io(&path, e)),
        }
        check_file(&path)?;
        let gate = Arc::new(
            WriteGate::new(crate::BACKEND_NAME)
                .with_read_only(read_only)
                .with_location(dir.display().to_string()),
        );
        if read_only {
            let probe =
                open_reader(&path, durability, true, false).map_err(|e| open_error(&path, e))?;
            let legacy_v1 = check_schema(&path, &probe)? == 1;
            let reader = if legacy_v1 {
                drop(probe);
                open_reader(&path, durability, true, true).map_err(|e| open_error(&path, e))?
            } else {
                probe
            };
            return Ok(Db {
                connections: EngineSlot::new(
                    crate::BACKEND_NAME,
                    Connections {
                        readers: Mutex::new(vec![reader]),
                        writer: None,
                    },
                ),
                path,
                durability,
                read_only,
                legacy_v1,
                gate,
                guard: Mutex::new(Some(guard)),
            });
        }
        let mut writer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&path, e))?;
        configure(&writer, durability).map_err(|e| open_error(&path, e))?;
        let version = store_kit::open_step::timed(crate::BACKEND_NAME, "schema check", || {
            check_schema(&path, &writer)
        })?;
        if writer
            .is_readonly("main")
            .map_err(|e| open_error(&path, e))?
        {
            return Err(OpenError::PermissionDenied {
                path: path.clone(),
                source: io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the database can only be opened read-only",
                ),
            });
        }
        if version == 1 {
            store_kit::open_step::timed(crate::BACKEND_NAME, "schema upgrade 1 to 2", || {
                migrate_v1(&path, &mut writer)
            })?;
        }
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_error(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::Io {
                path,
                source: io::Error::other(format!(
                    "the database cannot switch to WAL mode (journal_mode is {mode})"
                )),
            });
        }
        // Fail at open, not at the first read, when reader connections cannot be made.
        let reader =
            open_reader(&path, durability, false, false).map_err(|e| open_error(&path, e))?;
        Ok(Db {
            connections: EngineSlot::new(
                crate::BACKEND_NAME,
                Connections {
                    readers: Mutex::new(vec![reader]),
                    writer: Some(Mutex::new(writer)),
                },
            ),
            path,
            durability,
            read_only,
            legacy_v1: false,
            gate,
            guard: Mutex::new(Some(guard)),
        })
    }

    /// The backend's gate.
    pub(crate) fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// Closes the database (the backend's gate is already closed): once the calls in
    /// progress are done, checkpoints the WAL into the database file with a full sync
    /// (under `Relaxed` too), closes every connection and releases the directory lock.
    /// Every failure is reported; the lock is released whatever happens.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        let mut outcome = Ok(());
        if let Some(connections) = self.connections.take() {
            for reader in connections.readers.into_inner() {
                if let Err((_, e)) = reader.close() {
                    outcome = outcome.and(Err(e).ctx("closing a reader connection"));
                }
            }
            if let Some(writer) = connections.writer {
                let writer = writer.into_inner();
                let synced = writer
                    .execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(TRUNCATE);")
                    .ctx("checkpointing the write-ahead log");
                outcome = outcome.and(synced);
                if let Err((_, e)) = writer.close() {
                    outcome = outcome.and(Err(e).ctx("closing the writer connection"));
                }
            }
        }
        drop(self.guard.lock().take());
        outcome
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn take_reader(&self, connections: &Connections) -> Result<Connection, StorageError> {
        if let Some(conn) = connections.readers.lock().pop() {
            return Ok(conn);
        }
        open_reader(&self.path, self.durability, self.read_only, self.legacy_v1)
            .ctx("opening a reader connection")
    }

    fn return_reader(connections: &Connections, conn: Connection) {
        // A connection left inside a transaction (a failed rollback) is not reused.
        if !conn.is_autocommit() {
            return;
        }
        let mut readers = connections.readers.lock();
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
    }

    /// The writer connection, locked; [`ReadOnly`](store_api::StorageErrorKind::ReadOnly)
    /// on a read-only open, `Closed` once closed.
    fn with_writer<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let connections = self.connections.get()?;
        let Some(writer) = &connections.writer else {
            return Err(read_only_error(crate::BACKEND_NAME).into());
        };
        f(&mut store_kit::lock_wait::lock(
            writer,
            "sqlite writer connection",
        ))
    }

    /// Runs `f` on a reader connection: each statement sees one committed snapshot.
    #[inline]
    pub(crate) fn read<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let connections = self.connections.get()?;
        let conn = self.take_reader(&connections)?;
        let out = f(&conn);
        Self::return_reader(&connections, conn);
        out
    }

    /// Runs `f` in a read transaction: every statement of `f` sees the same snapshot.
    pub(crate) fn read_tx<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.read(|conn| {
            let tx = conn
                .unchecked_transaction()
                .ctx("beginning a read transaction")?;
            let out = f(&tx)?;
            tx.commit().ctx("ending a read transaction")?;
            Ok(out)
        })
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) on the writer connection and
    /// commits it when `f` succeeds (rolls it back otherwise). `after_commit` runs once the
    /// commit is done, still holding the writer.
    pub(crate) fn write_then<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
        after_commit: impl FnOnce(&T),
    ) -> Result<T, E> {
        self.with_writer(|conn| run_write(&self.gate, conn, f, after_commit))
    }

    /// Like [`write`](Self::write), but durable when it returns whatever the durability
    /// mode: under `Relaxed` the transaction commits with `synchronous=FULL`, and its WAL
    /// fsync makes every earlier commit durable too. A state flush asks for this.
    pub(crate) fn write_durable<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.with_writer(|conn| {
            if self.durability == Durability::Immediate {
                return run_write(&self.gate, conn, f, |_| {});
            }
            conn.execute_batch("PRAGMA synchronous = FULL;")
                .ctx("making a write durable")?;
            let out = run_write(&self.gate, conn, f, |_| {});
            let restored = conn
                .execute_batch("PRAGMA synchronous = NORMAL;")
                .ctx("restoring relaxed durability");
            match (out, restored) {
                (Ok(_), Err(e)) => Err(e.into()),
                (out, _) => out,
            }
        })
    }

    /// Runs `f` in one write transaction; see [`write_then`](Self::write_then).
    #[inline]
    pub(crate) fn write<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_then(f, |_| {})
    }
}
