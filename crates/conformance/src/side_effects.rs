//! [`SideEffectStore`] rules: `docs/contract.md` section 2 (limits) and section 5.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use store_api::{
    Backend, CallEventOutput, CallOrderKey, ChainPos, EventOutputs, InboundInterCall, InterCall,
    InterCallOutputKey, LyquidId, MAX_VALUE_LEN, MalformedCall, SideEffectError, SideEffectKey,
    SideEffectKind, SideEffectStore,
};

use crate::harness::{Instance, b, relaxed_options, value_too_large};

/// The Lyquid id made of twenty `n` bytes.
pub fn lyquid(n: u8) -> LyquidId {
    LyquidId([n; 20])
}

/// The slot of Lyquid `n` at block `block`, index 0, of `kind`.
pub fn slot(n: u8, block: u64, kind: SideEffectKind) -> SideEffectKey {
    SideEffectKey {
        lyquid: lyquid(n),
        pos: ChainPos::new(block, 0),
        kind,
    }
}

/// Outputs made of `payloads`.
pub fn outputs(payloads: &[&[u8]]) -> EventOutputs {
    EventOutputs(payloads.iter().map(|p| b(p)).collect())
}

fn map(entries: &[(SideEffectKey, EventOutputs)]) -> BTreeMap<SideEffectKey, EventOutputs> {
    entries.iter().cloned().collect()
}

/// The inter-call output slot of callee `n` at block `block`, call `seq`.
pub fn call_slot(n: u8, block: u64, seq: u32) -> InterCallOutputKey {
    InterCallOutputKey {
        callee: lyquid(n),
        pos: ChainPos::new(block, 0),
        inter_call_seq: seq,
    }
}

/// An inbound call for callee `callee`, delivered at `(deliver, seq)`, made at block
/// `made`, carrying `payload`.
pub fn inbound(callee: u8, deliver: u64, seq: u32, made: u64, payload: &[u8]) -> InboundInterCall {
    InboundInterCall {
        callee: lyquid(callee),
        order_key: order(deliver, seq),
        call: InterCall {
            caller: lyquid(0xCA),
            pos: ChainPos::new(made, 0),
            payload: b(payload),
        },
    }
}

fn order(block: u64, seq: u32) -> CallOrderKey {
    CallOrderKey {
        pos: ChainPos::new(block, 0),
        seq,
    }
}

fn read_all_inbound<S: SideEffectStore + ?Sized>(se: &S, callee: u8) -> Vec<InboundInterCall> {
    se.read_inbound_inter_calls(&lyquid(callee), None, None, usize::MAX)
        .expect("read_inbound_inter_calls")
}

// ---------------------------------------------------------------------------------------
// Section 5: outputs
// ---------------------------------------------------------------------------------------

/// §5.2: `write_outputs` stores every slot of the map (slots differing only by Lyquid,
/// position or kind are distinct) and `read_outputs` returns them; `None` for unknown slots.
pub fn write_and_read_outputs<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let event = slot(1, 5, SideEffectKind::Event);
    let call = slot(1, 5, SideEffectKind::Call);
    let timer = slot(1, 5, SideEffectKind::Timer);
    let later = slot(1, 6, SideEffectKind::Event);
    let other = slot(2, 5, SideEffectKind::Event);
    se.write_outputs(&map(&[
        (event, outputs(&[b"e1", b"e2"])),
        (call, outputs(&[b"c"])),
        (other, outputs(&[b"o"])),
    ]))
    .unwrap();
    se.write_outputs(&map(&[(timer, outputs(&[b"t"]))]))
        .unwrap();
    assert_eq!(
        se.read_outputs(&event).unwrap(),
        Some(outputs(&[b"e1", b"e2"]))
    );
    assert_eq!(se.read_outputs(&call).unwrap(), Some(outputs(&[b"c"])));
    assert_eq!(se.read_outputs(&timer).unwrap(), Some(outputs(&[b"t"])));
    assert_eq!(se.read_outputs(&other).unwrap(), Some(outputs(&[b"o"])));
    assert_eq!(se.read_outputs(&later).unwrap(), None);
    assert_eq!(
        se.read_outputs(&slot(3, 5, SideEffectKind::Event)).unwrap(),
        None
    );
    se.write_outputs(&BTreeMap::new()).unwrap();
}

/// §5.2: writing a slot again with equal outputs is accepted (replay idempotency), alone
/// or together with new slots, and changes nothing.
pub fn same_outputs_accepted_again<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let k1 = slot(1, 1, SideEffectKind::Event);
    let k2 = slot(1, 2, SideEffectKind::Event);
    let first = map(&[(k1, outputs(&[b"a", b""]))]);
    se.write_outputs(&first).unwrap();
    se.write_outputs(&first).unwrap();
    se.write_outputs(&map(&[(k1, outputs(&[b"a", b""])), (k2, outputs(&[b"b"]))]))
        .unwrap();
    assert_eq!(se.read_outputs(&k1).unwrap(), Some(outputs(&[b"a", b""])));
    assert_eq!(se.read_outputs(&k2).unwrap(), Some(outputs(&[b"b"])));
}

/// §5.2: a slot written again with different outputs fails with `ConflictingReplay`
/// naming the (first) conflicting slot, and **nothing** from the call is written: new slots
/// ordered before and after it stay absent, the stored outputs stay.
pub fn conflicting_outputs_rejected_and_nothing_written<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let before = slot(1, 1, SideEffectKind::Event);
    let stored = slot(1, 2, SideEffectKind::Event);
    let stored2 = slot(1, 3, SideEffectKind::Event);
    let after = slot(1, 4, SideEffectKind::Event);
    se.write_outputs(&map(&[
        (stored, outputs(&[b"original"])),
        (stored2, outputs(&[b"two"])),
    ]))
    .unwrap();
    assert_eq!(
        se.read_outputs(&stored).unwrap(),
        Some(outputs(&[b"original"]))
    );
    let result = se.write_outputs(&map(&[
        (before, outputs(&[b"new before"])),
        (stored, outputs(&[b"different"])),
        (stored2, outputs(&[b"also different"])),
        (after, outputs(&[b"new after"])),
    ]));
    assert_matches!(result, Err(SideEffectError::ConflictingReplay { key }) if key == stored);
    assert_eq!(se.read_outputs(&before).unwrap(), None);
    assert_eq!(se.read_outputs(&after).unwrap(), None);
    assert_eq!(
        se.read_outputs(&stored).unwrap(),
        Some(outputs(&[b"original"]))
    );
    assert_eq!(se.read_outputs(&stored2).unwrap(), Some(outputs(&[b"two"])));
    let longer = se.write_outputs(&map(&[(stored, outputs(&[b"original", b"extra"]))]));
    assert_matches!(longer, Err(SideEffectError::ConflictingReplay { key }) if key == stored);
    assert_eq!(
        se.read_outputs(&stored).unwrap(),
        Some(outputs(&[b"original"]))
    );
}

/// §0.3, §5.2: empty outputs and empty payloads are values: `[]`, `[""]` and `["", ""]` are
/// stored, read back exactly, are never `None`, and differ from each other.
pub fn empty_outputs_round_trip<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let none = slot(1, 1, SideEffectKind::Event);
    let one = slot(1, 2, SideEffectKind::Event);
    let two = slot(1, 3, SideEffectKind::Event);
    se.write_outputs(&map(&[
        (none, outputs(&[])),
        (one, outputs(&[b""])),
        (two, outputs(&[b"", b""])),
    ]))
    .unwrap();
    assert_eq!(se.read_outputs(&none).unwrap(), Some(outputs(&[])));
    assert_eq!(se.read_outputs(&one).unwrap(), Some(outputs(&[b""])));
    assert_eq!(se.read_outputs(&two).unwrap(), Some(outputs(&[b"", b""])));
    assert_matches!(
        se.write_outputs(&map(&[(none, outputs(&[b""]))])),
        Err(SideEffectError::ConflictingReplay { .. })
    );
    assert_matches!(
        se.write_outputs(&map(&[(one, outputs(&[]))])),
        Err(SideEffectError::ConflictingReplay { .. })
    );
    assert_matches!(
        se.write_outputs(&map(&[(two, outputs(&[b""]))])),
        Err(SideEffectError::ConflictingReplay { .. })
    );
    assert_eq!(se.read_outputs(&none).unwrap(), Some(outputs(&[])));
}

/// §2.1: a slot whose payloads total more than `MAX_VALUE_LEN` bytes is
/// `InputError::ValueTooLarge`, and the call writes nothing.
pub fn oversized_outputs_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let ok = slot(1, 1, SideEffectKind::Event);
    let big = slot(1, 2, SideEffectKind::Event);
    let half = Bytes::from(vec![7u8; MAX_VALUE_LEN / 2]);
    let split = EventOutputs(vec![
        half.clone(),
        Bytes::from(vec![8u8; MAX_VALUE_LEN / 2 + 1]),
    ]);
    let expected = value_too_large();
    let result = se.write_outputs(&map(&[(ok, outputs(&[b"fine"])), (big, split)]));
    assert_matches!(result, Err(SideEffectError::Input(ref err)) if *err == expected);
    let single = EventOutputs(vec![Bytes::from(vec![9u8; MAX_VALUE_LEN + 1])]);
    let result = se.write_outputs(&map(&[(ok, outputs(&[b"fine"])), (big, single)]));
    assert_matches!(result, Err(SideEffectError::Input(ref err)) if *err == expected);
    assert_eq!(se.read_outputs(&ok).unwrap(), None);
    assert_eq!(se.read_outputs(&big).unwrap(), None);
}

/// Reads through a small or disabled cache must always agree with the store.
fn cache_agrees_with_store<B: Backend>(cache_size: usize) {
    let inst = Instance::<B>::fresh_with(relaxed_options().side_effect_cache_size(cache_size));
    let se = inst.backend.side_effects();
    let first = slot(1, 0, SideEffectKind::Event);
    assert_eq!(se.read_outputs(&first).unwrap(), None);
    se.write_outputs(&map(&[(first, outputs(&[b"0"]))]))
        .unwrap();
    assert_eq!(
        se.read_outputs(&first).unwrap(),
        Some(outputs(&[b"0"])),
        "a cached miss hid a later write"
    );
    let count = 12u64;
    let expected = |i: u64| outputs(&[format!("{i}").as_bytes()]);
    for i in 1..count {
        let k = slot(1, i, SideEffectKind::Event);
        assert_eq!(se.read_outputs(&k).unwrap(), None);
        se.write_outputs(&map(&[(k, expected(i))])).unwrap();
        assert_eq!(se.read_outputs(&k).unwrap(), Some(expected(i)));
        let older = slot(1, i / 2, SideEffectKind::Event);
        assert_eq!(se.read_outputs(&older).unwrap(), Some(expected(i / 2)));
    }
    for round in 0..2 {
        for i in (0..count).rev().chain(0..count) {
            let k = slot(1, i, SideEffectKind::Event);
            assert_eq!(
                se.read_outputs(&k).unwrap(),
                Some(expected(i)),
                "round {round}, slot {i}"
            );
            let missing = slot(2, i, SideEffectKind::Event);
            assert_eq!(se.read_outputs(&missing).unwrap(), None);
        }
    }
    let cached = slot(1, 3, SideEffectKind::Event);
    let fresh = slot(1, 100, SideEffectKind::Event);
    assert_eq!(se.read_outputs(&cached).unwrap(), Some(expected(3)));
    assert_matches!(
        se.write_outputs(&map(&[
            (fresh, outputs(&[b"never"])),
            (cached, outputs(&[b"other"]))
        ])),
        Err(SideEffectError::ConflictingReplay { .. })
    );
    assert_eq!(
        se.read_outputs(&fresh).unwrap(),
        None,
        "the cache served a slot of a failed write"
    );
    assert_eq!(se.read_outputs(&cached).unwrap(), Some(expected(3)));
}

/// §5.3: with a cache of 2 slots and many slots written and read in varied orders, reads
/// always agree with the store: no stale miss, no slot of a failed write.
pub fn small_cache_never_serves_what_store_lacks<B: Backend>() {
    cache_agrees_with_store::<B>(2);
}

/// §5.3: a cache size of 0 (no cache) works.
pub fn cache_size_zero_works<B: Backend>() {
    cache_agrees_with_store::<B>(0);
}

// ---------------------------------------------------------------------------------------
// Section 5: inter-call outputs
// ---------------------------------------------------------------------------------------

/// §5.4: `read_inter_call_output` tells apart never written (`None`), completed without
/// payload (`Some(None)`), with an empty payload (`Some(Some(""))`) and with a payload.
pub fn inter_call_output_states_distinguished<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let none = call_slot(1, 1, 0);
    let empty = call_slot(1, 1, 1);
    let full = call_slot(1, 1, 2);
    let never = call_slot(1, 1, 3);
    se.upsert_inter_call_output(&none, &None).unwrap();
    se.upsert_inter_call_output(&empty, &Some(Bytes::new()))
        .unwrap();
    se.upsert_inter_call_output(&full, &Some(b(b"out")))
        .unwrap();
    assert_eq!(se.read_inter_call_output(&none).unwrap(), Some(None));
    assert_eq!(
        se.read_inter_call_output(&empty).unwrap(),
        Some(Some(Bytes::new()))
    );
    assert_eq!(
        se.read_inter_call_output(&full).unwrap(),
        Some(Some(b(b"out")))
    );
    assert_eq!(se.read_inter_call_output(&never).unwrap(), None);
    assert_eq!(
        se.read_inter_call_output(&call_slot(2, 1, 0)).unwrap(),
        None
    );
    assert_eq!(
        se.read_inter_call_output(&call_slot(1, 2, 0)).unwrap(),
        None
    );
}

/// §5.4: the same inter-call output again is accepted; a different one (including `None`
/// against an empty payload) is `ConflictingCallOutputReplay` naming the slot, and the
/// stored output stays.
pub fn inter_call_output_conflict<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let none = call_slot(1, 1, 0);
    let empty = call_slot(1, 1, 1);
    let full = call_slot(1, 1, 2);
    se.upsert_inter_call_output(&none, &None).unwrap();
    se.upsert_inter_call_output(&empty, &Some(Bytes::new()))
        .unwrap();
    se.upsert_inter_call_output(&full, &Some(b(b"out")))
        .unwrap();
    se.upsert_inter_call_output(&none, &None).unwrap();
    se.upsert_inter_call_output(&empty, &Some(Bytes::new()))
        .unwrap();
    se.upsert_inter_call_output(&full, &Some(b(b"out")))
        .unwrap();
    let cases: [(InterCallOutputKey, CallEventOutput); 4] = [
        (none, Some(Bytes::new())),
        (empty, None),
        (full, Some(b(b"other"))),
        (full, None),
    ];
    for (k, output) in cases {
        assert_matches!(
            se.upsert_inter_call_output(&k, &output),
            Err(SideEffectError::ConflictingCallOutputReplay { key }) if key == k
        );
    }
    assert_eq!(se.read_inter_call_output(&none).unwrap(), Some(None));
    assert_eq!(
        se.read_inter_call_output(&empty).unwrap(),
        Some(Some(Bytes::new()))
    );
    assert_eq!(
        se.read_inter_call_output(&full).unwrap(),
        Some(Some(b(b"out")))
    );
}

/// §2.1: an inter-call output payload over `MAX_VALUE_LEN` is `InputError::ValueTooLarge`
/// and nothing is stored.
pub fn inter_call_output_too_large_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let k = call_slot(1, 1, 0);
    let big: CallEventOutput = Some(Bytes::from(vec![1u8; MAX_VALUE_LEN + 1]));
    let expected = value_too_large();
    assert_matches!(
        se.upsert_inter_call_output(&k, &big),
        Err(SideEffectError::Input(ref err)) if *err == expected
    );
    assert_eq!(se.read_inter_call_output(&k).unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// Section 5: inbound inter-calls
// ---------------------------------------------------------------------------------------

/// §5.5: a malformed record (delivered before it was made: `order_key.pos < call.pos`) is
/// `MalformedInboundCall` naming it, and nothing of the call is written (not even valid
/// records of other callees).
pub fn inbound_malformed_rejected_nothing_written<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let valid = inbound(1, 10, 0, 10, b"ok");
    let malformed = inbound(2, 10, 3, 11, b"early");
    assert_matches!(
        se.append_inbound_inter_calls(&[valid.clone(), malformed.clone()]),
        Err(SideEffectError::MalformedInboundCall {
            callee,
            order_key,
            reason: MalformedCall::DeliveredBeforeMade,
        }) if callee == lyquid(2) && order_key == malformed.order_key
    );
    assert_eq!(read_all_inbound(&*se, 1), vec![]);
    assert_eq!(read_all_inbound(&*se, 2), vec![]);
    se.append_inbound_inter_calls(std::slice::from_ref(&valid))
        .unwrap();
    assert_eq!(read_all_inbound(&*se, 1), vec![valid]);
}

/// §2.1, §5.5: an inbound call payload over `MAX_VALUE_LEN` is `MalformedInboundCall` with
/// `PayloadTooLarge`, and nothing of the call is written.
pub fn inbound_payload_too_large_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let valid = inbound(1, 10, 0, 10, b"ok");
    let mut big = inbound(1, 10, 1, 10, b"");
    big.call.payload = Bytes::from(vec![3u8; MAX_VALUE_LEN + 1]);
    assert_matches!(
        se.append_inbound_inter_calls(&[valid, big]),
        Err(SideEffectError::MalformedInboundCall {
            reason: MalformedCall::PayloadTooLarge { len },
            ..
        }) if len == MAX_VALUE_LEN + 1
    );
    assert_eq!(read_all_inbound(&*se, 1), vec![]);
}

/// §5.5: the same record again (in a later call or twice in one call) is accepted and
/// stored once.
pub fn inbound_same_record_again_accepted<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let r1 = inbound(1, 10, 0, 9, b"one");
    let r2 = inbound(1, 10, 1, 10, b"");
    se.append_inbound_inter_calls(&[r1.clone(), r2.clone()])
        .unwrap();
    se.append_inbound_inter_calls(std::slice::from_ref(&r1))
        .unwrap();
    se.append_inbound_inter_calls(&[r2.clone(), r1.clone(), r1.clone()])
        .unwrap();
    se.append_inbound_inter_calls(&[]).unwrap();
    assert_eq!(read_all_inbound(&*se, 1), vec![r1, r2]);
}

/// §5.5: a different record at an order key already stored for the callee is
/// `ConflictingInboundCall` naming callee and order key, and nothing of the call is
/// written; the same order key for another callee is no conflict.
pub fn inbound_conflict_with_stored_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let stored = inbound(1, 10, 0, 10, b"original");
    se.append_inbound_inter_calls(std::slice::from_ref(&stored))
        .unwrap();
    let new = inbound(1, 11, 0, 11, b"new");
    let other_callee = inbound(2, 10, 0, 10, b"other callee");
    let changed_payload = inbound(1, 10, 0, 10, b"changed");
    let mut changed_caller = stored.clone();
    changed_caller.call.caller = lyquid(0x77);
    for conflicting in [changed_payload, changed_caller] {
        assert_matches!(
            se.append_inbound_inter_calls(&[new.clone(), other_callee.clone(), conflicting]),
            Err(SideEffectError::ConflictingInboundCall { callee, order_key })
                if callee == lyquid(1) && order_key == stored.order_key
        );
    }
    assert_eq!(read_all_inbound(&*se, 1), vec![stored.clone()]);
    assert_eq!(read_all_inbound(&*se, 2), vec![]);
    se.append_inbound_inter_calls(std::slice::from_ref(&other_callee))
        .unwrap();
    assert_eq!(read_all_inbound(&*se, 2), vec![other_callee]);
    assert_eq!(read_all_inbound(&*se, 1), vec![stored]);
}

/// §5.5: two different records at the same order key within one call are
/// `ConflictingInboundCall`, and nothing of the call is written.
pub fn inbound_conflict_within_call_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let first = inbound(1, 10, 0, 10, b"first");
    let second = inbound(1, 10, 0, 10, b"second");
    let unrelated = inbound(1, 12, 0, 12, b"unrelated");
    assert_matches!(
        se.append_inbound_inter_calls(&[unrelated, first.clone(), second]),
        Err(SideEffectError::ConflictingInboundCall { callee, order_key })
            if callee == lyquid(1) && order_key == first.order_key
    );
    assert_eq!(read_all_inbound(&*se, 1), vec![]);
}

/// §5.5: `read_inbound_inter_calls` returns the callee's records ascending by order key
/// (whatever the append order), with `from_exclusive < order_key`, `call.pos <
/// until_exclusive` (a filter, applied before `limit`; `None` is no bound, so a call made
/// at `ChainPos(u128::MAX)` is read), at most `limit`, and never another callee's records.
pub fn read_inbound_order_and_filters<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se = inst.backend.side_effects();
    let r1 = inbound(1, 10, 0, 10, b"a");
    let r2 = inbound(1, 10, 1, 3, b"b");
    let r3 = inbound(1, 11, 0, 11, b"c");
    let r4 = inbound(1, 12, 0, 5, b"d");
    let r5 = inbound(1, 12, 7, 12, b"e");
    let before = inbound(0, 10, 0, 1, b"callee 0");
    let after = inbound(2, 10, 0, 1, b"callee 2");
    se.append_inbound_inter_calls(&[r4.clone(), after.clone(), r1.clone()])
        .unwrap();
    se.append_inbound_inter_calls(&[r5.clone(), r3.clone(), before.clone(), r2.clone()])
        .unwrap();
    let read = |from: Option<CallOrderKey>, until: Option<ChainPos>, limit: usize| {
        se.read_inbound_inter_calls(&lyquid(1), from.as_ref(), until, limit)
            .unwrap()
    };
    let everything = vec![r1.clone(), r2.clone(), r3.clone(), r4.clone(), r5.clone()];
    assert_eq!(read(None, None, 100), everything);
    assert_eq!(
        read(Some(r1.order_key), None, 100),
        everything[1..].to_vec()
    );
    assert_eq!(
        read(Some(r2.order_key), None, 100),
        everything[2..].to_vec()
    );
    assert_eq!(
        read(Some(order(11, 5)), None, 100),
        vec![r4.clone(), r5.clone()]
    );
    assert_eq!(read(Some(r5.order_key), None, 100), vec![]);
    assert_eq!(read(Some(order(0, 0)), None, 100), everything);
    assert_eq!(
        read(None, Some(ChainPos::new(11, 0)), 100),
        vec![r1.clone(), r2.clone(), r4.clone()]
    );
    assert_eq!(
        read(None, Some(ChainPos::new(10, 0)), 100),
        vec![r2.clone(), r4.clone()]
    );
    assert_eq!(read(None, Some(ChainPos::new(3, 0)), 100), vec![]);
    assert_eq!(read(None, None, 2), vec![r1.clone(), r2.clone()]);
    assert_eq!(read(None, None, 0), vec![]);
    assert_eq!(
        read(Some(r2.order_key), Some(ChainPos::new(11, 0)), 1),
        vec![r4.clone()]
    );
    assert_eq!(read_all_inbound(&*se, 0), vec![before]);
    assert_eq!(read_all_inbound(&*se, 2), vec![after]);
    assert_eq!(read_all_inbound(&*se, 9), vec![]);

    let last = InboundInterCall {
        callee: lyquid(3),
        order_key: CallOrderKey {
            pos: ChainPos(u128::MAX),
            seq: u32::MAX,
        },
        call: InterCall {
            caller: lyquid(1),
            pos: ChainPos(u128::MAX),
            payload: Bytes::from_static(b"last"),
        },
    };
    se.append_inbound_inter_calls(std::slice::from_ref(&last))
        .unwrap();
    assert_eq!(read_all_inbound(&*se, 3), vec![last]);
    assert_eq!(
        se.read_inbound_inter_calls(&lyquid(3), None, Some(ChainPos(u128::MAX)), 10)
            .unwrap(),
        vec![]
    );
}

// ---------------------------------------------------------------------------------------
// Section 5: concurrency and dyn use
// ---------------------------------------------------------------------------------------

/// §5.6: readers running while one writer writes outputs, inter-call outputs and inbound
/// calls only ever see whole, committed writes, in the writer's order.
pub fn concurrent_readers_while_writing<B: Backend>() {
    const SLOTS: u64 = 80;
    let inst = Instance::<B>::fresh_with(relaxed_options().side_effect_cache_size(16));
    let se = inst.backend.side_effects();
    let expected = |i: u64| outputs(&[format!("out {i}").as_bytes(), b"", &i.to_le_bytes()]);
    let call_out =
        |i: u64| -> CallEventOutput { (!i.is_multiple_of(3)).then(|| b(&i.to_be_bytes())) };
    let record = |i: u64| inbound(1, 100 + i, 0, 100, format!("call {i}").as_bytes());
    let written = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..SLOTS {
                se.write_outputs(&map(&[(slot(1, i, SideEffectKind::Event), expected(i))]))
                    .unwrap();
                se.upsert_inter_call_output(&call_slot(1, i, 0), &call_out(i))
                    .unwrap();
                se.append_inbound_inter_calls(&[record(i)]).unwrap();
                written.store(i as usize + 1, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        });
        for reader in 0..2u64 {
            let se = Arc::clone(&se);
            let written = &written;
            let done = &done;
            s.spawn(move || {
                let mut probe = reader;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let floor = written.load(Ordering::SeqCst) as u64;
                    probe = (probe * 7 + 3) % SLOTS;
                    for i in [probe, floor.saturating_sub(1)] {
                        let got = se.read_outputs(&slot(1, i, SideEffectKind::Event)).unwrap();
                        if i < floor {
                            assert_eq!(got, Some(expected(i)), "slot {i} written but not read");
                        } else if let Some(got) = got {
                            assert_eq!(got, expected(i), "slot {i}");
                        }
                        let out = se.read_inter_call_output(&call_slot(1, i, 0)).unwrap();
                        if i < floor {
                            assert_eq!(out, Some(call_out(i)));
                        } else if let Some(out) = out {
                            assert_eq!(out, call_out(i));
                        }
                    }
                    let calls = read_all_inbound(&*se, 1);
                    assert!(calls.len() as u64 >= floor, "inbound calls went missing");
                    for (i, call) in calls.iter().enumerate() {
                        assert_eq!(*call, record(i as u64), "inbound calls out of order");
                    }
                    if finished {
                        break;
                    }
                }
            });
        }
    });
    assert_eq!(read_all_inbound(&*se, 1).len() as u64, SLOTS);
}

/// §0.2: the store works through `Arc<dyn SideEffectStore>`, shared across threads.
pub fn usable_as_dyn<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let se: Arc<dyn SideEffectStore> = inst.backend.side_effects();
    let k = slot(1, 1, SideEffectKind::Call);
    se.write_outputs(&map(&[(k, outputs(&[b"x"]))])).unwrap();
    let reader = Arc::clone(&se);
    let got = std::thread::spawn(move || reader.read_outputs(&k).unwrap())
        .join()
        .unwrap();
    assert_eq!(got, Some(outputs(&[b"x"])));
    se.upsert_inter_call_output(&call_slot(1, 1, 0), &Some(b(b"o")))
        .unwrap();
    assert_eq!(
        se.read_inter_call_output(&call_slot(1, 1, 0)).unwrap(),
        Some(Some(b(b"o")))
    );
    let r = inbound(1, 5, 0, 5, b"p");
    se.append_inbound_inter_calls(std::slice::from_ref(&r))
        .unwrap();
    assert_eq!(read_all_inbound(&*se, 1), vec![r]);
}
