//! Side-effect migration: every output slot, inter-call output and inbound call queue the
//! source lists (or those of the Lyquids the plan names).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCall,
    InterCallOutputKey, LyquidId, SideEffectKey, SideEffectKind, SideEffectStore,
};

use super::compare::Sink;
use super::error::MigrateError;
use super::progress::{Phase, Progress, Step};
use super::report::{CopySummary, Counts, StoreKind};
use super::{PAGE, Plan, paged};
use crate::stores::Stores;

/// What the walk and the copy count, in report order.
const COUNTED: [&str; 4] = [
    "output slots",
    "inter-call outputs",
    "callees",
    "inbound calls",
];

fn selected(plan: &Plan, lyquid: &LyquidId) -> bool {
    plan.callees.is_empty() || plan.callees.contains(lyquid)
}

/// The selected output slot keys, ascending.
fn output_keys<'a>(
    store: &'a dyn SideEffectStore,
    plan: &'a Plan,
) -> impl Iterator<Item = Result<SideEffectKey, MigrateError>> + 'a {
    paged(
        move |after: Option<&SideEffectKey>, limit| {
            store.list_output_keys(after, limit).map_err(Into::into)
        },
        |key: &SideEffectKey| *key,
    )
    .filter(move |key| key.as_ref().map_or(true, |key| selected(plan, &key.lyquid)))
}

/// The selected inter-call output keys, ascending.
fn inter_call_output_keys<'a>(
    store: &'a dyn SideEffectStore,
    plan: &'a Plan,
) -> impl Iterator<Item = Result<InterCallOutputKey, MigrateError>> + 'a {
    paged(
        move |after: Option<&InterCallOutputKey>, limit| {
            store
                .list_inter_call_output_keys(after, limit)
                .map_err(Into::into)
        },
        |key: &InterCallOutputKey| *key,
    )
    .filter(move |key| key.as_ref().map_or(true, |key| selected(plan, &key.callee)))
}

/// The selected callees with inbound calls, ascending.
fn callees<'a>(
    store: &'a dyn SideEffectStore,
    plan: &'a Plan,
) -> impl Iterator<Item = Result<LyquidId, MigrateError>> + 'a {
    paged(
        move |after: Option<&LyquidId>, limit| {
            store.list_inbound_callees(after, limit).map_err(Into::into)
        },
        |callee: &LyquidId| *callee,
    )
    .filter(move |callee| {
        callee
            .as_ref()
            .map_or(true, |callee| selected(plan, callee))
    })
}

/// The inbound calls of `callee`, ascending by order key, a page at a time.
fn inbound_pages<'a>(
    store: &'a dyn SideEffectStore,
    callee: &'a LyquidId,
) -> impl Iterator<Item = Result<Vec<InboundInterCall>, MigrateError>> + 'a {
    let mut after: Option<CallOrderKey> = None;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match store.read_inbound_inter_calls(callee, after.as_ref(), None, PAGE) {
            Ok(page) => {
                done = page.len() < PAGE;
                after = page.last().map(|call| call.order_key);
                (!page.is_empty()).then_some(Ok(page))
            }
            Err(e) => {
                done = true;
                Some(Err(e.into()))
            }
        }
    })
}

/// What the side-effect store holds, when it holds anything: a destination must not.
pub(super) fn holds(stores: &Stores) -> Result<Option<String>, MigrateError> {
    let store = stores.side_effects();
    if let Some(key) = store.list_output_keys(None, 1)?.first() {
        return Ok(Some(format!("output slot {key:?} and maybe more")));
    }
    if let Some(key) = store.list_inter_call_output_keys(None, 1)?.first() {
        return Ok(Some(format!("inter-call output {key:?} and maybe more")));
    }
    Ok(store
        .list_inbound_callees(None, 1)?
        .first()
        .map(|callee| format!("inbound calls of {callee} and maybe more")))
}

/// The Lyquid just below `lyquid` in byte order; `None` for the smallest.
fn predecessor(lyquid: &LyquidId) -> Option<LyquidId> {
    let mut bytes = lyquid.0;
    for byte in bytes.iter_mut().rev() {
        if *byte > 0 {
            *byte -= 1;
            return Some(LyquidId(bytes));
        }
        *byte = u8::MAX;
    }
    None
}

/// Whether the store holds anything of `lyquid`: an inbound call, an output slot or an
/// inter-call output.
fn has_lyquid(store: &dyn SideEffectStore, lyquid: &LyquidId) -> Result<bool, MigrateError> {
    if !store
        .read_inbound_inter_calls(lyquid, None, None, 1)?
        .is_empty()
    {
        return Ok(true);
    }
    // The listings' cursors are exclusive: start after the largest key of the Lyquid below.
    let below = predecessor(lyquid);
    let slot_cursor = below.map(|lyquid| SideEffectKey {
        lyquid,
        pos: ChainPos(u128::MAX),
        kind: SideEffectKind::Timer,
    });
    let first_slot = store.list_output_keys(slot_cursor.as_ref(), 1)?;
    if first_slot.first().is_some_and(|key| key.lyquid == *lyquid) {
        return Ok(true);
    }
    let output_cursor = below.map(|callee| InterCallOutputKey {
        callee,
        pos: ChainPos(u128::MAX),
        inter_call_seq: u32::MAX,
    });
    let first_output = store.list_inter_call_output_keys(output_cursor.as_ref(), 1)?;
    Ok(first_output
        .first()
        .is_some_and(|key| key.callee == *lyquid))
}

/// Refuses a Lyquid named in the plan of which the source holds nothing.
pub(super) fn check_named(from: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    let store = from.side_effects();
    for lyquid in &plan.callees {
        if !has_lyquid(store.as_ref(), lyquid)? {
            return Err(MigrateError::NotInSource {
                what: "Lyquid",
                name: lyquid.to_string(),
                hint: "the side-effect store holds no output slot, inter-call output or \
                       inbound call of it"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

pub(super) fn copy(
    from: &Stores,
    to: &Stores,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<CopySummary, MigrateError> {
    let step = Step::begin(progress, Phase::Copy, StoreKind::SideEffects);
    let (src, dst) = (from.side_effects(), to.side_effects());
    let mut counts = Counts::zero(&COUNTED);
    let mut slots = BTreeMap::new();
    let write_slots = |slots: &mut BTreeMap<SideEffectKey, EventOutputs>| {
        step.advance(slots.len() as u64);
        dst.write_outputs(slots)?;
        slots.clear();
        Ok::<_, MigrateError>(())
    };
    for key in output_keys(src.as_ref(), plan) {
        let key = key?;
        // Listed, so stored: `None` here would be a slot removed meanwhile, and nothing
        // removes slots.
        if let Some(outputs) = src.read_outputs(&key)? {
            slots.insert(key, outputs);
            counts.add("output slots", 1);
        }
        if slots.len() == PAGE {
            write_slots(&mut slots)?;
        }
    }
    write_slots(&mut slots)?;
    for key in inter_call_output_keys(src.as_ref(), plan) {
        let key = key?;
        if let Some(output) = src.read_inter_call_output(&key)? {
            dst.upsert_inter_call_output(&key, &output)?;
            counts.add("inter-call outputs", 1);
            step.advance(1);
        }
    }
    for callee in callees(src.as_ref(), plan) {
        let callee = callee?;
        counts.add("callees", 1);
        for page in inbound_pages(src.as_ref(), &callee) {
            let page = page?;
            dst.append_inbound_inter_calls(&page)?;
            counts.add("inbound calls", page.len() as u64);
            step.advance(page.len() as u64);
        }
    }
    Ok(CopySummary {
        store: StoreKind::SideEffects,
        counts,
        handled: Vec::new(),
        not_migrated: Vec::new(),
    })
}

/// One item of the side-effect store, in the order [`walk`] gives them.
#[derive(PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) enum SideEffectItem {
    /// An output slot.
    Output(SideEffectKey),
    /// An inter-call output.
    InterCallOutput(InterCallOutputKey),
    /// An inbound call, by callee and order key.
    InboundCall(LyquidId, CallOrderKey),
}

impl fmt::Debug for SideEffectItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideEffectItem::Output(key) => write!(f, "output slot {key:?}"),
            SideEffectItem::InterCallOutput(key) => write!(f, "inter-call output {key:?}"),
            SideEffectItem::InboundCall(callee, order) => {
                write!(f, "inbound call of {callee} at {order:?}")
            }
        }
    }
}

/// What a [`SideEffectItem`] holds.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub(super) enum SideEffectValue {
    /// A slot's outputs (`None`: listed but not readable).
    Outputs(Option<EventOutputs>),
    /// An inter-call output (`None`: listed but not readable).
    InterCallOutput(Option<CallEventOutput>),
    /// An inbound call.
    InboundCall(InterCall),
}

/// Every selected output slot, inter-call output and inbound call, a page at a time.
pub(super) fn walk(
    stores: &Stores,
    plan: &Plan,
    sink: &mut dyn Sink<SideEffectItem, SideEffectValue>,
) -> Result<Counts, MigrateError> {
    let store = stores.side_effects();
    let store = store.as_ref();
    let mut counts = Counts::zero(&COUNTED);
    for key in output_keys(store, plan) {
        let key = key?;
        counts.add("output slots", 1);
        let outputs = store.read_outputs(&key)?;
        sink.push(
            SideEffectItem::Output(key),
            SideEffectValue::Outputs(outputs),
        );
    }
    for key in inter_call_output_keys(store, plan) {
        let key = key?;
        counts.add("inter-call outputs", 1);
        let output = store.read_inter_call_output(&key)?;
        sink.push(
            SideEffectItem::InterCallOutput(key),
            SideEffectValue::InterCallOutput(output),
        );
    }
    for callee in callees(store, plan) {
        let callee = callee?;
        counts.add("callees", 1);
        for page in inbound_pages(store, &callee) {
            for call in page? {
                counts.add("inbound calls", 1);
                sink.push(
                    SideEffectItem::InboundCall(call.callee, call.order_key),
                    SideEffectValue::InboundCall(call.call),
                );
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predecessor_borrows_across_bytes() {
        assert_eq!(predecessor(&LyquidId([0; 20])), None);
        let mut one = [0; 20];
        one[19] = 1;
        assert_eq!(predecessor(&LyquidId(one)), Some(LyquidId([0; 20])));
        let mut carry = [0; 20];
        carry[18] = 1;
        let mut expected = [0; 20];
        expected[19] = u8::MAX;
        assert_eq!(predecessor(&LyquidId(carry)), Some(LyquidId(expected)));
    }
}
