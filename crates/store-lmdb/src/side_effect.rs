//! `SideEffectStore` on three LMDB databases: `side_effect.outputs` (slot key →
//! `EventOutputs`), `side_effect.call_outputs` (inter-call key → `Option<Bytes>`) and
//! `side_effect.inbound` (callee and order key → `InboundInterCall`), with the keys of
//! [`store_kit::side_effect`] and `postcard` records. Replay checks are the shared
//! planners'; reads of outputs go through the shared LRU cache.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, SideEffectStore,
};
use store_kit::codec::{decode, encode};
use store_kit::side_effect::{
    OutputCache, call_output_key, call_outputs_after, inbound_bounds, inbound_key, inbound_page,
    output_key, outputs_after, parse_call_output_key, parse_output_key, plan_call_output,
    plan_inbound, plan_outputs, short_inbound_key,
};

use crate::listing::{distinct_leading, list_page};
use crate::tables::{Abort, Db};
use crate::{BACKEND_NAME, HeedExt};

/// The LMDB side-effect store.
#[derive(Debug)]
pub struct LmdbSideEffects {
    db: Arc<Db>,
    cache: OutputCache,
}

impl LmdbSideEffects {
    /// The side-effect store of `db`, with a read cache of `cache_size` slots.
    pub(crate) fn new(db: Arc<Db>, cache_size: usize) -> Self {
        LmdbSideEffects {
            db,
            cache: OutputCache::new(cache_size),
        }
    }
}

impl SideEffectStore for LmdbSideEffects {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        const WHAT: &str = "writing side-effect outputs";
        self.db.write(WHAT, |txn, t| {
            let inserts = plan_outputs(outputs, |key| {
                match t.side_effect_outputs.get(txn, &output_key(key)).ctx(WHAT)? {
                    Some(bytes) => decode(BACKEND_NAME, "side-effect outputs", bytes).map(Some),
                    None => Ok(None),
                }
            })
            .map_err(Abort::Fail)?;
            for (key, slot) in inserts {
                let bytes = encode(BACKEND_NAME, "side-effect outputs", slot)?;
                t.side_effect_outputs.put(txn, &output_key(key), &bytes)?;
            }
            Ok(())
        })
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        const WHAT: &str = "reading side-effect outputs";
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let found: Option<EventOutputs> = self.db.read(WHAT, |txn, t| {
            match t.side_effect_outputs.get(txn, &output_key(key)).ctx(WHAT)? {
                Some(bytes) => Ok::<_, SideEffectError>(Some(decode(
                    BACKEND_NAME,
                    "side-effect outputs",
                    bytes,
                )?)),
                None => Ok(None),
            }
        })?;
        // The read transaction has ended: the cache lock is never held across I/O.
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
        const WHAT: &str = "writing an inter-call output";
        let stored_key = call_output_key(key);
        self.db.write(WHAT, |txn, t| {
            let stored: Option<CallEventOutput> =
                match t.side_effect_call_outputs.get(txn, &stored_key).ctx(WHAT)? {
                    Some(bytes) => Some(decode(BACKEND_NAME, "inter-call output", bytes)?),
                    None => None,
                };
            if plan_call_output(key, output, stored).map_err(Abort::Fail)? {
                let bytes = encode(BACKEND_NAME, "inter-call output", output)?;
                t.side_effect_call_outputs.put(txn, &stored_key, &bytes)?;
            }
            Ok(())
        })
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        const WHAT: &str = "reading an inter-call output";
        self.db.read(WHAT, |txn, t| {
            match t
                .side_effect_call_outputs
                .get(txn, &call_output_key(key))
                .ctx(WHAT)?
            {
                Some(bytes) => Ok(Some(decode(BACKEND_NAME, "inter-call output", bytes)?)),
                None => Ok(None),
            }
        })
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        const WHAT: &str = "appending inbound calls";
        self.db.write(WHAT, |txn, t| {
            let inserts = plan_inbound(records, |callee, order_key| {
                match t
                    .side_effect_inbound
                    .get(txn, &inbound_key(callee, order_key))
                    .ctx(WHAT)?
                {
                    Some(bytes) => decode(BACKEND_NAME, "inbound call", bytes).map(Some),
                    None => Ok(None),
                }
            })
            .map_err(Abort::Fail)?;
            for record in inserts {
                let bytes = encode(BACKEND_NAME, "inbound call", record)?;
                t.side_effect_inbound.put(
                    txn,
                    &inbound_key(&record.callee, &record.order_key),
                    &bytes,
                )?;
            }
            Ok(())
        })
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: ChainPos,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        const WHAT: &str = "reading inbound calls";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (lower, upper) = inbound_bounds(callee, from_exclusive);
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            lower.as_ref().map(Vec::as_slice),
            upper.as_ref().map(Vec::as_slice),
        );
        self.db.read(WHAT, |txn, t| {
            let calls = t
                .side_effect_inbound
                .range(txn, &bounds)
                .ctx(WHAT)?
                .map(|row| {
                    let (_, bytes) = row.ctx(WHAT)?;
                    Ok::<InboundInterCall, SideEffectError>(decode(
                        BACKEND_NAME,
                        "inbound call",
                        bytes,
                    )?)
                });
            inbound_page(calls, until_exclusive, limit)
        })
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        list_page(
            &self.db,
            |t| t.side_effect_outputs,
            &outputs_after(after),
            limit,
            "listing side-effect output keys",
            |key, _| parse_output_key(BACKEND_NAME, key),
        )
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        list_page(
            &self.db,
            |t| t.side_effect_call_outputs,
            &call_outputs_after(after),
            limit,
            "listing inter-call output keys",
            |key, _| parse_call_output_key(BACKEND_NAME, key),
        )
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        let callees = distinct_leading(
            &self.db,
            |t| t.side_effect_inbound,
            after.map(|callee| callee.0),
            limit,
            "listing inbound callees",
            || short_inbound_key(BACKEND_NAME),
        )?;
        Ok(callees.into_iter().map(LyquidId).collect())
    }
}
