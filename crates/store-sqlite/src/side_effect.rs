//! `SideEffectStore` on the `side_effect_*` tables, with the shared replay checks and read
//! cache.
//!
//! A slot is a row of `side_effect_outputs` (its payload count) plus one row of
//! `side_effect_output_payloads` per payload, so a slot with no payload still exists.
//! An inter-call output is a row of `side_effect_call_outputs` whose `output` is `NULL`
//! for a call completed without payload. Inbound calls are rows of `side_effect_inbound`
//! keyed by `(callee, order_pos, order_seq)`, which is their queue order.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCall,
    InterCallOutputKey, LyquidId, SideEffectError, SideEffectKey, SideEffectStore, StorageError,
};
use store_kit::side_effect::{
    OutputCache, inbound_page, plan_call_output, plan_inbound, plan_outputs, short_inbound_key,
};
use store_kit::sql;

use crate::db::Db;
use crate::{
    BACKEND_NAME, SqlContext, corrupted, crc, distinct_ids, limit_to_sql, query_page, verify_crc,
};
use store_kit::checksum::{Fields, mismatch};

const PAYLOADS: &str = "side_effect_output_payloads";
const CALL_OUTPUTS: &str = "side_effect_call_outputs";
const INBOUND_CALLS: &str = "side_effect_inbound";

/// The checksum key of payload `idx` of a slot.
fn payload_key(lyquid: &[u8], pos: &[u8], kind: &str, idx: i64) -> Fields {
    Fields::new()
        .bytes(lyquid)
        .bytes(pos)
        .bytes(kind.as_bytes())
        .int(idx)
}

/// The checksum key of an inter-call output.
fn call_output_key(key: &InterCallOutputKey) -> Fields {
    Fields::new()
        .bytes(&key.callee.0)
        .bytes(&sql::chain_pos_bytes(key.pos))
        .int(i64::from(key.inter_call_seq))
}

/// The checksum key of an inbound call, its queue position.
fn inbound_key(callee: &[u8], order_pos: &[u8], order_seq: i64) -> Fields {
    Fields::new().bytes(callee).bytes(order_pos).int(order_seq)
}

/// The checksummed value of an inbound call: the caller, its position and the payload.
fn inbound_value(caller: &[u8], call_pos: &[u8], payload: &[u8]) -> Fields {
    Fields::new().bytes(caller).bytes(call_pos).bytes(payload)
}

const SLOT: &str =
    "SELECT payload_count FROM side_effect_outputs WHERE lyquid = ?1 AND pos = ?2 AND kind = ?3";
const SLOT_PAYLOADS: &str = "SELECT payload, idx, crc FROM side_effect_output_payloads \
                             WHERE lyquid = ?1 AND pos = ?2 AND kind = ?3 ORDER BY idx";
const INSERT_SLOT: &str = "INSERT INTO side_effect_outputs (lyquid, pos, kind, payload_count) \
                           VALUES (?1, ?2, ?3, ?4)";
const INSERT_PAYLOAD: &str = "INSERT INTO side_effect_output_payloads \
                              (lyquid, pos, kind, idx, payload, crc) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const CALL_OUTPUT: &str = "SELECT output, crc FROM side_effect_call_outputs \
                           WHERE callee = ?1 AND pos = ?2 AND inter_call_seq = ?3";
const INSERT_CALL_OUTPUT: &str = "INSERT INTO side_effect_call_outputs \
                                  (callee, pos, inter_call_seq, output, crc) \
                                  VALUES (?1, ?2, ?3, ?4, ?5)";
const INBOUND: &str = "SELECT caller, call_pos, payload, crc FROM side_effect_inbound \
                       WHERE callee = ?1 AND order_pos = ?2 AND order_seq = ?3";
const INSERT_INBOUND: &str = "INSERT INTO side_effect_inbound \
                              (callee, order_pos, order_seq, caller, call_pos, payload, crc) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/// Inbound pages bind `?1` callee, `?2`/`?3` the exclusive start (unused when reading from
/// the first call), `?4` the `call_pos` bound and `?5` the limit.
const INBOUND_PAGE_FROM: &str = "SELECT order_pos, order_seq, caller, call_pos, payload, crc \
                                 FROM side_effect_inbound \
                                 WHERE callee = ?1 AND (order_pos, order_seq) > (?2, ?3) \
                                 AND (?4 IS NULL OR call_pos < ?4) ORDER BY order_pos, order_seq LIMIT ?5";
const INBOUND_PAGE_ALL: &str = "SELECT order_pos, order_seq, caller, call_pos, payload, crc \
                                FROM side_effect_inbound \
                                WHERE callee = ?1 AND (?4 IS NULL OR call_pos < ?4) \
                                ORDER BY order_pos, order_seq LIMIT ?5";
/// The rank of a `kind` column in [`SideEffectKind`]'s order (event, call, timer), the
/// order of output keys; the text itself would sort `call` first.
macro_rules! kind_rank {
    () => {
        "CASE kind WHEN 'event' THEN 0 WHEN 'call' THEN 1 ELSE 2 END"
    };
}
/// Output keys after the cursor `(?1, ?2, ?3)` (lyquid, position, kind rank; `(x'', x'',
/// -1)` lists from the first: ids and positions are never empty), at most `?4`.
const LIST_OUTPUT_KEYS: &str = concat!(
    "SELECT lyquid, pos, kind FROM side_effect_outputs \
     WHERE (lyquid, pos) >= (?1, ?2) AND NOT (lyquid = ?1 AND pos = ?2 AND ",
    kind_rank!(),
    " <= ?3) ORDER BY lyquid, pos, ",
    kind_rank!(),
    " LIMIT ?4"
);
/// Inter-call output keys after the cursor `(?1, ?2, ?3)` (`(x'', x'', -1)` lists from the
/// first), at most `?4`.
const LIST_CALL_OUTPUT_KEYS: &str = "SELECT callee, pos, inter_call_seq \
                                     FROM side_effect_call_outputs \
                                     WHERE (callee, pos, inter_call_seq) > (?1, ?2, ?3) \
                                     ORDER BY callee, pos, inter_call_seq LIMIT ?4";
/// The first callee at or after `?1` (one seek of the primary key): a step of the skip scan
/// that lists callees.
const CALLEE_FROM: &str = "SELECT min(callee) FROM side_effect_inbound WHERE callee >= ?1";

/// The side-effect store.
pub struct SqliteSideEffects {
    db: Arc<Db>,
    cache: OutputCache,
}

impl std::fmt::Debug for SqliteSideEffects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSideEffects")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

fn pos_from(bytes: Vec<u8>) -> Result<ChainPos, StorageError> {
    sql::chain_pos_from_bytes(&bytes).ok_or_else(|| corrupted("decoding a chain position"))
}

fn lyquid_from(bytes: Vec<u8>) -> Result<LyquidId, StorageError> {
    sql::lyquid_from_bytes(&bytes).ok_or_else(|| corrupted("decoding a lyquid id"))
}

fn seq_from(n: i64) -> Result<u32, StorageError> {
    u32::try_from(n).map_err(|_| corrupted("decoding a call sequence number"))
}

fn read_slot(conn: &Connection, key: &SideEffectKey) -> Result<Option<EventOutputs>, StorageError> {
    const CTX: &str = "reading side-effect outputs";
    let params = (
        key.lyquid.0,
        sql::chain_pos_bytes(key.pos),
        sql::side_effect_kind_name(key.kind),
    );
    let count: Option<i64> = conn
        .prepare_cached(SLOT)
        .and_then(|mut stmt| stmt.query_row(params, |r| r.get(0)).optional())
        .ctx(CTX)?;
    let Some(count) = count else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(SLOT_PAYLOADS).ctx(CTX)?;
    let mut rows = stmt.query(params).ctx(CTX)?;
    let mut payloads = Vec::new();
    while let Some(row) = rows.next().ctx(CTX)? {
        let id = payload_key(&params.0, &params.1, params.2, row.get(1).ctx(CTX)?);
        let payload: Vec<u8> = row
            .get(0)
            .map_err(|_| mismatch(BACKEND_NAME, PAYLOADS, id.as_slice()))?;
        verify_crc(row, 2, PAYLOADS, id.as_slice(), &payload)?;
        payloads.push(Bytes::from(payload));
    }
    if i64::try_from(payloads.len()) != Ok(count) {
        return Err(corrupted("a side-effect slot is missing payloads"));
    }
    Ok(Some(EventOutputs(payloads)))
}

fn read_call_output(
    conn: &Connection,
    key: &InterCallOutputKey,
) -> Result<Option<CallEventOutput>, StorageError> {
    const CTX: &str = "reading an inter-call output";
    let mut stmt = conn.prepare_cached(CALL_OUTPUT).ctx(CTX)?;
    let mut rows = stmt
        .query((
            key.callee.0,
            sql::chain_pos_bytes(key.pos),
            i64::from(key.inter_call_seq),
        ))
        .ctx(CTX)?;
    let Some(row) = rows.next().ctx(CTX)? else {
        return Ok(None);
    };
    let id = call_output_key(key);
    let output: Option<Vec<u8>> = row
        .get(0)
        .map_err(|_| mismatch(BACKEND_NAME, CALL_OUTPUTS, id.as_slice()))?;
    let value = Fields::new().opt_bytes(output.as_deref());
    verify_crc(row, 1, CALL_OUTPUTS, id.as_slice(), value.as_slice())?;
    Ok(Some(output.map(Bytes::from)))
}

fn read_inbound(
    conn: &Connection,
    callee: &LyquidId,
    order_key: &CallOrderKey,
) -> Result<Option<InboundInterCall>, StorageError> {
    const CTX: &str = "reading an inbound call";
    let order_pos = sql::chain_pos_bytes(order_key.pos);
    let order_seq = i64::from(order_key.seq);
    let mut stmt = conn.prepare_cached(INBOUND).ctx(CTX)?;
    let mut rows = stmt.query((callee.0, order_pos, order_seq)).ctx(CTX)?;
    let Some(row) = rows.next().ctx(CTX)? else {
        return Ok(None);
    };
    let call = inbound_call(row, 0, &inbound_key(&callee.0, &order_pos, order_seq))?;
    Ok(Some(InboundInterCall {
        callee: *callee,
        order_key: *order_key,
        call,
    }))
}

/// The call of an inbound row whose columns `caller, call_pos, payload, crc` start at
/// `first`, verified against its checksum key `id`.
fn inbound_call(
    row: &rusqlite::Row<'_>,
    first: usize,
    id: &Fields,
) -> Result<InterCall, StorageError> {
    let damaged = |_| mismatch(BACKEND_NAME, INBOUND_CALLS, id.as_slice());
    let caller: Vec<u8> = row.get(first).map_err(damaged)?;
    let pos: Vec<u8> = row.get(first + 1).map_err(damaged)?;
    let payload: Vec<u8> = row.get(first + 2).map_err(damaged)?;
    let value = inbound_value(&caller, &pos, &payload);
    verify_crc(
        row,
        first + 3,
        INBOUND_CALLS,
        id.as_slice(),
        value.as_slice(),
    )?;
    Ok(InterCall {
        caller: lyquid_from(caller)?,
        pos: pos_from(pos)?,
        payload: Bytes::from(payload),
    })
}

impl SqliteSideEffects {
    /// The side-effect store of `db`, with a read cache of `cache_size` slots.
    pub(crate) fn new(db: Arc<Db>, cache_size: usize) -> Self {
        SqliteSideEffects {
            db,
            cache: OutputCache::new(cache_size),
        }
    }
}

impl SideEffectStore for SqliteSideEffects {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        if outputs.is_empty() {
            return Ok(());
        }
        self.db.write(|conn| {
            let inserts = plan_outputs(outputs, |key| read_slot(conn, key))?;
            const CTX: &str = "writing side-effect outputs";
            let mut slot = conn.prepare_cached(INSERT_SLOT).ctx(CTX)?;
            let mut payload = conn.prepare_cached(INSERT_PAYLOAD).ctx(CTX)?;
            for (key, outputs) in inserts {
                let pos = sql::chain_pos_bytes(key.pos);
                let kind = sql::side_effect_kind_name(key.kind);
                let count = i64::try_from(outputs.0.len()).unwrap_or(i64::MAX);
                slot.execute((key.lyquid.0, pos, kind, count)).ctx(CTX)?;
                for (idx, bytes) in outputs.0.iter().enumerate() {
                    let id = payload_key(&key.lyquid.0, &pos, kind, idx as i64);
                    let sum = crc(PAYLOADS, id.as_slice(), bytes);
                    payload
                        .execute((key.lyquid.0, pos, kind, idx as i64, bytes.as_ref(), sum))
                        .ctx(CTX)?;
                }
            }
            Ok::<_, SideEffectError>(())
        })?;
        // Committed: every slot of the call now holds exactly these outputs.
        for (key, slot) in outputs {
            self.cache.insert(*key, slot.clone());
        }
        Ok(())
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let found = self.db.read_tx(|conn| read_slot(conn, key))?;
        if let Some(slot) = &found {
            self.cache.insert(*key, slot.clone());
        }
        Ok(found)
    }

    fn upsert_inter_call_output(
        &self,
        key: &InterCallOutputKey,
        output: &CallEventOutput,
    ) -> Result<(), SideEffectError> {
        self.db.write(|conn| {
            if plan_call_output(key, output, read_call_output(conn, key)?)? {
                conn.prepare_cached(INSERT_CALL_OUTPUT)
                    .and_then(|mut stmt| {
                        let value = Fields::new().opt_bytes(output.as_deref());
                        let sum = crc(
                            CALL_OUTPUTS,
                            call_output_key(key).as_slice(),
                            value.as_slice(),
                        );
                        stmt.execute((
                            key.callee.0,
                            sql::chain_pos_bytes(key.pos),
                            i64::from(key.inter_call_seq),
                            output.as_deref(),
                            sum,
                        ))
                    })
                    .ctx("writing an inter-call output")?;
            }
            Ok(())
        })
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        Ok(self.db.read(|conn| read_call_output(conn, key))?)
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        if records.is_empty() {
            return Ok(());
        }
        self.db.write(|conn| {
            let inserts = plan_inbound(records, |callee, order_key| {
                read_inbound(conn, callee, order_key)
            })?;
            const CTX: &str = "writing inbound calls";
            let mut stmt = conn.prepare_cached(INSERT_INBOUND).ctx(CTX)?;
            for r in inserts {
                let order_pos = sql::chain_pos_bytes(r.order_key.pos);
                let order_seq = i64::from(r.order_key.seq);
                let call_pos = sql::chain_pos_bytes(r.call.pos);
                let id = inbound_key(&r.callee.0, &order_pos, order_seq);
                let value = inbound_value(&r.call.caller.0, &call_pos, &r.call.payload);
                let sum = crc(INBOUND_CALLS, id.as_slice(), value.as_slice());
                stmt.execute((
                    r.callee.0,
                    order_pos,
                    order_seq,
                    r.call.caller.0,
                    call_pos,
                    r.call.payload.as_ref(),
                    sum,
                ))
                .ctx(CTX)?;
            }
            Ok(())
        })
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: Option<ChainPos>,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        const CTX: &str = "reading inbound calls";
        let (sql, from_pos, from_seq) = match from_exclusive {
            Some(from) => (
                INBOUND_PAGE_FROM,
                Some(sql::chain_pos_bytes(from.pos)),
                Some(i64::from(from.seq)),
            ),
            None => (INBOUND_PAGE_ALL, None, None),
        };
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(sql).ctx(CTX)?;
            let mut rows = stmt
                .query((
                    callee.0,
                    from_pos,
                    from_seq,
                    until_exclusive.map(sql::chain_pos_bytes),
                    sql_limit,
                ))
                .ctx(CTX)?;
            let calls = std::iter::from_fn(|| match rows.next() {
                Ok(Some(row)) => Some((|| {
                    let order_pos: Vec<u8> = row.get(0).ctx(CTX)?;
                    let order_seq: i64 = row.get(1).ctx(CTX)?;
                    let id = inbound_key(&callee.0, &order_pos, order_seq);
                    let call = inbound_call(row, 2, &id)?;
                    Ok(InboundInterCall {
                        callee: *callee,
                        order_key: CallOrderKey {
                            pos: pos_from(order_pos)?,
                            seq: seq_from(order_seq)?,
                        },
                        call,
                    })
                })()),
                Ok(None) => None,
                Err(e) => Some(Err(crate::sql_error(CTX, e))),
            });
            inbound_page::<StorageError>(calls, until_exclusive, limit)
        })?)
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        const CTX: &str = "listing side-effect output keys";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (lyquid, pos, rank) = match after {
            Some(key) => (
                key.lyquid.0.to_vec(),
                sql::chain_pos_bytes(key.pos).to_vec(),
                i64::from(key.kind.tag()),
            ),
            None => (Vec::new(), Vec::new(), -1),
        };
        let params = (lyquid, pos, rank, limit_to_sql(limit));
        self.db.read(|conn| {
            query_page(conn, LIST_OUTPUT_KEYS, params, CTX, |row| {
                Ok(SideEffectKey {
                    lyquid: lyquid_from(row.get(0).ctx(CTX)?)?,
                    pos: pos_from(row.get(1).ctx(CTX)?)?,
                    kind: sql::side_effect_kind_from_name(&row.get::<_, String>(2).ctx(CTX)?)
                        .ok_or_else(|| corrupted("decoding a side-effect kind"))?,
                })
            })
        })
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        const CTX: &str = "listing inter-call output keys";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (callee, pos, seq) = match after {
            Some(key) => (
                key.callee.0.to_vec(),
                sql::chain_pos_bytes(key.pos).to_vec(),
                i64::from(key.inter_call_seq),
            ),
            None => (Vec::new(), Vec::new(), -1),
        };
        let params = (callee, pos, seq, limit_to_sql(limit));
        self.db.read(|conn| {
            query_page(conn, LIST_CALL_OUTPUT_KEYS, params, CTX, |row| {
                Ok(InterCallOutputKey {
                    callee: lyquid_from(row.get(0).ctx(CTX)?)?,
                    pos: pos_from(row.get(1).ctx(CTX)?)?,
                    inter_call_seq: seq_from(row.get(2).ctx(CTX)?)?,
                })
            })
        })
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        let callees = distinct_ids(
            &self.db,
            CALLEE_FROM,
            after.map(|callee| callee.0),
            limit,
            "listing inbound callees",
            || short_inbound_key(BACKEND_NAME),
        )?;
        Ok(callees.into_iter().map(LyquidId).collect())
    }
}
