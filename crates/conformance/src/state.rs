//! [`StateStore`] rules: `docs/contract.md` section 2 (limits, partition names) and section 4.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::ops::RangeBounds;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use store_api::{
    Backend, InputError, MAX_KEY_LEN, SnapshotError, StateError, StateSnapshot, StateStore,
    StateStoreExt, StoreEngine,
};

use crate::engine::{fail, runner, small_bound, small_key, small_value};
use crate::harness::{
    Instance, b, dir_listing, invalid_names, key_too_long, kv, overlong_key, oversized_value,
    unusual_valid_names, value_too_large,
};

/// Every entry of a partition, ascending.
fn all<S: StateStore + ?Sized>(state: &S) -> Vec<(Bytes, Bytes)> {
    state.prefix_scan(b"").expect("prefix_scan")
}

fn keys_of(rows: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    rows.iter().map(|(k, _)| k.clone()).collect()
}

fn keys(list: &[&[u8]]) -> Vec<Bytes> {
    list.iter().map(|k| b(k)).collect()
}

fn entries(list: &[(&[u8], &[u8])]) -> Vec<(Bytes, Bytes)> {
    list.iter().map(|(k, v)| kv(k, v)).collect()
}

fn open<B: Backend>(backend: &B, name: &str) -> B::State {
    backend
        .state_store(name)
        .unwrap_or_else(|e| panic!("opening partition {name:?}: {e}"))
}

/// Asserts that a state operation failed with exactly `expected`.
fn assert_input<T: std::fmt::Debug>(result: Result<T, StateError>, expected: &InputError) {
    assert_matches!(result, Err(StateError::Input(ref err)) if err == expected);
}

// ---------------------------------------------------------------------------------------
// Section 2: limits, names
// ---------------------------------------------------------------------------------------

/// §2.1: an empty key is `InputError::EmptyKey` on `get`, `contains`, `put`, `delete` and
/// `get_or_insert`, and changes nothing.
pub fn empty_key_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    s.put(b"keep", b"1").unwrap();
    let expected = InputError::EmptyKey;
    assert_input(s.get(b""), &expected);
    assert_input(s.contains(b""), &expected);
    assert_input(s.put(b"", b"v"), &expected);
    assert_input(s.delete(b""), &expected);
    assert_input(s.get_or_insert(b"", b"v"), &expected);
    assert_eq!(all(&s), entries(&[(b"keep", b"1")]));
    assert_eq!(s.len(), 1);
    assert_eq!(s.size_bytes(), 5);
}

/// §2.1: a key of exactly `MAX_KEY_LEN` bytes works in every operation.
pub fn max_key_len_accepted<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    let key = vec![0xFF; MAX_KEY_LEN];
    s.put(&key, b"v").unwrap();
    assert_eq!(s.get(&key).unwrap(), Some(b(b"v")));
    assert!(s.contains(&key).unwrap());
    assert_eq!(s.prefix_scan(&key).unwrap(), vec![kv(&key, b"v")]);
    assert_eq!(s.size_bytes(), (MAX_KEY_LEN + 1) as u64);
    s.delete(&key).unwrap();
    assert_eq!(s.get_or_insert(&key, b"d").unwrap(), b(b"d"));
    assert_eq!(s.get(&key).unwrap(), Some(b(b"d")));
}

/// §2.1: a key of `MAX_KEY_LEN + 1` bytes is `InputError::KeyTooLong` on every operation
/// and changes nothing.
pub fn key_too_long_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    s.put(b"keep", b"1").unwrap();
    let long = overlong_key();
    let expected = key_too_long();
    assert_input(s.get(&long), &expected);
    assert_input(s.contains(&long), &expected);
    assert_input(s.put(&long, b"v"), &expected);
    assert_input(s.delete(&long), &expected);
    assert_input(s.get_or_insert(&long, b"v"), &expected);
    assert_eq!(all(&s), entries(&[(b"keep", b"1")]));
    assert_eq!(s.len(), 1);
    assert_eq!(s.size_bytes(), 5);
}

/// §2.1: a value of `MAX_VALUE_LEN + 1` bytes is `InputError::ValueTooLarge` on `put`
/// and `get_or_insert`, and the existing value stays.
pub fn value_too_large_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    s.put(b"keep", b"1").unwrap();
    let big = oversized_value();
    let expected = value_too_large();
    assert_input(s.put(b"keep", &big), &expected);
    assert_input(s.put(b"new", &big), &expected);
    assert_input(s.get_or_insert(b"new", &big), &expected);
    assert_eq!(all(&s), entries(&[(b"keep", b"1")]));
    assert_eq!(s.size_bytes(), 5);
}

/// §0.3, §2.1: an empty value is a value: `get`, `contains`, scans, `len` and snapshots see
/// it, and `get_or_insert` returns it instead of inserting its default.
pub fn empty_value_round_trips<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    s.put(b"empty", b"").unwrap();
    assert_eq!(s.get(b"empty").unwrap(), Some(Bytes::new()));
    assert!(s.contains(b"empty").unwrap());
    assert_eq!(s.get(b"missing").unwrap(), None);
    assert!(!s.contains(b"missing").unwrap());
    assert_eq!(s.len(), 1);
    assert!(!s.is_empty());
    assert_eq!(s.get_or_insert(b"empty", b"default").unwrap(), Bytes::new());
    assert_eq!(s.get(b"empty").unwrap(), Some(Bytes::new()));
    assert_eq!(s.get_or_insert(b"other", b"").unwrap(), Bytes::new());
    assert_eq!(s.get(b"other").unwrap(), Some(Bytes::new()));
    assert_eq!(all(&s), entries(&[(b"empty", b""), (b"other", b"")]));
    let snap = s.snapshot().unwrap();
    assert_eq!(
        snap.entries(),
        entries(&[(b"empty", b""), (b"other", b"")]).as_slice()
    );
    s.clear().unwrap();
    s.restore(&snap).unwrap();
    assert_eq!(s.get(b"empty").unwrap(), Some(Bytes::new()));
}

/// §2.2: invalid partition names (`.`, `..`, `/`, `\`, NUL, control characters, empty,
/// 256 bytes) are `InputError::InvalidName` with the rule they break, and create nothing:
/// no partition, no file outside the backend's directory.
pub fn invalid_partition_names_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let before = dir_listing(inst.root());
    for (name, rule) in invalid_names() {
        match inst.backend.state_store(&name) {
            Err(StateError::Input(InputError::InvalidName {
                kind,
                name: got_name,
                rule: got_rule,
            })) => {
                assert_eq!(kind, "partition", "{name:?}");
                assert_eq!(got_name, name);
                assert_eq!(got_rule, rule, "{name:?}");
            }
            Err(other) => panic!("partition {name:?}: expected InvalidName, got {other:?}"),
            Ok(_) => panic!("partition {name:?} was accepted"),
        }
    }
    assert_eq!(
        dir_listing(inst.root()),
        before,
        "a rejected name created a file"
    );
    for name in ["a", "b", "escape", "..a"] {
        let s = open(&inst.backend, name);
        assert!(s.is_empty(), "partition {name:?} is not empty");
    }
}

/// §2.2: unusual but valid partition names (SQL quotes like `x'; DROP TABLE t; --`, dots,
/// non-ASCII, 255 bytes) work, keep their name, and are kept apart from each other.
pub fn unusual_partition_names_round_trip<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let names = unusual_valid_names();
    for name in &names {
        let mut s = open(&inst.backend, name);
        assert_eq!(s.partition(), name);
        assert!(s.is_empty(), "partition {name:?} starts non-empty");
        s.put(name.as_bytes(), name.as_bytes()).unwrap();
        s.put(b"shared", name.as_bytes()).unwrap();
        s.flush().unwrap();
    }
    for name in &names {
        let s = open(&inst.backend, name);
        let mut expected = vec![
            kv(name.as_bytes(), name.as_bytes()),
            kv(b"shared", name.as_bytes()),
        ];
        expected.sort();
        assert_eq!(all(&s), expected, "partition {name:?}");
    }
    let engine = inst.backend.engine();
    assert_eq!(engine.range_scan(b"", b"", 10, true).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------
// Section 4: point operations and sizes
// ---------------------------------------------------------------------------------------

/// §4.2: `get`, `put` (insert and overwrite), `delete` (present and missing) and
/// `contains`.
pub fn get_put_delete_contains<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    assert_eq!(s.get(b"a").unwrap(), None);
    assert!(!s.contains(b"a").unwrap());
    s.put(b"a", b"1").unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b(b"1")));
    assert!(s.contains(b"a").unwrap());
    s.put(b"a", b"22").unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b(b"22")));
    s.put(b"b", b"3").unwrap();
    s.delete(b"a").unwrap();
    assert_eq!(s.get(b"a").unwrap(), None);
    assert!(!s.contains(b"a").unwrap());
    s.delete(b"a").unwrap();
    s.delete(b"never").unwrap();
    assert_eq!(all(&s), entries(&[(b"b", b"3")]));
}

/// §4.2: `get_or_insert` stores and returns the default when the key is absent, and
/// returns the stored value untouched when present.
pub fn get_or_insert<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    assert_eq!(s.get_or_insert(b"k", b"first").unwrap(), b(b"first"));
    assert_eq!(s.get(b"k").unwrap(), Some(b(b"first")));
    assert_eq!(s.get_or_insert(b"k", b"second").unwrap(), b(b"first"));
    assert_eq!(s.get(b"k").unwrap(), Some(b(b"first")));
    assert_eq!(s.len(), 1);
    assert_eq!(s.size_bytes(), 6);
}

/// §4.2: `len` and `is_empty` follow inserts, overwrites, deletes and `clear`.
pub fn len_and_is_empty<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    assert_eq!(s.len(), 0);
    assert!(s.is_empty());
    s.put(b"a", b"1").unwrap();
    s.put(b"b", b"2").unwrap();
    s.put(b"a", b"3").unwrap();
    assert_eq!(s.len(), 2);
    assert!(!s.is_empty());
    s.delete(b"missing").unwrap();
    assert_eq!(s.len(), 2);
    s.delete(b"a").unwrap();
    assert_eq!(s.len(), 1);
    s.clear().unwrap();
    assert_eq!(s.len(), 0);
    assert!(s.is_empty());
    assert_eq!(all(&s), vec![]);
}

/// §4.2: `size_bytes` is exactly the bytes of keys plus values after puts, overwrites
/// and deletes, and 0 after `clear`.
pub fn size_bytes_exact<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    assert_eq!(s.size_bytes(), 0);
    s.put(b"abc", b"12345").unwrap();
    assert_eq!(s.size_bytes(), 8);
    s.put(b"abc", b"12").unwrap();
    assert_eq!(s.size_bytes(), 5);
    s.put(b"x", b"").unwrap();
    assert_eq!(s.size_bytes(), 6);
    s.get_or_insert(b"yy", b"zzz").unwrap();
    assert_eq!(s.size_bytes(), 11);
    s.delete(b"missing").unwrap();
    assert_eq!(s.size_bytes(), 11);
    s.delete(b"abc").unwrap();
    assert_eq!(s.size_bytes(), 6);
    s.clear().unwrap();
    assert_eq!(s.size_bytes(), 0);
    s.put(b"q", b"r").unwrap();
    assert_eq!(s.size_bytes(), 2);
    let snap = StateSnapshot::from_entries([kv(b"long-key", b"value"), kv(b"k", b"")]).unwrap();
    s.restore(&snap).unwrap();
    assert_eq!(s.size_bytes(), 14);
}

// ---------------------------------------------------------------------------------------
// Section 4: scans
// ---------------------------------------------------------------------------------------

/// §4.3: `prefix_scan` returns the matching keys in ascending byte order, whatever the
/// insertion order.
pub fn prefix_scan_ascending<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    for k in [
        &b"user/2"[..],
        b"user/10",
        b"user/1",
        b"users",
        b"use",
        b"user/",
        b"zed",
    ] {
        s.put(k, k).unwrap();
    }
    assert_eq!(
        keys_of(&s.prefix_scan(b"user/").unwrap()),
        keys(&[b"user/", b"user/1", b"user/10", b"user/2"])
    );
    assert_eq!(
        keys_of(&s.prefix_scan(b"user").unwrap()),
        keys(&[b"user/", b"user/1", b"user/10", b"user/2", b"users"])
    );
    assert_eq!(
        s.prefix_scan(b"user/1").unwrap(),
        entries(&[(b"user/1", b"user/1"), (b"user/10", b"user/10")])
    );
    assert_eq!(s.prefix_scan(b"nothing").unwrap(), vec![]);
}

/// §4.3: an empty prefix matches every key.
pub fn prefix_scan_empty_prefix_matches_all<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    assert_eq!(s.prefix_scan(b"").unwrap(), vec![]);
    for k in [&[0xFFu8][..], &[0x00], b"m", &[0x00, 0x00]] {
        s.put(k, b"v").unwrap();
    }
    assert_eq!(
        keys_of(&s.prefix_scan(b"").unwrap()),
        keys(&[&[0x00], &[0x00, 0x00], b"m", &[0xFF]])
    );
}

/// §4.3: prefixes made of `0xFF` bytes work (no successor overflow).
pub fn prefix_scan_ff_prefix<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    let all_keys: [&[u8]; 7] = [
        &[0xFF, 0xFF, 0x00],
        &[0xFF, 0xFF, 0xFF, 0x01],
        &[0xFF, 0xFF],
        &[0xFF, 0xFE],
        &[0xFF],
        &[0xFF, 0xFF, 0xFF],
        &[0xFE, 0xFF],
    ];
    for k in all_keys {
        s.put(k, b"v").unwrap();
    }
    assert_eq!(
        keys_of(&s.prefix_scan(&[0xFF, 0xFF]).unwrap()),
        keys(&[
            &[0xFF, 0xFF],
            &[0xFF, 0xFF, 0x00],
            &[0xFF, 0xFF, 0xFF],
            &[0xFF, 0xFF, 0xFF, 0x01]
        ])
    );
    assert_eq!(
        keys_of(&s.prefix_scan(&[0xFF, 0xFF, 0xFF]).unwrap()),
        keys(&[&[0xFF, 0xFF, 0xFF], &[0xFF, 0xFF, 0xFF, 0x01]])
    );
    assert_eq!(s.prefix_scan(&[0xFF]).unwrap().len(), 6);
    assert_eq!(s.prefix_scan(&[0xFF, 0xFF, 0xFF, 0xFF]).unwrap(), vec![]);
}

/// §4.3: `range_scan(start..end)` returns `start <= key < end`: **end exclusive**.
pub fn range_scan_end_exclusive<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    for k in [&b"a"[..], b"b", b"ba", b"c", b"d", &[0xFF]] {
        s.put(k, k).unwrap();
    }
    assert_eq!(
        s.range_scan(&b"b"[..]..&b"c"[..]).unwrap(),
        entries(&[(b"b", b"b"), (b"ba", b"ba")])
    );
    assert_eq!(
        keys_of(&s.range_scan(&b"a"[..]..&b"ba"[..]).unwrap()),
        keys(&[b"a", b"b"])
    );
    assert_eq!(
        keys_of(&s.range_scan(&b""[..]..&b"b"[..]).unwrap()),
        keys(&[b"a"])
    );
    assert_eq!(
        keys_of(&s.range_scan(&b"c"[..]..&[0xFF, 0x00][..]).unwrap()),
        keys(&[b"c", b"d", &[0xFF]])
    );
}

/// §4.3: an empty (`start == end`) or inverted (`start > end`) range gives nothing.
pub fn range_scan_empty_or_inverted_gives_nothing<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    for k in [&b"a"[..], b"b", b"c"] {
        s.put(k, k).unwrap();
    }
    assert_eq!(s.range_scan(&b"b"[..]..&b"b"[..]).unwrap(), vec![]);
    assert_eq!(s.range_scan(&b"c"[..]..&b"a"[..]).unwrap(), vec![]);
    assert_eq!(s.range_scan(&b"b"[..]..&b""[..]).unwrap(), vec![]);
    assert_eq!(s.range_scan(&b""[..]..&b""[..]).unwrap(), vec![]);
}

/// §4.3: `range_scan_bounds` with open ends: an unbounded start begins at the first key, an
/// unbounded end runs to the last (`0xFF` keys included), both give every entry; the
/// extension trait's `scan` takes the same ranges as range expressions, and both work
/// through a `Box<dyn StateStore>`.
pub fn range_scan_bounds_open_ends<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s: Box<dyn StateStore> = Box::new(open(&inst.backend, "p"));
    let stored: [&[u8]; 7] = [b"a", b"b", b"ba", b"c", b"d", &[0xFF], &[0xFF, 0xFF]];
    for k in stored.iter().rev() {
        s.put(k, k).unwrap();
    }
    s.flush().unwrap();
    let scan = |start, end| keys_of(&s.range_scan_bounds(start, end).unwrap());
    let every = keys(&stored);
    assert_eq!(scan(Unbounded, Unbounded), every);
    assert_eq!(s.scan(..).unwrap(), entries(&stored.map(|k| (k, k))));
    assert_eq!(scan(Unbounded, Excluded(b"b")), keys(&[b"a"]));
    assert_eq!(scan(Unbounded, Included(b"b")), keys(&[b"a", b"b"]));
    assert_eq!(scan(Unbounded, Excluded(b"")), keys(&[]));
    assert_eq!(scan(Included(b"c"), Unbounded), every[3..].to_vec());
    assert_eq!(scan(Excluded(b"c"), Unbounded), every[4..].to_vec());
    assert_eq!(scan(Included(&[0xFF]), Unbounded), every[5..].to_vec());
    assert_eq!(scan(Excluded(&[0xFF, 0xFF]), Unbounded), keys(&[]));
    assert_eq!(scan(Included(b""), Unbounded), every);
    assert_eq!(
        scan(Excluded(b""), Unbounded),
        every,
        "keys are never empty"
    );

    let via_scan = |rows: Result<Vec<(Bytes, Bytes)>, StateError>| keys_of(&rows.unwrap());
    assert_eq!(via_scan(s.scan(..&b"b"[..])), keys(&[b"a"]));
    assert_eq!(via_scan(s.scan(..=&b"b"[..])), keys(&[b"a", b"b"]));
    assert_eq!(via_scan(s.scan(&b"c"[..]..)), every[3..].to_vec());
    assert_eq!(
        via_scan(s.scan((Excluded(&b"c"[..]), Unbounded))),
        every[4..].to_vec()
    );
    assert_eq!(
        s.scan(&b"b"[..]..&b"d"[..]).unwrap(),
        s.range_scan(&b"b"[..]..&b"d"[..]).unwrap()
    );
}

/// §4.3: `range_scan_bounds` honours each bound's kind: included and excluded starts and ends in
/// every combination, on stored keys and between them; a range that holds no key (inverted,
/// or one position with a side excluded) gives nothing; bounds are positions, so an empty
/// or over-long bound is accepted.
pub fn range_scan_bounds_included_and_excluded<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    for k in [&b"a"[..], b"b", b"ba", b"c", b"d"] {
        s.put(k, k).unwrap();
    }
    let scan = |start, end| keys_of(&s.range_scan_bounds(start, end).unwrap());
    assert_eq!(
        scan(Included(b"b"), Included(b"c")),
        keys(&[b"b", b"ba", b"c"])
    );
    assert_eq!(scan(Included(b"b"), Excluded(b"c")), keys(&[b"b", b"ba"]));
    assert_eq!(scan(Excluded(b"b"), Included(b"c")), keys(&[b"ba", b"c"]));
    assert_eq!(scan(Excluded(b"b"), Excluded(b"c")), keys(&[b"ba"]));
    assert_eq!(
        scan(Excluded(b"a"), Excluded(b"d")),
        keys(&[b"b", b"ba", b"c"])
    );
    assert_eq!(scan(Included(b"bb"), Included(b"cc")), keys(&[b"c"]));
    assert_eq!(scan(Excluded(b"bb"), Excluded(b"cc")), keys(&[b"c"]));
    assert_eq!(scan(Included(b"b"), Included(b"b")), keys(&[b"b"]));

    assert_eq!(scan(Included(b"b"), Excluded(b"b")), keys(&[]));
    assert_eq!(scan(Excluded(b"b"), Included(b"b")), keys(&[]));
    assert_eq!(scan(Excluded(b"b"), Excluded(b"b")), keys(&[]));
    assert_eq!(scan(Excluded(b"a"), Excluded(b"a\0")), keys(&[]));
    assert_eq!(scan(Included(b"c"), Included(b"a")), keys(&[]));
    assert_eq!(scan(Excluded(b"c"), Excluded(b"a")), keys(&[]));
    assert_eq!(scan(Included(b""), Included(b"")), keys(&[]));

    let beyond = vec![0xFF; MAX_KEY_LEN + 10];
    assert_eq!(scan(Included(b"c"), Included(&beyond)), keys(&[b"c", b"d"]));
    assert_eq!(scan(Excluded(&beyond), Unbounded), keys(&[]));
    s.clear().unwrap();
    assert_eq!(s.range_scan_bounds(Unbounded, Unbounded).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------
// Section 4: snapshots
// ---------------------------------------------------------------------------------------

/// §4.4: `snapshot` captures the whole state and `restore` replaces the whole state with
/// it (keys added since are gone, deleted ones are back, overwritten values revert).
pub fn snapshot_restore_replaces_whole_state<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    s.put(b"a", b"1").unwrap();
    s.put(b"b", b"2").unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(
        snap.entries(),
        entries(&[(b"a", b"1"), (b"b", b"2")]).as_slice()
    );
    s.put(b"c", b"3").unwrap();
    s.delete(b"a").unwrap();
    s.put(b"b", b"changed").unwrap();
    s.restore(&snap).unwrap();
    assert_eq!(all(&s), entries(&[(b"a", b"1"), (b"b", b"2")]));
    assert_eq!(s.get(b"c").unwrap(), None);
    assert_eq!(s.len(), 2);
    assert_eq!(s.size_bytes(), 4);
    s.restore(&StateSnapshot::default()).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.size_bytes(), 0);
    assert_eq!(s.snapshot().unwrap(), StateSnapshot::default());
}

/// §4.4: snapshot bytes round-trip through `to_bytes`/`from_bytes` and restore into
/// another partition of the same backend, replacing what it held.
pub fn snapshot_bytes_restore_into_other_partition<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut src = open(&inst.backend, "source");
    src.put(b"k1", b"v1").unwrap();
    src.put(b"k2", b"").unwrap();
    src.put(&[0xFF, 0x00], &[0x00, 0xFF]).unwrap();
    let snap = src.snapshot().unwrap();
    let bytes = snap.to_bytes();
    let decoded = StateSnapshot::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, snap);
    let mut dst = open(&inst.backend, "target");
    dst.put(b"stale", b"x").unwrap();
    dst.restore(&decoded).unwrap();
    assert_eq!(all(&dst), all(&src));
    assert_eq!(dst.len(), 3);
    assert_eq!(dst.get(b"stale").unwrap(), None);
    assert_eq!(dst.snapshot().unwrap().to_bytes(), bytes);
    src.put(b"k1", b"after").unwrap();
    assert_eq!(dst.get(b"k1").unwrap(), Some(b(b"v1")));
}

/// A snapshot of `{k1: v1, k2: "", FF 00: 00 FF}` in format version 1, as every backend
/// writes it: magic, version, flags, entry count, length-prefixed keys and values
/// ascending, CRC-32. Fixed here, not computed, so that a backend (or a change of
/// store-api) writing anything else fails.
const PORTABLE_SNAPSHOT: [u8; 54] = [
    0x53, 0x54, 0x53, 0x4e, 0x41, 0x50, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x6b, 0x31, 0x02, 0x00, 0x00, 0x00, 0x76, 0x31, 0x02, 0x00, 0x00, 0x00,
    0x6b, 0x32, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xff, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x00, 0xff, 0x02, 0xfc, 0xa3, 0x10,
];

/// §4.4: snapshots are one backend-independent format, so a snapshot taken on any
/// backend restores on every other: fixed bytes restore into this backend, and this
/// backend's snapshot of the same entries encodes to exactly those bytes.
pub fn snapshot_bytes_are_portable_across_backends<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut restored = open(&inst.backend, "restored");
    restored.put(b"stale", b"x").unwrap();
    let snapshot = StateSnapshot::from_bytes(&PORTABLE_SNAPSHOT).unwrap();
    restored.restore(&snapshot).unwrap();
    assert_eq!(
        all(&restored),
        entries(&[(b"k1", b"v1"), (b"k2", b""), (&[0xFF, 0x00], &[0x00, 0xFF])])
    );
    let mut written = open(&inst.backend, "written");
    written.put(&[0xFF, 0x00], &[0x00, 0xFF]).unwrap();
    written.put(b"k2", b"").unwrap();
    written.put(b"k1", b"v1").unwrap();
    assert_eq!(written.snapshot().unwrap().to_bytes(), PORTABLE_SNAPSHOT);
}

/// §4.4: damaged snapshot bytes (truncated, a flipped bit, bad magic, unknown version,
/// trailing bytes) are a `SnapshotError`, never a partial or different snapshot.
pub fn damaged_snapshot_bytes_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "p");
    s.put(b"alpha", b"1").unwrap();
    s.put(b"beta", b"").unwrap();
    let bytes = s.snapshot().unwrap().to_bytes();
    for cut in 0..bytes.len() {
        assert!(
            StateSnapshot::from_bytes(&bytes[..cut]).is_err(),
            "truncated to {cut} bytes was accepted"
        );
    }
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut damaged = bytes.clone();
            damaged[i] ^= bit;
            assert!(
                StateSnapshot::from_bytes(&damaged).is_err(),
                "bit flip at byte {i} was accepted"
            );
        }
    }
    let mut body_flip = bytes.clone();
    body_flip[20] ^= 0x04;
    assert_eq!(
        StateSnapshot::from_bytes(&body_flip),
        Err(SnapshotError::ChecksumMismatch)
    );
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'X';
    assert_eq!(
        StateSnapshot::from_bytes(&bad_magic),
        Err(SnapshotError::BadMagic)
    );
    assert_eq!(
        StateSnapshot::from_bytes(b"not a snapshot at all"),
        Err(SnapshotError::BadMagic)
    );
    let mut bad_version = bytes.clone();
    bad_version[6] = 2;
    assert_eq!(
        StateSnapshot::from_bytes(&bad_version),
        Err(SnapshotError::UnsupportedVersion(2))
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(StateSnapshot::from_bytes(&trailing).is_err());
    assert_eq!(all(&s), entries(&[(b"alpha", b"1"), (b"beta", b"")]));
}

// ---------------------------------------------------------------------------------------
// Section 1/4: partitions
// ---------------------------------------------------------------------------------------

/// §1.1, §4.1: partitions never see each other's keys nor the engine's (including names
/// that are prefixes of one another, whose naive key concatenations would collide), and
/// `clear` of one touches no other.
pub fn partitions_are_isolated<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let engine = inst.backend.engine();
    let mut a = open(&inst.backend, "a");
    let mut ab = open(&inst.backend, "ab");
    let mut other = open(&inst.backend, "other");
    a.put(b"bk", b"from a").unwrap();
    ab.put(b"k", b"from ab").unwrap();
    other.put(b"bk", b"from other").unwrap();
    engine
        .put_batch(&[(b"bk", b"from engine"), (b"k", b"engine")])
        .unwrap();
    assert_eq!(all(&a), entries(&[(b"bk", b"from a")]));
    assert_eq!(all(&ab), entries(&[(b"k", b"from ab")]));
    assert_eq!(all(&other), entries(&[(b"bk", b"from other")]));
    assert_eq!(ab.get(b"bk").unwrap(), None);
    assert_eq!(a.get(b"k").unwrap(), None);
    a.clear().unwrap();
    assert!(a.is_empty());
    assert_eq!(all(&ab), entries(&[(b"k", b"from ab")]));
    assert_eq!(other.len(), 1);
    assert_eq!(
        engine.range_scan(b"", b"", 10, true).unwrap(),
        entries(&[(b"bk", b"from engine"), (b"k", b"engine")])
    );
    engine.delete_batch(&[b"k", b"bk"]).unwrap();
    assert_eq!(all(&ab), entries(&[(b"k", b"from ab")]));
    assert_eq!(other.get(b"bk").unwrap(), Some(b(b"from other")));
}

/// §4.1: a partition has one owner: a second live handle is
/// `StateError::PartitionInUse`; dropping the first allows opening it again, with the
/// flushed state.
pub fn partition_in_use<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut first = open(&inst.backend, "owned");
    first.put(b"k", b"v").unwrap();
    first.flush().unwrap();
    assert_matches!(
        inst.backend.state_store("owned").map(|_| ()),
        Err(StateError::PartitionInUse { ref partition }) if partition == "owned"
    );
    let _unrelated = open(&inst.backend, "owned2");
    drop(first);
    let second = open(&inst.backend, "owned");
    assert_eq!(second.get(b"k").unwrap(), Some(b(b"v")));
    assert_matches!(
        inst.backend.state_store("owned").map(|_| ()),
        Err(StateError::PartitionInUse { .. })
    );
}

// ---------------------------------------------------------------------------------------
// Section 4: durability (persistent backends)
// ---------------------------------------------------------------------------------------

/// §4.5 (persistent): after `flush` and a reopen of the backend, the partition is exactly
/// what it was at the flush (inserts, overwrites, deletes, empty values, sizes).
pub fn flush_then_reopen_restores_exact_state<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let expected;
    {
        let mut s = open(&inst.backend, "durable");
        s.put(b"a", b"1").unwrap();
        s.put(b"b", b"2").unwrap();
        s.put(b"a", b"overwritten").unwrap();
        s.put(b"empty", b"").unwrap();
        s.put(&[0xFF; 3], &[0x00; 3]).unwrap();
        s.delete(b"b").unwrap();
        s.flush().unwrap();
        expected = (all(&s), s.len(), s.size_bytes());
        let mut cleared = open(&inst.backend, "cleared");
        cleared.put(b"gone", b"soon").unwrap();
        cleared.flush().unwrap();
        cleared.clear().unwrap();
        cleared.flush().unwrap();
    }
    let inst = inst.reopen();
    let s = open(&inst.backend, "durable");
    assert_eq!((all(&s), s.len(), s.size_bytes()), expected);
    assert_eq!(s.get(b"empty").unwrap(), Some(Bytes::new()));
    let cleared = open(&inst.backend, "cleared");
    assert!(cleared.is_empty());
    assert_eq!(cleared.size_bytes(), 0);
}

/// §4.5 (persistent): writes after the last flush may be lost, but the flushed state is
/// intact after a reopen: every key untouched since the flush keeps its value, and a key
/// written after the flush holds either nothing or what was written.
pub fn flushed_state_intact_after_later_writes<B: Backend>() {
    let inst = Instance::<B>::fresh();
    {
        let mut s = open(&inst.backend, "p");
        s.put(b"a", b"1").unwrap();
        s.put(b"b", b"2").unwrap();
        s.flush().unwrap();
        s.put(b"c", b"3").unwrap();
    }
    let inst = inst.reopen();
    let s = open(&inst.backend, "p");
    assert_eq!(s.get(b"a").unwrap(), Some(b(b"1")));
    assert_eq!(s.get(b"b").unwrap(), Some(b(b"2")));
    let c = s.get(b"c").unwrap();
    assert!(c.is_none() || c == Some(b(b"3")), "c = {c:?}");
}

/// §4.4, §4.5 (persistent): a snapshot restored and flushed survives a reopen exactly.
pub fn restore_then_flush_survives_reopen<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let snap = StateSnapshot::from_entries([kv(b"x", b"1"), kv(b"y", b"")]).unwrap();
    {
        let mut s = open(&inst.backend, "p");
        s.put(b"old", b"gone").unwrap();
        s.flush().unwrap();
        s.restore(&snap).unwrap();
        s.flush().unwrap();
    }
    let inst = inst.reopen();
    let s = open(&inst.backend, "p");
    assert_eq!(s.snapshot().unwrap(), snap);
}

// ---------------------------------------------------------------------------------------
// Section 4: typed helpers and dyn use
// ---------------------------------------------------------------------------------------

/// §4.6: `get_typed`, `put_typed` and `update` (serde, postcard) round-trip values,
/// `update` returning `None` deletes, and bytes that do not decode are `StateError::Codec`.
pub fn typed_helpers<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s = open(&inst.backend, "typed");
    s.put_typed(b"pair", &(7u64, String::from("seven")))
        .unwrap();
    assert_eq!(
        s.get_typed::<(u64, String)>(b"pair").unwrap(),
        Some((7, String::from("seven")))
    );
    assert_eq!(s.get_typed::<u64>(b"missing").unwrap(), None);
    let next = s
        .update(b"counter", |n: Option<u64>| Some(n.unwrap_or(0) + 1))
        .unwrap();
    assert_eq!(next, Some(1));
    let next = s
        .update(b"counter", |n: Option<u64>| n.map(|n| n + 10))
        .unwrap();
    assert_eq!(next, Some(11));
    assert_eq!(s.get_typed::<u64>(b"counter").unwrap(), Some(11));
    let gone = s.update(b"counter", |_: Option<u64>| None).unwrap();
    assert_eq!(gone, None);
    assert!(!s.contains(b"counter").unwrap());
    s.put(b"garbage", &[0xFF, 0xFF, 0xFF]).unwrap();
    assert_matches!(
        s.get_typed::<String>(b"garbage"),
        Err(StateError::Codec { op: "decode", ref key, .. }) if key.as_ref() == b"garbage"
    );
}

/// §0.2, §4.6: a partition works through `Box<dyn StateStore>`, typed helpers included, and
/// can move to another owner thread.
pub fn usable_as_box_dyn<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let mut s: Box<dyn StateStore> = Box::new(open(&inst.backend, "dyn"));
    assert_eq!(s.partition(), "dyn");
    s.put(b"a", b"1").unwrap();
    s.put_typed(b"n", &5u32).unwrap();
    let mut s = std::thread::spawn(move || {
        assert_eq!(s.get(b"a").unwrap(), Some(b(b"1")));
        s.delete(b"a").unwrap();
        s
    })
    .join()
    .unwrap();
    assert_eq!(s.get_typed::<u32>(b"n").unwrap(), Some(5));
    assert_eq!(s.len(), 1);
    let snap = s.snapshot().unwrap();
    s.clear().unwrap();
    s.restore(&snap).unwrap();
    s.flush().unwrap();
    assert_eq!(keys_of(&s.prefix_scan(b"").unwrap()), keys(&[b"n"]));
    assert_eq!(
        keys_of(&s.range_scan(&b"a"[..]..&b"z"[..]).unwrap()),
        keys(&[b"n"])
    );
}

// ---------------------------------------------------------------------------------------
// Model-based test
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Contains(Vec<u8>),
    GetOrInsert(Vec<u8>, Vec<u8>),
    PrefixScan(Vec<u8>),
    RangeScan(Vec<u8>, Vec<u8>),
    BoundsScan(Bound<Vec<u8>>, Bound<Vec<u8>>),
    Clear,
    Snapshot,
    Restore,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (small_key(), small_value()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => small_key().prop_map(Op::Delete),
        2 => small_key().prop_map(Op::Get),
        1 => small_key().prop_map(Op::Contains),
        2 => (small_key(), small_value()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        3 => small_bound().prop_map(Op::PrefixScan),
        3 => (small_bound(), small_bound()).prop_map(|(s, e)| Op::RangeScan(s, e)),
        3 => (scan_bound(), scan_bound()).prop_map(|(s, e)| Op::BoundsScan(s, e)),
        1 => Just(Op::Clear),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Restore),
        1 => Just(Op::Flush),
    ]
}

/// A bound of any kind over [`small_bound`] positions.
fn scan_bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        1 => Just(Unbounded),
        2 => small_bound().prop_map(Included),
        2 => small_bound().prop_map(Excluded),
    ]
}

fn model_rows<'a>(rows: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Vec<(Bytes, Bytes)> {
    rows.map(|(k, v)| kv(k, v)).collect()
}

fn run_state_ops<S: StateStore + ?Sized>(s: &mut S, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut saved = (StateSnapshot::default(), BTreeMap::new());
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put(k, v) => {
                s.put(k, v).map_err(fail)?;
                model.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                s.delete(k).map_err(fail)?;
                model.remove(k);
            }
            Op::Get(k) => {
                let got = s.get(k).map_err(fail)?;
                prop_assert_eq!(got, model.get(k).map(|v| b(v)), "step {}: get", step);
            }
            Op::Contains(k) => {
                let got = s.contains(k).map_err(fail)?;
                prop_assert_eq!(got, model.contains_key(k), "step {}: contains", step);
            }
            Op::GetOrInsert(k, v) => {
                let got = s.get_or_insert(k, v).map_err(fail)?;
                let expected = model.entry(k.clone()).or_insert_with(|| v.clone());
                prop_assert_eq!(got, b(expected), "step {}: get_or_insert", step);
            }
            Op::PrefixScan(p) => {
                let got = s.prefix_scan(p).map_err(fail)?;
                let expected = model_rows(model.iter().filter(|(k, _)| k.starts_with(p)));
                prop_assert_eq!(got, expected, "step {}: prefix_scan", step);
            }
            Op::RangeScan(start, end) => {
                let got = s
                    .range_scan(start.as_slice()..end.as_slice())
                    .map_err(fail)?;
                let expected = model_rows(model.iter().filter(|(k, _)| {
                    k.as_slice() >= start.as_slice() && k.as_slice() < end.as_slice()
                }));
                prop_assert_eq!(got, expected, "step {}: range_scan", step);
            }
            Op::BoundsScan(start, end) => {
                let (start, end) = (
                    start.as_ref().map(Vec::as_slice),
                    end.as_ref().map(Vec::as_slice),
                );
                let got = s.range_scan_bounds(start, end).map_err(fail)?;
                let expected =
                    model_rows(model.iter().filter(|(k, _)| {
                        RangeBounds::<&[u8]>::contains(&(start, end), &k.as_slice())
                    }));
                prop_assert_eq!(got, expected, "step {}: range_scan_bounds", step);
            }
            Op::Clear => {
                s.clear().map_err(fail)?;
                model.clear();
            }
            Op::Snapshot => {
                let snap = s.snapshot().map_err(fail)?;
                prop_assert_eq!(
                    snap.entries().to_vec(),
                    model_rows(model.iter()),
                    "step {}: snapshot",
                    step
                );
                saved = (snap, model.clone());
            }
            Op::Restore => {
                s.restore(&saved.0).map_err(fail)?;
                model = saved.1.clone();
            }
            Op::Flush => s.flush().map_err(fail)?,
        }
        prop_assert_eq!(s.len(), model.len(), "step {}: len", step);
        prop_assert_eq!(s.is_empty(), model.is_empty(), "step {}: is_empty", step);
        let size: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
        prop_assert_eq!(s.size_bytes(), size as u64, "step {}: size_bytes", step);
    }
    prop_assert_eq!(all(s), model_rows(model.iter()), "final contents");
    Ok(())
}

/// §4: random sequences of `put`, `delete`, `get`, `contains`, `get_or_insert`,
/// `prefix_scan`, `range_scan`, `range_scan_bounds`, `clear`, `snapshot`/`restore` and
/// `flush`, with `len`, `is_empty` and `size_bytes` checked after every step against a
/// `BTreeMap` model.
pub fn model_random_operations<B: Backend>() {
    let mut runner = runner(40, 0x5A);
    let result = runner.run(&prop::collection::vec(op(), 1..50), |ops| {
        let inst = Instance::<B>::relaxed();
        let mut state = inst.backend.state_store("model").map_err(fail)?;
        run_state_ops(&mut state, &ops)
    });
    if let Err(err) = result {
        panic!("{} state store disagrees with the model: {err}", B::NAME);
    }
}
