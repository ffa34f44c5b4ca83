//! The table of bad arguments: every public entry point of every store, each row with the
//! outcome it must give (an error variant, or for hostile-but-valid names an empty
//! answer). It proves contract §0.4 (typed errors, never a panic), §2.3 (a rejected call
//! changes nothing) and §2.4 (which error for what) on every backend.
//!
//! [`run`] seeds a backend with data in every store, then for each row checks that:
//! - the call does not panic and gives the row's outcome, identical to the in-memory
//!   reference's (variant and fields);
//! - no file of the backend's directory changed (contents hashed before and after, the
//!   lock file included), or on PostgreSQL no relation of the store's schema (every
//!   table's rows hashed, sequences' states, indexes by name);
//! - nothing visible changed: a fixed set of reads answers the same before and after.

use std::borrow::Borrow;
use std::path::Path;

use bytes::Bytes;
use store_api::{AccountKind, Backend, Direction, Durability, LocationBuf, StateSnapshot};
use store_mem::MemBackend;

use super::HostileReport;
use crate::differential::ops::{
    Blob, CallSlot, Change, Draft, Inbound, Op, PostingSpec, Slot, overlong_key, oversized,
};
use crate::differential::subject::{AnySubject, Subject};
use crate::differential::{Subjects, compare, prelude};
use crate::failure::OrFail;
use crate::fingerprint::Fingerprint;
use crate::site::Site;
use crate::{Failure, ensure};

/// One row: a name, the call, and the start of the outcome it must give.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the row tries.
    pub name: String,
    /// The call.
    pub op: Op,
    /// The outcome must start with this (`Err(Input(KeyTooLong` ...).
    pub expect: &'static str,
}

fn case(name: impl Into<String>, op: Op, expect: &'static str) -> Case {
    Case {
        name: name.into(),
        op,
        expect,
    }
}

fn b(bytes: &'static [u8]) -> Blob {
    Blob(Bytes::from_static(bytes))
}

fn p(path: &str, asset: &str, amount: u64, direction: Direction) -> PostingSpec {
    PostingSpec {
        book: None,
        path: path.into(),
        asset: asset.into(),
        amount,
        direction,
    }
}

fn draft(id: u64, book: &str, postings: Vec<PostingSpec>) -> Draft {
    Draft {
        id,
        book: book.into(),
        postings,
        idempotency_key: None,
        metadata: Vec::new(),
    }
}

fn sale(id: u64, amount: u64) -> Draft {
    draft(
        id,
        "shop",
        vec![
            p("cash", "USD", amount, Direction::Debit),
            p("sales", "USD", amount, Direction::Credit),
        ],
    )
}

/// Names no backend may accept, for books and partitions.
pub fn invalid_names() -> Vec<String> {
    vec![
        String::new(),
        ".".into(),
        "..".into(),
        "/".into(),
        "../escape".into(),
        "a/b".into(),
        "\\".into(),
        "..\\escape".into(),
        "nul\0byte".into(),
        "line\nbreak".into(),
        "tab\there".into(),
        "del\u{7f}".into(),
        "c1\u{85}".into(),
        "n".repeat(256),
    ]
}

/// Names that are valid but hostile: SQL quotes and comments, path-like dots.
pub fn hostile_valid_names() -> Vec<String> {
    vec![
        "x'; DROP TABLE events; --".into(),
        "Robert\"); DELETE FROM state; --".into(),
        "...".into(),
        "%s%n*?[]".into(),
        "CON".into(),
    ]
}

/// The operations [`run`] seeds a backend with before trying the table: data in every
/// store for a bad call to damage.
pub fn seed_ops() -> Vec<Op> {
    let mut ops = prelude();
    ops.extend([
        Op::Put(vec![(b(b"a"), b(b"1")), (b(b"b"), b(b""))]),
        Op::StatePut("p1".into(), b(b"k"), b(b"v")),
        Op::StateFlush("p1".into()),
        Op::Commit(sale(1, 100)),
        Op::Commit(Draft {
            idempotency_key: Some("idem".into()),
            ..sale(2, 5)
        }),
        Op::Append {
            session: 0,
            segment: 0,
            entry: b(b"entry"),
        },
        Op::WriteOutputs(vec![(
            Slot {
                lyquid: 0,
                block: 1,
                kind: 0,
            },
            vec![b(b"out")],
        )]),
        Op::UpsertCallOutput(
            CallSlot {
                callee: 0,
                block: 1,
                seq: 0,
            },
            Some(b(b"reply")),
        ),
        Op::AppendInbound(vec![Inbound {
            callee: 0,
            order_block: 2,
            order_seq: 0,
            call_block: 1,
            payload: b(b"call"),
        }]),
    ]);
    ops
}

/// Reads whose answers must not change when a bad call is rejected.
pub fn probes() -> Vec<Op> {
    vec![
        Op::CurrentSeq,
        Op::Scan {
            start: b(b""),
            end: b(b""),
            limit: usize::MAX,
            forward: true,
        },
        Op::GetBatch(1),
        Op::OldestBatch,
        Op::StatePrefix("p1".into(), b(b"")),
        Op::StateSize("p1".into()),
        Op::Events {
            book: "shop".into(),
            after: None,
            limit: usize::MAX,
        },
        Op::Events {
            book: "_system".into(),
            after: None,
            limit: usize::MAX,
        },
        Op::Trial {
            book: "shop".into(),
            as_of: None,
        },
        Op::Balance {
            book: "shop".into(),
            path: "cash".into(),
            as_of: None,
        },
        Op::ListSessions,
        Op::ReadAll {
            session: 0,
            segment: 0,
        },
        Op::ReadTraces {
            session: 0,
            segment: 0,
        },
        Op::ReadOutputs(Slot {
            lyquid: 0,
            block: 1,
            kind: 0,
        }),
        Op::ReadCallOutput(CallSlot {
            callee: 0,
            block: 1,
            seq: 0,
        }),
        Op::ReadInbound {
            callee: 0,
            from: None,
            until: Some(u64::MAX),
            limit: usize::MAX,
        },
        Op::ReadInbound {
            callee: 0,
            from: None,
            until: None,
            limit: usize::MAX,
        },
        Op::ListPartitions {
            after: None,
            limit: usize::MAX,
        },
        Op::ListBooks {
            after: None,
            limit: usize::MAX,
        },
        Op::ListAssets {
            after: None,
            limit: usize::MAX,
        },
        Op::ListAccounts {
            book: "shop".into(),
            after: None,
            limit: usize::MAX,
        },
        Op::ListOutputKeys {
            after: None,
            limit: usize::MAX,
        },
        Op::ListCallOutputKeys {
            after: None,
            limit: usize::MAX,
        },
        Op::ListCallees {
            after: None,
            limit: usize::MAX,
        },
        Op::ListSessionsPage {
            after: None,
            limit: usize::MAX,
        },
        Op::ListSegmentsPage {
            session: 0,
            after: None,
            limit: usize::MAX,
        },
    ]
}

fn snapshot_damage() -> Vec<(String, Vec<u8>, &'static str)> {
    let good = StateSnapshot::from_entries([
        (Bytes::from_static(b"a"), Bytes::from_static(b"1")),
        (Bytes::from_static(b"b"), Bytes::new()),
    ])
    .map(|s| s.to_bytes())
    .unwrap_or_default();
    let mut out = vec![
        ("empty".to_owned(), Vec::new(), "Err(Snapshot(Truncated"),
        (
            "not a snapshot".into(),
            b"hello world, not a snapshot".to_vec(),
            "Err(Snapshot(BadMagic",
        ),
        (
            "header only".into(),
            good[..16].to_vec(),
            "Err(Snapshot(Truncated",
        ),
        (
            "truncated by one byte".into(),
            good[..good.len() - 1].to_vec(),
            "Err(Snapshot(",
        ),
    ];
    let mut version = good.clone();
    version[6] = 2;
    out.push((
        "future version".into(),
        version,
        "Err(Snapshot(UnsupportedVersion(2",
    ));
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    out.push((
        "one bit flipped".into(),
        flipped,
        "Err(Snapshot(ChecksumMismatch",
    ));
    let mut trailing = good.clone();
    trailing.push(0);
    out.push(("one trailing byte".into(), trailing, "Err(Snapshot("));
    out
}

/// Every row of the table.
pub fn cases() -> Vec<Case> {
    let empty = || b(b"");
    let mut t = vec![
        case(
            "engine put: empty key",
            Op::Put(vec![(empty(), b(b"v"))]),
            "Err(Input(EmptyKey",
        ),
        case(
            "engine put: key of 481 bytes",
            Op::Put(vec![(overlong_key(), b(b"v"))]),
            "Err(Input(KeyTooLong { len: 481, max: 480",
        ),
        case(
            "engine put: value of 16 MiB + 1",
            Op::Put(vec![(b(b"k"), oversized())]),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "engine put: a valid pair, then an empty key",
            Op::Put(vec![(b(b"new"), b(b"v")), (empty(), b(b"v"))]),
            "Err(Input(EmptyKey",
        ),
        case(
            "engine put: a valid pair, then an oversized value",
            Op::Put(vec![(b(b"new"), b(b"v")), (b(b"k"), oversized())]),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "engine delete: empty key",
            Op::Delete(vec![b(b"a"), empty()]),
            "Err(Input(EmptyKey",
        ),
        case(
            "engine delete: key of 481 bytes",
            Op::Delete(vec![b(b"a"), overlong_key()]),
            "Err(Input(KeyTooLong",
        ),
        case(
            "engine get: empty key",
            Op::Get(empty()),
            "Err(Input(EmptyKey",
        ),
        case(
            "engine get: key of 481 bytes",
            Op::Get(overlong_key()),
            "Err(Input(KeyTooLong",
        ),
        case(
            "engine get_many: an empty key among valid ones",
            Op::GetMany(vec![b(b"a"), empty()]),
            "Err(Input(EmptyKey",
        ),
        case(
            "engine get_many: an overlong key",
            Op::GetMany(vec![overlong_key()]),
            "Err(Input(KeyTooLong",
        ),
        case(
            "engine range_scan: start after end",
            Op::Scan {
                start: b(b"z"),
                end: b(b"a"),
                limit: usize::MAX,
                forward: true,
            },
            "Ok([])",
        ),
        case(
            "engine range_scan: limit 0",
            Op::Scan {
                start: empty(),
                end: empty(),
                limit: 0,
                forward: false,
            },
            "Ok([])",
        ),
        case(
            "engine get_batch: u64::MAX",
            Op::GetBatch(u64::MAX),
            "Ok(None)",
        ),
        case("engine get_batch: 0", Op::GetBatch(0), "Ok(None)"),
        case(
            "engine write_batch: a valid put and delete, then an empty key",
            Op::WriteBatch(vec![
                Change::Put(b(b"new"), b(b"v")),
                Change::Delete(b(b"a")),
                Change::Delete(empty()),
            ]),
            "Err(Input(EmptyKey",
        ),
        case(
            "engine write_batch: a delete of a key of 481 bytes",
            Op::WriteBatch(vec![
                Change::Delete(b(b"a")),
                Change::Delete(overlong_key()),
            ]),
            "Err(Input(KeyTooLong { len: 481, max: 480",
        ),
        case(
            "engine write_batch: a delete, then a value of 16 MiB + 1",
            Op::WriteBatch(vec![
                Change::Delete(b(b"a")),
                Change::Put(b(b"k"), oversized()),
            ]),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "engine write_batch: empty",
            Op::WriteBatch(Vec::new()),
            "Ok(1)",
        ),
        case(
            "engine apply_batch: a gap (batch 3 after batch 1)",
            Op::ApplyBatch {
                offset: 2,
                changes: vec![Change::Put(b(b"new"), b(b"v"))],
            },
            "Err(SequenceGap { expected: 2, given: 3 })",
        ),
        case(
            "engine apply_batch: 2^63, far past the next number",
            Op::ApplyBatch {
                offset: i64::MAX,
                changes: vec![Change::Delete(b(b"a"))],
            },
            "Err(SequenceGap { expected: 2, given: 9223372036854775808 })",
        ),
        case(
            "engine apply_batch: number 0",
            Op::ApplyBatch {
                offset: -1,
                changes: vec![Change::Delete(b(b"a"))],
            },
            "Err(SequenceGap { expected: 2, given: 0 })",
        ),
        case(
            "engine apply_batch: a different batch under applied number 1",
            Op::ApplyBatch {
                offset: 0,
                changes: vec![Change::Delete(b(b"a")), Change::Delete(b(b"b"))],
            },
            "Err(ConflictingBatch { expected: 2, given: 1 })",
        ),
        case(
            "engine apply_batch: batch 1 again, identical",
            Op::ReapplyBatch { back: 0 },
            "Ok(1)",
        ),
        case(
            "engine apply_batch: no mutations",
            Op::ApplyBatch {
                offset: 1,
                changes: Vec::new(),
            },
            "Err(EmptyBatch { given: 2 })",
        ),
        case(
            "engine apply_batch: the next number, an empty key",
            Op::ApplyBatch {
                offset: 1,
                changes: vec![Change::Put(b(b"new"), b(b"v")), Change::Delete(empty())],
            },
            "Err(Input(EmptyKey",
        ),
        case(
            "engine apply_batch: the next number, a value of 16 MiB + 1",
            Op::ApplyBatch {
                offset: 1,
                changes: vec![Change::Put(b(b"k"), oversized())],
            },
            "Err(Input(ValueTooLarge",
        ),
        case(
            "state put: empty key",
            Op::StatePut("p1".into(), empty(), b(b"v")),
            "Err(Input(EmptyKey",
        ),
        case(
            "state put: key of 481 bytes",
            Op::StatePut("p1".into(), overlong_key(), b(b"v")),
            "Err(Input(KeyTooLong",
        ),
        case(
            "state put: value of 16 MiB + 1",
            Op::StatePut("p1".into(), b(b"k"), oversized()),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "state delete: empty key",
            Op::StateDelete("p1".into(), empty()),
            "Err(Input(EmptyKey",
        ),
        case(
            "state get: key of 481 bytes",
            Op::StateGet("p1".into(), overlong_key()),
            "Err(Input(KeyTooLong",
        ),
        case(
            "state contains: empty key",
            Op::StateContains("p1".into(), empty()),
            "Err(Input(EmptyKey",
        ),
        case(
            "state get_or_insert: key of 481 bytes",
            Op::StateGetOrInsert("p1".into(), overlong_key(), b(b"v")),
            "Err(Input(KeyTooLong",
        ),
        case(
            "state get_or_insert: default of 16 MiB + 1",
            Op::StateGetOrInsert("p1".into(), b(b"new"), oversized()),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "state partition already held",
            Op::OpenPartition("p1".into()),
            "Err(PartitionInUse",
        ),
        case(
            "state range_scan: inverted range",
            Op::StateRange("p1".into(), b(b"z"), b(b"a")),
            "Ok([])",
        ),
        case(
            "ledger register_asset: id of 33 bytes",
            Op::RegisterAsset {
                id: "X".repeat(33),
                precision: 2,
                name: "n".into(),
            },
            "Err(Name(InvalidName { kind: \"asset\"",
        ),
        case(
            "ledger register_asset: id with a slash",
            Op::RegisterAsset {
                id: "US/D".into(),
                precision: 2,
                name: "n".into(),
            },
            "Err(Name(InvalidName",
        ),
        case(
            "ledger register_asset: precision 19",
            Op::RegisterAsset {
                id: "NEW".into(),
                precision: 19,
                name: "n".into(),
            },
            "Err(Input(FieldTooLong",
        ),
        case(
            "ledger register_asset: display name of 4097 bytes",
            Op::RegisterAsset {
                id: "NEW".into(),
                precision: 2,
                name: "n".repeat(4097),
            },
            "Err(Input(FieldTooLong",
        ),
        case(
            "ledger register_asset: USD redefined",
            Op::RegisterAsset {
                id: "USD".into(),
                precision: 3,
                name: "name".into(),
            },
            "Err(AlreadyExists",
        ),
        case(
            "ledger open_account: in the reserved _system book",
            Op::OpenAccount {
                book: "_system".into(),
                path: "cash".into(),
                asset: "USD".into(),
                kind: AccountKind::Asset,
                min_balance: None,
            },
            "Err(InvalidBook",
        ),
        case(
            "ledger open_account: in a reserved _other book",
            Op::OpenAccount {
                book: "_other".into(),
                path: "cash".into(),
                asset: "USD".into(),
                kind: AccountKind::Asset,
                min_balance: None,
            },
            "Err(InvalidBook",
        ),
        case(
            "ledger open_account: unregistered asset",
            Op::OpenAccount {
                book: "shop".into(),
                path: "yen".into(),
                asset: "JPY".into(),
                kind: AccountKind::Asset,
                min_balance: None,
            },
            "Err(UnknownAsset",
        ),
        case(
            "ledger open_account: cash redefined",
            Op::OpenAccount {
                book: "shop".into(),
                path: "cash".into(),
                asset: "USD".into(),
                kind: AccountKind::Liability,
                min_balance: None,
            },
            "Err(AlreadyExists",
        ),
        case(
            "ledger open_account: path of 201 bytes",
            Op::OpenAccount {
                book: "shop".into(),
                path: "p".repeat(201),
                asset: "USD".into(),
                kind: AccountKind::Asset,
                min_balance: None,
            },
            "Err(Name(InvalidName { kind: \"account path\"",
        ),
        case(
            "ledger commit: in the reserved _system book",
            Op::Commit(draft(
                10,
                "_system",
                vec![
                    p("cash", "USD", 1, Direction::Debit),
                    p("sales", "USD", 1, Direction::Credit),
                ],
            )),
            "Err(InvalidBook",
        ),
        case(
            "ledger commit: no postings",
            Op::Commit(draft(10, "shop", vec![])),
            "Err(EmptyTransaction",
        ),
        case(
            "ledger commit: amount 0",
            Op::Commit(draft(
                10,
                "shop",
                vec![
                    p("cash", "USD", 0, Direction::Debit),
                    p("sales", "USD", 0, Direction::Credit),
                ],
            )),
            "Err(InvalidAmount { index: 0",
        ),
        case(
            "ledger commit: unknown account",
            Op::Commit(draft(
                10,
                "shop",
                vec![
                    p("nowhere", "USD", 1, Direction::Debit),
                    p("sales", "USD", 1, Direction::Credit),
                ],
            )),
            "Err(UnknownAccount",
        ),
        case(
            "ledger commit: account of another book",
            Op::Commit(Draft {
                postings: vec![
                    PostingSpec {
                        book: Some("bank".into()),
                        ..p("cash", "EUR", 1, Direction::Debit)
                    },
                    p("sales", "USD", 1, Direction::Credit),
                ],
                ..draft(10, "shop", vec![])
            }),
            "Err(AccountOutsideBook",
        ),
        case(
            "ledger commit: asset mismatch",
            Op::Commit(draft(
                10,
                "shop",
                vec![
                    p("cash", "EUR", 1, Direction::Debit),
                    p("sales", "EUR", 1, Direction::Credit),
                ],
            )),
            "Err(AssetMismatch",
        ),
        case(
            "ledger commit: unbalanced",
            Op::Commit(draft(
                10,
                "shop",
                vec![
                    p("cash", "USD", 2, Direction::Debit),
                    p("sales", "USD", 1, Direction::Credit),
                ],
            )),
            "Err(Unbalanced",
        ),
        case(
            "ledger commit: below the cash floor",
            Op::Commit(draft(
                10,
                "shop",
                vec![
                    p("cash", "USD", 1000, Direction::Credit),
                    p("sales", "USD", 1000, Direction::Debit),
                ],
            )),
            "Err(ConstraintViolation",
        ),
        case(
            "ledger commit: balance overflow",
            Op::Commit(draft(
                10,
                "shop",
                vec![
                    p("fees", "USD", i64::MAX as u64, Direction::Debit),
                    p("fees", "USD", i64::MAX as u64, Direction::Debit),
                    p("sales", "USD", u64::MAX - 1, Direction::Credit),
                ],
            )),
            "Err(Overflow",
        ),
        case(
            "ledger commit: idempotency key of 129 bytes",
            Op::Commit(Draft {
                idempotency_key: Some("k".repeat(129)),
                ..sale(10, 1)
            }),
            "Err(Input(FieldTooLong",
        ),
        case(
            "ledger commit: metadata value of 4097 bytes",
            Op::Commit(Draft {
                metadata: vec![("k".into(), "v".repeat(4097))],
                ..sale(10, 1)
            }),
            "Err(Input(FieldTooLong",
        ),
        case(
            "ledger commit: a used transaction id",
            Op::Commit(sale(1, 7)),
            "Err(DuplicateTransaction",
        ),
        case(
            "ledger commit: a used idempotency key (returns the first receipt)",
            Op::Commit(Draft {
                idempotency_key: Some("idem".into()),
                ..sale(11, 9)
            }),
            "Ok(Committed",
        ),
        case(
            "ledger commit_batch: all drafts rejected",
            Op::CommitBatch(vec![draft(12, "shop", vec![]), sale(1, 1)]),
            "Ok([\"Err(EmptyTransaction",
        ),
        case(
            "ledger balance: unknown account",
            Op::Balance {
                book: "shop".into(),
                path: "nowhere".into(),
                as_of: None,
            },
            "Err(UnknownAccount",
        ),
        case(
            "ledger account_history: unknown account",
            Op::History {
                book: "shop".into(),
                path: "nowhere".into(),
                after: 0,
                limit: 10,
            },
            "Err(UnknownAccount",
        ),
        case(
            "ledger read_events: after u64::MAX",
            Op::Events {
                book: "shop".into(),
                after: Some(u64::MAX),
                limit: usize::MAX,
            },
            "Ok([])",
        ),
        case(
            "ledger transaction: unknown id",
            Op::TxLookup(999),
            "Ok(None)",
        ),
        case(
            "segment append: entry of 16 MiB + 1",
            Op::Append {
                session: 0,
                segment: 0,
                entry: oversized(),
            },
            "Err(Input(ValueTooLarge",
        ),
        case(
            "segment append_trace: entry of 16 MiB + 1",
            Op::Trace {
                session: 0,
                segment: 0,
                entry: oversized(),
            },
            "Err(Input(ValueTooLarge",
        ),
        case(
            "segment append: another session's segment",
            Op::Append {
                session: 1,
                segment: 0,
                entry: b(b"x"),
            },
            "Err(WrongSession",
        ),
        case(
            "segment create_segment: another session's segment",
            Op::CreateSegment {
                session: 1,
                segment: 0,
                entries: vec![],
            },
            "Err(WrongSession",
        ),
        case(
            "segment create_segment: an oversized entry",
            Op::CreateSegment {
                session: 0,
                segment: 0,
                entries: vec![b(b"ok"), oversized()],
            },
            "Err(Input(ValueTooLarge",
        ),
        case(
            "segment truncate: beyond the end",
            Op::Truncate {
                session: 0,
                segment: 0,
                len: 2,
            },
            "Err(TruncateBeyondEnd",
        ),
        case(
            "segment truncate: another session's segment",
            Op::Truncate {
                session: 1,
                segment: 0,
                len: 0,
            },
            "Err(WrongSession",
        ),
        case(
            "segment read_all: unknown segment",
            Op::ReadAll {
                session: 0,
                segment: 2,
            },
            "Err(NotFound",
        ),
        case(
            "segment read_all: another session's segment",
            Op::ReadAll {
                session: 1,
                segment: 0,
            },
            "Err(NotFound",
        ),
        case(
            "segment read_entry_count: unknown segment",
            Op::EntryCount {
                session: 1,
                segment: 1,
            },
            "Err(NotFound",
        ),
        case(
            "side effects write_outputs: payload of 16 MiB + 1",
            Op::WriteOutputs(vec![(
                Slot {
                    lyquid: 1,
                    block: 9,
                    kind: 0,
                },
                vec![oversized()],
            )]),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "side effects write_outputs: a new slot, then a conflicting replay",
            Op::WriteOutputs(vec![
                (
                    Slot {
                        lyquid: 0,
                        block: 0,
                        kind: 2,
                    },
                    vec![b(b"new")],
                ),
                (
                    Slot {
                        lyquid: 0,
                        block: 1,
                        kind: 0,
                    },
                    vec![b(b"different")],
                ),
            ]),
            "Err(ConflictingReplay",
        ),
        case(
            "side effects upsert_inter_call_output: a different output",
            Op::UpsertCallOutput(
                CallSlot {
                    callee: 0,
                    block: 1,
                    seq: 0,
                },
                None,
            ),
            "Err(ConflictingCallOutputReplay",
        ),
        case(
            "side effects upsert_inter_call_output: payload of 16 MiB + 1",
            Op::UpsertCallOutput(
                CallSlot {
                    callee: 1,
                    block: 5,
                    seq: 0,
                },
                Some(oversized()),
            ),
            "Err(Input(ValueTooLarge",
        ),
        case(
            "side effects append_inbound: delivered before made",
            Op::AppendInbound(vec![Inbound {
                callee: 1,
                order_block: 1,
                order_seq: 0,
                call_block: 2,
                payload: b(b"x"),
            }]),
            "Err(MalformedInboundCall",
        ),
        case(
            "side effects append_inbound: payload of 16 MiB + 1",
            Op::AppendInbound(vec![Inbound {
                callee: 1,
                order_block: 3,
                order_seq: 0,
                call_block: 1,
                payload: oversized(),
            }]),
            "Err(MalformedInboundCall",
        ),
        case(
            "side effects append_inbound: a new record, then a conflicting one",
            Op::AppendInbound(vec![
                Inbound {
                    callee: 1,
                    order_block: 3,
                    order_seq: 0,
                    call_block: 1,
                    payload: b(b"x"),
                },
                Inbound {
                    callee: 0,
                    order_block: 2,
                    order_seq: 0,
                    call_block: 1,
                    payload: b(b"other"),
                },
            ]),
            "Err(ConflictingInboundCall",
        ),
        case(
            "side effects read_inbound: limit 0",
            Op::ReadInbound {
                callee: 0,
                from: None,
                until: Some(u64::MAX),
                limit: 0,
            },
            "Ok([])",
        ),
        case(
            "list_partitions: limit 0",
            Op::ListPartitions {
                after: None,
                limit: 0,
            },
            "Ok([])",
        ),
        case(
            "ledger list_books: limit 0",
            Op::ListBooks {
                after: None,
                limit: 0,
            },
            "Ok([])",
        ),
        case(
            "ledger list_assets: an asset id of 33 bytes as the cursor",
            Op::ListAssets {
                after: Some("X".repeat(33)),
                limit: usize::MAX,
            },
            "Err(Name(InvalidName { kind: \"asset\"",
        ),
        case(
            "ledger list_accounts: a path of 201 bytes as the cursor",
            Op::ListAccounts {
                book: "shop".into(),
                after: Some("p".repeat(201)),
                limit: usize::MAX,
            },
            "Err(Name(InvalidName { kind: \"account path\"",
        ),
        case(
            "ledger list_accounts: the reserved _system book",
            Op::ListAccounts {
                book: "_system".into(),
                after: None,
                limit: usize::MAX,
            },
            "Ok([])",
        ),
        case(
            "side effects list_output_keys: limit 0",
            Op::ListOutputKeys {
                after: None,
                limit: 0,
            },
            "Ok([])",
        ),
        case(
            "side effects list_inbound_callees: after the last callee",
            Op::ListCallees {
                after: Some(u8::MAX - 1),
                limit: usize::MAX,
            },
            "Ok([])",
        ),
        case(
            "segment list_segments_page: an unknown session",
            Op::ListSegmentsPage {
                session: 7,
                after: None,
                limit: usize::MAX,
            },
            "Ok([])",
        ),
    ];
    for name in invalid_names() {
        t.push(case(
            format!("state_store name {name:?}"),
            Op::OpenPartition(name.clone()),
            "Err(Input(InvalidName",
        ));
        t.push(case(
            format!("list_partitions cursor {name:?}"),
            Op::ListPartitions {
                after: Some(name.clone()),
                limit: usize::MAX,
            },
            "Err(Input(InvalidName",
        ));
        t.push(case(
            format!("book name {name:?} (list_accounts)"),
            Op::ListAccounts {
                book: name.clone(),
                after: None,
                limit: usize::MAX,
            },
            "Err(Name(InvalidName",
        ));
        t.push(case(
            format!("book name {name:?} (list_books cursor)"),
            Op::ListBooks {
                after: Some(name.clone()),
                limit: usize::MAX,
            },
            "Err(Name(InvalidName",
        ));
        t.push(case(
            format!("book name {name:?} (trial_balance)"),
            Op::Trial {
                book: name.clone(),
                as_of: None,
            },
            "Err(Name(InvalidName",
        ));
        t.push(case(
            format!("book name {name:?} (commit)"),
            Op::Commit(draft(
                10,
                &name,
                vec![p("cash", "USD", 1, Direction::Debit)],
            )),
            "Err(Name(InvalidName",
        ));
    }
    for name in hostile_valid_names() {
        t.push(case(
            format!("unknown hostile book {name:?} (trial_balance)"),
            Op::Trial {
                book: name.clone(),
                as_of: None,
            },
            "Ok([])",
        ));
        t.push(case(
            format!("unknown hostile book {name:?} (read_events)"),
            Op::Events {
                book: name.clone(),
                after: None,
                limit: 10,
            },
            "Ok([])",
        ));
        t.push(case(
            format!("unknown hostile book {name:?} (list_accounts)"),
            Op::ListAccounts {
                book: name.clone(),
                after: None,
                limit: usize::MAX,
            },
            "Ok([])",
        ));
        t.push(case(
            format!("hostile partition cursor {name:?}"),
            Op::ListPartitions {
                after: Some(name.clone()),
                limit: usize::MAX,
            },
            "Ok([",
        ));
        t.push(case(
            format!("unknown hostile account {name:?}"),
            Op::Balance {
                book: name.clone(),
                path: name.clone(),
                as_of: None,
            },
            "Err(UnknownAccount",
        ));
    }
    for (name, bytes, expect) in snapshot_damage() {
        t.push(case(
            format!("state restore: damaged snapshot ({name})"),
            Op::StateRestoreBytes("p1".into(), bytes),
            expect,
        ));
    }
    t
}

fn apply(subject: &mut dyn AnySubject, op: &Op) -> String {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| subject.apply(op)))
        .unwrap_or_else(|_| "PANIC".to_owned())
}

/// A fresh store of `B` under `root`: the directory `root/db` for the embedded backends, a
/// fresh schema on the test server for PostgreSQL.
fn fresh<B: Backend>(root: &Path) -> Result<LocationBuf<B>, Failure> {
    B::scratch_location(&root.join("db")).or_fail(format!("a scratch location for {}", B::NAME))
}

/// Seeds `B` (durability `Immediate`) and the reference, then tries every row of
/// [`cases`]. `root` must be an empty directory; `B`'s store is its scratch location there
/// (a fresh schema on the test server for PostgreSQL, whose fingerprint is every relation
/// of the schema with its rows: see [`Site`]).
pub fn run<B: Backend<Location: Site>>(root: &Path) -> Result<HostileReport, Failure> {
    let location = fresh::<B>(root)?;
    let dir: &B::Location = location.borrow();
    let mut subjects = Subjects::new();
    subjects
        .subjects
        .push(Box::new(Subject::<MemBackend>::open(&root.join("mem"))?));
    subjects.subjects.push(Box::new(Subject::<B>::open_with(
        dir,
        Durability::Immediate,
    )?));
    compare(&mut subjects, &seed_ops()).map_err(|f| f.context("seeding"))?;
    let [reference, subject] = subjects.subjects.as_mut_slice() else {
        return Err(Failure::new("expected two subjects"));
    };
    let probes = probes();
    let mut tried = 0;
    for case in cases() {
        let what = || format!("{}: {}", B::NAME, case.name);
        let before = dir.fingerprint()?;
        let visible: Vec<String> = probes
            .iter()
            .map(|op| apply(subject.as_mut(), op))
            .collect();
        let expected = apply(reference.as_mut(), &case.op);
        let got = apply(subject.as_mut(), &case.op);
        ensure!(got != "PANIC", "{}: panicked", what());
        ensure!(
            got.starts_with(case.expect),
            "{}: expected {}…, got {got}",
            what(),
            case.expect
        );
        ensure!(
            got == expected,
            "{}: gave {got} but the reference gave {expected}",
            what()
        );
        let after = dir.fingerprint()?;
        let changes = before.diff(&after);
        ensure!(changes.is_empty(), "{}: files changed: {changes:?}", what());
        let now: Vec<String> = probes
            .iter()
            .map(|op| apply(subject.as_mut(), op))
            .collect();
        ensure!(
            now == visible,
            "{}: the call changed what the stores answer",
            what()
        );
        tried += 1;
    }
    Ok(HostileReport { inputs: tried })
}

/// Contract §1.3 on a seeded directory: reopened read-only, `B` answers every write of the
/// seed ([`seed_ops`]) with `ReadOnly` and every row of [`cases`] without a panic; the
/// reads of [`probes`] answer exactly as they did read-write; and no file holding data
/// changes (only the engines' reader scratch files may,
/// [`store_kit::dir::is_reader_scratch`]; on PostgreSQL no row of any relation of the
/// schema). Reopened read-write afterwards, it answers the probes as before. `root` must
/// be an empty directory; call only for a backend with `Capabilities::read_only_open`.
pub fn read_only<B: Backend<Location: Site>>(root: &Path) -> Result<HostileReport, Failure> {
    let location = fresh::<B>(root)?;
    let dir: &B::Location = location.borrow();
    let probes = probes();
    let read_probes = |subject: &mut dyn AnySubject| -> Vec<String> {
        probes.iter().map(|op| apply(subject, op)).collect()
    };
    let visible = {
        let mut writer = Subject::<B>::open_with(dir, Durability::Immediate)?;
        for op in seed_ops() {
            apply(&mut writer, &op);
        }
        let visible = read_probes(&mut writer);
        let closed = apply(&mut writer, &Op::Close);
        ensure!(closed == "Ok(closed)", "{}: close gave {closed}", B::NAME);
        visible
    };
    let data = |dir: &B::Location| -> Result<Fingerprint, Failure> {
        let mut fingerprint = dir.fingerprint()?;
        fingerprint
            .0
            .retain(|path, _| !store_kit::dir::is_reader_scratch(path));
        Ok(fingerprint)
    };
    let before = data(dir)?;
    let mut reader = Subject::<B>::open_read_only(dir)?;
    let opened = apply(&mut reader, &Op::OpenPartition("p1".into()));
    ensure!(
        opened == "Ok(opened)",
        "{}: a read-only open could not take partition p1: {opened}",
        B::NAME
    );
    ensure!(
        read_probes(&mut reader) == visible,
        "{}: read-only, the stores answer differently than read-write",
        B::NAME
    );
    let mut tried = 0;
    // A partition's writes are refused at once, so its flush has nothing to write (and is
    // `Ok`, checked with the table below).
    let writes = seed_ops()
        .into_iter()
        .filter(|op| !matches!(op, Op::OpenPartition(_) | Op::StateFlush(_)));
    for op in writes {
        let got = apply(&mut reader, &op);
        ensure!(
            got.contains("ReadOnly"),
            "{}: read-only, {op:?} gave {got}",
            B::NAME
        );
        tried += 1;
    }
    for case in cases() {
        if matches!(case.op, Op::Reopen | Op::Close) {
            continue;
        }
        let got = apply(&mut reader, &case.op);
        ensure!(
            got != "PANIC",
            "{}: read-only, {} panicked",
            B::NAME,
            case.name
        );
        ensure!(
            !got.starts_with("Ok") || read_probes(&mut reader) == visible,
            "{}: read-only, {} changed what the stores answer ({got})",
            B::NAME,
            case.name
        );
        tried += 1;
    }
    ensure!(
        read_probes(&mut reader) == visible,
        "{}: read-only, the calls changed what the stores answer",
        B::NAME
    );
    let changes = before.diff(&data(dir)?);
    ensure!(
        changes.is_empty(),
        "{}: read-only, files changed: {changes:?}",
        B::NAME
    );
    let closed = apply(&mut reader, &Op::Close);
    ensure!(closed == "Ok(closed)", "{}: close gave {closed}", B::NAME);
    drop(reader);
    let mut writer = Subject::<B>::open_with(dir, Durability::Immediate)?;
    apply(&mut writer, &Op::OpenPartition("p1".into()));
    ensure!(
        read_probes(&mut writer) == visible,
        "{}: reopened read-write after a read-only open, the stores answer differently",
        B::NAME
    );
    Ok(HostileReport { inputs: tried })
}
