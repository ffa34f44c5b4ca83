//! The side-effect store's engine-independent half: keys, the replay checks every write
//! goes through, and the read cache.

use std::collections::BTreeMap;
use std::ops::Bound;

use store_api::limits::check_value_len;
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, StorageError,
};

use crate::codec::{KeyBuf, prefix_successor};
use crate::lru::LruCache;

/// The read cache of `read_outputs`. Slots are insert-only, so a cached slot can never
/// disagree with the store; a slot is cached only after its write committed.
pub type OutputCache = LruCache<SideEffectKey, EventOutputs>;

/// Key of an output slot: `lyquid(20) pos(u128be) kind(1)`.
pub fn output_key(key: &SideEffectKey) -> Vec<u8> {
    KeyBuf::with_capacity(37)
        .raw(&key.lyquid.0)
        .u128(key.pos.0)
        .raw(&[key.kind.tag()])
        .finish()
}

/// Key of an inter-call output: `callee(20) pos(u128be) inter_call_seq(u32be)`.
pub fn call_output_key(key: &InterCallOutputKey) -> Vec<u8> {
    KeyBuf::with_capacity(40)
        .raw(&key.callee.0)
        .u128(key.pos.0)
        .u32(key.inter_call_seq)
        .finish()
}

/// Key of an inbound call: `callee(20) order.pos(u128be) order.seq(u32be)`, so a callee's
/// calls are contiguous and ascending by order key.
pub fn inbound_key(callee: &LyquidId, order_key: &CallOrderKey) -> Vec<u8> {
    KeyBuf::with_capacity(40)
        .raw(&callee.0)
        .u128(order_key.pos.0)
        .u32(order_key.seq)
        .finish()
}

/// Key bounds of `read_inbound_inter_calls`: the callee's calls after `from_exclusive`.
pub fn inbound_bounds(
    callee: &LyquidId,
    from_exclusive: Option<&CallOrderKey>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = match from_exclusive {
        Some(from) => Bound::Excluded(inbound_key(callee, from)),
        None => Bound::Included(callee.0.to_vec()),
    };
    let upper = match prefix_successor(&callee.0) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// Collects a page of `read_inbound_inter_calls` from the callee's calls in ascending
/// order: those made before `until_exclusive`, at most `limit`.
pub fn inbound_page<E>(
    calls: impl IntoIterator<Item = Result<InboundInterCall, E>>,
    until_exclusive: ChainPos,
    limit: usize,
) -> Result<Vec<InboundInterCall>, E> {
    let mut page = Vec::new();
    if limit == 0 {
        return Ok(page);
    }
    for call in calls {
        let call = call?;
        if call.call.pos < until_exclusive {
            page.push(call);
            if page.len() == limit {
                break;
            }
        }
    }
    Ok(page)
}

/// Checks a `write_outputs` call against the store and returns the slots to insert.
///
/// Every slot is checked against the limits first, then against what `stored` holds: equal
/// outputs are skipped (replay), different outputs fail with
/// [`SideEffectError::ConflictingReplay`]. On error the caller writes nothing.
pub fn plan_outputs(
    outputs: &BTreeMap<SideEffectKey, EventOutputs>,
    mut stored: impl FnMut(&SideEffectKey) -> Result<Option<EventOutputs>, StorageError>,
) -> Result<Vec<(&SideEffectKey, &EventOutputs)>, SideEffectError> {
    for slot in outputs.values() {
        slot.check()?;
    }
    let mut inserts = Vec::new();
    for (key, slot) in outputs {
        match stored(key)? {
            Some(existing) if existing == *slot => {}
            Some(_) => return Err(SideEffectError::ConflictingReplay { key: *key }),
            None => inserts.push((key, slot)),
        }
    }
    Ok(inserts)
}

/// Checks an inter-call output against what is stored; `true` when it must be written.
pub fn plan_call_output(
    key: &InterCallOutputKey,
    output: &CallEventOutput,
    stored: Option<CallEventOutput>,
) -> Result<bool, SideEffectError> {
    if let Some(payload) = output {
        check_value_len(payload.len())?;
    }
    match stored {
        Some(existing) if existing == *output => Ok(false),
        Some(_) => Err(SideEffectError::ConflictingCallOutputReplay { key: *key }),
        None => Ok(true),
    }
}

/// Checks an `append_inbound_inter_calls` call and returns the records to insert, grouped
/// by callee and ascending by order key.
///
/// Malformed records fail first (in input order); then a record differing from another at
/// the same `(callee, order_key)`, in the call or in the store, is
/// [`SideEffectError::ConflictingInboundCall`]; identical records are skipped.
pub fn plan_inbound(
    records: &[InboundInterCall],
    mut stored: impl FnMut(&LyquidId, &CallOrderKey) -> Result<Option<InboundInterCall>, StorageError>,
) -> Result<Vec<&InboundInterCall>, SideEffectError> {
    for record in records {
        record
            .check()
            .map_err(|reason| SideEffectError::MalformedInboundCall {
                callee: record.callee,
                order_key: record.order_key,
                reason,
            })?;
    }
    let conflict = |r: &InboundInterCall| SideEffectError::ConflictingInboundCall {
        callee: r.callee,
        order_key: r.order_key,
    };
    let mut unique: BTreeMap<(LyquidId, CallOrderKey), &InboundInterCall> = BTreeMap::new();
    for record in records {
        match unique.get(&(record.callee, record.order_key)) {
            Some(earlier) if **earlier != *record => return Err(conflict(record)),
            Some(_) => {}
            None => {
                unique.insert((record.callee, record.order_key), record);
            }
        }
    }
    let mut inserts = Vec::new();
    for ((callee, order_key), record) in unique {
        match stored(&callee, &order_key)? {
            Some(existing) if existing == *record => {}
            Some(_) => return Err(conflict(record)),
            None => inserts.push(record),
        }
    }
    Ok(inserts)
}
