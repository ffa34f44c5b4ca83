//! `StoreEngine` on the tables `engine_kv` (the data), `engine_batch_log` (one row per
//! mutation) and `engine_meta` (the sequence counter).

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension};
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StoreEngine};
use store_kit::engine::{
    SCAN_PREALLOC, SEQUENCE_KEY, check_keys, check_mutations, check_put_batch, scan_bounds,
};
use store_kit::replication::{ApplyDecision, CommitNotifier, check_apply_input, decide_apply};

use crate::db::Db;
use crate::{SqlContext, corrupted, crc, verify_crc};
use store_kit::checksum::Fields;

const GET: &str = "SELECT value, crc FROM engine_kv WHERE key = ?1";
const UPSERT: &str = "INSERT INTO engine_kv (key, value, crc) VALUES (?1, ?2, ?3) \
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value, crc = excluded.crc";
const DELETE: &str = "DELETE FROM engine_kv WHERE key = ?1";
const LOG_PUT: &str = "INSERT INTO engine_batch_log (seq, idx, op, key, value, crc) \
                       VALUES (?1, ?2, 'put', ?3, ?4, ?5)";
const LOG_DELETE: &str = "INSERT INTO engine_batch_log (seq, idx, op, key, value, crc) \
                          VALUES (?1, ?2, 'delete', ?3, NULL, ?4)";
const SET_SEQUENCE: &str = "INSERT INTO engine_meta (key, value) VALUES (?1, ?2) \
                            ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const GET_SEQUENCE: &str = "SELECT value FROM engine_meta WHERE key = ?1";
const GET_BATCH: &str =
    "SELECT op, key, value, idx, crc FROM engine_batch_log WHERE seq = ?1 ORDER BY idx";
const OLDEST_BATCH: &str = "SELECT MIN(seq) FROM engine_batch_log";
const COUNT_OLDER: &str = "SELECT COUNT(DISTINCT seq) FROM engine_batch_log WHERE seq < ?1";
const PRUNE: &str = "DELETE FROM engine_batch_log WHERE seq < ?1";
const COUNT_ALL: &str = "SELECT COUNT(DISTINCT seq) FROM engine_batch_log";
const PRUNE_ALL: &str = "DELETE FROM engine_batch_log";

/// `range_scan` statements by (lower bound, upper bound, direction); bounds are bound as
/// `?1` (lower) and `?2` (upper), the limit as `?3`.
const SCANS: [[[&str; 2]; 2]; 2] = [
    [
        [
            "SELECT key, value, crc FROM engine_kv ORDER BY key DESC LIMIT ?3",
            "SELECT key, value, crc FROM engine_kv ORDER BY key LIMIT ?3",
        ],
        [
            "SELECT key, value, crc FROM engine_kv WHERE key <= ?2 ORDER BY key DESC LIMIT ?3",
            "SELECT key, value, crc FROM engine_kv WHERE key <= ?2 ORDER BY key LIMIT ?3",
        ],
    ],
    [
        [
            "SELECT key, value, crc FROM engine_kv WHERE key >= ?1 ORDER BY key DESC LIMIT ?3",
            "SELECT key, value, crc FROM engine_kv WHERE key >= ?1 ORDER BY key LIMIT ?3",
        ],
        [
            "SELECT key, value, crc FROM engine_kv WHERE key >= ?1 AND key <= ?2 \
             ORDER BY key DESC LIMIT ?3",
            "SELECT key, value, crc FROM engine_kv WHERE key >= ?1 AND key <= ?2 \
             ORDER BY key LIMIT ?3",
        ],
    ],
];

/// The sequence counter's key, bound as `TEXT`.
fn sequence_key() -> ToSqlOutput<'static> {
    ToSqlOutput::Borrowed(ValueRef::Text(SEQUENCE_KEY))
}

/// The engine store. Writes go through the backend's one writer connection, so batches are
/// numbered in commit order; `current_sequence` reads a copy of the counter that is updated
/// after each commit while the writer is still held. `apply_batch` decides inside the
/// batch's write transaction.
pub struct SqliteEngine {
    db: Arc<Db>,
    sequence: AtomicU64,
    committed: CommitNotifier,
}

/// The number a batch is committed under.
#[derive(Clone, Copy)]
enum Numbering<'a> {
    /// The next one (`put_batch`, `delete_batch`, `write_batch`).
    Next,
    /// The leader's (`apply_batch`): decided against the log inside the transaction.
    Leader(u64, &'a [Mutation]),
}

/// What a batch's write transaction did.
enum Outcome {
    /// The batch was written under this number.
    Written(u64),
    /// The batch was already applied, logged identically: nothing was written.
    AlreadyApplied(u64),
}

impl std::fmt::Debug for SqliteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEngine")
            .field("sequence", &self.sequence.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

const KV: &str = "engine_kv";
const LOG: &str = "engine_batch_log";

/// The checksum of a batch log row: keyed by `(seq, idx)`, over the number of mutations
/// in its batch, the operation, the key and the value. The count makes a batch that lost
/// rows fail verification, where each surviving row alone would pass.
fn log_crc(seq: i64, idx: i64, count: usize, op: &str, key: &[u8], value: Option<&[u8]>) -> i64 {
    let id = Fields::new().int(seq).int(idx);
    let record = Fields::new()
        .int(i64::try_from(count).unwrap_or(i64::MAX))
        .bytes(op.as_bytes())
        .bytes(key)
        .opt_bytes(value);
    crc(LOG, id.as_slice(), record.as_slice())
}

/// A value read from `engine_kv` (columns `value, crc` from `first`), verified.
fn kv_value(row: &rusqlite::Row<'_>, first: usize, key: &[u8]) -> Result<Vec<u8>, StorageError> {
    let value: Vec<u8> = row
        .get(first)
        .map_err(|_| store_kit::checksum::mismatch(crate::BACKEND_NAME, KV, key))?;
    verify_crc(row, first + 1, KV, key, &value)?;
    Ok(value)
}

fn seq_param(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|_| corrupted("the engine sequence left the INTEGER range"))
}

impl SqliteEngine {
    /// Ends every `wait_for_sequence`, now and later, with the `Closed` error.
    pub(crate) fn close(&self) {
        self.committed.close();
    }

    /// The engine store of `db`, reading the stored sequence counter.
    pub(crate) fn open(db: Arc<Db>) -> Result<Self, StorageError> {
        let stored: Option<i64> = db.read(|conn| {
            conn.prepare_cached(GET_SEQUENCE)
                .and_then(|mut stmt| stmt.query_row([sequence_key()], |r| r.get(0)).optional())
                .ctx("reading the engine sequence")
        })?;
        let sequence = match stored {
            None => 0,
            Some(n) => {
                u64::try_from(n).map_err(|_| corrupted("the engine sequence is negative"))?
            }
        };
        Ok(SqliteEngine {
            db,
            sequence: AtomicU64::new(sequence),
            committed: CommitNotifier::new(crate::BACKEND_NAME, sequence),
        })
    }

    /// Writes one batch: `apply` writes the data and the log rows of batch `seq`. Under
    /// [`Numbering::Leader`] the batch may turn out applied already: then nothing is
    /// written and its number is returned.
    fn commit(
        &self,
        numbering: Numbering<'_>,
        apply: impl FnOnce(&Connection, i64) -> rusqlite::Result<()>,
    ) -> Result<u64, EngineError> {
        let outcome = self.db.write_then(
            |conn| -> Result<Outcome, EngineError> {
                // The writer is held: the cached counter is the stored one.
                let current = self.sequence.load(Ordering::Acquire);
                let seq = match numbering {
                    Numbering::Next => current + 1,
                    Numbering::Leader(seq, mutations) => {
                        let logged = |seq| Ok(read_batch(conn, seq)?);
                        match decide_apply(current, seq, mutations, logged)? {
                            ApplyDecision::AlreadyApplied => {
                                return Ok(Outcome::AlreadyApplied(seq));
                            }
                            ApplyDecision::Write => seq,
                        }
                    }
                };
                let seq_sql = seq_param(seq)?;
                apply(conn, seq_sql).ctx("writing a batch")?;
                conn.prepare_cached(SET_SEQUENCE)
                    .and_then(|mut stmt| stmt.execute((sequence_key(), seq_sql)))
                    .ctx("updating the engine sequence")?;
                Ok(Outcome::Written(seq))
            },
            |outcome| {
                if let Outcome::Written(seq) = *outcome {
                    self.sequence.store(seq, Ordering::Release);
                    self.committed.publish(seq);
                }
            },
        )?;
        match outcome {
            Outcome::Written(seq) | Outcome::AlreadyApplied(seq) => Ok(seq),
        }
    }
}

/// Writes the data and the log rows of a mixed batch `seq`, in order, so the last
/// mutation of a key wins.
fn write_mutations(conn: &Connection, seq: i64, mutations: &[Mutation]) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(UPSERT)?;
    let mut delete = conn.prepare_cached(DELETE)?;
    let mut log_put = conn.prepare_cached(LOG_PUT)?;
    let mut log_delete = conn.prepare_cached(LOG_DELETE)?;
    for (idx, mutation) in mutations.iter().enumerate() {
        match mutation {
            Mutation::Put { key, value } => {
                upsert.execute((key.as_ref(), value.as_ref(), crc(KV, key, value)))?;
                let sum = log_crc(seq, idx as i64, mutations.len(), "put", key, Some(value));
                log_put.execute((seq, idx as i64, key.as_ref(), value.as_ref(), sum))?;
            }
            Mutation::Delete { key } => {
                delete.execute([key.as_ref()])?;
                let sum = log_crc(seq, idx as i64, mutations.len(), "delete", key, None);
                log_delete.execute((seq, idx as i64, key.as_ref(), sum))?;
            }
        }
    }
    Ok(())
}

/// The logged mutations of batch `seq`, read on `conn`; `None` when pruned or never
/// written.
fn read_batch(conn: &Connection, seq: u64) -> Result<Option<Vec<Mutation>>, StorageError> {
    // Stored numbers fit in an INTEGER: a larger one was never written.
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(GET_BATCH)
        .ctx("reading the batch log")?;
    let mut rows = stmt.query([seq]).ctx("reading the batch log")?;
    // The rows are verified once all are read: each checksum covers the batch's length,
    // so a batch that lost rows (a damaged page) does not verify.
    let mut read = Vec::new();
    while let Some(row) = rows.next().ctx("reading the batch log")? {
        let idx: i64 = row.get(3).ctx("reading the batch log")?;
        let damaged = || {
            store_kit::checksum::mismatch(
                crate::BACKEND_NAME,
                LOG,
                Fields::new().int(seq).int(idx).as_slice(),
            )
        };
        let op: String = row.get(0).map_err(|_| damaged())?;
        let key: Vec<u8> = row.get(1).map_err(|_| damaged())?;
        let value: Option<Vec<u8>> = row.get(2).map_err(|_| damaged())?;
        let stored = match row.get_ref(4) {
            Ok(ValueRef::Null) => None,
            Ok(ValueRef::Integer(n)) => Some(u32::try_from(n).map_err(|_| damaged())?),
            _ => return Err(damaged()),
        };
        read.push((idx, op, key, value, stored));
    }
    let count = read.len();
    let mut mutations = Vec::with_capacity(count);
    for (idx, op, key, value, stored) in read {
        if let Some(stored) = stored {
            let sum = log_crc(seq, idx, count, &op, &key, value.as_deref());
            if i64::from(stored) != sum {
                return Err(store_kit::checksum::mismatch(
                    crate::BACKEND_NAME,
                    LOG,
                    Fields::new().int(seq).int(idx).as_slice(),
                ));
            }
        }
        mutations.push(decode_mutation(&op, key, value)?);
    }
    Ok((!mutations.is_empty()).then_some(mutations))
}

fn decode_mutation(
    op: &str,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
) -> Result<Mutation, StorageError> {
    store_kit::sql::mutation_from_log_row(op, key, value)
        .ok_or_else(|| corrupted("decoding a batch log row"))
}

impl StoreEngine for SqliteEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        self.commit(Numbering::Next, |conn, seq| {
            let mut upsert = conn.prepare_cached(UPSERT)?;
            let mut log = conn.prepare_cached(LOG_PUT)?;
            for (idx, (key, value)) in pairs.iter().enumerate() {
                upsert.execute((key, value, crc(KV, key, value)))?;
                let sum = log_crc(seq, idx as i64, pairs.len(), "put", key, Some(value));
                log.execute((seq, idx as i64, key, value, sum))?;
            }
            Ok(())
        })
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        self.commit(Numbering::Next, |conn, seq| {
            let mut delete = conn.prepare_cached(DELETE)?;
            let mut log = conn.prepare_cached(LOG_DELETE)?;
            for (idx, key) in keys.iter().enumerate() {
                delete.execute([key])?;
                let sum = log_crc(seq, idx as i64, keys.len(), "delete", key, None);
                log.execute((seq, idx as i64, key, sum))?;
            }
            Ok(())
        })
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        self.commit(Numbering::Next, |conn, seq| {
            write_mutations(conn, seq, mutations)
        })
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        self.commit(Numbering::Leader(seq, mutations), |conn, seq| {
            write_mutations(conn, seq, mutations)
        })
    }

    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        self.committed.wait_after(after, timeout)
    }

    fn current_sequence(&self) -> u64 {
        self.sequence.load(Ordering::Acquire)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        check_key(key)?;
        self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(GET).ctx("reading a key")?;
            let mut rows = stmt.query([key]).ctx("reading a key")?;
            match rows.next().ctx("reading a key")? {
                Some(row) => Ok(Some(Bytes::from(kv_value(row, 0, key)?))),
                None => Ok(None),
            }
        })
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.db.read_tx(|conn| {
            let mut stmt = conn.prepare_cached(GET).ctx("reading keys")?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let mut rows = stmt.query([key]).ctx("reading keys")?;
                let value = match rows.next().ctx("reading keys")? {
                    Some(row) => Some(Bytes::from(kv_value(row, 0, key)?)),
                    None => None,
                };
                out.push((Bytes::copy_from_slice(key), value));
            }
            Ok(out)
        })
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, EngineError> {
        let Some((lower, upper)) = scan_bounds(start, end, limit) else {
            return Ok(Vec::new());
        };
        let (lower, has_lower) = match lower {
            Bound::Included(b) | Bound::Excluded(b) => (b, 1),
            Bound::Unbounded => (&[][..], 0),
        };
        let (upper, has_upper) = match upper {
            Bound::Included(b) | Bound::Excluded(b) => (b, 1),
            Bound::Unbounded => (&[][..], 0),
        };
        let sql = SCANS[has_lower][has_upper][usize::from(forward)];
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(sql).ctx("scanning keys")?;
            // Every statement numbers its parameters up to ?3; unused bounds bind to nothing.
            let mut rows = stmt.query((lower, upper, sql_limit)).ctx("scanning keys")?;
            let mut out = Vec::with_capacity(limit.min(SCAN_PREALLOC));
            while let Some(row) = rows.next().ctx("scanning keys")? {
                let key: Vec<u8> = row.get(0).ctx("scanning keys")?;
                let value = kv_value(row, 1, &key)?;
                out.push((Bytes::from(key), Bytes::from(value)));
            }
            Ok(out)
        })
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        Ok(self.db.read(|conn| read_batch(conn, seq))?)
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        let oldest: Option<i64> = self.db.read(|conn| {
            conn.prepare_cached(OLDEST_BATCH)
                .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
                .ctx("reading the batch log")
        })?;
        oldest
            .map(|seq| u64::try_from(seq).map_err(|_| corrupted("a batch log seq is negative")))
            .transpose()
            .map_err(EngineError::from)
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        // Stored seqs fit in i64: a larger cutoff removes every entry.
        let (count_sql, prune_sql, cutoff) = match i64::try_from(cutoff_exclusive) {
            Ok(cutoff) => (COUNT_OLDER, PRUNE, Some(cutoff)),
            Err(_) => (COUNT_ALL, PRUNE_ALL, None),
        };
        let params = rusqlite::params_from_iter(cutoff);
        self.db.write(|conn| {
            let removed: i64 = conn
                .prepare_cached(count_sql)
                .and_then(|mut stmt| stmt.query_row(params.clone(), |r| r.get(0)))
                .ctx("pruning the batch log")?;
            if removed > 0 {
                conn.prepare_cached(prune_sql)
                    .and_then(|mut stmt| stmt.execute(params))
                    .ctx("pruning the batch log")?;
            }
            Ok(u64::try_from(removed).unwrap_or_default())
        })
    }
}
