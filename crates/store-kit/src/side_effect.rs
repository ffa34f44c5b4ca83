//! The side-effect store's engine-independent half: keys, the replay checks every write
//! goes through, and the read cache.

use std::collections::BTreeMap;
use std::ops::Bound;

use store_api::limits::check_value_len;
use store_api::{
    CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCallOutputKey,
    LyquidId, SideEffectError, SideEffectKey, SideEffectKind, StorageError,
};

use crate::codec::{KeyBuf, prefix_successor};
use crate::listing::KeyRange;
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

/// The slot of an output key written by [`output_key`], read back from `backend`'s table;
/// bytes that are not such a key are a [`Corrupted`](store_api::StorageErrorKind::Corrupted)
/// error.
pub fn parse_output_key(backend: &'static str, key: &[u8]) -> Result<SideEffectKey, StorageError> {
    let parsed = (|| {
        let (lyquid, rest) = key.split_first_chunk::<20>()?;
        let (pos, rest) = rest.split_first_chunk::<16>()?;
        let [tag] = rest else {
            return None;
        };
        Some(SideEffectKey {
            lyquid: LyquidId(*lyquid),
            pos: ChainPos(u128::from_be_bytes(*pos)),
            kind: SideEffectKind::from_tag(*tag)?,
        })
    })();
    parsed.ok_or_else(|| StorageError::corrupted(backend, "decoding a side-effect output key"))
}

/// The slot of an inter-call output key written by [`call_output_key`], read back from
/// `backend`'s table; bytes that are not such a key are a
/// [`Corrupted`](store_api::StorageErrorKind::Corrupted) error.
pub fn parse_call_output_key(
    backend: &'static str,
    key: &[u8],
) -> Result<InterCallOutputKey, StorageError> {
    let parsed = (|| {
        let (callee, rest) = key.split_first_chunk::<20>()?;
        let (pos, rest) = rest.split_first_chunk::<16>()?;
        let seq: [u8; 4] = rest.try_into().ok()?;
        Some(InterCallOutputKey {
            callee: LyquidId(*callee),
            pos: ChainPos(u128::from_be_bytes(*pos)),
            inter_call_seq: u32::from_be_bytes(seq),
        })
    })();
    parsed.ok_or_else(|| StorageError::corrupted(backend, "decoding an inter-call output key"))
}

/// The key range of a [`list_output_keys`](store_api::SideEffectStore::list_output_keys)
/// page: the slots after `after`.
pub fn outputs_after(after: Option<&SideEffectKey>) -> KeyRange {
    KeyRange::after(after.map(output_key))
}

/// The key range of a
/// [`list_inter_call_output_keys`](store_api::SideEffectStore::list_inter_call_output_keys)
/// page: the inter-call outputs after `after`.
pub fn call_outputs_after(after: Option<&InterCallOutputKey>) -> KeyRange {
    KeyRange::after(after.map(call_output_key))
}

/// The error for an inbound-call key shorter than a callee id (a damaged table).
pub fn short_inbound_key(backend: &'static str) -> StorageError {
    StorageError::corrupted(backend, "an inbound call key is shorter than a callee id")
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
/// order: those made before `until_exclusive` (all when `None`), at most `limit`.
pub fn inbound_page<E>(
    calls: impl IntoIterator<Item = Result<InboundInterCall, E>>,
    until_exclusive: Option<ChainPos>,
    limit: usize,
) -> Result<Vec<InboundInterCall>, E> {
    let mut page = InboundPage::new(until_exclusive, limit);
    if page.is_full() {
        return Ok(page.finish());
    }
    for call in calls {
        if !page.push(call?) {
            break;
        }
    }
    Ok(page.finish())
}

/// A page of `read_inbound_inter_calls` built from the callee's calls given one at a time
/// in ascending order (for engines that visit rows rather than iterate them): the calls
/// made before `until_exclusive` (all when `None`), at most `limit`.
#[derive(Debug)]
pub struct InboundPage {
    page: Vec<InboundInterCall>,
    until_exclusive: Option<ChainPos>,
    limit: usize,
}

impl InboundPage {
    /// An empty page.
    pub fn new(until_exclusive: Option<ChainPos>, limit: usize) -> Self {
        InboundPage {
            page: Vec::new(),
            until_exclusive,
            limit,
        }
    }

    /// Whether the page holds `limit` calls (at once for `limit` 0).
    pub fn is_full(&self) -> bool {
        self.page.len() >= self.limit
    }

    /// Offers the next call; `false` once the page is full, when no later call is wanted.
    pub fn push(&mut self, call: InboundInterCall) -> bool {
        if self
            .until_exclusive
            .is_none_or(|until| call.call.pos < until)
        {
            self.page.push(call);
        }
        !self.is_full()
    }

    /// The page.
    pub fn finish(self) -> Vec<InboundInterCall> {
        self.page
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsing gives back every key, and the byte order of the encodings is the keys' order.
    #[test]
    fn keys_parse_back_and_sort_as_their_types() {
        let lyquids = [
            LyquidId([0; 20]),
            LyquidId([0x7F; 20]),
            LyquidId([0xFF; 20]),
        ];
        let positions = [ChainPos(0), ChainPos(1 << 32), ChainPos(u128::MAX)];
        let kinds = [
            SideEffectKind::Event,
            SideEffectKind::Call,
            SideEffectKind::Timer,
        ];
        let mut outputs = Vec::new();
        let mut calls = Vec::new();
        for lyquid in lyquids {
            for pos in positions {
                for kind in kinds {
                    outputs.push(SideEffectKey { lyquid, pos, kind });
                }
                for inter_call_seq in [0, 255, 256, u32::MAX] {
                    calls.push(InterCallOutputKey {
                        callee: lyquid,
                        pos,
                        inter_call_seq,
                    });
                }
            }
        }
        for key in &outputs {
            assert_eq!(parse_output_key("t", &output_key(key)).ok(), Some(*key));
        }
        for key in &calls {
            assert_eq!(
                parse_call_output_key("t", &call_output_key(key)).ok(),
                Some(*key)
            );
        }
        assert!(outputs.is_sorted());
        assert!(
            outputs
                .windows(2)
                .all(|w| output_key(&w[0]) < output_key(&w[1]))
        );
        assert!(calls.is_sorted());
        assert!(
            calls
                .windows(2)
                .all(|w| call_output_key(&w[0]) < call_output_key(&w[1]))
        );
        assert!(parse_output_key("t", &[0; 36]).is_err());
        assert!(parse_output_key("t", &[[0; 36].as_slice(), &[3]].concat()).is_err());
        assert!(parse_call_output_key("t", &[0; 41]).is_err());
    }
}
