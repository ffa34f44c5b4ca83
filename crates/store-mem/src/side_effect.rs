//! `SideEffectStore` on in-memory ordered maps (so listings are range reads), with the
//! shared replay checks and read cache.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, SideEffectStore,
};
use store_kit::listing::distinct;
use store_kit::side_effect::{
    OutputCache, inbound_page, plan_call_output, plan_inbound, plan_outputs,
};

/// The greatest order key: every call of a callee sorts at or before it.
const LAST_ORDER_KEY: CallOrderKey = CallOrderKey {
    pos: ChainPos(u128::MAX),
    seq: u32::MAX,
};

/// The in-memory side-effect store.
#[derive(Debug)]
pub struct MemSideEffects {
    tables: RwLock<Tables>,
    cache: OutputCache,
}

#[derive(Debug, Default)]
struct Tables {
    outputs: BTreeMap<SideEffectKey, EventOutputs>,
    call_outputs: BTreeMap<InterCallOutputKey, CallEventOutput>,
    inbound: BTreeMap<(LyquidId, CallOrderKey), InboundInterCall>,
}

impl MemSideEffects {
    /// An empty store whose read cache holds `cache_size` slots.
    pub fn new(cache_size: usize) -> Self {
        MemSideEffects {
            tables: RwLock::new(Tables::default()),
            cache: OutputCache::new(cache_size),
        }
    }
}

impl SideEffectStore for MemSideEffects {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        let mut tables = self.tables.write();
        let inserts = plan_outputs(outputs, |k| Ok(tables.outputs.get(k).cloned()))?;
        for (key, slot) in inserts {
            tables.outputs.insert(*key, slot.clone());
        }
        Ok(())
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let found = self.tables.read().outputs.get(key).cloned();
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
        let mut tables = self.tables.write();
        if plan_call_output(key, output, tables.call_outputs.get(key).cloned())? {
            tables.call_outputs.insert(*key, output.clone());
        }
        Ok(())
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        Ok(self.tables.read().call_outputs.get(key).cloned())
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        let mut tables = self.tables.write();
        let inserts = plan_inbound(records, |callee, order_key| {
            Ok(tables.inbound.get(&(*callee, *order_key)).cloned())
        })?;
        for record in inserts {
            tables
                .inbound
                .insert((record.callee, record.order_key), record.clone());
        }
        Ok(())
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: Option<ChainPos>,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        let tables = self.tables.read();
        let lower = match from_exclusive {
            Some(from) => Bound::Excluded((*callee, *from)),
            None => Bound::Included((*callee, CallOrderKey::default())),
        };
        let upper = Bound::Included((*callee, LAST_ORDER_KEY));
        let calls = tables
            .inbound
            .range((lower, upper))
            .map(|(_, r)| Ok::<_, SideEffectError>(r.clone()));
        inbound_page(calls, until_exclusive, limit)
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .tables
            .read()
            .outputs
            .range((lower, Bound::Unbounded))
            .map(|(key, _)| *key)
            .take(limit)
            .collect())
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .tables
            .read()
            .call_outputs
            .range((lower, Bound::Unbounded))
            .map(|(key, _)| *key)
            .take(limit)
            .collect())
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        let tables = self.tables.read();
        distinct(after.copied(), limit, |last| {
            let lower = match last {
                Some(callee) => Bound::Excluded((*callee, LAST_ORDER_KEY)),
                None => Bound::Unbounded,
            };
            Ok(tables
                .inbound
                .range((lower, Bound::Unbounded))
                .next()
                .map(|((callee, _), _)| *callee))
        })
    }
}
