//! `SideEffectStore` on the `side_effect_*` tables, with the shared replay checks and read
//! cache.
//!
//! A slot is a row of `side_effect_outputs` holding its payloads as a `bytea[]` in order
//! (an empty array for a slot with no payload). An inter-call output is a row of
//! `side_effect_call_outputs` whose `output` is `NULL` for a call completed without
//! payload. Inbound calls are rows of `side_effect_inbound` keyed by `(callee, order_pos,
//! order_seq)`, which is their queue order.
//!
//! Every write checks what is stored, then inserts what is new, in one transaction. When
//! two instances insert the same key at once, the second fails with a unique violation;
//! the backend retries it, and the retry finds the first one's row and checks it as a
//! replay (accepted when equal, a conflict otherwise). Stored records never change, so the
//! read cache never holds a stale one.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCall,
    InterCallOutputKey, LyquidId, SideEffectError, SideEffectKey, SideEffectStore, StorageError,
};
use store_kit::side_effect::{
    OutputCache, inbound_page, plan_call_output, plan_inbound, plan_outputs,
};
use store_kit::sql;

use crate::corrupted;
use crate::db::{Db, Sql, execute, get, query, query_opt};

const SLOT: &str =
    "SELECT payloads FROM side_effect_outputs WHERE lyquid = $1 AND pos = $2 AND kind = $3";
const INSERT_SLOT: &str =
    "INSERT INTO side_effect_outputs (lyquid, pos, kind, payloads) VALUES ($1, $2, $3, $4)";
const CALL_OUTPUT: &str = "SELECT output FROM side_effect_call_outputs \
                           WHERE callee = $1 AND pos = $2 AND inter_call_seq = $3";
const INSERT_CALL_OUTPUT: &str = "INSERT INTO side_effect_call_outputs \
                                  (callee, pos, inter_call_seq, output) VALUES ($1, $2, $3, $4)";
const INBOUND: &str = "SELECT caller, call_pos, payload FROM side_effect_inbound \
                       WHERE callee = $1 AND order_pos = $2 AND order_seq = $3";
const INSERT_INBOUND: &str = "INSERT INTO side_effect_inbound \
                              (callee, order_pos, order_seq, caller, call_pos, payload) \
                              VALUES ($1, $2, $3, $4, $5, $6)";
const INBOUND_PAGE_FROM: &str = "SELECT order_pos, order_seq, caller, call_pos, payload \
                                 FROM side_effect_inbound \
                                 WHERE callee = $1 AND (order_pos, order_seq) > ($2, $3) \
                                 AND ($4::bytea IS NULL OR call_pos < $4) ORDER BY order_pos, order_seq LIMIT $5";
const INBOUND_PAGE_ALL: &str = "SELECT order_pos, order_seq, caller, call_pos, payload \
                                FROM side_effect_inbound \
                                WHERE callee = $1 AND ($2::bytea IS NULL OR call_pos < $2) \
                                ORDER BY order_pos, order_seq LIMIT $3";

/// A slot kind's place in [`SideEffectKey`]'s order: its
/// [`tag`](store_api::SideEffectKind::tag) (event, call, timer), not the names' alphabetical
/// order.
macro_rules! kind_rank {
    () => {
        "CASE kind WHEN 'event' THEN 0 WHEN 'call' THEN 1 ELSE 2 END"
    };
}
/// Output keys after the cursor `($1, $2, $3)` (lyquid, position, kind rank; `('', '',
/// -1)` lists from the first: ids and positions are never empty), at most `$4`. Walks the
/// primary key `(lyquid, pos, kind)` from the cursor's row; the few kinds of one position
/// are put in rank order by an incremental sort.
pub(crate) const LIST_OUTPUT_KEYS: &str = concat!(
    "SELECT lyquid, pos, kind FROM side_effect_outputs \
     WHERE (lyquid, pos) >= ($1, $2) AND NOT (lyquid = $1 AND pos = $2 AND ",
    kind_rank!(),
    " <= $3) ORDER BY lyquid, pos, ",
    kind_rank!(),
    " LIMIT $4"
);
/// Inter-call output keys after the cursor `($1, $2, $3)` (`('', '', -1)` lists from the
/// first), at most `$4`, in primary key order.
pub(crate) const LIST_CALL_OUTPUT_KEYS: &str = "SELECT callee, pos, inter_call_seq \
                                     FROM side_effect_call_outputs \
                                     WHERE (callee, pos, inter_call_seq) > ($1, $2, $3) \
                                     ORDER BY callee, pos, inter_call_seq LIMIT $4";
/// The callees after `$1` (`''` lists from the first), each once, at most `$2`: a skip
/// scan of the primary key, one index probe per callee listed whatever its queue holds
/// (a recursive query the server evaluates only as far as the limit asks).
pub(crate) const LIST_CALLEES: &str = "WITH RECURSIVE callees (callee) AS ( \
         (SELECT callee FROM side_effect_inbound WHERE callee > $1 ORDER BY callee LIMIT 1) \
         UNION ALL \
         SELECT (SELECT i.callee FROM side_effect_inbound AS i WHERE i.callee > c.callee \
                 ORDER BY i.callee LIMIT 1) \
         FROM callees AS c WHERE c.callee IS NOT NULL) \
     SELECT callee FROM callees WHERE callee IS NOT NULL LIMIT $2";

/// The side-effect store.
pub struct PostgresSideEffects {
    db: Arc<Db>,
    cache: OutputCache,
}

impl std::fmt::Debug for PostgresSideEffects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSideEffects")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// A chain position as stored ([`sql::chain_pos_bytes`]), as a `bytea` parameter.
fn pos_bytes(pos: ChainPos) -> Vec<u8> {
    sql::chain_pos_bytes(pos).to_vec()
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

fn read_slot(
    client: &mut impl Sql,
    key: &SideEffectKey,
) -> Result<Option<EventOutputs>, StorageError> {
    const CTX: &str = "reading side-effect outputs";
    let row = query_opt(
        client,
        SLOT,
        &[
            &&key.lyquid.0[..],
            &pos_bytes(key.pos),
            &sql::side_effect_kind_name(key.kind),
        ],
        CTX,
    )?;
    row.map(|row| {
        let payloads: Vec<Vec<u8>> = get(&row, 0, CTX)?;
        Ok(EventOutputs(
            payloads.into_iter().map(Bytes::from).collect(),
        ))
    })
    .transpose()
}

fn read_call_output(
    client: &mut impl Sql,
    key: &InterCallOutputKey,
) -> Result<Option<CallEventOutput>, StorageError> {
    const CTX: &str = "reading an inter-call output";
    let row = query_opt(
        client,
        CALL_OUTPUT,
        &[
            &&key.callee.0[..],
            &pos_bytes(key.pos),
            &i64::from(key.inter_call_seq),
        ],
        CTX,
    )?;
    row.map(|row| Ok(get::<Option<Vec<u8>>>(&row, 0, CTX)?.map(Bytes::from)))
        .transpose()
}

fn read_inbound(
    client: &mut impl Sql,
    callee: &LyquidId,
    order_key: &CallOrderKey,
) -> Result<Option<InboundInterCall>, StorageError> {
    const CTX: &str = "reading an inbound call";
    let row = query_opt(
        client,
        INBOUND,
        &[
            &&callee.0[..],
            &pos_bytes(order_key.pos),
            &i64::from(order_key.seq),
        ],
        CTX,
    )?;
    row.map(|row| {
        Ok(InboundInterCall {
            callee: *callee,
            order_key: *order_key,
            call: InterCall {
                caller: lyquid_from(get(&row, 0, CTX)?)?,
                pos: pos_from(get(&row, 1, CTX)?)?,
                payload: Bytes::from(get::<Vec<u8>>(&row, 2, CTX)?),
            },
        })
    })
    .transpose()
}

impl PostgresSideEffects {
    /// The side-effect store of `db`, with a read cache of `cache_size` slots.
    pub(crate) fn new(db: Arc<Db>, cache_size: usize) -> Self {
        PostgresSideEffects {
            db,
            cache: OutputCache::new(cache_size),
        }
    }
}

impl SideEffectStore for PostgresSideEffects {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        if outputs.is_empty() {
            return Ok(());
        }
        self.db.write(|tx| {
            let inserts = plan_outputs(outputs, |key| read_slot(tx, key))?;
            for (key, slot) in inserts {
                let payloads: Vec<&[u8]> = slot.0.iter().map(|p| p.as_ref()).collect();
                execute(
                    tx,
                    INSERT_SLOT,
                    &[
                        &&key.lyquid.0[..],
                        &pos_bytes(key.pos),
                        &sql::side_effect_kind_name(key.kind),
                        &payloads,
                    ],
                    "writing side-effect outputs",
                )?;
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
        let found = self
            .db
            .read(|conn| Ok::<_, SideEffectError>(read_slot(conn, key)?))?;
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
        self.db.write(|tx| {
            if plan_call_output(key, output, read_call_output(tx, key)?)? {
                execute(
                    tx,
                    INSERT_CALL_OUTPUT,
                    &[
                        &&key.callee.0[..],
                        &pos_bytes(key.pos),
                        &i64::from(key.inter_call_seq),
                        &output.as_deref(),
                    ],
                    "writing an inter-call output",
                )?;
            }
            Ok(())
        })
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        self.db
            .read(|conn| Ok::<_, SideEffectError>(read_call_output(conn, key)?))
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        if records.is_empty() {
            return Ok(());
        }
        self.db.write(|tx| {
            let inserts = plan_inbound(records, |callee, order_key| {
                read_inbound(tx, callee, order_key)
            })?;
            for r in inserts {
                execute(
                    tx,
                    INSERT_INBOUND,
                    &[
                        &&r.callee.0[..],
                        &pos_bytes(r.order_key.pos),
                        &i64::from(r.order_key.seq),
                        &&r.call.caller.0[..],
                        &pos_bytes(r.call.pos),
                        &r.call.payload.as_ref(),
                    ],
                    "writing inbound calls",
                )?;
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
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let callee_bytes = &callee.0[..];
        let until = until_exclusive.map(pos_bytes);
        let from = from_exclusive.map(|f| (pos_bytes(f.pos), i64::from(f.seq)));
        self.db.read(|conn| {
            let rows = match &from {
                Some((pos, seq)) => query(
                    conn,
                    INBOUND_PAGE_FROM,
                    &[&callee_bytes, pos, seq, &until, &sql_limit],
                    CTX,
                )?,
                None => query(
                    conn,
                    INBOUND_PAGE_ALL,
                    &[&callee_bytes, &until, &sql_limit],
                    CTX,
                )?,
            };
            let calls = rows.iter().map(|row| {
                Ok(InboundInterCall {
                    callee: *callee,
                    order_key: CallOrderKey {
                        pos: pos_from(get(row, 0, CTX)?)?,
                        seq: seq_from(get(row, 1, CTX)?)?,
                    },
                    call: InterCall {
                        caller: lyquid_from(get(row, 2, CTX)?)?,
                        pos: pos_from(get(row, 3, CTX)?)?,
                        payload: Bytes::from(get::<Vec<u8>>(row, 4, CTX)?),
                    },
                })
            });
            Ok::<_, SideEffectError>(inbound_page::<StorageError>(calls, until_exclusive, limit)?)
        })
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        const CTX: &str = "listing side-effect output keys";
        let (lyquid, pos, rank) = match after {
            Some(key) => (
                key.lyquid.0.to_vec(),
                pos_bytes(key.pos),
                i32::from(key.kind.tag()),
            ),
            None => (Vec::new(), Vec::new(), -1),
        };
        self.db.list(
            LIST_OUTPUT_KEYS,
            &[&lyquid, &pos, &rank],
            limit,
            CTX,
            |row| {
                Ok(SideEffectKey {
                    lyquid: lyquid_from(get(row, 0, CTX)?)?,
                    pos: pos_from(get(row, 1, CTX)?)?,
                    kind: sql::side_effect_kind_from_name(&get::<String>(row, 2, CTX)?)
                        .ok_or_else(|| corrupted("decoding a side-effect kind"))?,
                })
            },
        )
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        const CTX: &str = "listing inter-call output keys";
        let (callee, pos, seq) = match after {
            Some(key) => (
                key.callee.0.to_vec(),
                pos_bytes(key.pos),
                i64::from(key.inter_call_seq),
            ),
            None => (Vec::new(), Vec::new(), -1),
        };
        self.db.list(
            LIST_CALL_OUTPUT_KEYS,
            &[&callee, &pos, &seq],
            limit,
            CTX,
            |row| {
                Ok(InterCallOutputKey {
                    callee: lyquid_from(get(row, 0, CTX)?)?,
                    pos: pos_from(get(row, 1, CTX)?)?,
                    inter_call_seq: seq_from(get(row, 2, CTX)?)?,
                })
            },
        )
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        const CTX: &str = "listing inbound callees";
        let after: &[u8] = after.map_or(&[], |callee| &callee.0[..]);
        self.db.list(LIST_CALLEES, &[&after], limit, CTX, |row| {
            lyquid_from(get(row, 0, CTX)?)
        })
    }
}
