//! `StoreEngine` on the tables `engine_kv` (the data), `engine_batch_log` (one row per
//! mutation) and `engine_meta` (the sequence counter).
//!
//! A batch takes its number by incrementing the counter row inside its own transaction
//! (`UPDATE ... RETURNING`): the row stays locked until the commit, so writers on every
//! instance are serialized on it and the numbers are contiguous, in commit order, with no
//! gap (a rolled-back batch rolls its increment back too).

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use postgres::Transaction;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StoreEngine};
use store_kit::engine::{SCAN_PREALLOC, check_keys, check_put_batch, scan_bounds};

use crate::db::{Db, execute, get, query, query_opt};
use crate::{corrupted, seq_from_sql};

const NEXT_SEQUENCE: &str =
    "UPDATE engine_meta SET value = value + 1 WHERE key = 'sequence' RETURNING value";
const SEQUENCE: &str = "SELECT value FROM engine_meta WHERE key = 'sequence'";
const UPSERT: &str = "INSERT INTO engine_kv (key, value) \
                      SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM engine_kv WHERE key = ANY($1::bytea[])";
const LOG_PUTS: &str = "INSERT INTO engine_batch_log (seq, idx, op, key, value) \
                        SELECT $1, i - 1, 'put', k, v \
                        FROM unnest($2::bytea[], $3::bytea[]) WITH ORDINALITY AS t (k, v, i)";
const LOG_DELETES: &str = "INSERT INTO engine_batch_log (seq, idx, op, key, value) \
                           SELECT $1, i - 1, 'delete', k, NULL \
                           FROM unnest($2::bytea[]) WITH ORDINALITY AS t (k, i)";
const GET: &str = "SELECT value FROM engine_kv WHERE key = $1";
const GET_MANY: &str = "SELECT key, value FROM engine_kv WHERE key = ANY($1::bytea[])";
const GET_BATCH: &str = "SELECT op, key, value FROM engine_batch_log WHERE seq = $1 ORDER BY idx";
const OLDEST_BATCH: &str = "SELECT min(seq) FROM engine_batch_log";
const PRUNE: &str = "WITH pruned AS (DELETE FROM engine_batch_log WHERE seq < $1 RETURNING seq) \
                     SELECT count(DISTINCT seq) FROM pruned";

/// The engine store.
///
/// `current_sequence` reads the counter row (other instances write too); if the server
/// cannot answer, it returns the highest number this instance has seen.
pub struct PostgresEngine {
    db: Arc<Db>,
    seen: AtomicU64,
}

impl std::fmt::Debug for PostgresEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEngine")
            .field("seen", &self.seen.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl PostgresEngine {
    /// The engine store of `db`.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        PostgresEngine {
            db,
            seen: AtomicU64::new(0),
        }
    }

    fn saw(&self, seq: u64) {
        self.seen.fetch_max(seq, Ordering::AcqRel);
    }

    /// Writes one batch: takes the next number, then `apply` writes the data and the log
    /// rows of that batch.
    fn commit(
        &self,
        mut apply: impl FnMut(&mut Transaction<'_>, i64) -> Result<(), StorageError>,
    ) -> Result<u64, EngineError> {
        let seq = self.db.write(|tx| {
            let row = query_opt(tx, NEXT_SEQUENCE, &[], "numbering a batch")?
                .ok_or_else(|| corrupted("the engine sequence row is missing"))?;
            let seq: i64 = get(&row, 0, "numbering a batch")?;
            apply(tx, seq)?;
            Ok::<_, EngineError>(seq)
        })?;
        let seq = seq_from_sql(seq, "decoding the engine sequence")?;
        self.saw(seq);
        Ok(seq)
    }

    fn stored_sequence(&self) -> Result<u64, EngineError> {
        let seq = self.db.read(|conn| {
            let row = query_opt(conn, SEQUENCE, &[], "reading the engine sequence")?
                .ok_or_else(|| corrupted("the engine sequence row is missing"))?;
            Ok::<_, EngineError>(get::<i64>(&row, 0, "reading the engine sequence")?)
        })?;
        Ok(seq_from_sql(seq, "decoding the engine sequence")?)
    }
}

/// The pairs of a put batch with each key once, holding its last value (the order is
/// irrelevant: one statement writes them all).
fn last_wins<'a>(pairs: &[(&'a [u8], &'a [u8])]) -> (Vec<&'a [u8]>, Vec<&'a [u8]>) {
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(pairs.len());
    for (i, (key, _)) in pairs.iter().enumerate() {
        last.insert(key, i);
    }
    pairs
        .iter()
        .enumerate()
        .filter(|(i, (key, _))| last.get(key) == Some(i))
        .map(|(_, (key, value))| (*key, *value))
        .unzip()
}

fn decode_mutation(
    op: &str,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
) -> Result<Mutation, StorageError> {
    store_kit::sql::mutation_from_log_row(op, key, value)
        .ok_or_else(|| corrupted("decoding a batch log row"))
}

impl StoreEngine for PostgresEngine {
    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<u64, EngineError> {
        check_put_batch(pairs)?;
        if pairs.is_empty() {
            return Ok(self.current_sequence());
        }
        let (keys, values) = last_wins(pairs);
        let log_keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| *k).collect();
        let log_values: Vec<&[u8]> = pairs.iter().map(|(_, v)| *v).collect();
        self.commit(|tx, seq| {
            execute(tx, UPSERT, &[&keys, &values], "writing a batch")?;
            execute(
                tx,
                LOG_PUTS,
                &[&seq, &log_keys, &log_values],
                "logging a batch",
            )?;
            Ok(())
        })
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        self.commit(|tx, seq| {
            execute(tx, DELETE, &[&keys], "writing a batch")?;
            execute(tx, LOG_DELETES, &[&seq, &keys], "logging a batch")?;
            Ok(())
        })
    }

    fn current_sequence(&self) -> u64 {
        match self.stored_sequence() {
            Ok(seq) => {
                self.saw(seq);
                seq
            }
            Err(_) => self.seen.load(Ordering::Acquire),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        check_key(key)?;
        self.db.read(|conn| {
            let row = query_opt(conn, GET, &[&key], "reading a key")?;
            row.map(|row| Ok(Bytes::from(get::<Vec<u8>>(&row, 0, "reading a key")?)))
                .transpose()
        })
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<(Bytes, Option<Bytes>)>, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement: one snapshot for every key.
        let found: HashMap<Vec<u8>, Bytes> = self.db.read(|conn| {
            query(conn, GET_MANY, &[&keys], "reading keys")?
                .iter()
                .map(|row| {
                    Ok((
                        get::<Vec<u8>>(row, 0, "reading keys")?,
                        Bytes::from(get::<Vec<u8>>(row, 1, "reading keys")?),
                    ))
                })
                .collect::<Result<_, EngineError>>()
        })?;
        Ok(keys
            .iter()
            .map(|key| (Bytes::copy_from_slice(key), found.get(*key).cloned()))
            .collect())
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
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conditions = Vec::new();
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&limit_sql];
        let lower = match lower {
            Bound::Included(b) | Bound::Excluded(b) => Some(b),
            Bound::Unbounded => None,
        };
        let upper = match upper {
            Bound::Included(b) | Bound::Excluded(b) => Some(b),
            Bound::Unbounded => None,
        };
        if let Some(lower) = &lower {
            params.push(lower);
            conditions.push(format!("key >= ${}", params.len()));
        }
        if let Some(upper) = &upper {
            params.push(upper);
            conditions.push(format!("key <= ${}", params.len()));
        }
        let sql = format!(
            "SELECT key, value FROM engine_kv {} ORDER BY key {} LIMIT $1",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            },
            if forward { "ASC" } else { "DESC" }
        );
        self.db.read(|conn| {
            let rows = query(conn, &sql, &params, "scanning keys")?;
            let mut out = Vec::with_capacity(rows.len().min(SCAN_PREALLOC));
            for row in &rows {
                out.push((
                    Bytes::from(get::<Vec<u8>>(row, 0, "scanning keys")?),
                    Bytes::from(get::<Vec<u8>>(row, 1, "scanning keys")?),
                ));
            }
            Ok(out)
        })
    }

    fn get_batch(&self, seq: u64) -> Result<Option<Vec<Mutation>>, EngineError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        self.db.read(|conn| {
            const CTX: &str = "reading the batch log";
            let mut mutations = Vec::new();
            for row in query(conn, GET_BATCH, &[&seq], CTX)? {
                let op: String = get(&row, 0, CTX)?;
                mutations.push(decode_mutation(
                    &op,
                    get(&row, 1, CTX)?,
                    get(&row, 2, CTX)?,
                )?);
            }
            Ok((!mutations.is_empty()).then_some(mutations))
        })
    }

    fn oldest_retained_batch(&self) -> Result<Option<u64>, EngineError> {
        let oldest: Option<i64> = self.db.read(|conn| {
            let row = query_opt(conn, OLDEST_BATCH, &[], "reading the batch log")?;
            Ok::<_, EngineError>(match row {
                Some(row) => get(&row, 0, "reading the batch log")?,
                None => None,
            })
        })?;
        oldest
            .map(|seq| seq_from_sql(seq, "decoding a batch log seq"))
            .transpose()
            .map_err(EngineError::from)
    }

    fn prune_batch_log(&self, cutoff_exclusive: u64) -> Result<u64, EngineError> {
        // Stored seqs fit in i64: a larger cutoff removes every entry.
        let cutoff = i64::try_from(cutoff_exclusive).unwrap_or(i64::MAX);
        let removed: i64 = self.db.write(|tx| {
            let rows = query(tx, PRUNE, &[&cutoff], "pruning the batch log")?;
            let row = rows
                .first()
                .ok_or_else(|| corrupted("pruning the batch log returned no count"))?;
            Ok::<_, EngineError>(get(row, 0, "pruning the batch log")?)
        })?;
        Ok(u64::try_from(removed).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_wins_keeps_each_key_once_with_its_last_value() {
        let pairs: &[(&[u8], &[u8])] = &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")];
        let (keys, values) = last_wins(pairs);
        let mut got: Vec<(&[u8], &[u8])> = keys.into_iter().zip(values).collect();
        got.sort();
        assert_eq!(got, vec![(&b"a"[..], &b"3"[..]), (&b"b"[..], &b"2"[..])]);
    }
}
