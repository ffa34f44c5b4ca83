//! `StoreEngine` on the tables `engine_kv` (the data), `engine_batch_log` (one row per
//! mutation) and `engine_meta` (the sequence counter).
//!
//! A batch takes its number by incrementing the counter row inside its own transaction
//! (`UPDATE ... RETURNING`): the row stays locked until the commit, so writers on every
//! instance are serialized on it and the numbers are contiguous, in commit order, with no
//! gap (a rolled-back batch rolls its increment back too). `apply_batch` locks the same
//! row (`SELECT ... FOR UPDATE`) and decides against the counter and the log inside that
//! transaction (§3.7). The same statement that numbers a batch sends its commit
//! notification (the `commits` module), which wakes `wait_for_sequence` on every
//! instance once the batch commits.
//!
//! A batch without deletes (every `put_batch`) is one statement ([`PUT_BATCH`]) that
//! numbers, writes and logs it and commits on its own: one round trip. `get` is one
//! statement outside any transaction: one round trip.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use store_api::limits::check_key;
use store_api::{EngineError, Mutation, StorageError, StoreEngine};
use store_kit::engine::{SCAN_PREALLOC, check_keys, check_mutations, check_put_batch, scan_bounds};
use store_kit::replication::{ApplyDecision, check_apply_input, decide_apply};
use store_kit::sql::{LOG_DELETE, LOG_PUT};

use crate::commits::{CommitChannel, Listeners};
use crate::db::{Db, Sql, Tx, execute, get, query, query_opt};
use crate::{corrupted, seq_from_sql, seq_to_sql};

/// Takes the next number and notifies it on channel `$1` with payload `$2 || number`
/// (delivered only if the transaction commits).
const NEXT_SEQUENCE: &str = "UPDATE engine_meta SET value = value + 1 WHERE key = 'sequence' \
                             RETURNING value, pg_notify($1::text, $2::text || value::text)";
/// Locks the counter row until the transaction ends, for `apply_batch` to decide on.
const LOCK_SEQUENCE: &str = "SELECT value FROM engine_meta WHERE key = 'sequence' FOR UPDATE";
/// Sets the counter to the applied batch's number `$3` and notifies it like
/// [`NEXT_SEQUENCE`].
const SET_SEQUENCE: &str = "UPDATE engine_meta SET value = $3 WHERE key = 'sequence' \
                            RETURNING value, pg_notify($1::text, $2::text || value::text)";
const SEQUENCE: &str = "SELECT value FROM engine_meta WHERE key = 'sequence'";
const UPSERT: &str = "INSERT INTO engine_kv (key, value) \
                      SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM engine_kv WHERE key = ANY($1::bytea[])";
/// The log rows of batch `$1`, one per mutation in the order given: `op`, key and value
/// (`NULL` for a delete) at the same place of `$2`, `$3` and `$4`.
const LOG: &str = "INSERT INTO engine_batch_log (seq, idx, op, key, value) \
                   SELECT $1, i - 1, op, k, v \
                   FROM unnest($2::text[], $3::bytea[], $4::bytea[]) WITH ORDINALITY \
                   AS t (op, k, v, i)";
/// A whole batch without deletes in one statement, which commits on its own: takes the
/// next number and notifies it like [`NEXT_SEQUENCE`] (`$1`, `$2`), upserts the pairs of
/// `$3` and `$4`, and logs the mutations like [`LOG`] (`$5`, `$6`, `$7`); returns the
/// number. The writes join the numbering row, so they run after it is locked: a writer
/// that waited for another's number writes after that one committed. The upsert sees
/// every committed row whatever the statement's snapshot (`ON CONFLICT` under
/// `READ COMMITTED`), so the last batch to write a key wins; a delete would not (it
/// sees only its snapshot), so a batch with deletes takes the transaction path.
const PUT_BATCH: &str = "WITH n AS (UPDATE engine_meta SET value = value + 1 \
                         WHERE key = 'sequence' \
                         RETURNING value, pg_notify($1::text, $2::text || value::text)), \
                         up AS (INSERT INTO engine_kv (key, value) SELECT t.k, t.v \
                         FROM n, unnest($3::bytea[], $4::bytea[]) AS t (k, v) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value), \
                         lg AS (INSERT INTO engine_batch_log (seq, idx, op, key, value) \
                         SELECT n.value, t.i - 1, t.op, t.k, t.v \
                         FROM n, unnest($5::text[], $6::bytea[], $7::bytea[]) \
                         WITH ORDINALITY AS t (op, k, v, i)) \
                         SELECT value FROM n";
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
    listeners: Listeners,
}

impl std::fmt::Debug for PostgresEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEngine")
            .field("seen", &self.seen.load(Ordering::Acquire))
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

/// The number a batch is committed under.
#[derive(Clone, Copy)]
enum Numbering<'a> {
    /// The next one (`put_batch`, `delete_batch`, `write_batch`).
    Next,
    /// The leader's (`apply_batch`): decided against the counter and the log inside the
    /// transaction.
    Leader(u64, &'a [Mutation]),
}

/// What a batch's write transaction did.
enum Outcome {
    /// The batch was written under this number.
    Written(u64),
    /// The batch was already applied, logged identically: nothing was written.
    AlreadyApplied(u64),
}

/// The rows one batch writes: each key it touches once, upserted with its last value or
/// deleted when its last mutation is a delete (so the last mutation of a key wins, and one
/// statement writes each kind), and one log row per mutation, in the order given.
#[derive(Debug, Default, PartialEq)]
struct BatchRows<'a> {
    put_keys: Vec<&'a [u8]>,
    put_values: Vec<&'a [u8]>,
    delete_keys: Vec<&'a [u8]>,
    log_ops: Vec<&'static str>,
    log_keys: Vec<&'a [u8]>,
    log_values: Vec<Option<&'a [u8]>>,
}

impl<'a> BatchRows<'a> {
    /// The rows of a batch whose mutations are `(key, Some(value))` for a put and
    /// `(key, None)` for a delete, in order.
    fn of(mutations: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> Self {
        let mut rows = BatchRows::default();
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(mutations.len());
        for (i, (key, value)) in mutations.enumerate() {
            last.insert(key, i);
            rows.log_ops
                .push(if value.is_some() { LOG_PUT } else { LOG_DELETE });
            rows.log_keys.push(key);
            rows.log_values.push(value);
        }
        for (i, (key, value)) in rows.log_keys.iter().zip(&rows.log_values).enumerate() {
            if last.get(key) != Some(&i) {
                continue;
            }
            match value {
                Some(value) => {
                    rows.put_keys.push(key);
                    rows.put_values.push(value);
                }
                None => rows.delete_keys.push(key),
            }
        }
        rows
    }

    /// The rows of a mixed batch.
    fn of_mutations(mutations: &'a [Mutation]) -> Self {
        Self::of(mutations.iter().map(|mutation| match mutation {
            Mutation::Put { key, value } => (key.as_ref(), Some(value.as_ref())),
            Mutation::Delete { key } => (key.as_ref(), None),
        }))
    }

    /// Writes the data and the log rows of batch `seq`.
    fn write(&self, tx: &mut Tx<'_>, seq: i64) -> Result<(), StorageError> {
        if !self.put_keys.is_empty() {
            execute(
                tx,
                UPSERT,
                &[&self.put_keys, &self.put_values],
                "writing a batch",
            )?;
        }
        if !self.delete_keys.is_empty() {
            execute(tx, DELETE, &[&self.delete_keys], "writing a batch")?;
        }
        execute(
            tx,
            LOG,
            &[&seq, &self.log_ops, &self.log_keys, &self.log_values],
            "logging a batch",
        )?;
        Ok(())
    }
}

/// The counter row's value, read on `client`.
pub(crate) fn read_sequence(client: &mut impl Sql) -> Result<u64, StorageError> {
    read_counter(client, SEQUENCE, &[])
}

/// The counter value the first row of `sql` holds in its first column.
fn read_counter(
    client: &mut impl Sql,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<u64, StorageError> {
    const CTX: &str = "reading the engine sequence";
    let row = query_opt(client, sql, params, CTX)?
        .ok_or_else(|| corrupted("the engine sequence row is missing"))?;
    seq_from_sql(get(&row, 0, CTX)?, "decoding the engine sequence")
}

/// The logged mutations of batch `seq`, read on `client`; `None` when pruned or never
/// written.
fn read_batch(client: &mut impl Sql, seq: u64) -> Result<Option<Vec<Mutation>>, StorageError> {
    // Stored numbers fit in a bigint: a larger one was never written.
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    const CTX: &str = "reading the batch log";
    let mut mutations = Vec::new();
    for row in query(client, GET_BATCH, &[&seq], CTX)? {
        let op: String = get(&row, 0, CTX)?;
        mutations.push(decode_mutation(
            &op,
            get(&row, 1, CTX)?,
            get(&row, 2, CTX)?,
        )?);
    }
    Ok((!mutations.is_empty()).then_some(mutations))
}

impl PostgresEngine {
    /// Drops the idle listening connections; the backend closed (its waiters see the
    /// closed gate when its close notifies them).
    pub(crate) fn close(&self) {
        self.listeners.close();
    }

    /// The name of the channel this store's commits are notified on.
    pub(crate) fn channel_name(&self) -> &str {
        self.listeners.channel().name()
    }

    /// The engine store of `db`.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        let channel = CommitChannel::of_schema(db.location().schema());
        PostgresEngine {
            db,
            seen: AtomicU64::new(0),
            listeners: Listeners::new(channel),
        }
    }

    fn saw(&self, seq: u64) {
        self.seen.fetch_max(seq, Ordering::AcqRel);
    }

    /// Writes one batch: takes its number (and sends its commit notification), then
    /// writes `rows` under it. Under [`Numbering::Leader`] the batch may turn out applied
    /// already: then nothing is written, nobody is notified, and its number is returned.
    fn commit(&self, numbering: Numbering<'_>, rows: &BatchRows<'_>) -> Result<u64, EngineError> {
        let channel = self.listeners.channel();
        let notify = [channel.name(), channel.payload_prefix()];
        if matches!(numbering, Numbering::Next) && rows.delete_keys.is_empty() {
            // One round trip: the statement is its own transaction.
            let seq = self.db.write_statement(PUT_BATCH, |conn| {
                Ok::<_, EngineError>(read_counter(
                    conn,
                    PUT_BATCH,
                    &[
                        &notify[0],
                        &notify[1],
                        &rows.put_keys,
                        &rows.put_values,
                        &rows.log_ops,
                        &rows.log_keys,
                        &rows.log_values,
                    ],
                )?)
            })?;
            self.saw(seq);
            return Ok(seq);
        }
        let outcome = self.db.write(|tx| {
            let seq = match numbering {
                Numbering::Next => read_counter(tx, NEXT_SEQUENCE, &[&notify[0], &notify[1]])?,
                Numbering::Leader(seq, mutations) => {
                    let current = read_counter(tx, LOCK_SEQUENCE, &[])?;
                    let logged = |seq| Ok(read_batch(tx, seq)?);
                    if decide_apply(current, seq, mutations, logged)?
                        == ApplyDecision::AlreadyApplied
                    {
                        return Ok(Outcome::AlreadyApplied(seq));
                    }
                    read_counter(
                        tx,
                        SET_SEQUENCE,
                        &[&notify[0], &notify[1], &seq_to_sql(seq)?],
                    )?
                }
            };
            rows.write(tx, seq_to_sql(seq)?)?;
            Ok::<_, EngineError>(Outcome::Written(seq))
        })?;
        match outcome {
            Outcome::Written(seq) => {
                self.saw(seq);
                Ok(seq)
            }
            Outcome::AlreadyApplied(seq) => Ok(seq),
        }
    }

    fn stored_sequence(&self) -> Result<u64, EngineError> {
        self.db
            .read(|conn| Ok::<_, EngineError>(read_sequence(conn)?))
    }
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
        let rows = BatchRows::of(pairs.iter().map(|(key, value)| (*key, Some(*value))));
        self.commit(Numbering::Next, &rows)
    }

    fn delete_batch(&self, keys: &[&[u8]]) -> Result<u64, EngineError> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(self.current_sequence());
        }
        let rows = BatchRows::of(keys.iter().map(|key| (*key, None)));
        self.commit(Numbering::Next, &rows)
    }

    fn write_batch(&self, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_mutations(mutations)?;
        if mutations.is_empty() {
            return Ok(self.current_sequence());
        }
        self.commit(Numbering::Next, &BatchRows::of_mutations(mutations))
    }

    fn apply_batch(&self, seq: u64, mutations: &[Mutation]) -> Result<u64, EngineError> {
        check_apply_input(seq, mutations)?;
        let rows = BatchRows::of_mutations(mutations);
        self.commit(Numbering::Leader(seq, mutations), &rows)
    }

    /// Reads the counter; when no later batch is there yet, listens for commit
    /// notifications on a connection of its own (the `commits` module), so a batch
    /// committed by any instance, in any process, wakes it. Fails with
    /// [`StorageErrorKind::Unavailable`](store_api::StorageErrorKind::Unavailable) when the
    /// server cannot be reached or the waiting connection breaks.
    fn wait_for_sequence(&self, after: u64, timeout: Duration) -> Result<u64, EngineError> {
        let current = self.stored_sequence()?;
        self.saw(current);
        if current > after || timeout.is_zero() {
            return Ok(current);
        }
        // A timeout too large for the clock waits without limit.
        let deadline = Instant::now().checked_add(timeout);
        let seq = self.listeners.wait(&self.db, after, deadline)?;
        self.saw(seq);
        Ok(seq)
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
        self.db
            .read(|conn| Ok::<_, EngineError>(read_batch(conn, seq)?))
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
    fn batch_rows_keep_each_key_once_with_its_last_mutation_and_log_every_one() {
        let rows = BatchRows::of(
            [
                (&b"a"[..], Some(&b"1"[..])),
                (b"b", Some(b"2")),
                (b"a", None),
                (b"c", None),
                (b"c", Some(b"3")),
                (b"b", Some(b"4")),
            ]
            .into_iter(),
        );
        let mut puts: Vec<(&[u8], &[u8])> = rows
            .put_keys
            .iter()
            .copied()
            .zip(rows.put_values.iter().copied())
            .collect();
        puts.sort();
        assert_eq!(puts, vec![(&b"b"[..], &b"4"[..]), (&b"c"[..], &b"3"[..])]);
        assert_eq!(rows.delete_keys, vec![&b"a"[..]]);
        assert_eq!(
            rows.log_ops,
            vec![LOG_PUT, LOG_PUT, LOG_DELETE, LOG_DELETE, LOG_PUT, LOG_PUT]
        );
        assert_eq!(rows.log_keys, vec![&b"a"[..], b"b", b"a", b"c", b"c", b"b"]);
        assert_eq!(
            rows.log_values,
            vec![
                Some(&b"1"[..]),
                Some(b"2"),
                None,
                None,
                Some(b"3"),
                Some(b"4")
            ]
        );
    }
}
