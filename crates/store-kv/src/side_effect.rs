//! `SideEffectStore` on any [`KvStore`], with the shared replay checks and read cache of
//! [`store_kit::side_effect`]: output slots, inter-call outputs and inbound calls, each in
//! its own table. Each write call is one write transaction that checks what is stored and
//! puts what is new, so a rejected call writes nothing and a pure replay commits nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, SideEffectStore, StorageError,
};
use store_kit::codec;
use store_kit::side_effect::{
    InboundPage, OutputCache, call_output_key, call_outputs_after, inbound_bounds, inbound_key,
    output_key, outputs_after, parse_call_output_key, parse_output_key, plan_call_output,
    plan_inbound, plan_outputs, short_inbound_key,
};

use crate::listing::{distinct_leading, list_page};
use crate::{Commit, Direction, KvRead, KvStore, KvWrite, Visit};

/// The names of the side-effect tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideEffectTables {
    /// Output slots: `lyquid(20) pos:u128be kind(1)` → `EventOutputs`.
    pub outputs: &'static str,
    /// Inter-call outputs: `callee(20) pos:u128be inter_call_seq:u32be` → `Option<Bytes>`.
    pub call_outputs: &'static str,
    /// Inbound calls: `callee(20) order_pos:u128be order_seq:u32be` → `InboundInterCall`.
    pub inbound: &'static str,
}

/// The table names redb, LMDB and sled databases have always used.
pub const SIDE_EFFECT_TABLES: SideEffectTables = SideEffectTables {
    outputs: "side_effect.outputs",
    call_outputs: "side_effect.call_outputs",
    inbound: "side_effect.inbound",
};

impl SideEffectTables {
    /// Every table name.
    pub fn names(&self) -> [&'static str; 3] {
        [self.outputs, self.call_outputs, self.inbound]
    }
}

/// The side-effect store of a backend on the engine `K`.
///
/// Writes are serialized by the engine; reads run in read transactions. `read_outputs` is
/// served through an LRU cache filled by reads of committed slots only, and the cache lock
/// is never held across I/O.
pub struct KvSideEffects<K: KvStore> {
    outputs: K::Table,
    call_outputs: K::Table,
    inbound: K::Table,
    cache: OutputCache,
    /// Declared last: the tables are dropped before the engine handle, which may close
    /// its files only once no table handle is left (sled does).
    kv: Arc<K>,
}

impl<K: KvStore> std::fmt::Debug for KvSideEffects<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSideEffects")
            .field("backend", &K::NAME)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

fn decode_outputs<K: KvStore>(bytes: &[u8]) -> Result<EventOutputs, StorageError> {
    codec::decode(K::NAME, "side-effect outputs", bytes)
}

fn decode_call_output<K: KvStore>(bytes: &[u8]) -> Result<CallEventOutput, StorageError> {
    codec::decode(K::NAME, "inter-call output", bytes)
}

fn decode_inbound<K: KvStore>(bytes: &[u8]) -> Result<InboundInterCall, StorageError> {
    codec::decode(K::NAME, "inbound call", bytes)
}

impl<K: KvStore> KvSideEffects<K> {
    /// The store over `kv`, in the tables `tables` names, with a read cache of
    /// `cache_size` slots.
    pub fn open(
        kv: Arc<K>,
        tables: SideEffectTables,
        cache_size: usize,
    ) -> Result<Self, StorageError> {
        Ok(KvSideEffects {
            outputs: kv.table(tables.outputs)?,
            call_outputs: kv.table(tables.call_outputs)?,
            inbound: kv.table(tables.inbound)?,
            kv,
            cache: OutputCache::new(cache_size),
        })
    }
}

impl<K: KvStore> SideEffectStore for KvSideEffects<K> {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        self.kv
            .write(Commit::Backend, "writing side-effect outputs", |txn| {
                let inserts = plan_outputs(outputs, |key| {
                    txn.get(&self.outputs, &output_key(key), decode_outputs::<K>)
                })?;
                for (key, slot) in inserts {
                    let value = codec::encode(K::NAME, "side-effect outputs", slot)?;
                    txn.put(&self.outputs, &output_key(key), &value)?;
                }
                Ok(())
            })
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let found = self.kv.read("reading side-effect outputs", |txn| {
            txn.get(&self.outputs, &output_key(key), decode_outputs::<K>)
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
        let stored_key = call_output_key(key);
        self.kv
            .write(Commit::Backend, "writing an inter-call output", |txn| {
                let stored = txn.get(&self.call_outputs, &stored_key, decode_call_output::<K>)?;
                if plan_call_output(key, output, stored)? {
                    let value = codec::encode(K::NAME, "inter-call output", output)?;
                    txn.put(&self.call_outputs, &stored_key, &value)?;
                }
                Ok(())
            })
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        Ok(self.kv.read("reading an inter-call output", |txn| {
            txn.get(
                &self.call_outputs,
                &call_output_key(key),
                decode_call_output::<K>,
            )
        })?)
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        self.kv
            .write(Commit::Backend, "appending inbound calls", |txn| {
                let inserts = plan_inbound(records, |callee, order_key| {
                    txn.get(
                        &self.inbound,
                        &inbound_key(callee, order_key),
                        decode_inbound::<K>,
                    )
                })?;
                for record in inserts {
                    let value = codec::encode(K::NAME, "inbound call", record)?;
                    txn.put(
                        &self.inbound,
                        &inbound_key(&record.callee, &record.order_key),
                        &value,
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
        let (lower, upper) = inbound_bounds(callee, from_exclusive);
        let range = (
            lower.as_ref().map(Vec::as_slice),
            upper.as_ref().map(Vec::as_slice),
        );
        Ok(self.kv.read("reading inbound calls", |txn| {
            let mut page = InboundPage::new(until_exclusive, limit);
            txn.scan(&self.inbound, range, Direction::Forward, |_, value| {
                let wanted = page.push(decode_inbound::<K>(value)?);
                Ok::<_, StorageError>(if wanted {
                    Visit::Continue(())
                } else {
                    Visit::Break(())
                })
            })?;
            Ok::<_, StorageError>(page.finish())
        })?)
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        let range = outputs_after(after);
        Ok(self.kv.read("listing side-effect output keys", |txn| {
            list_page(txn, &self.outputs, &range, limit, |key, _| {
                parse_output_key(K::NAME, key)
            })
        })?)
    }

    fn list_inter_call_output_keys(
        &self,
        after: Option<&InterCallOutputKey>,
        limit: usize,
    ) -> Result<Vec<InterCallOutputKey>, SideEffectError> {
        let range = call_outputs_after(after);
        Ok(self.kv.read("listing inter-call output keys", |txn| {
            list_page(txn, &self.call_outputs, &range, limit, |key, _| {
                parse_call_output_key(K::NAME, key)
            })
        })?)
    }

    fn list_inbound_callees(
        &self,
        after: Option<&LyquidId>,
        limit: usize,
    ) -> Result<Vec<LyquidId>, SideEffectError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let callees = self.kv.read("listing inbound callees", |txn| {
            distinct_leading(
                txn,
                &self.inbound,
                after.map(|callee| callee.0),
                limit,
                || short_inbound_key(K::NAME),
            )
        })?;
        Ok(callees.into_iter().map(LyquidId).collect())
    }
}
