//! The raw SQLite baseline (through rusqlite): the `engine_kv` table of store-sqlite's
//! schema, with its settings: WAL, `synchronous=FULL` under [`Durability::Immediate`] and
//! `NORMAL` under [`Durability::Relaxed`], a 16 MiB page cache, one writer connection
//! (`BEGIN IMMEDIATE` per batch, the same upsert) and a reader connection, cached
//! prepared statements.

use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;

use ::rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use bytes::Bytes;
use store_api::Durability;

use crate::error::{BenchError, Context};
use crate::raw::Kv;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS engine_kv (
    key BLOB PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 480),
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;";
const GET: &str = "SELECT value FROM engine_kv WHERE key = ?1";
const UPSERT: &str = "INSERT INTO engine_kv (key, value) VALUES (?1, ?2) \
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const SCAN_FORWARD: &str =
    "SELECT key, value FROM engine_kv WHERE key >= ?1 AND key <= ?2 ORDER BY key ASC LIMIT ?3";
const SCAN_REVERSE: &str =
    "SELECT key, value FROM engine_kv WHERE key >= ?1 AND key <= ?2 ORDER BY key DESC LIMIT ?3";

/// SQLite used directly.
pub struct RawSqlite {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

fn connect(path: &Path, durability: Durability) -> Result<Connection, BenchError> {
    let conn = Connection::open(path).context("sqlite: open")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .context("sqlite: journal_mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BenchError::msg(format!("sqlite: journal_mode is {mode}")));
    }
    conn.execute_batch(match durability {
        Durability::Immediate => "PRAGMA synchronous = FULL; PRAGMA cache_size = -16384;",
        Durability::Relaxed => "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;",
    })
    .context("sqlite: pragmas")?;
    conn.set_prepared_statement_cache_capacity(96);
    Ok(conn)
}

/// Opens (creating if needed) the raw SQLite database in `dir`.
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let path = dir.join("raw.sqlite3");
    let writer = connect(&path, durability)?;
    writer.execute_batch(SCHEMA).context("sqlite: schema")?;
    let reader = connect(&path, durability)?;
    reader
        .execute_batch("PRAGMA query_only = ON;")
        .context("sqlite: query_only")?;
    Ok(Box::new(RawSqlite {
        writer: Mutex::new(writer),
        reader: Mutex::new(reader),
    }))
}

fn poisoned() -> BenchError {
    BenchError::msg("sqlite: a connection mutex was poisoned")
}

impl Kv for RawSqlite {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        // The copy outlives the reader connection, as the store's result does.
        let value = {
            let conn = self.reader.lock().map_err(|_| poisoned())?;
            let mut stmt = conn.prepare_cached(GET).context("sqlite: prepare")?;
            stmt.query_row([key], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .context("sqlite: get")?
                .map(Bytes::from)
        };
        Ok(black_box(value).map(|v| v.len()))
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        let mut conn = self.writer.lock().map_err(|_| poisoned())?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("sqlite: begin")?;
        {
            let mut upsert = tx.prepare_cached(UPSERT).context("sqlite: prepare")?;
            for (key, value) in pairs {
                upsert.execute((key, value)).context("sqlite: upsert")?;
            }
        }
        tx.commit().context("sqlite: commit")
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError> {
        let conn = self.reader.lock().map_err(|_| poisoned())?;
        let sql = if forward { SCAN_FORWARD } else { SCAN_REVERSE };
        let mut stmt = conn.prepare_cached(sql).context("sqlite: prepare")?;
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query((start, end, sql_limit))
            .context("sqlite: scan")?;
        let mut out: Vec<(Bytes, Bytes)> = Vec::with_capacity(limit.min(1024));
        while let Some(row) = rows.next().context("sqlite: scan row")? {
            let key: Vec<u8> = row.get(0).context("sqlite: scan key")?;
            let value: Vec<u8> = row.get(1).context("sqlite: scan value")?;
            out.push((Bytes::from(key), Bytes::from(value)));
        }
        // The rows outlive the reader connection, as the store's result does.
        drop(rows);
        drop(stmt);
        drop(conn);
        Ok(black_box(out).len())
    }
}
