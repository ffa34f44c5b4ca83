//! [`StoreEngine`] rules: `docs/contract.md` section 2 (limits) and section 3.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use store_api::{
    Backend, EngineError, InputError, MAX_KEY_LEN, MAX_VALUE_LEN, Mutation, StoreEngine,
};

use crate::harness::{
    Instance, b, key_too_long, kv, overlong_key, oversized_value, value_too_large,
};

pub(crate) fn put(key: &[u8], value: &[u8]) -> Mutation {
    Mutation::Put {
        key: b(key),
        value: b(value),
    }
}

pub(crate) fn del(key: &[u8]) -> Mutation {
    Mutation::Delete { key: b(key) }
}

/// Every entry of the engine, ascending.
fn all<E: StoreEngine + ?Sized>(engine: &E) -> Vec<(Bytes, Bytes)> {
    engine
        .range_scan(b"", b"", usize::MAX, true)
        .expect("scanning the whole engine")
}

/// Checks that the engine holds exactly `entries`, is at sequence `seq`, and has no log
/// entry after `seq`.
fn assert_state<E: StoreEngine + ?Sized>(engine: &E, entries: &[(&[u8], &[u8])], seq: u64) {
    let expected: Vec<(Bytes, Bytes)> = entries.iter().map(|(k, v)| kv(k, v)).collect();
    assert_eq!(all(engine), expected, "engine contents");
    assert_eq!(engine.current_sequence(), seq, "current_sequence");
    assert_eq!(
        engine.get_batch(seq + 1).expect("get_batch"),
        None,
        "a rejected call left a log entry"
    );
}

/// Writes keys `k0`, `k1`, ... (`count` of them) with values equal to their keys, one batch
/// per key.
fn write_numbered<E: StoreEngine + ?Sized>(engine: &E, count: usize) {
    for i in 0..count {
        let key = format!("k{i}");
        engine
            .put_batch(&[(key.as_bytes(), key.as_bytes())])
            .expect("put_batch");
    }
}

fn keys_of(rows: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    rows.iter().map(|(k, _)| k.clone()).collect()
}

fn keys(list: &[&[u8]]) -> Vec<Bytes> {
    list.iter().map(|k| b(k)).collect()
}

// ---------------------------------------------------------------------------------------
// Section 2: limits and bad input
// ---------------------------------------------------------------------------------------

/// §2.1: an empty key is `InputError::EmptyKey` on `put_batch`, `delete_batch`, `get`
/// and `get_many`; the rejected batch writes nothing (no data, no sequence, no log entry).
pub fn empty_key_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.put_batch(&[(b"keep", b"1")]).unwrap();
    assert_matches!(
        e.put_batch(&[(b"new", b"x"), (b"", b"v")]),
        Err(EngineError::Input(InputError::EmptyKey))
    );
    assert_matches!(
        e.delete_batch(&[b"keep", b""]),
        Err(EngineError::Input(InputError::EmptyKey))
    );
    assert_matches!(e.get(b""), Err(EngineError::Input(InputError::EmptyKey)));
    assert_matches!(
        e.get_many(&[b"keep", b""]),
        Err(EngineError::Input(InputError::EmptyKey))
    );
    assert_state(&*e, &[(b"keep", b"1")], 1);
}

/// §2.1: a key of exactly `MAX_KEY_LEN` bytes is accepted by every operation.
pub fn max_key_len_accepted<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let key = vec![0xFF; MAX_KEY_LEN];
    let low = vec![0x00; MAX_KEY_LEN];
    e.put_batch(&[(&key, b"v"), (&low, b"w")]).unwrap();
    assert_eq!(e.get(&key).unwrap(), Some(b(b"v")));
    assert_eq!(
        e.get_many(&[&key, &low]).unwrap(),
        vec![(b(&key), Some(b(b"v"))), (b(&low), Some(b(b"w")))]
    );
    assert_eq!(
        e.range_scan(&key, &key, 10, true).unwrap(),
        vec![kv(&key, b"v")]
    );
    assert_eq!(all(&*e), vec![kv(&low, b"w"), kv(&key, b"v")]);
    e.delete_batch(&[&key]).unwrap();
    assert_eq!(e.get(&key).unwrap(), None);
    assert_eq!(e.current_sequence(), 2);
}

/// §2.1: a key of `MAX_KEY_LEN + 1` bytes is `InputError::KeyTooLong` (same variant and
/// fields) on every operation, and the rejected batch writes nothing.
pub fn key_too_long_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let long = overlong_key();
    e.put_batch(&[(b"keep", b"1")]).unwrap();
    let expect = key_too_long();
    assert_matches!(
        e.put_batch(&[(b"new", b"x"), (&long, b"v")]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    assert_matches!(
        e.delete_batch(&[b"keep", &long]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    assert_matches!(e.get(&long), Err(EngineError::Input(ref err)) if *err == expect);
    assert_matches!(
        e.get_many(&[&long]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    assert_state(&*e, &[(b"keep", b"1")], 1);
}

/// §2.1: a value of exactly `MAX_VALUE_LEN` bytes is accepted and read back whole.
pub fn max_value_len_accepted<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let mut value = vec![0x33; MAX_VALUE_LEN];
    value[0] = 1;
    value[MAX_VALUE_LEN - 1] = 2;
    e.put_batch(&[(b"big", &value)]).unwrap();
    let got = e.get(b"big").unwrap().expect("the big value");
    assert_eq!(got.len(), MAX_VALUE_LEN);
    assert!(got == value, "the big value came back different");
}

/// §2.1: a value of `MAX_VALUE_LEN + 1` bytes is `InputError::ValueTooLarge` and the
/// batch (including its valid pairs) writes nothing.
pub fn value_too_large_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.put_batch(&[(b"keep", b"1")]).unwrap();
    let big = oversized_value();
    let expect = value_too_large();
    assert_matches!(
        e.put_batch(&[(b"new", b"x"), (b"keep", &big)]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    assert_state(&*e, &[(b"keep", b"1")], 1);
}

/// §0.3, §2.1: an empty value is a value: `get`, `get_many`, `range_scan` and the batch log
/// return it, never confusing it with a missing key.
pub fn empty_value_round_trips<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let seq = e.put_batch(&[(b"empty", b"")]).unwrap();
    assert_eq!(e.get(b"empty").unwrap(), Some(Bytes::new()));
    assert_eq!(e.get(b"missing").unwrap(), None);
    assert_eq!(
        e.get_many(&[b"empty", b"missing"]).unwrap(),
        vec![(b(b"empty"), Some(Bytes::new())), (b(b"missing"), None)]
    );
    assert_eq!(all(&*e), vec![kv(b"empty", b"")]);
    assert_eq!(e.get_batch(seq).unwrap(), Some(vec![put(b"empty", b"")]));
    e.delete_batch(&[b"empty"]).unwrap();
    assert_eq!(e.get(b"empty").unwrap(), None);
    assert_eq!(all(&*e), vec![]);
}

// ---------------------------------------------------------------------------------------
// Section 3: sequence numbers
// ---------------------------------------------------------------------------------------

/// §3.1: the first batch is 1, every put or delete batch gets the next number, and
/// `current_sequence` is the last one (0 when none).
pub fn sequence_starts_at_one_and_is_contiguous<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    assert_eq!(e.current_sequence(), 0);
    assert_eq!(e.put_batch(&[(b"a", b"1")]).unwrap(), 1);
    assert_eq!(e.current_sequence(), 1);
    assert_eq!(e.delete_batch(&[b"a"]).unwrap(), 2);
    assert_eq!(e.put_batch(&[(b"b", b"2"), (b"c", b"3")]).unwrap(), 3);
    assert_eq!(e.delete_batch(&[b"zz"]).unwrap(), 4);
    assert_eq!(e.current_sequence(), 4);
}

/// §3.1: an empty put or delete batch writes nothing (no sequence number, no log entry)
/// and returns `current_sequence()`.
pub fn empty_batch_writes_nothing<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    assert_eq!(e.put_batch(&[]).unwrap(), 0);
    assert_eq!(e.delete_batch(&[]).unwrap(), 0);
    assert_eq!(e.current_sequence(), 0);
    assert_eq!(e.oldest_retained_batch().unwrap(), None);
    assert_eq!(e.get_batch(1).unwrap(), None);
    assert_eq!(e.put_batch(&[(b"a", b"1")]).unwrap(), 1);
    assert_eq!(e.put_batch(&[]).unwrap(), 1);
    assert_eq!(e.delete_batch(&[]).unwrap(), 1);
    assert_eq!(e.get_batch(2).unwrap(), None);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(1));
    assert_eq!(e.put_batch(&[(b"b", b"2")]).unwrap(), 2);
    assert_eq!(all(&*e), vec![kv(b"a", b"1"), kv(b"b", b"2")]);
}

/// §3.1: a key repeated inside one batch ends with its last value, and the log keeps
/// every pair in order.
pub fn repeated_key_last_wins<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let seq = e
        .put_batch(&[(b"k", b"first"), (b"other", b"o"), (b"k", b"last")])
        .unwrap();
    assert_eq!(e.get(b"k").unwrap(), Some(b(b"last")));
    assert_eq!(all(&*e), vec![kv(b"k", b"last"), kv(b"other", b"o")]);
    assert_eq!(
        e.get_batch(seq).unwrap(),
        Some(vec![
            put(b"k", b"first"),
            put(b"other", b"o"),
            put(b"k", b"last")
        ])
    );
}

/// §3.1: large batches (hundreds of pairs, a key repeated far apart in the batch) keep
/// last-wins for the data and every pair, in order, in the log: backends that write a
/// batch in chunks must not lose a repeat that falls in another chunk.
pub fn large_batches_keep_last_wins_and_every_pair<B: Backend>() {
    const KEYS: usize = 97;
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let owned: Vec<(Vec<u8>, Vec<u8>)> = (0..300usize)
        .map(|i| {
            let value = if i % 10 == 3 {
                Vec::new()
            } else {
                i.to_be_bytes().to_vec()
            };
            (format!("key{:03}", i % KEYS).into_bytes(), value)
        })
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = owned.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let seq = e.put_batch(&pairs).unwrap();
    let mut expected = BTreeMap::new();
    for (k, v) in &pairs {
        expected.insert(*k, *v);
    }
    let expected_rows: Vec<(Bytes, Bytes)> = expected.iter().map(|(k, v)| kv(k, v)).collect();
    assert_eq!(all(&*e), expected_rows);
    let logged: Vec<Mutation> = pairs.iter().map(|(k, v)| put(k, v)).collect();
    assert_eq!(e.get_batch(seq).unwrap(), Some(logged));

    let deleted: Vec<Vec<u8>> = (0..250usize)
        .map(|i| format!("key{:03}", (i * 7) % (KEYS + 20)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = deleted.iter().map(|k| &k[..]).collect();
    assert_eq!(e.delete_batch(&refs).unwrap(), seq + 1);
    for key in &refs {
        expected.remove(key);
    }
    let expected_rows: Vec<(Bytes, Bytes)> = expected.iter().map(|(k, v)| kv(k, v)).collect();
    assert_eq!(all(&*e), expected_rows);
    let logged: Vec<Mutation> = refs.iter().map(|k| del(k)).collect();
    assert_eq!(e.get_batch(seq + 1).unwrap(), Some(logged));
    assert_eq!(e.current_sequence(), seq + 1);
}

/// §3.1: deleting a missing key is fine: it gets a sequence number and is logged.
pub fn delete_missing_key_is_fine<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.put_batch(&[(b"present", b"1")]).unwrap();
    let seq = e.delete_batch(&[b"absent", b"present"]).unwrap();
    assert_eq!(seq, 2);
    assert_eq!(
        e.get_batch(seq).unwrap(),
        Some(vec![del(b"absent"), del(b"present")])
    );
    assert_eq!(all(&*e), vec![]);
    assert_eq!(e.delete_batch(&[b"absent"]).unwrap(), 3);
}

// ---------------------------------------------------------------------------------------
// Section 3: reads
// ---------------------------------------------------------------------------------------

/// §3.2: `get_many` answers one `(key, value)` per input key, in input order, missing and
/// repeated keys included.
pub fn get_many_in_input_order<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.put_batch(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"")])
        .unwrap();
    assert_eq!(
        e.get_many(&[b"c", b"missing", b"a", b"b", b"a"]).unwrap(),
        vec![
            (b(b"c"), Some(Bytes::new())),
            (b(b"missing"), None),
            (b(b"a"), Some(b(b"1"))),
            (b(b"b"), Some(b(b"2"))),
            (b(b"a"), Some(b(b"1"))),
        ]
    );
    assert_eq!(e.get_many(&[]).unwrap(), vec![]);
}

fn scan_fixture<E: StoreEngine + ?Sized>(engine: &E) {
    engine
        .put_batch(&[
            (b"a", b"1"),
            (b"b", b"2"),
            (b"ba", b"3"),
            (b"c", b"4"),
            (b"d", b"5"),
        ])
        .unwrap();
}

/// §3.3: `range_scan(start, end)` includes `end` (and `start`), and stops after `end`
/// even when longer keys extend it.
pub fn range_scan_end_inclusive<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    scan_fixture(&*e);
    let rows = e.range_scan(b"b", b"c", 100, true).unwrap();
    assert_eq!(rows, vec![kv(b"b", b"2"), kv(b"ba", b"3"), kv(b"c", b"4")]);
    assert_eq!(
        keys_of(&e.range_scan(b"b", b"b", 100, true).unwrap()),
        keys(&[b"b"])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"b", b"b", 100, false).unwrap()),
        keys(&[b"b"])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"bb", b"cc", 100, true).unwrap()),
        keys(&[b"c"])
    );
}

/// §3.3: an empty `end` is unbounded above.
pub fn range_scan_empty_end_is_unbounded<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    scan_fixture(&*e);
    e.put_batch(&[(&[0xFF, 0xFF], b"ff")]).unwrap();
    assert_eq!(
        keys_of(&e.range_scan(b"c", b"", 100, true).unwrap()),
        keys(&[b"c", b"d", &[0xFF, 0xFF]])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"c", b"", 100, false).unwrap()),
        keys(&[&[0xFF, 0xFF], b"d", b"c"])
    );
}

/// §3.3: an empty `start` begins at the first key.
pub fn range_scan_empty_start_from_first_key<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    scan_fixture(&*e);
    e.put_batch(&[(&[0x00], b"zero")]).unwrap();
    assert_eq!(
        keys_of(&e.range_scan(b"", b"b", 100, true).unwrap()),
        keys(&[&[0x00], b"a", b"b"])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"", b"", 100, true).unwrap()),
        keys(&[&[0x00], b"a", b"b", b"ba", b"c", b"d"])
    );
}

/// §3.3: `start > end` (both non-empty) gives nothing, in both directions.
pub fn range_scan_start_after_end_gives_nothing<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    scan_fixture(&*e);
    assert_eq!(e.range_scan(b"c", b"b", 100, true).unwrap(), vec![]);
    assert_eq!(e.range_scan(b"c", b"b", 100, false).unwrap(), vec![]);
    assert_eq!(e.range_scan(b"ba", b"b", 100, true).unwrap(), vec![]);
    assert_eq!(e.range_scan(b"e", b"z", 100, true).unwrap(), vec![]);
}

/// §3.3: `limit` caps the rows (from the start of the range when forward) and 0 gives
/// nothing.
pub fn range_scan_limit<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    scan_fixture(&*e);
    assert_eq!(e.range_scan(b"", b"", 0, true).unwrap(), vec![]);
    assert_eq!(e.range_scan(b"", b"", 0, false).unwrap(), vec![]);
    assert_eq!(
        keys_of(&e.range_scan(b"", b"", 2, true).unwrap()),
        keys(&[b"a", b"b"])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"b", b"d", 1, true).unwrap()),
        keys(&[b"b"])
    );
    assert_eq!(e.range_scan(b"", b"", 5, true).unwrap().len(), 5);
    assert_eq!(e.range_scan(b"", b"", 6, true).unwrap().len(), 5);
}

/// §3.3: `forward = false` returns the **last** `limit` keys of the range, descending.
pub fn range_scan_reverse_returns_last_keys_descending<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    scan_fixture(&*e);
    assert_eq!(
        e.range_scan(b"a", b"c", 2, false).unwrap(),
        vec![kv(b"c", b"4"), kv(b"ba", b"3")]
    );
    assert_eq!(
        keys_of(&e.range_scan(b"", b"", 100, false).unwrap()),
        keys(&[b"d", b"c", b"ba", b"b", b"a"])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"", b"b", 1, false).unwrap()),
        keys(&[b"b"])
    );
    assert_eq!(
        keys_of(&e.range_scan(b"b", b"", 3, false).unwrap()),
        keys(&[b"d", b"c", b"ba"])
    );
}

/// §3.3: keys and bounds made of `0xFF` bytes scan correctly (no successor overflow).
pub fn range_scan_ff_keys<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.put_batch(&[
        (&[0xFE], b"fe"),
        (&[0xFF], b"ff"),
        (&[0xFF, 0x00], b"ff00"),
        (&[0xFF, 0xFF], b"ffff"),
        (&[0xFF, 0xFF, 0xFF], b"ffffff"),
    ])
    .unwrap();
    assert_eq!(
        keys_of(&e.range_scan(&[0xFF], b"", 100, true).unwrap()),
        keys(&[&[0xFF], &[0xFF, 0x00], &[0xFF, 0xFF], &[0xFF, 0xFF, 0xFF]])
    );
    assert_eq!(
        keys_of(&e.range_scan(&[0xFF], &[0xFF, 0xFF], 100, true).unwrap()),
        keys(&[&[0xFF], &[0xFF, 0x00], &[0xFF, 0xFF]])
    );
    assert_eq!(
        keys_of(
            &e.range_scan(&[0xFF, 0xFF], &[0xFF, 0xFF, 0xFF], 100, false)
                .unwrap()
        ),
        keys(&[&[0xFF, 0xFF, 0xFF], &[0xFF, 0xFF]])
    );
    assert_eq!(
        keys_of(
            &e.range_scan(b"", &[0xFF, 0xFF, 0xFF, 0xFF], 2, false)
                .unwrap()
        ),
        keys(&[&[0xFF, 0xFF, 0xFF], &[0xFF, 0xFF]])
    );
    assert_eq!(
        e.range_scan(&[0xFF, 0xFF, 0xFF, 0x00], b"", 100, true)
            .unwrap(),
        vec![]
    );
}

// ---------------------------------------------------------------------------------------
// Section 3: batch log
// ---------------------------------------------------------------------------------------

/// §3.4: `get_batch` returns each batch's puts and deletes in the order given (a
/// repeated key included), and `None` for a sequence number never written.
pub fn batch_log_records_mutations_in_order<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let s1 = e
        .put_batch(&[(b"b", b"1"), (b"a", b""), (b"b", b"2")])
        .unwrap();
    let s2 = e.delete_batch(&[b"b", b"missing", b"b"]).unwrap();
    assert_eq!(
        e.get_batch(s1).unwrap(),
        Some(vec![put(b"b", b"1"), put(b"a", b""), put(b"b", b"2")])
    );
    assert_eq!(
        e.get_batch(s2).unwrap(),
        Some(vec![del(b"b"), del(b"missing"), del(b"b")])
    );
    assert_eq!(e.get_batch(0).unwrap(), None);
    assert_eq!(e.get_batch(3).unwrap(), None);
    assert_eq!(e.get_batch(u64::MAX).unwrap(), None);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(1));
}

/// §3.4: `prune_batch_log(cutoff)` removes the entries with `seq < cutoff`, returns how
/// many it removed, moves `oldest_retained_batch`, and never touches the data or the
/// sequence counter.
pub fn prune_batch_log_removes_only_older_entries<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    write_numbered(&*e, 5);
    e.delete_batch(&[b"k0"]).unwrap();
    let data = all(&*e);
    assert_eq!(e.current_sequence(), 6);
    assert_eq!(e.prune_batch_log(0).unwrap(), 0);
    assert_eq!(e.prune_batch_log(1).unwrap(), 0);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(1));
    assert_eq!(e.prune_batch_log(3).unwrap(), 2);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(3));
    assert_eq!(e.get_batch(1).unwrap(), None);
    assert_eq!(e.get_batch(2).unwrap(), None);
    assert_eq!(e.get_batch(3).unwrap(), Some(vec![put(b"k2", b"k2")]));
    assert_eq!(e.prune_batch_log(3).unwrap(), 0);
    assert_eq!(all(&*e), data, "pruning touched the data");
    assert_eq!(e.current_sequence(), 6, "pruning touched the sequence");
    assert_eq!(e.prune_batch_log(100).unwrap(), 4);
    assert_eq!(e.oldest_retained_batch().unwrap(), None);
    assert_eq!(e.get_batch(6).unwrap(), None);
    assert_eq!(all(&*e), data, "pruning touched the data");
    assert_eq!(e.current_sequence(), 6, "pruning touched the sequence");
    assert_eq!(e.put_batch(&[(b"next", b"")]).unwrap(), 7);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(7));
    assert_eq!(e.get_batch(7).unwrap(), Some(vec![put(b"next", b"")]));
}

/// §3.4 (persistent): after pruning the whole log and reopening, the data and the
/// sequence counter are intact and the next batch gets the next number.
pub fn sequence_survives_reopen_after_full_prune<B: Backend>() {
    let inst = Instance::<B>::fresh();
    {
        let e = inst.backend.engine();
        write_numbered(&*e, 3);
        assert_eq!(e.prune_batch_log(u64::MAX).unwrap(), 3);
        assert_eq!(e.oldest_retained_batch().unwrap(), None);
    }
    let inst = inst.reopen();
    let e = inst.backend.engine();
    assert_eq!(e.current_sequence(), 3);
    assert_eq!(e.oldest_retained_batch().unwrap(), None);
    assert_eq!(
        all(&*e),
        vec![kv(b"k0", b"k0"), kv(b"k1", b"k1"), kv(b"k2", b"k2")]
    );
    assert_eq!(e.put_batch(&[(b"k3", b"k3")]).unwrap(), 4);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(4));
}

// ---------------------------------------------------------------------------------------
// Section 3: concurrency
// ---------------------------------------------------------------------------------------

/// §3.1: a batch is visible atomically: readers using `get_many` while a writer rewrites
/// (and deletes) a group of keys batch by batch never see a mix of two batches.
pub fn batches_are_atomic_for_concurrent_readers<B: Backend>() {
    const KEYS: usize = 16;
    const BATCHES: usize = 150;
    let inst = Instance::<B>::relaxed();
    let e = inst.backend.engine();
    let names: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("group/{i:02}").into_bytes())
        .collect();
    let key_refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..BATCHES {
                if i % 7 == 6 {
                    e.delete_batch(&key_refs).unwrap();
                } else {
                    let value = format!("v{i}").into_bytes();
                    let pairs: Vec<(&[u8], &[u8])> =
                        key_refs.iter().map(|k| (*k, value.as_slice())).collect();
                    e.put_batch(&pairs).unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                let mut reads = 0u64;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let rows = e.get_many(&key_refs).unwrap();
                    let first = &rows[0].1;
                    for (i, (key, value)) in rows.iter().enumerate() {
                        assert_eq!(key.as_ref(), key_refs[i], "get_many changed the key order");
                        assert_eq!(value, first, "a reader saw two batches mixed: {rows:?}");
                    }
                    reads += 1;
                    if finished {
                        break;
                    }
                }
                assert!(reads > 0);
            });
        }
    });
    let last = format!("v{}", BATCHES - 1);
    let rows = e.get_many(&key_refs).unwrap();
    assert!(
        rows.iter()
            .all(|(_, v)| v.as_deref() == Some(last.as_bytes()))
    );
    assert_eq!(e.current_sequence(), BATCHES as u64);
}

/// §3.5: writers on many threads get distinct, contiguous sequence numbers, each thread's
/// numbers increase, and every number's log entry is the batch that received it.
pub fn concurrent_writers_get_distinct_contiguous_seqs<B: Backend>() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 40;
    let inst = Instance::<B>::relaxed();
    let e = inst.backend.engine();
    let results: Vec<Vec<(u64, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let e = Arc::clone(&e);
                s.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let key = format!("t{t}/{i:03}").into_bytes();
                            let seq = if i % 5 == 4 {
                                e.delete_batch(&[&key]).unwrap()
                            } else {
                                e.put_batch(&[(&key, &key)]).unwrap()
                            };
                            (seq, key)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seqs: Vec<u64> = Vec::new();
    for (t, thread) in results.iter().enumerate() {
        assert!(
            thread.windows(2).all(|w| w[0].0 < w[1].0),
            "thread {t}'s sequence numbers do not increase"
        );
        for (i, (seq, key)) in thread.iter().enumerate() {
            let expected = if i % 5 == 4 {
                vec![del(key)]
            } else {
                vec![put(key, key)]
            };
            assert_eq!(e.get_batch(*seq).unwrap(), Some(expected), "batch {seq}");
            seqs.push(*seq);
        }
    }
    seqs.sort_unstable();
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    assert_eq!(e.current_sequence(), total);
}

/// §0.2: the engine works through `Arc<dyn StoreEngine>`, shared across threads.
pub fn usable_as_dyn<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e: Arc<dyn StoreEngine> = inst.backend.engine();
    let seq = e.put_batch(&[(b"a", b"1"), (b"b", b"2")]).unwrap();
    let reader = Arc::clone(&e);
    let got = std::thread::spawn(move || reader.get(b"a").unwrap())
        .join()
        .unwrap();
    assert_eq!(got, Some(b(b"1")));
    assert_eq!(e.get_many(&[b"b"]).unwrap(), vec![(b(b"b"), Some(b(b"2")))]);
    assert_eq!(
        e.range_scan(b"", b"", 1, false).unwrap(),
        vec![kv(b"b", b"2")]
    );
    assert_eq!(e.get_batch(seq).unwrap().map(|m| m.len()), Some(2));
    assert_eq!(e.delete_batch(&[b"a"]).unwrap(), 2);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(1));
    assert_eq!(e.prune_batch_log(2).unwrap(), 1);
    assert_eq!(e.current_sequence(), 2);
}

// ---------------------------------------------------------------------------------------
// Section 3: mixed batches
// ---------------------------------------------------------------------------------------

/// §3.6: `write_batch` applies puts and deletes in order under one sequence number, so
/// the last mutation of a key wins (a delete after a put removes the key, a put after a
/// delete sets it); `get_batch` returns exactly the mutations given, repeats included; and
/// it shares one numbering with `put_batch` and `delete_batch`.
pub fn write_batch_mixed_last_mutation_wins<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    assert_eq!(e.put_batch(&[(b"gone", b"0"), (b"kept", b"0")]).unwrap(), 1);
    let batch = vec![
        put(b"a", b"1"),
        del(b"a"),
        del(b"b"),
        put(b"b", b"2"),
        del(b"gone"),
        put(b"c", b"x"),
        put(b"c", b""),
        del(b"missing"),
        del(b"a"),
    ];
    assert_eq!(e.write_batch(&batch).unwrap(), 2);
    assert_eq!(
        all(&*e),
        vec![kv(b"b", b"2"), kv(b"c", b""), kv(b"kept", b"0")]
    );
    assert_eq!(e.get(b"a").unwrap(), None);
    assert_eq!(e.get(b"gone").unwrap(), None);
    assert_eq!(e.get_batch(2).unwrap(), Some(batch));
    assert_eq!(e.delete_batch(&[b"kept"]).unwrap(), 3);
    assert_eq!(e.write_batch(&[put(b"d", b"4")]).unwrap(), 4);
    assert_eq!(e.get_batch(4).unwrap(), Some(vec![put(b"d", b"4")]));
    assert_eq!(e.current_sequence(), 4);
}

/// §3.6: an empty `write_batch` writes nothing (no number, no log entry) and returns
/// `current_sequence()`.
pub fn write_batch_empty_writes_nothing<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    assert_eq!(e.write_batch(&[]).unwrap(), 0);
    assert_eq!(e.oldest_retained_batch().unwrap(), None);
    e.write_batch(&[put(b"a", b"1"), del(b"b")]).unwrap();
    assert_eq!(e.write_batch(&[]).unwrap(), 1);
    assert_state(&*e, &[(b"a", b"1")], 1);
    assert_eq!(e.oldest_retained_batch().unwrap(), Some(1));
}

/// §2.1, §3.6: `write_batch` checks every key and value with the limits of `put_batch` and
/// `delete_batch` (the same variants and fields); a rejected batch writes nothing, the
/// valid mutations before the bad one included.
pub fn write_batch_bad_input_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.put_batch(&[(b"keep", b"1")]).unwrap();
    let long = overlong_key();
    let big = oversized_value();
    assert_matches!(
        e.write_batch(&[del(b"keep"), put(b"new", b"x"), put(b"", b"v")]),
        Err(EngineError::Input(InputError::EmptyKey))
    );
    assert_matches!(
        e.write_batch(&[del(b"keep"), del(b"")]),
        Err(EngineError::Input(InputError::EmptyKey))
    );
    let expect = key_too_long();
    assert_matches!(
        e.write_batch(&[del(b"keep"), del(&long)]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    assert_matches!(
        e.write_batch(&[del(b"keep"), put(&long, b"v")]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    let expect = value_too_large();
    assert_matches!(
        e.write_batch(&[del(b"keep"), put(b"keep", &big)]),
        Err(EngineError::Input(ref err)) if *err == expect
    );
    assert_state(&*e, &[(b"keep", b"1")], 1);
}

/// §3.6: a mixed batch is visible atomically: readers using `get_many` while a writer
/// moves a value between two groups of keys (one `write_batch` puts one group and deletes
/// the other) always see one group holding one batch's value and the other group empty.
pub fn write_batch_atomic_for_concurrent_readers<B: Backend>() {
    const KEYS: usize = 8;
    const BATCHES: usize = 120;
    let inst = Instance::<B>::relaxed();
    let e = inst.backend.engine();
    let names: Vec<Vec<u8>> = (0..2 * KEYS)
        .map(|i| format!("group{}/{i:02}", i / KEYS).into_bytes())
        .collect();
    let key_refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let (left, right) = key_refs.split_at(KEYS);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..BATCHES {
                let value = format!("v{i}").into_bytes();
                let (filled, emptied) = if i % 2 == 0 {
                    (left, right)
                } else {
                    (right, left)
                };
                let mut batch: Vec<Mutation> = Vec::with_capacity(2 * KEYS);
                for (f, d) in filled.iter().zip(emptied) {
                    batch.push(del(d));
                    batch.push(put(f, &value));
                }
                e.write_batch(&batch).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            loop {
                let finished = done.load(Ordering::SeqCst);
                let committed = e.current_sequence();
                let rows = e.get_many(&key_refs).unwrap();
                let (l, r) = rows.split_at(KEYS);
                let uniform = |half: &[(Bytes, Option<Bytes>)]| {
                    half.iter()
                        .all(|(_, v)| *v == half[0].1)
                        .then(|| half[0].1.clone())
                };
                match (uniform(l), uniform(r)) {
                    // Only before the first batch: the number is read before the rows.
                    (Some(None), Some(None)) => assert_eq!(committed, 0, "{rows:?}"),
                    (Some(Some(_)), Some(None)) | (Some(None), Some(Some(_))) => {}
                    _ => panic!("a reader saw two mixed batches mixed: {rows:?}"),
                }
                if finished {
                    break;
                }
            }
        });
    });
    assert_eq!(e.current_sequence(), BATCHES as u64);
}

// ---------------------------------------------------------------------------------------
// Section 3: replication (apply_batch, wait_for_sequence)
// ---------------------------------------------------------------------------------------

/// Writes a leader history with every kind of batch (put, delete, mixed with repeats) and
/// returns the leader's contents after each batch: `contents[n]` is the data at number `n`.
fn write_leader_history<E: StoreEngine + ?Sized>(leader: &E) -> Vec<Vec<(Bytes, Bytes)>> {
    let mut contents = vec![all(leader)];
    leader.put_batch(&[(b"a", b"1"), (b"b", b"1")]).unwrap();
    contents.push(all(leader));
    leader
        .write_batch(&[del(b"a"), put(b"c", b"3"), put(b"c", b""), put(b"a", b"2")])
        .unwrap();
    contents.push(all(leader));
    leader.delete_batch(&[b"b", b"missing", b"b"]).unwrap();
    contents.push(all(leader));
    leader
        .write_batch(&[put(b"d", b"4"), del(b"c"), del(b"d"), put(b"e", b"5")])
        .unwrap();
    contents.push(all(leader));
    assert_eq!(leader.current_sequence(), 4);
    contents
}

/// The log entry of batch `seq`, which must exist.
fn logged<E: StoreEngine + ?Sized>(engine: &E, seq: u64) -> Vec<Mutation> {
    engine
        .get_batch(seq)
        .expect("get_batch")
        .unwrap_or_else(|| panic!("batch {seq} is not in the log"))
}

/// §3.7: a follower that applies a leader's batches under the leader's numbers holds,
/// at every applied number, the leader's data of that number, that number as its
/// sequence, and the leader's log entries; its own writes then continue from there.
pub fn apply_batch_replicates_the_leader<B: Backend>() {
    let leader = Instance::<B>::fresh();
    let follower = Instance::<B>::fresh();
    let (l, f) = (leader.backend.engine(), follower.backend.engine());
    let contents = write_leader_history(&*l);
    for seq in 1..=l.current_sequence() {
        let batch = logged(&*l, seq);
        assert_eq!(f.apply_batch(seq, &batch).unwrap(), seq);
        assert_eq!(f.current_sequence(), seq);
        assert_eq!(
            all(&*f),
            contents[seq as usize],
            "follower data at batch {seq}"
        );
        for earlier in 1..=seq {
            assert_eq!(
                logged(&*f, earlier),
                logged(&*l, earlier),
                "log of {earlier}"
            );
        }
    }
    assert_eq!(f.oldest_retained_batch().unwrap(), Some(1));
    assert_eq!(f.get_batch(5).unwrap(), None);
    assert_eq!(f.put_batch(&[(b"own", b"")]).unwrap(), 5);
    assert_eq!(f.write_batch(&[del(b"own")]).unwrap(), 6);
}

/// §3.7: applying a number after the next one (a gap), or 0, is `SequenceGap` naming the
/// number expected and the number given, and changes nothing; the next number still
/// applies afterwards.
pub fn apply_batch_gap_refused_nothing_changed<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let batch = [put(b"k", b"v")];
    assert_matches!(
        e.apply_batch(2, &batch),
        Err(EngineError::SequenceGap {
            expected: 1,
            given: 2
        })
    );
    assert_state(&*e, &[], 0);
    assert_eq!(e.oldest_retained_batch().unwrap(), None);
    assert_eq!(e.apply_batch(1, &[put(b"a", b"1")]).unwrap(), 1);
    for given in [3, 4, 1000, u64::MAX, 0] {
        match e.apply_batch(given, &batch) {
            Err(EngineError::SequenceGap {
                expected,
                given: named,
            }) => assert_eq!((expected, named), (2, given)),
            other => panic!("apply_batch({given}) after batch 1: {other:?}"),
        }
        assert_state(&*e, &[(b"a", b"1")], 1);
        assert_eq!(
            e.get_batch(given).unwrap(),
            None,
            "batch {given} was logged"
        );
    }
    assert_eq!(e.apply_batch(2, &batch).unwrap(), 2);
    assert_state(&*e, &[(b"a", b"1"), (b"k", b"v")], 2);
}

/// §3.7: a batch that differs from the one logged under an already applied number (other
/// values, another order, a subset, a superset, a delete for a put) is `ConflictingBatch`
/// naming the number expected and the number given, and changes nothing.
pub fn apply_batch_conflicting_batch_refused_nothing_changed<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let first = vec![put(b"a", b"1"), put(b"a", b"2"), del(b"z")];
    e.apply_batch(1, &first).unwrap();
    e.apply_batch(2, &[put(b"b", b"2")]).unwrap();
    let different = [
        vec![put(b"a", b"1"), put(b"a", b"3"), del(b"z")],
        vec![put(b"a", b"2"), put(b"a", b"1"), del(b"z")],
        vec![put(b"a", b"1"), put(b"a", b"2")],
        vec![put(b"a", b"1"), put(b"a", b"2"), del(b"z"), del(b"z")],
        vec![put(b"a", b"1"), put(b"a", b"2"), put(b"z", b"")],
        vec![put(b"x", b"new")],
    ];
    for batch in &different {
        for given in [1, 2] {
            assert_matches!(
                e.apply_batch(given, batch),
                Err(EngineError::ConflictingBatch { expected: 3, given: g }) if g == given
            );
            assert_state(&*e, &[(b"a", b"2"), (b"b", b"2")], 2);
            assert_eq!(logged(&*e, 1), first);
            assert_eq!(logged(&*e, 2), vec![put(b"b", b"2")]);
        }
    }
}

/// §3.7: re-applying an already applied batch whose logged mutations are identical is
/// accepted (it answers its number) and changes nothing, even where writing it again would
/// (a later batch overwrote its key); the next number then still applies.
pub fn apply_batch_identical_reapply_accepted<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let first = vec![put(b"k", b"1"), del(b"gone")];
    assert_eq!(e.apply_batch(1, &first).unwrap(), 1);
    e.apply_batch(2, &[put(b"k", b"2"), put(b"gone", b"back")])
        .unwrap();
    e.write_batch(&[del(b"k")]).unwrap();
    for _ in 0..2 {
        assert_eq!(e.apply_batch(1, &first).unwrap(), 1);
        assert_eq!(
            e.apply_batch(3, &[del(b"k")]).unwrap(),
            3,
            "a local batch re-applied"
        );
        assert_state(&*e, &[(b"gone", b"back")], 3);
        assert_eq!(logged(&*e, 1), first);
        assert_eq!(e.oldest_retained_batch().unwrap(), Some(1));
    }
    assert_eq!(e.apply_batch(4, &[put(b"next", b"")]).unwrap(), 4);
}

/// §3.7 (pinned in `StoreEngine::apply_batch`'s docs): an already applied batch whose log
/// entry was pruned cannot be compared, so re-applying it, identical or not, is refused
/// with `AppliedBatchPruned` naming the expected and the given numbers, and changes
/// nothing; batches still in the log keep being compared.
pub fn apply_batch_of_pruned_applied_batch_refused<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let batches = [
        vec![put(b"a", b"1")],
        vec![put(b"a", b"2")],
        vec![del(b"a"), put(b"b", b"3")],
    ];
    for (i, batch) in batches.iter().enumerate() {
        e.apply_batch(i as u64 + 1, batch).unwrap();
    }
    assert_eq!(e.prune_batch_log(3).unwrap(), 2);
    for (given, batch) in [(1, &batches[0]), (2, &batches[1]), (2, &batches[2])] {
        assert_matches!(
            e.apply_batch(given, batch),
            Err(EngineError::AppliedBatchPruned { expected: 4, given: g }) if g == given
        );
        assert_state(&*e, &[(b"b", b"3")], 3);
        assert_eq!(
            e.get_batch(given).unwrap(),
            None,
            "a refused apply logged {given}"
        );
        assert_eq!(e.oldest_retained_batch().unwrap(), Some(3));
    }
    assert_eq!(e.apply_batch(3, &batches[2]).unwrap(), 3);
    assert_matches!(
        e.apply_batch(3, &batches[1]),
        Err(EngineError::ConflictingBatch {
            expected: 4,
            given: 3
        })
    );
}

/// §2.1, §3.7: `apply_batch` checks keys and values like `write_batch` (`Input`, same
/// variants and fields), and refuses an empty batch with `EmptyBatch` (an empty batch never
/// has a number); input is checked before the number, and nothing changes.
pub fn apply_batch_bad_input_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.apply_batch(1, &[put(b"keep", b"1")]).unwrap();
    let long = overlong_key();
    let big = oversized_value();
    for given in [2, 1, 7] {
        assert_matches!(
            e.apply_batch(given, &[put(b"new", b"x"), del(b"")]),
            Err(EngineError::Input(InputError::EmptyKey))
        );
        let expect = key_too_long();
        assert_matches!(
            e.apply_batch(given, &[del(b"keep"), put(&long, b"v")]),
            Err(EngineError::Input(ref err)) if *err == expect
        );
        let expect = value_too_large();
        assert_matches!(
            e.apply_batch(given, &[del(b"keep"), put(b"keep", &big)]),
            Err(EngineError::Input(ref err)) if *err == expect
        );
        assert_matches!(
            e.apply_batch(given, &[]),
            Err(EngineError::EmptyBatch { given: g }) if g == given
        );
        assert_state(&*e, &[(b"keep", b"1")], 1);
    }
}

/// §3.7: the apply decision is taken inside the write: threads racing to apply different
/// batches under the same numbers get exactly one `Ok` per number (the others
/// `ConflictingBatch`, or `Ok` when the winner's batch was theirs too), and each number
/// logs the batch of the thread that got it.
pub fn apply_batch_races_decide_each_number_once<B: Backend>() {
    const THREADS: u8 = 3;
    const BATCHES: u64 = 25;
    let inst = Instance::<B>::relaxed();
    let e = inst.backend.engine();
    // Thread t's batch n: equal for all threads when n is a multiple of 5 (re-applies).
    let batch = |t: u8, n: u64| {
        let owner = if n.is_multiple_of(5) { 0 } else { t };
        vec![put(b"k", &[owner]), put(&n.to_be_bytes(), &[owner])]
    };
    let wins: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let e = Arc::clone(&e);
                s.spawn(move || {
                    let mut won = Vec::new();
                    for n in 1..=BATCHES {
                        match e.apply_batch(n, &batch(t, n)) {
                            Ok(seq) => {
                                assert_eq!(seq, n);
                                won.push(n);
                            }
                            Err(EngineError::ConflictingBatch { given, .. }) => {
                                assert_eq!(given, n);
                            }
                            Err(other) => panic!("thread {t}, batch {n}: {other:?}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(e.current_sequence(), BATCHES);
    for n in 1..=BATCHES {
        let winners: Vec<u8> = (0..THREADS)
            .filter(|t| wins[usize::from(*t)].contains(&n))
            .collect();
        let owner = logged(&*e, n)[0].clone();
        if n.is_multiple_of(5) {
            assert_eq!(
                winners.len(),
                usize::from(THREADS),
                "batch {n}: {winners:?}"
            );
        } else {
            assert_eq!(winners.len(), 1, "batch {n} was applied by {winners:?}");
            assert_eq!(owner, put(b"k", &[winners[0]]), "batch {n}'s log entry");
        }
    }
}

/// §3.7: `wait_for_sequence` returns at once, with the current number, when a batch
/// later than `after` already committed; with no later batch and a zero timeout it returns
/// the current number at once too.
pub fn wait_for_sequence_returns_at_once_when_a_later_batch_exists<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    assert_eq!(e.wait_for_sequence(0, Duration::ZERO).unwrap(), 0);
    e.put_batch(&[(b"a", b"1")]).unwrap();
    e.write_batch(&[del(b"a")]).unwrap();
    let started = Instant::now();
    assert_eq!(e.wait_for_sequence(0, LONG_WAIT).unwrap(), 2);
    assert_eq!(e.wait_for_sequence(1, LONG_WAIT).unwrap(), 2);
    assert_eq!(e.wait_for_sequence(2, Duration::ZERO).unwrap(), 2);
    assert_eq!(e.wait_for_sequence(u64::MAX, Duration::ZERO).unwrap(), 2);
    assert!(
        started.elapsed() < LONG_WAIT / 2,
        "waits for committed batches blocked for {:?}",
        started.elapsed()
    );
}

/// A timeout no passing test reaches: a wait that ends only at it was not woken.
pub(crate) const LONG_WAIT: Duration = Duration::from_secs(20);

/// What a waiter of [`wait_across_a_commit`] saw.
pub(crate) struct Woken {
    /// What `wait_for_sequence` returned.
    pub(crate) seen: u64,
    /// How long it waited.
    pub(crate) waited: Duration,
    /// The batch after `after`, read as soon as the wait returned.
    pub(crate) batch: Option<Vec<Mutation>>,
}

/// A thread waits on `waiting` for a batch after `after` (for at most [`LONG_WAIT`]) and
/// then reads batch `after + 1`; once the thread is about to wait, and `pause` later,
/// `write` commits a batch and returns its number, which must be `after + 1`.
///
/// Should the waiter not have blocked yet when `write` commits, its wait returns at once
/// and the caller's checks still hold: the round then proves less, never passes wrongly.
pub(crate) fn wait_across_a_commit(
    waiting: Arc<dyn StoreEngine>,
    after: u64,
    pause: Duration,
    write: impl FnOnce() -> u64,
) -> Woken {
    let (ready, blocking) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        ready.send(()).unwrap();
        let started = Instant::now();
        let seen = waiting.wait_for_sequence(after, LONG_WAIT).unwrap();
        let batch = waiting.get_batch(after + 1).unwrap();
        Woken {
            seen,
            waited: started.elapsed(),
            batch,
        }
    });
    blocking.recv().unwrap();
    std::thread::sleep(pause);
    assert_eq!(write(), after + 1, "the batch written after {after}");
    waiter.join().expect("the waiter panicked")
}

/// A write of one batch, returning its number.
type Write = dyn Fn(&dyn StoreEngine) -> u64;

/// §3.7: a `wait_for_sequence` blocked in another thread is woken by the commit of the
/// next batch, whichever call writes it (`put_batch`, `delete_batch`, `write_batch`,
/// `apply_batch`), well before its timeout, and can read that batch at once.
pub fn wait_for_sequence_woken_by_a_commit<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    let writes: [&Write; 4] = [
        &|e| e.put_batch(&[(b"a", b"1")]).unwrap(),
        &|e| e.delete_batch(&[b"a"]).unwrap(),
        &|e| e.write_batch(&[put(b"b", b"2"), del(b"a")]).unwrap(),
        &|e| e.apply_batch(4, &[del(b"b")]).unwrap(),
    ];
    for (round, write) in writes.iter().enumerate() {
        let after = round as u64;
        let woken =
            wait_across_a_commit(e.clone(), after, Duration::from_millis(20), || write(&*e));
        assert_eq!(woken.seen, after + 1, "round {round}");
        assert!(
            woken.waited < LONG_WAIT / 2,
            "round {round}: the waiter was not woken by the commit ({:?})",
            woken.waited
        );
        assert!(
            woken.batch.is_some(),
            "round {round}: woken before the batch was visible"
        );
    }
}

/// §3.7: with no commit, `wait_for_sequence` returns the current number at its timeout,
/// also when `after` is beyond it; calls that write nothing (an empty batch, a refused or
/// an identical re-applied batch) wake nobody.
pub fn wait_for_sequence_times_out_without_a_commit<B: Backend>() {
    const TIMEOUT: Duration = Duration::from_millis(150);
    let inst = Instance::<B>::fresh();
    let e = inst.backend.engine();
    e.apply_batch(1, &[put(b"a", b"1")]).unwrap();
    for after in [1, 5] {
        let waiter = {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let started = Instant::now();
                (
                    e.wait_for_sequence(after, TIMEOUT).unwrap(),
                    started.elapsed(),
                )
            })
        };
        assert_eq!(e.write_batch(&[]).unwrap(), 1);
        assert_eq!(e.put_batch(&[]).unwrap(), 1);
        assert_eq!(e.apply_batch(1, &[put(b"a", b"1")]).unwrap(), 1);
        assert!(e.apply_batch(3, &[put(b"a", b"1")]).is_err());
        assert!(e.apply_batch(1, &[put(b"a", b"2")]).is_err());
        let (seen, waited) = waiter.join().unwrap();
        assert_eq!(seen, 1, "after {after}");
        assert!(
            waited >= TIMEOUT,
            "after {after}: returned after {waited:?}"
        );
    }
}

/// §3.7 (persistent): applying continues across a reopen of the follower: the numbers,
/// the data and the log survive; an identical re-apply is still accepted, a different batch
/// or a gap still refused; a mixed batch reads back whole; and a wait returns at once for
/// batches committed before the reopen.
pub fn apply_batch_across_reopen<B: Backend>() {
    let leader = Instance::<B>::fresh();
    let l = leader.backend.engine();
    let contents = write_leader_history(&*l);
    let follower = Instance::<B>::fresh();
    {
        let f = follower.backend.engine();
        for seq in 1..=2 {
            f.apply_batch(seq, &logged(&*l, seq)).unwrap();
        }
    }
    let follower = follower.reopen();
    {
        let f = follower.backend.engine();
        assert_eq!(f.current_sequence(), 2);
        assert_eq!(all(&*f), contents[2]);
        assert_eq!(f.wait_for_sequence(1, Duration::ZERO).unwrap(), 2);
        assert_eq!(f.apply_batch(2, &logged(&*l, 2)).unwrap(), 2);
        assert_matches!(
            f.apply_batch(2, &logged(&*l, 3)),
            Err(EngineError::ConflictingBatch {
                expected: 3,
                given: 2
            })
        );
        assert_matches!(
            f.apply_batch(4, &logged(&*l, 4)),
            Err(EngineError::SequenceGap {
                expected: 3,
                given: 4
            })
        );
        assert_eq!(all(&*f), contents[2]);
        for seq in 3..=4 {
            assert_eq!(f.apply_batch(seq, &logged(&*l, seq)).unwrap(), seq);
        }
    }
    let follower = follower.reopen();
    let f = follower.backend.engine();
    assert_eq!(f.current_sequence(), 4);
    assert_eq!(all(&*f), contents[4]);
    for seq in 1..=4 {
        assert_eq!(logged(&*f, seq), logged(&*l, seq), "log of {seq}");
    }
    assert_eq!(f.apply_batch(3, &logged(&*l, 3)).unwrap(), 3);
    assert_eq!(f.wait_for_sequence(3, LONG_WAIT).unwrap(), 4);
}

// ---------------------------------------------------------------------------------------
// Model-based test
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<(Vec<u8>, Vec<u8>)>),
    Delete(Vec<Vec<u8>>),
    /// A mixed batch: `Some(value)` puts, `None` deletes.
    Write(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Get(Vec<u8>),
    GetMany(Vec<Vec<u8>>),
    Scan {
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        forward: bool,
    },
    GetBatch(u64),
    Prune(u64),
}

/// Keys of 1 to 3 bytes over a four-byte alphabet, so scans and collisions are frequent.
pub(crate) fn small_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0x00u8, 0x01, 0x7F, 0xFF]), 1..=3)
}

/// Scan bounds: like [`small_key`] but possibly empty.
pub(crate) fn small_bound() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0x00u8, 0x01, 0x7F, 0xFF]), 0..=3)
}

/// Small values, empty included.
pub(crate) fn small_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=2)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((small_key(), small_value()), 0..=4).prop_map(Op::Put),
        2 => prop::collection::vec(small_key(), 0..=3).prop_map(Op::Delete),
        3 => prop::collection::vec((small_key(), prop::option::of(small_value())), 0..=5)
            .prop_map(Op::Write),
        2 => small_key().prop_map(Op::Get),
        2 => prop::collection::vec(small_key(), 0..=4).prop_map(Op::GetMany),
        4 => (
            small_bound(),
            small_bound(),
            prop_oneof![0..=5usize, Just(usize::MAX)],
            any::<bool>()
        )
            .prop_map(|(start, end, limit, forward)| Op::Scan {
                start,
                end,
                limit,
                forward
            }),
        2 => (0..30u64).prop_map(Op::GetBatch),
        1 => (0..30u64).prop_map(Op::Prune),
    ]
}

#[derive(Default)]
struct Model {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    log: BTreeMap<u64, Vec<Mutation>>,
    seq: u64,
}

impl Model {
    fn scan(&self, start: &[u8], end: &[u8], limit: usize, forward: bool) -> Vec<(Bytes, Bytes)> {
        let in_range = |k: &Vec<u8>| {
            (start.is_empty() || k.as_slice() >= start) && (end.is_empty() || k.as_slice() <= end)
        };
        let rows = self.data.iter().filter(|(k, _)| in_range(k));
        if forward {
            rows.take(limit).map(|(k, v)| kv(k, v)).collect()
        } else {
            rows.rev().take(limit).map(|(k, v)| kv(k, v)).collect()
        }
    }
}

fn run_engine_ops<E: StoreEngine + ?Sized>(e: &E, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put(pairs) => {
                let refs: Vec<(&[u8], &[u8])> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
                    .collect();
                let seq = e.put_batch(&refs).map_err(fail)?;
                if !pairs.is_empty() {
                    model.seq += 1;
                    for (k, v) in pairs {
                        model.data.insert(k.clone(), v.clone());
                    }
                    model
                        .log
                        .insert(model.seq, pairs.iter().map(|(k, v)| put(k, v)).collect());
                }
                prop_assert_eq!(seq, model.seq, "step {}: put_batch seq", step);
            }
            Op::Delete(keys) => {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let seq = e.delete_batch(&refs).map_err(fail)?;
                if !keys.is_empty() {
                    model.seq += 1;
                    for k in keys {
                        model.data.remove(k);
                    }
                    model
                        .log
                        .insert(model.seq, keys.iter().map(|k| del(k)).collect());
                }
                prop_assert_eq!(seq, model.seq, "step {}: delete_batch seq", step);
            }
            Op::Write(changes) => {
                let mutations: Vec<Mutation> = changes
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => put(k, v),
                        None => del(k),
                    })
                    .collect();
                let seq = e.write_batch(&mutations).map_err(fail)?;
                if !mutations.is_empty() {
                    model.seq += 1;
                    for (k, v) in changes {
                        match v {
                            Some(v) => model.data.insert(k.clone(), v.clone()),
                            None => model.data.remove(k),
                        };
                    }
                    model.log.insert(model.seq, mutations);
                }
                prop_assert_eq!(seq, model.seq, "step {}: write_batch seq", step);
            }
            Op::Get(key) => {
                let got = e.get(key).map_err(fail)?;
                prop_assert_eq!(got, model.data.get(key).map(|v| b(v)), "step {}: get", step);
            }
            Op::GetMany(keys) => {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let got = e.get_many(&refs).map_err(fail)?;
                let expected: Vec<(Bytes, Option<Bytes>)> = keys
                    .iter()
                    .map(|k| (b(k), model.data.get(k).map(|v| b(v))))
                    .collect();
                prop_assert_eq!(got, expected, "step {}: get_many", step);
            }
            Op::Scan {
                start,
                end,
                limit,
                forward,
            } => {
                let got = e.range_scan(start, end, *limit, *forward).map_err(fail)?;
                let expected = model.scan(start, end, *limit, *forward);
                prop_assert_eq!(got, expected, "step {}: range_scan", step);
            }
            Op::GetBatch(seq) => {
                let got = e.get_batch(*seq).map_err(fail)?;
                prop_assert_eq!(got, model.log.get(seq).cloned(), "step {}: get_batch", step);
            }
            Op::Prune(cutoff) => {
                let removed = e.prune_batch_log(*cutoff).map_err(fail)?;
                let before = model.log.len();
                model.log.retain(|seq, _| seq >= cutoff);
                prop_assert_eq!(
                    removed,
                    (before - model.log.len()) as u64,
                    "step {}: prune",
                    step
                );
                let oldest = e.oldest_retained_batch().map_err(fail)?;
                prop_assert_eq!(
                    oldest,
                    model.log.keys().next().copied(),
                    "step {}: oldest_retained_batch",
                    step
                );
            }
        }
        prop_assert_eq!(
            e.current_sequence(),
            model.seq,
            "step {}: current_sequence",
            step
        );
    }
    let expected = model.scan(b"", b"", usize::MAX, true);
    prop_assert_eq!(all(e), expected, "final contents");
    Ok(())
}

pub(crate) fn fail(err: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// A deterministic proptest runner: fixed seed, no failure files, `cases` cases.
pub(crate) fn runner(cases: u32, seed: u8) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// §3: random sequences of `put_batch`, `delete_batch`, `write_batch`, `get`, `get_many`,
/// `range_scan` (both directions, random limits), `get_batch` and `prune_batch_log`,
/// checked step by step against a `BTreeMap` model with a batch log and a sequence counter.
pub fn model_random_operations<B: Backend>() {
    let mut runner = runner(40, 0xE1);
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        let inst = Instance::<B>::relaxed();
        let engine = inst.backend.engine();
        run_engine_ops(&*engine, &ops)
    });
    if let Err(err) = result {
        panic!("{} engine disagrees with the model: {err}", B::NAME);
    }
}
