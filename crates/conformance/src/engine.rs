//! [`StoreEngine`] rules: `docs/contract.md` section 2 (limits) and section 3.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use store_api::{
    Backend, EngineError, InputError, MAX_KEY_LEN, MAX_VALUE_LEN, Mutation, StoreEngine,
};

use crate::harness::{
    Instance, b, key_too_long, kv, overlong_key, oversized_value, value_too_large,
};

fn put(key: &[u8], value: &[u8]) -> Mutation {
    Mutation::Put {
        key: b(key),
        value: b(value),
    }
}

fn del(key: &[u8]) -> Mutation {
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
// Model-based test
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<(Vec<u8>, Vec<u8>)>),
    Delete(Vec<Vec<u8>>),
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

/// §3: random sequences of `put_batch`, `delete_batch`, `get`, `get_many`,
/// `range_scan` (both directions, random limits), `get_batch` and `prune_batch_log`, checked
/// step by step against a `BTreeMap` model with a batch log and a sequence counter.
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
