//! `SideEffectStore` on three sled trees, with the shared replay checks and read cache.
//!
//! Each write call touches one tree, so it is one sled [`Batch`] (atomic, also across a
//! crash). Writers are serialized by a mutex: the replay checks read the stored slots and
//! the batch is applied with no other writer in between. Scans of the inbound queue hold a
//! read lock that batch commits exclude, so they never see half of an append.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sled::{Batch, Tree};
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, SideEffectStore, StorageError,
};
use store_kit::codec::{decode, encode};
use store_kit::side_effect::{
    OutputCache, call_output_key, call_outputs_after, inbound_bounds, inbound_key, inbound_page,
    output_key, outputs_after, parse_call_output_key, parse_output_key, plan_call_output,
    plan_inbound, plan_outputs, short_inbound_key,
};

use crate::listing::{distinct_leading, list_page};
use crate::{BACKEND_NAME, Shared, storage_error, trees};

/// The side-effect store of a [`SledBackend`](crate::SledBackend).
pub struct SledSideEffects {
    outputs: Tree,
    call_outputs: Tree,
    inbound: Tree,
    /// Serializes writers: checks and writes of one call see no other writer.
    writer: Mutex<()>,
    /// Held exclusively while a batch commits; inbound scans hold it shared.
    visible: RwLock<()>,
    cache: OutputCache,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SledSideEffects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledSideEffects")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl SledSideEffects {
    pub(crate) fn open(shared: Arc<Shared>, cache_size: usize) -> Result<Self, StorageError> {
        Ok(SledSideEffects {
            outputs: shared.tree(trees::SIDE_EFFECT_OUTPUTS)?,
            call_outputs: shared.tree(trees::SIDE_EFFECT_CALL_OUTPUTS)?,
            inbound: shared.tree(trees::SIDE_EFFECT_INBOUND)?,
            writer: Mutex::new(()),
            visible: RwLock::new(()),
            cache: OutputCache::new(cache_size),
            shared,
        })
    }

    fn stored_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, StorageError> {
        match self
            .outputs
            .get(output_key(key))
            .map_err(|e| storage_error("reading side-effect outputs", e))?
        {
            None => Ok(None),
            Some(stored) => decode(BACKEND_NAME, "side-effect outputs", &stored).map(Some),
        }
    }

    fn stored_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, StorageError> {
        match self
            .call_outputs
            .get(call_output_key(key))
            .map_err(|e| storage_error("reading an inter-call output", e))?
        {
            None => Ok(None),
            Some(stored) => decode(BACKEND_NAME, "inter-call output", &stored).map(Some),
        }
    }

    fn stored_inbound(
        &self,
        callee: &LyquidId,
        order_key: &CallOrderKey,
    ) -> Result<Option<InboundInterCall>, StorageError> {
        match self
            .inbound
            .get(inbound_key(callee, order_key))
            .map_err(|e| storage_error("reading an inbound call", e))?
        {
            None => Ok(None),
            Some(stored) => decode(BACKEND_NAME, "inbound call", &stored).map(Some),
        }
    }

    /// Applies `batch` to `tree` as one atomic step, then makes it durable.
    fn commit(&self, tree: &Tree, batch: Batch, context: &'static str) -> Result<(), StorageError> {
        {
            let _visible = self.visible.write();
            tree.apply_batch(batch)
                .map_err(|e| self.shared.poisoning(storage_error(context, e)))?;
        }
        self.shared.sync(context)
    }
}

impl SideEffectStore for SledSideEffects {
    fn write_outputs(
        &self,
        outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    ) -> Result<(), SideEffectError> {
        let _writer = self.writer.lock();
        self.shared.writable()?;
        let inserts = plan_outputs(outputs, |key| self.stored_outputs(key))?;
        if inserts.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for (key, slot) in inserts {
            batch.insert(
                output_key(key),
                encode(BACKEND_NAME, "side-effect outputs", slot)?,
            );
        }
        self.commit(&self.outputs, batch, "writing side-effect outputs")?;
        Ok(())
    }

    fn read_outputs(&self, key: &SideEffectKey) -> Result<Option<EventOutputs>, SideEffectError> {
        self.shared.readable()?;
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let found = self.stored_outputs(key)?;
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
        let _writer = self.writer.lock();
        self.shared.writable()?;
        if plan_call_output(key, output, self.stored_call_output(key)?)? {
            let mut batch = Batch::default();
            batch.insert(
                call_output_key(key),
                encode(BACKEND_NAME, "inter-call output", output)?,
            );
            self.commit(&self.call_outputs, batch, "writing an inter-call output")?;
        }
        Ok(())
    }

    fn read_inter_call_output(
        &self,
        key: &InterCallOutputKey,
    ) -> Result<Option<CallEventOutput>, SideEffectError> {
        self.shared.readable()?;
        Ok(self.stored_call_output(key)?)
    }

    fn append_inbound_inter_calls(
        &self,
        records: &[InboundInterCall],
    ) -> Result<(), SideEffectError> {
        let _writer = self.writer.lock();
        self.shared.writable()?;
        let inserts = plan_inbound(records, |callee, order_key| {
            self.stored_inbound(callee, order_key)
        })?;
        if inserts.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for record in inserts {
            batch.insert(
                inbound_key(&record.callee, &record.order_key),
                encode(BACKEND_NAME, "inbound call", record)?,
            );
        }
        self.commit(&self.inbound, batch, "appending inbound calls")?;
        Ok(())
    }

    fn read_inbound_inter_calls(
        &self,
        callee: &LyquidId,
        from_exclusive: Option<&CallOrderKey>,
        until_exclusive: ChainPos,
        limit: usize,
    ) -> Result<Vec<InboundInterCall>, SideEffectError> {
        self.shared.readable()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let _visible = self.visible.read();
        let calls = self
            .inbound
            .range::<Vec<u8>, _>(inbound_bounds(callee, from_exclusive))
            .map(|row| {
                let (_, stored) = row.map_err(|e| storage_error("scanning inbound calls", e))?;
                decode::<InboundInterCall>(BACKEND_NAME, "inbound call", &stored)
            });
        Ok(inbound_page(calls, until_exclusive, limit)?)
    }

    fn list_output_keys(
        &self,
        after: Option<&SideEffectKey>,
        limit: usize,
    ) -> Result<Vec<SideEffectKey>, SideEffectError> {
        let _visible = self.visible.read();
        list_page(
            &self.outputs,
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
        let _visible = self.visible.read();
        list_page(
            &self.call_outputs,
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
        let _visible = self.visible.read();
        let callees = distinct_leading(
            &self.inbound,
            after.map(|callee| callee.0),
            limit,
            "listing inbound callees",
            || short_inbound_key(BACKEND_NAME),
        )?;
        Ok(callees.into_iter().map(LyquidId).collect())
    }
}
