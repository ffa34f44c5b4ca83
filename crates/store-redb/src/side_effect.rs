//! `SideEffectStore` on redb, with the shared replay checks and read cache: output slots in
//! `side_effect.outputs`, inter-call outputs in `side_effect.call_outputs`, inbound calls in
//! `side_effect.inbound`. Each write call is one write transaction that checks what is
//! stored and inserts what is new, so a rejected call writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, SideEffectStore, StorageError,
};
use store_kit::codec;
use store_kit::side_effect::{
    OutputCache, call_output_key, call_outputs_after, inbound_bounds, inbound_key, inbound_page,
    output_key, outputs_after, parse_call_output_key, parse_output_key, plan_call_output,
    plan_inbound, plan_outputs, short_inbound_key,
};

use crate::BACKEND_NAME;
use crate::db::{Context, Db, distinct_leading, get_with, list_page, read_table};
use crate::tables::{SIDE_EFFECT_CALL_OUTPUTS, SIDE_EFFECT_INBOUND, SIDE_EFFECT_OUTPUTS};

/// The side-effect store of a [`RedbBackend`](crate::RedbBackend).
///
/// Writes are serialized by redb (one write transaction at a time); reads run on MVCC
/// snapshots concurrently with them. `read_outputs` is served through an LRU cache filled
/// by reads of committed slots only, and the cache lock is never held across I/O.
#[derive(Debug)]
pub struct RedbSideEffects {
    db: Arc<Db>,
    cache: OutputCache,
}

fn decode_outputs(bytes: &[u8]) -> Result<EventOutputs, StorageError> {
    codec::decode(BACKEND_NAME, "side-effect outputs", bytes)
}

fn decode_call_output(bytes: &[u8]) -> Result<CallEventOutput, StorageError> {
    codec::decode(BACKEND_NAME, "inter-call output", bytes)
}

fn decode_inbound(bytes: &[u8]) -> Result<InboundInterCall, StorageError> {
    codec::decode(BACKEND_NAME, "inbound call", bytes)
}

impl RedbSideEffects {
    /// The store over `db`, with a read cache of `cache_size` slots.
    pub(crate) fn new(db: Arc<Db>, cache_size: usize) -> Self {
        RedbSideEffects {
            db,
            cache: OutputCache::new(cache_size),
        }
    }
}

impl SideEffectStore for RedbSideEffects {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        const CONTEXT: &str = "writing side-effect outputs";
        let txn = self.db.begin_write(CONTEXT)?;
        {
            let mut table = txn.table(SIDE_EFFECT_OUTPUTS, CONTEXT)?;
            let inserts = plan_outputs(outputs, |key| {
                get_with(&table, &output_key(key), CONTEXT, decode_outputs)
            })?;
            if inserts.is_empty() {
                return Ok(());
            }
            for (key, slot) in inserts {
                let value = codec::encode(BACKEND_NAME, "side-effect outputs", slot)?;
                table
                    .insert(output_key(key).as_slice(), value.as_slice())
                    .ctx(CONTEXT)?;
            }
        }
        txn.commit(CONTEXT)?;
        Ok(())
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        const CONTEXT: &str = "reading side-effect outputs";
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let found = {
            let txn = self.db.begin_read(CONTEXT)?;
            let table = read_table(&txn, SIDE_EFFECT_OUTPUTS, CONTEXT)?;
            get_with(&table, &output_key(key), CONTEXT, decode_outputs)?
        };
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
        const CONTEXT: &str = "writing an inter-call output";
        let stored_key = call_output_key(key);
        let txn = self.db.begin_write(CONTEXT)?;
        {
            let mut table = txn.table(SIDE_EFFECT_CALL_OUTPUTS, CONTEXT)?;
            let stored = get_with(&table, &stored_key, CONTEXT, decode_call_output)?;
            if !plan_call_output(key, output, stored)? {
                return Ok(());
            }
            let value = codec::encode(BACKEND_NAME, "inter-call output", output)?;
            table
                .insert(stored_key.as_slice(), value.as_slice())
                .ctx(CONTEXT)?;
        }
        txn.commit(CONTEXT)?;
        Ok(())
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        const CONTEXT: &str = "reading an inter-call output";
        let txn = self.db.begin_read(CONTEXT)?;
        let table = read_table(&txn, SIDE_EFFECT_CALL_OUTPUTS, CONTEXT)?;
        Ok(get_with(
            &table,
            &call_output_key(key),
            CONTEXT,
            decode_call_output,
        )?)
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        const CONTEXT: &str = "appending inbound calls";
        let txn = self.db.begin_write(CONTEXT)?;
        {
            let mut table = txn.table(SIDE_EFFECT_INBOUND, CONTEXT)?;
            let inserts = plan_inbound(records, |callee, order_key| {
                get_with(
                    &table,
                    &inbound_key(callee, order_key),
                    CONTEXT,
                    decode_inbound,
                )
            })?;
            if inserts.is_empty() {
                return Ok(());
            }
            for record in inserts {
                let value = codec::encode(BACKEND_NAME, "inbound call", record)?;
                table
                    .insert(
                        inbound_key(&record.callee, &record.order_key).as_slice(),
                        value.as_slice(),
                    )
                    .ctx(CONTEXT)?;
            }
        }
        txn.commit(CONTEXT)?;
        Ok(())
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: ChainPos,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        const CONTEXT: &str = "reading inbound calls";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read(CONTEXT)?;
        let table = read_table(&txn, SIDE_EFFECT_INBOUND, CONTEXT)?;
        let (lower, upper) = inbound_bounds(callee, from_exclusive);
        let calls = table
            .range::<&[u8]>((bound_ref(&lower), bound_ref(&upper)))
            .ctx(CONTEXT)?
            .map(|entry| {
                let (_, value) = entry.ctx(CONTEXT)?;
                decode_inbound(value.value())
            });
        Ok(inbound_page(calls, until_exclusive, limit)?)
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        let range = outputs_after(after);
        list_page(
            &self.db,
            SIDE_EFFECT_OUTPUTS,
            &range,
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
        let range = call_outputs_after(after);
        list_page(
            &self.db,
            SIDE_EFFECT_CALL_OUTPUTS,
            &range,
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
            SIDE_EFFECT_INBOUND,
            after.map(|callee| callee.0),
            limit,
            "listing inbound callees",
            || short_inbound_key(BACKEND_NAME),
        )?;
        Ok(callees.into_iter().map(LyquidId).collect())
    }
}

/// A borrowed view of an owned key bound.
fn bound_ref(bound: &std::ops::Bound<Vec<u8>>) -> std::ops::Bound<&[u8]> {
    match bound {
        std::ops::Bound::Included(key) => std::ops::Bound::Included(key.as_slice()),
        std::ops::Bound::Excluded(key) => std::ops::Bound::Excluded(key.as_slice()),
        std::ops::Bound::Unbounded => std::ops::Bound::Unbounded,
    }
}
