//! [`SegmentLogStore`] rules: `docs/contract.md` section 2 (limits) and section 7.

use std::sync::Arc;

use bytes::Bytes;
use store_api::{Backend, SegmentError, SegmentId, SegmentLogStore, SegmentLogStoreExt, SessionId};

use crate::harness::{Instance, b, value_too_large};

/// The session numbered `n` (greater numbers are newer).
pub fn session(n: u128) -> SessionId {
    SessionId::from_u128(n)
}

/// The segment numbered `n` (greater numbers are newer).
pub fn segment(n: u128) -> SegmentId {
    SegmentId::from_u128(n)
}

fn entries(list: &[&[u8]]) -> Vec<Bytes> {
    list.iter().map(|e| b(e)).collect()
}

// ---------------------------------------------------------------------------------------
// Section 7: appending and reading
// ---------------------------------------------------------------------------------------

/// §7.2: `append` returns the entry's index (0, 1, 2, ...), `read_all` returns the entries
/// in append order, `read_entry_count` counts them; segments are independent.
pub fn append_returns_indexes_and_read_all_in_order<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g, h) = (session(1), segment(10), segment(11));
    assert_eq!(log.append(s, g, b"first").unwrap(), 0);
    assert_eq!(log.append(s, g, b"second").unwrap(), 1);
    assert_eq!(log.append(s, h, b"other").unwrap(), 0);
    assert_eq!(log.append(s, g, b"third").unwrap(), 2);
    assert_eq!(
        log.read_all(s, g).unwrap(),
        entries(&[b"first", b"second", b"third"])
    );
    assert_eq!(log.read_entry_count(s, g).unwrap(), 3);
    assert_eq!(log.read_all(s, h).unwrap(), entries(&[b"other"]));
    assert_eq!(log.read_entry_count(s, h).unwrap(), 1);
}

/// §0.3, §7.2: entries are arbitrary bytes: empty entries, newlines, CR/LF, NUL and `0xFF`
/// bytes round-trip exactly and count as entries.
pub fn entries_are_opaque_bytes<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    let list: [&[u8]; 8] = [
        b"",
        b"\n",
        b"a\nb\n",
        b"\r\n",
        b"",
        &[0x00, 0x00],
        &[0xFF; 5],
        b"{\"json\": true}\n",
    ];
    for (i, e) in list.iter().enumerate() {
        assert_eq!(log.append(s, g, e).unwrap(), i as u64);
    }
    assert_eq!(log.read_all(s, g).unwrap(), entries(&list));
    assert_eq!(log.read_entry_count(s, g).unwrap(), list.len() as u64);
    let only_empty = segment(2);
    log.append(s, only_empty, b"").unwrap();
    assert!(log.exists(s, only_empty).unwrap());
    assert_eq!(log.read_all(s, only_empty).unwrap(), vec![Bytes::new()]);
    log.create_segment(s, segment(3), &list).unwrap();
    assert_eq!(log.read_all(s, segment(3)).unwrap(), entries(&list));
}

/// §2.1, §7.2: an entry over `MAX_VALUE_LEN` is `InputError::ValueTooLarge` on `append`,
/// `append_trace` and `create_segment`, and a failed call leaves nothing visible (no new
/// segment, no entry, the old contents of a replaced segment kept).
pub fn oversized_entry_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g, fresh) = (session(1), segment(1), segment(2));
    log.append(s, g, b"kept").unwrap();
    let big = vec![0xAB; store_api::MAX_VALUE_LEN + 1];
    let expected = value_too_large();
    assert_matches!(log.append(s, g, &big), Err(SegmentError::Input(ref e)) if *e == expected);
    assert_matches!(log.append(s, fresh, &big), Err(SegmentError::Input(ref e)) if *e == expected);
    assert_matches!(
        log.append_trace(s, fresh, &big),
        Err(SegmentError::Input(ref e)) if *e == expected
    );
    assert_matches!(
        log.create_segment(s, g, &[b"new", &big]),
        Err(SegmentError::Input(ref e)) if *e == expected
    );
    assert_matches!(
        log.create_segment(s, fresh, &[b"new", &big]),
        Err(SegmentError::Input(ref e)) if *e == expected
    );
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"kept"]));
    assert!(!log.exists(s, fresh).unwrap());
    assert_eq!(log.read_traces(s, fresh).unwrap(), Vec::<Bytes>::new());
    assert_eq!(log.list_segments(s).unwrap(), vec![g]);
    assert_eq!(log.append(s, g, b"next").unwrap(), 1);
}

/// §7.3: an unknown segment is `NotFound { session, segment }` for `read_all`,
/// `read_entry_count` and `truncate`, does not `exist`, has no traces and no owner.
pub fn unknown_segment_not_found<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    let not_found = |op: &str, r: Result<(), SegmentError>| match r {
        Err(SegmentError::NotFound { session, segment }) if session == s && segment == g => {}
        other => panic!("{op} of an unknown segment: expected NotFound, got {other:?}"),
    };
    not_found("read_all", log.read_all(s, g).map(|_| ()));
    not_found("read_entry_count", log.read_entry_count(s, g).map(|_| ()));
    not_found("truncate", log.truncate(s, g, 0));
    assert!(!log.exists(s, g).unwrap());
    assert_eq!(log.read_traces(s, g).unwrap(), Vec::<Bytes>::new());
    assert_eq!(log.lookup_session_of(g).unwrap(), None);
    log.append(s, segment(2), b"x").unwrap();
    not_found("read_all", log.read_all(s, g).map(|_| ()));
    assert!(!log.exists(s, g).unwrap());
}

/// §7.3: `exists` and `lookup_session_of` follow the first write of a segment.
pub fn exists_and_lookup_session_of<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s1, s2) = (session(1), session(2));
    let (g1, g2, g3) = (segment(1), segment(2), segment(3));
    log.append(s1, g1, b"a").unwrap();
    log.create_segment(s2, g2, &[b"b"]).unwrap();
    assert!(log.exists(s1, g1).unwrap());
    assert!(log.exists(s2, g2).unwrap());
    assert!(!log.exists(s1, g3).unwrap());
    assert_eq!(log.lookup_session_of(g1).unwrap(), Some(s1));
    assert_eq!(log.lookup_session_of(g2).unwrap(), Some(s2));
    assert_eq!(log.lookup_session_of(g3).unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// Section 7: create_segment and truncate
// ---------------------------------------------------------------------------------------

/// §7.4: `create_segment` writes a segment whole, replacing every earlier entry; with no
/// entries it leaves an existing, empty segment (new or replaced).
pub fn create_segment_replaces_whole<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    for e in [&b"1"[..], b"2", b"3"] {
        log.append(s, g, e).unwrap();
    }
    log.create_segment(s, g, &[b"x", b"y"]).unwrap();
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"x", b"y"]));
    assert_eq!(log.read_entry_count(s, g).unwrap(), 2);
    assert_eq!(log.append(s, g, b"z").unwrap(), 2);
    log.create_segment(s, g, &[]).unwrap();
    assert!(log.exists(s, g).unwrap());
    assert_eq!(log.read_all(s, g).unwrap(), Vec::<Bytes>::new());
    assert_eq!(log.read_entry_count(s, g).unwrap(), 0);
    assert_eq!(log.append(s, g, b"again").unwrap(), 0);
    let empty = segment(2);
    log.create_segment(s, empty, &[]).unwrap();
    assert!(log.exists(s, empty).unwrap());
    assert_eq!(log.read_all(s, empty).unwrap(), Vec::<Bytes>::new());
    assert_eq!(log.read_entry_count(s, empty).unwrap(), 0);
    assert_eq!(log.list_segments(s).unwrap(), vec![empty, g]);
    assert_eq!(log.list_sessions().unwrap(), vec![s]);
    assert_eq!(log.lookup_session_of(empty).unwrap(), Some(s));
}

/// §7.4: `truncate(len)` keeps the first `len` entries (the same length is a no-op, 0
/// leaves an existing, empty segment); appends continue after the kept entries.
pub fn truncate_keeps_prefix<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    for e in [&b"0"[..], b"1", b"2", b"3", b"4"] {
        log.append(s, g, e).unwrap();
    }
    log.truncate(s, g, 5).unwrap();
    assert_eq!(log.read_entry_count(s, g).unwrap(), 5);
    log.truncate(s, g, 3).unwrap();
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"0", b"1", b"2"]));
    assert_eq!(log.read_entry_count(s, g).unwrap(), 3);
    assert_eq!(log.append(s, g, b"new").unwrap(), 3);
    assert_eq!(
        log.read_all(s, g).unwrap(),
        entries(&[b"0", b"1", b"2", b"new"])
    );
    log.truncate(s, g, 0).unwrap();
    assert!(log.exists(s, g).unwrap());
    assert_eq!(log.read_all(s, g).unwrap(), Vec::<Bytes>::new());
    assert_eq!(log.read_entry_count(s, g).unwrap(), 0);
    assert_eq!(log.list_segments(s).unwrap(), vec![g]);
    assert_eq!(log.append(s, g, b"restart").unwrap(), 0);
}

/// §7.4: truncating beyond the end is `TruncateBeyondEnd { segment, requested, len }`
/// and changes nothing.
pub fn truncate_beyond_end_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    log.append(s, g, b"a").unwrap();
    log.append(s, g, b"b").unwrap();
    assert_matches!(
        log.truncate(s, g, 3),
        Err(SegmentError::TruncateBeyondEnd { segment, requested: 3, len: 2 }) if segment == g
    );
    assert_matches!(
        log.truncate(s, g, u64::MAX),
        Err(SegmentError::TruncateBeyondEnd {
            requested: u64::MAX,
            len: 2,
            ..
        })
    );
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"a", b"b"]));
    let empty = segment(2);
    log.create_segment(s, empty, &[]).unwrap();
    assert_matches!(
        log.truncate(s, empty, 1),
        Err(SegmentError::TruncateBeyondEnd {
            requested: 1,
            len: 0,
            ..
        })
    );
}

// ---------------------------------------------------------------------------------------
// Section 7: sessions and listings
// ---------------------------------------------------------------------------------------

/// §7.5: `list_sessions` and `list_segments` are newest first (ids descending, whatever
/// the creation order); an unknown session has no segments.
pub fn listings_newest_first<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s1, s2, s3) = (session(1), session(2), session(3 << 100));
    log.append(s2, segment(20), b"x").unwrap();
    log.append(s1, segment(12), b"x").unwrap();
    log.append(s3, segment(30), b"x").unwrap();
    log.append(s1, segment(10), b"x").unwrap();
    log.create_segment(s1, segment(1 << 90), &[b"x"]).unwrap();
    log.append(s1, segment(11), b"x").unwrap();
    assert_eq!(log.list_sessions().unwrap(), vec![s3, s2, s1]);
    assert_eq!(
        log.list_segments(s1).unwrap(),
        vec![segment(1 << 90), segment(12), segment(11), segment(10)]
    );
    assert_eq!(log.list_segments(s2).unwrap(), vec![segment(20)]);
    assert_eq!(log.list_segments(session(99)).unwrap(), vec![]);
    let v7: Vec<SessionId> = (0..3).map(|_| SessionId::new_v7()).collect();
    for (i, s) in v7.iter().enumerate() {
        log.append(*s, segment(100 + i as u128), b"v7").unwrap();
    }
    let listed = log.list_sessions().unwrap();
    let mut expected = vec![s1, s2, s3];
    expected.extend(&v7);
    expected.sort();
    expected.reverse();
    assert_eq!(listed, expected);
}

/// §7.1: a segment belongs to the session that first wrote it: writes naming another
/// session are `WrongSession { segment, owner, given }` and write nothing; reads naming
/// another session see nothing.
pub fn wrong_session_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (owner, other, g) = (session(1), session(2), segment(7));
    log.append(owner, g, b"mine").unwrap();
    let wrong = |op: &str, r: Result<(), SegmentError>| match r {
        Err(SegmentError::WrongSession {
            segment,
            owner: o,
            given,
        }) if segment == g && o == owner && given == other => {}
        other => panic!("{op} naming another session: expected WrongSession, got {other:?}"),
    };
    wrong("append", log.append(other, g, b"theirs").map(|_| ()));
    wrong("append_trace", log.append_trace(other, g, b"trace"));
    wrong(
        "create_segment",
        log.create_segment(other, g, &[b"replaced"]),
    );
    wrong("truncate", log.truncate(other, g, 0));
    assert_eq!(log.read_all(owner, g).unwrap(), entries(&[b"mine"]));
    assert_eq!(log.read_traces(owner, g).unwrap(), Vec::<Bytes>::new());
    assert_eq!(log.list_sessions().unwrap(), vec![owner]);
    assert_eq!(log.list_segments(other).unwrap(), vec![]);
    assert_eq!(log.lookup_session_of(g).unwrap(), Some(owner));
    assert!(!log.exists(other, g).unwrap());
    assert_matches!(log.read_all(other, g), Err(SegmentError::NotFound { .. }));
    assert_matches!(
        log.read_entry_count(other, g),
        Err(SegmentError::NotFound { .. })
    );
    assert_eq!(log.read_traces(other, g).unwrap(), Vec::<Bytes>::new());
}

// ---------------------------------------------------------------------------------------
// Section 7: traces
// ---------------------------------------------------------------------------------------

/// §7.6: trace entries are kept apart: never in `read_all` or the count, returned in
/// order by `read_traces`, kept by `create_segment`.
pub fn traces_kept_apart<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    log.append(s, g, b"entry 0").unwrap();
    log.append_trace(s, g, b"trace 0").unwrap();
    log.append_trace(s, g, b"").unwrap();
    assert_eq!(log.append(s, g, b"entry 1").unwrap(), 1);
    log.append_trace(s, g, b"trace 2\n").unwrap();
    assert_eq!(
        log.read_all(s, g).unwrap(),
        entries(&[b"entry 0", b"entry 1"])
    );
    assert_eq!(log.read_entry_count(s, g).unwrap(), 2);
    assert_eq!(
        log.read_traces(s, g).unwrap(),
        entries(&[b"trace 0", b"", b"trace 2\n"])
    );
    log.create_segment(s, g, &[b"replaced"]).unwrap();
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"replaced"]));
    assert_eq!(
        log.read_traces(s, g).unwrap(),
        entries(&[b"trace 0", b"", b"trace 2\n"])
    );
}

/// §7.6: a segment with only trace entries does not exist for `exists`, `read_all`,
/// `read_entry_count` or the listings, while `read_traces` returns them; its first real
/// entry gets index 0.
pub fn trace_only_segment_does_not_exist<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(5), segment(5));
    log.append_trace(s, g, b"t1").unwrap();
    log.append_trace(s, g, b"t2").unwrap();
    assert!(!log.exists(s, g).unwrap());
    assert_matches!(log.read_all(s, g), Err(SegmentError::NotFound { .. }));
    assert_matches!(
        log.read_entry_count(s, g),
        Err(SegmentError::NotFound { .. })
    );
    assert_eq!(log.list_sessions().unwrap(), vec![]);
    assert_eq!(log.list_segments(s).unwrap(), vec![]);
    assert_eq!(log.read_traces(s, g).unwrap(), entries(&[b"t1", b"t2"]));
    let (s2, g2) = (session(1), segment(1));
    log.append(s2, g2, b"real").unwrap();
    log.append_trace(s2, segment(9), b"t").unwrap();
    assert_eq!(log.list_sessions().unwrap(), vec![s2]);
    assert_eq!(log.list_segments(s2).unwrap(), vec![g2]);
    assert_eq!(log.append(s, g, b"entry").unwrap(), 0);
    assert!(log.exists(s, g).unwrap());
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"entry"]));
    assert_eq!(log.list_sessions().unwrap(), vec![s, s2]);
}

// ---------------------------------------------------------------------------------------
// Section 7: concurrency, typed helpers, dyn use
// ---------------------------------------------------------------------------------------

/// §7.2: concurrent appends to one segment from several threads lose nothing and never
/// interleave: every returned index holds that thread's whole entry, indexes are exactly
/// 0..n, and each thread's entries keep their order.
pub fn concurrent_appends_never_lose_or_interleave<B: Backend>() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 40;
    let inst = Instance::<B>::relaxed();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    let entry = |t: usize, i: usize| {
        let mut e = format!("thread {t} entry {i:03}|").into_bytes();
        e.extend(std::iter::repeat_n(b'a' + t as u8, 2000 + i));
        e
    };
    let indexes: Vec<Vec<u64>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Arc::clone(&log);
                sc.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| log.append(s, g, &entry(t, i)).unwrap())
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all = log.read_all(s, g).unwrap();
    assert_eq!(all.len(), THREADS * PER_THREAD);
    let mut seen: Vec<u64> = Vec::new();
    for (t, mine) in indexes.iter().enumerate() {
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "thread {t} out of order"
        );
        for (i, index) in mine.iter().enumerate() {
            assert_eq!(
                all[*index as usize],
                entry(t, i),
                "entry {index} is not whole"
            );
            seen.push(*index);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..(THREADS * PER_THREAD) as u64).collect::<Vec<_>>());
}

/// §7.7: `append_typed` and `read_all_typed` round-trip serde values; entries that do not
/// decode are `SegmentError::Codec`.
pub fn typed_helpers<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    let values = [(1u32, String::from("one")), (2, String::new())];
    for (i, v) in values.iter().enumerate() {
        assert_eq!(log.append_typed(s, g, v).unwrap(), i as u64);
    }
    assert_eq!(
        log.read_all_typed::<(u32, String)>(s, g).unwrap(),
        values.to_vec()
    );
    log.append(s, g, &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        .unwrap();
    assert_matches!(
        log.read_all_typed::<(u32, String)>(s, g),
        Err(SegmentError::Codec { op: "decode", .. })
    );
}

/// §0.2: the segment log works through `Arc<dyn SegmentLogStore>`, shared across
/// threads.
pub fn usable_as_dyn<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let log: Arc<dyn SegmentLogStore> = inst.backend.segment_log();
    let (s, g) = (session(1), segment(1));
    assert_eq!(log.append(s, g, b"a").unwrap(), 0);
    let writer = Arc::clone(&log);
    let index = std::thread::spawn(move || writer.append(s, g, b"b").unwrap())
        .join()
        .unwrap();
    assert_eq!(index, 1);
    log.append_trace(s, g, b"t").unwrap();
    assert_eq!(log.read_all(s, g).unwrap(), entries(&[b"a", b"b"]));
    assert_eq!(log.read_traces(s, g).unwrap(), entries(&[b"t"]));
    log.truncate(s, g, 1).unwrap();
    log.create_segment(s, segment(2), &[b"c"]).unwrap();
    assert_eq!(log.read_entry_count(s, g).unwrap(), 1);
    assert_eq!(log.list_segments(s).unwrap(), vec![segment(2), g]);
    assert_eq!(log.list_sessions().unwrap(), vec![s]);
    assert_eq!(log.lookup_session_of(g).unwrap(), Some(s));
    assert!(log.exists(s, g).unwrap());
    assert_eq!(log.append_typed(s, g, &5u8).unwrap(), 1);
}
