//! The operations the differential and hostile-input tests call, as data: every public
//! entry point of every store, with owned arguments (names as raw strings, so invalid names
//! reach the constructors), and the proptest strategies that generate them.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use store_api::{AccountKind, Direction, MAX_KEY_LEN, MAX_VALUE_LEN};

/// Bytes with a short `Debug` form (a 16 MiB value prints as its length).
#[derive(Clone, PartialEq, Eq)]
pub struct Blob(pub Bytes);

impl Blob {
    /// `bytes` as a blob.
    pub fn of(bytes: &[u8]) -> Self {
        Blob(Bytes::copy_from_slice(bytes))
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 32 {
            write!(f, "b{:?}", self.0)
        } else {
            write!(f, "Blob(len={}, {:?}..)", self.0.len(), &self.0[..8])
        }
    }
}

/// One byte more than [`MAX_VALUE_LEN`], allocated once per process.
pub fn oversized() -> Blob {
    static BIG: OnceLock<Bytes> = OnceLock::new();
    Blob(
        BIG.get_or_init(|| Bytes::from(vec![0x5A; MAX_VALUE_LEN + 1]))
            .clone(),
    )
}

/// One byte more than [`MAX_KEY_LEN`].
pub fn overlong_key() -> Blob {
    Blob(Bytes::from(vec![0x4B; MAX_KEY_LEN + 1]))
}

/// One mutation of a mixed engine batch ([`Op::WriteBatch`], [`Op::ApplyBatch`]).
#[derive(Debug, Clone)]
pub enum Change {
    /// Set the key to the value.
    Put(Blob, Blob),
    /// Delete the key.
    Delete(Blob),
}

impl Change {
    /// The [`store_api::Mutation`] this change is.
    pub fn mutation(&self) -> store_api::Mutation {
        match self {
            Change::Put(key, value) => store_api::Mutation::Put {
                key: key.0.clone(),
                value: value.0.clone(),
            },
            Change::Delete(key) => store_api::Mutation::Delete { key: key.0.clone() },
        }
    }
}

/// A posting of a [`Draft`].
#[derive(Debug, Clone)]
pub struct PostingSpec {
    /// The account's book; `None` for the draft's own book.
    pub book: Option<String>,
    /// The account's path.
    pub path: String,
    /// The asset moved.
    pub asset: String,
    /// The amount (0 is invalid).
    pub amount: u64,
    /// The side.
    pub direction: Direction,
}

/// A transaction draft, built into a [`store_api::Transaction`] when applied.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Transaction id number (see [`crate::workload::txid`]); equal numbers are one id.
    pub id: u64,
    /// The book.
    pub book: String,
    /// The postings.
    pub postings: Vec<PostingSpec>,
    /// The idempotency key.
    pub idempotency_key: Option<String>,
    /// Metadata entries.
    pub metadata: Vec<(String, String)>,
}

/// A side-effect output slot: lyquid number, block, kind tag (0 event, 1 call, 2 timer).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Lyquid number.
    pub lyquid: u8,
    /// Block.
    pub block: u64,
    /// Kind tag.
    pub kind: u8,
}

/// An inter-call output slot.
#[derive(Debug, Clone, Copy)]
pub struct CallSlot {
    /// Callee number.
    pub callee: u8,
    /// Block of the call.
    pub block: u64,
    /// Inter-call sequence.
    pub seq: u32,
}

/// An inbound call record.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Callee number.
    pub callee: u8,
    /// Block of its order key.
    pub order_block: u64,
    /// Sequence of its order key.
    pub order_seq: u32,
    /// Block the call was made at (after `order_block`: malformed).
    pub call_block: u64,
    /// Payload.
    pub payload: Blob,
}

/// One call on a backend. Segment sessions and segments are small numbers.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    Put(Vec<(Blob, Blob)>),
    Delete(Vec<Blob>),
    Get(Blob),
    GetMany(Vec<Blob>),
    Scan {
        start: Blob,
        end: Blob,
        limit: usize,
        forward: bool,
    },
    GetBatch(u64),
    OldestBatch,
    Prune(u64),
    CurrentSeq,
    /// `write_batch` of the changes, puts and deletes mixed.
    WriteBatch(Vec<Change>),
    /// `apply_batch` of the changes under `current_sequence() + offset` (0 below 0): offset
    /// 1 is the next number, more is a gap, less an already applied number.
    ApplyBatch {
        offset: i64,
        changes: Vec<Change>,
    },
    /// `apply_batch` of the subject's own log entry `current_sequence() - back` under its
    /// number (an identical re-apply); a one-put batch instead when that entry is not in
    /// the log (pruned, or no such batch).
    ReapplyBatch {
        back: u64,
    },

    OpenPartition(String),
    ClosePartition(String),
    StatePut(String, Blob, Blob),
    StateDelete(String, Blob),
    StateGet(String, Blob),
    StateContains(String, Blob),
    StateGetOrInsert(String, Blob, Blob),
    StateLen(String),
    StateSize(String),
    StatePrefix(String, Blob),
    StateRange(String, Blob, Blob),
    StateClear(String),
    StateFlush(String),
    /// Snapshot `from`, through bytes, restored into `to`.
    StateCopy {
        from: String,
        to: String,
    },
    /// Decode `bytes` as a snapshot and restore it.
    StateRestoreBytes(String, Vec<u8>),
    /// `Backend::list_partitions` after the cursor (a raw name, so invalid ones reach it).
    ListPartitions {
        after: Option<String>,
        limit: usize,
    },

    RegisterAsset {
        id: String,
        precision: u8,
        name: String,
    },
    OpenAccount {
        book: String,
        path: String,
        asset: String,
        kind: AccountKind,
        min_balance: Option<i64>,
    },
    Commit(Draft),
    CommitBatch(Vec<Draft>),
    Balance {
        book: String,
        path: String,
        as_of: Option<u64>,
    },
    Account {
        book: String,
        path: String,
    },
    Asset(String),
    TxLookup(u64),
    History {
        book: String,
        path: String,
        after: u64,
        limit: usize,
    },
    Trial {
        book: String,
        as_of: Option<u64>,
    },
    Events {
        book: String,
        after: Option<u64>,
        limit: usize,
    },
    ListBooks {
        after: Option<String>,
        limit: usize,
    },
    ListAssets {
        after: Option<String>,
        limit: usize,
    },
    ListAccounts {
        book: String,
        after: Option<String>,
        limit: usize,
    },
    AdvanceClock(u64),
    SetClock(u64),

    Append {
        session: u8,
        segment: u8,
        entry: Blob,
    },
    Trace {
        session: u8,
        segment: u8,
        entry: Blob,
    },
    ReadAll {
        session: u8,
        segment: u8,
    },
    ReadTraces {
        session: u8,
        segment: u8,
    },
    EntryCount {
        session: u8,
        segment: u8,
    },
    Exists {
        session: u8,
        segment: u8,
    },
    CreateSegment {
        session: u8,
        segment: u8,
        entries: Vec<Blob>,
    },
    Truncate {
        session: u8,
        segment: u8,
        len: u64,
    },
    ListSessions,
    ListSegments(u8),
    ListSessionsPage {
        after: Option<u8>,
        limit: usize,
    },
    ListSegmentsPage {
        session: u8,
        after: Option<u8>,
        limit: usize,
    },
    LookupSession(u8),

    WriteOutputs(Vec<(Slot, Vec<Blob>)>),
    ReadOutputs(Slot),
    UpsertCallOutput(CallSlot, Option<Blob>),
    ReadCallOutput(CallSlot),
    AppendInbound(Vec<Inbound>),
    ReadInbound {
        callee: u8,
        from: Option<(u64, u32)>,
        until: Option<u64>,
        limit: usize,
    },
    ListOutputKeys {
        after: Option<Slot>,
        limit: usize,
    },
    ListCallOutputKeys {
        after: Option<CallSlot>,
        limit: usize,
    },
    ListCallees {
        after: Option<u8>,
        limit: usize,
    },

    /// Drop every state handle (losing unflushed writes) and, on a persistent backend,
    /// close and reopen it.
    Reopen,
    /// `Backend::close`, keeping the backend value and every state handle held: every
    /// later call must answer `Closed` (contract §1.6). Only [`closing`] sequences use it:
    /// the in-memory reference has nothing to reopen after a close.
    Close,
}

/// What every random sequence ends with: a close, then at least one call of every store
/// (reads and writes, through a state handle held from before the close and through
/// handles taken after it), each of which must answer `Closed` on every backend alike;
/// closing again is `Ok`.
pub fn closing() -> Vec<Op> {
    vec![
        Op::Close,
        Op::Put(vec![(blob(b"k"), blob(b"v"))]),
        Op::Get(blob(b"k")),
        Op::Scan {
            start: blob(b""),
            end: blob(b""),
            limit: 10,
            forward: true,
        },
        Op::GetBatch(1),
        Op::WriteBatch(vec![Change::Delete(blob(b"k"))]),
        Op::StatePut("p1".into(), blob(b"k"), blob(b"v")),
        Op::StateGet("p1".into(), blob(b"k")),
        Op::StateFlush("p1".into()),
        Op::OpenPartition("p9".into()),
        Op::ListPartitions {
            after: None,
            limit: 10,
        },
        Op::Balance {
            book: "shop".into(),
            path: "cash".into(),
            as_of: None,
        },
        Op::Events {
            book: "shop".into(),
            after: None,
            limit: 10,
        },
        Op::ListBooks {
            after: None,
            limit: 10,
        },
        Op::Append {
            session: 0,
            segment: 0,
            entry: blob(b"e"),
        },
        Op::ListSessions,
        Op::ReadOutputs(Slot {
            lyquid: 0,
            block: 1,
            kind: 0,
        }),
        Op::AppendInbound(vec![Inbound {
            callee: 0,
            order_block: 2,
            order_seq: 0,
            call_block: 1,
            payload: blob(b"p"),
        }]),
        Op::ListCallees {
            after: None,
            limit: 10,
        },
        Op::Close,
    ]
}

fn blob(bytes: &'static [u8]) -> Blob {
    Blob(Bytes::from_static(bytes))
}

/// Engine and state keys: a small alphabet so keys collide, with empty and overlong keys.
pub fn key() -> impl Strategy<Value = Blob> {
    prop_oneof![
        12 => vec(prop::sample::select(vec![b'a', b'b', b'c', 0u8, 0xFF]), 1..3)
            .prop_map(|k| Blob(Bytes::from(k))),
        1 => Just(blob(b"")),
        1 => Just(overlong_key()),
    ]
}

/// Scan bounds: keys, the empty (unbounded) bound included.
fn bound() -> impl Strategy<Value = Blob> {
    prop_oneof![
        3 => vec(prop::sample::select(vec![b'a', b'b', b'c', 0u8, 0xFF]), 1..3)
            .prop_map(|k| Blob(Bytes::from(k))),
        1 => Just(blob(b"")),
    ]
}

/// Values: short, empty, and rarely one byte over the limit.
pub fn value() -> impl Strategy<Value = Blob> {
    prop_oneof![
        20 => vec(any::<u8>(), 0..6).prop_map(|v| Blob(Bytes::from(v))),
        2 => Just(blob(b"")),
        1 => Just(oversized()),
    ]
}

fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..5, 1 => Just(usize::MAX)]
}

/// Partition names: two ordinary ones, one with SQL quotes, and invalid ones.
pub fn partition() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => Just("p1".to_owned()),
        4 => Just("p2".to_owned()),
        2 => Just("x'; DROP TABLE t; --".to_owned()),
        1 => prop::sample::select(vec!["", "..", "a/b", "nul\0", "_sys"]).prop_map(str::to_owned),
    ]
}

/// Book names: two ordinary ones, reserved ones and invalid ones.
pub fn book() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => Just("shop".to_owned()),
        5 => Just("bank".to_owned()),
        1 => Just("_system".to_owned()),
        1 => prop::sample::select(vec!["_other", "", "../x", "a\\b"]).prop_map(str::to_owned),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["cash", "sales", "fees"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["", "a/b", "..", "x'--"]).prop_map(str::to_owned),
    ]
}

fn asset() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["USD", "EUR"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["JPY", "", "a/b"]).prop_map(str::to_owned),
        1 => Just("X".repeat(33)),
    ]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 1u64..500,
        1 => Just(0u64),
        1 => Just(i64::MAX as u64),
        1 => Just(u64::MAX),
    ]
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Debit), Just(Direction::Credit)]
}

fn kind() -> impl Strategy<Value = AccountKind> {
    prop::sample::select(vec![
        AccountKind::Asset,
        AccountKind::Liability,
        AccountKind::Income,
        AccountKind::Expense,
        AccountKind::Equity,
        AccountKind::Clearing,
    ])
}

fn posting() -> impl Strategy<Value = PostingSpec> {
    (
        prop_oneof![8 => Just(None), 1 => book().prop_map(Some)],
        path(),
        asset(),
        amount(),
        direction(),
    )
        .prop_map(|(book, path, asset, amount, direction)| PostingSpec {
            book,
            path,
            asset,
            amount,
            direction,
        })
}

/// A draft: usually a balanced pair of postings, sometimes anything.
fn draft() -> impl Strategy<Value = Draft> {
    let balanced = (
        book(),
        prop::sample::select(vec![("cash", "sales"), ("sales", "cash"), ("fees", "cash")]),
        prop_oneof![9 => Just(None), 1 => prop::sample::select(vec!["USD", "EUR"]).prop_map(Some)],
        1u64..300,
    )
        .prop_map(|(book, (d, c), asset, amount)| {
            // Usually the book's own asset (shop: USD, bank: EUR), sometimes a mismatch.
            let asset = asset.unwrap_or(if book == "bank" { "EUR" } else { "USD" });
            (
                book,
                vec![
                    PostingSpec {
                        book: None,
                        path: d.into(),
                        asset: asset.into(),
                        amount,
                        direction: Direction::Debit,
                    },
                    PostingSpec {
                        book: None,
                        path: c.into(),
                        asset: asset.into(),
                        amount,
                        direction: Direction::Credit,
                    },
                ],
            )
        });
    let anything = (book(), vec(posting(), 0..4));
    (
        0u64..12,
        prop_oneof![4 => balanced, 1 => anything],
        prop_oneof![
            6 => Just(None),
            6 => (0u8..4).prop_map(|k| Some(format!("idem-{k}"))),
            1 => Just(Some("k".repeat(129))),
        ],
        prop_oneof![
            12 => Just(Vec::new()),
            2 => Just(vec![("note".to_owned(), "x".to_owned())]),
            1 => Just(vec![("big".to_owned(), "m".repeat(4097))]),
        ],
    )
        .prop_map(|(id, (book, postings), idempotency_key, metadata)| Draft {
            id,
            book,
            postings,
            idempotency_key,
            metadata,
        })
}

/// A mutation of a mixed batch: keys and values as for put and delete batches.
fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| Change::Put(k, v)),
        2 => key().prop_map(Change::Delete),
    ]
}

fn engine_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => vec((key(), value()), 0..4).prop_map(Op::Put),
        2 => vec(key(), 0..3).prop_map(Op::Delete),
        3 => vec(change(), 0..5).prop_map(Op::WriteBatch),
        3 => (
            prop_oneof![6 => Just(1i64), 2 => 2i64..4, 2 => -3i64..=0],
            vec(change(), 0..4)
        )
            .prop_map(|(offset, changes)| Op::ApplyBatch { offset, changes }),
        1 => (0u64..4).prop_map(|back| Op::ReapplyBatch { back }),
        3 => key().prop_map(Op::Get),
        2 => vec(key(), 0..4).prop_map(Op::GetMany),
        3 => (bound(), bound(), limit(), any::<bool>())
            .prop_map(|(start, end, limit, forward)| Op::Scan { start, end, limit, forward }),
        2 => (0u64..12).prop_map(Op::GetBatch),
        1 => Just(Op::OldestBatch),
        1 => (0u64..12).prop_map(Op::Prune),
        1 => Just(Op::CurrentSeq),
    ]
}

fn damaged_snapshot() -> impl Strategy<Value = Vec<u8>> {
    (vec(any::<u8>(), 0..40), any::<usize>(), any::<u8>()).prop_map(|(junk, at, flip)| {
        // A real snapshot with one byte changed, or plain junk.
        if junk.len() % 2 == 0 {
            let mut bytes = store_api::StateSnapshot::from_entries([(
                Bytes::from_static(b"k"),
                Bytes::from_static(b"v"),
            )])
            .map(|s| s.to_bytes())
            .unwrap_or_default();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= flip | 1;
            }
            bytes
        } else {
            junk
        }
    })
}

fn state_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => partition().prop_map(Op::OpenPartition),
        1 => partition().prop_map(Op::ClosePartition),
        8 => (partition(), key(), value()).prop_map(|(p, k, v)| Op::StatePut(p, k, v)),
        3 => (partition(), key()).prop_map(|(p, k)| Op::StateDelete(p, k)),
        4 => (partition(), key()).prop_map(|(p, k)| Op::StateGet(p, k)),
        1 => (partition(), key()).prop_map(|(p, k)| Op::StateContains(p, k)),
        2 => (partition(), key(), value()).prop_map(|(p, k, v)| Op::StateGetOrInsert(p, k, v)),
        1 => partition().prop_map(Op::StateLen),
        1 => partition().prop_map(Op::StateSize),
        2 => (partition(), bound()).prop_map(|(p, k)| Op::StatePrefix(p, k)),
        2 => (partition(), bound(), bound()).prop_map(|(p, a, b)| Op::StateRange(p, a, b)),
        1 => partition().prop_map(Op::StateClear),
        3 => partition().prop_map(Op::StateFlush),
        1 => (partition(), partition()).prop_map(|(from, to)| Op::StateCopy { from, to }),
        1 => (partition(), damaged_snapshot()).prop_map(|(p, b)| Op::StateRestoreBytes(p, b)),
        2 => (prop::option::of(partition()), limit())
            .prop_map(|(after, limit)| Op::ListPartitions { after, limit }),
    ]
}

fn ledger_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (asset(), prop_oneof![4 => 0u8..4, 1 => Just(19u8)], prop_oneof![Just("name"), Just("other")])
            .prop_map(|(id, precision, name)| Op::RegisterAsset { id, precision, name: name.into() }),
        3 => (book(), path(), asset(), kind(), prop_oneof![Just(None), Just(Some(0i64)), Just(Some(-50i64))])
            .prop_map(|(book, path, asset, kind, min_balance)| Op::OpenAccount { book, path, asset, kind, min_balance }),
        8 => draft().prop_map(Op::Commit),
        3 => vec(draft(), 0..4).prop_map(Op::CommitBatch),
        3 => (book(), path(), prop_oneof![3 => Just(None), 1 => (0u64..3_000_000).prop_map(Some)])
            .prop_map(|(book, path, as_of)| Op::Balance { book, path, as_of }),
        1 => (book(), path()).prop_map(|(book, path)| Op::Account { book, path }),
        1 => asset().prop_map(Op::Asset),
        1 => (0u64..12).prop_map(Op::TxLookup),
        2 => (book(), path(), 0u64..6, limit())
            .prop_map(|(book, path, after, limit)| Op::History { book, path, after, limit }),
        2 => (book(), prop_oneof![3 => Just(None), 1 => (0u64..3_000_000).prop_map(Some)])
            .prop_map(|(book, as_of)| Op::Trial { book, as_of }),
        2 => (book(), prop::option::of(0u64..6), limit()).prop_map(|(book, after, limit)| Op::Events { book, after, limit }),
        1 => (prop::option::of(book()), limit()).prop_map(|(after, limit)| Op::ListBooks { after, limit }),
        1 => (prop::option::of(asset()), limit()).prop_map(|(after, limit)| Op::ListAssets { after, limit }),
        2 => (book(), prop::option::of(path()), limit())
            .prop_map(|(book, after, limit)| Op::ListAccounts { book, after, limit }),
        2 => (1u64..500_000).prop_map(Op::AdvanceClock),
        1 => (0u64..3_000_000).prop_map(Op::SetClock),
    ]
}

/// `(session, segment)`: usually the segment's owning session, sometimes another.
fn seg() -> impl Strategy<Value = (u8, u8)> {
    prop_oneof![5 => (0u8..3).prop_map(|g| (g % 2, g)), 1 => (0u8..2, 0u8..3)]
}

fn entry() -> impl Strategy<Value = Blob> {
    prop_oneof![
        10 => vec(prop::sample::select(vec![b'e', b'\n', 0u8]), 0..5).prop_map(|v| Blob(Bytes::from(v))),
        1 => Just(oversized()),
    ]
}

fn segment_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (seg(), entry()).prop_map(|((session, segment), entry)| Op::Append { session, segment, entry }),
        2 => (seg(), entry()).prop_map(|((session, segment), entry)| Op::Trace { session, segment, entry }),
        3 => seg().prop_map(|(session, segment)| Op::ReadAll { session, segment }),
        1 => seg().prop_map(|(session, segment)| Op::ReadTraces { session, segment }),
        1 => seg().prop_map(|(session, segment)| Op::EntryCount { session, segment }),
        1 => seg().prop_map(|(session, segment)| Op::Exists { session, segment }),
        2 => (seg(), vec(entry(), 0..3))
            .prop_map(|((session, segment), entries)| Op::CreateSegment { session, segment, entries }),
        2 => (seg(), 0u64..4).prop_map(|((session, segment), len)| Op::Truncate { session, segment, len }),
        1 => Just(Op::ListSessions),
        1 => (0u8..2).prop_map(Op::ListSegments),
        1 => (prop::option::of(0u8..3), limit())
            .prop_map(|(after, limit)| Op::ListSessionsPage { after, limit }),
        1 => (0u8..2, prop::option::of(0u8..3), limit())
            .prop_map(|(session, after, limit)| Op::ListSegmentsPage { session, after, limit }),
        1 => (0u8..3).prop_map(Op::LookupSession),
    ]
}

fn slot() -> impl Strategy<Value = Slot> {
    (0u8..2, 0u64..4, 0u8..3).prop_map(|(lyquid, block, kind)| Slot {
        lyquid,
        block,
        kind,
    })
}

fn call_slot() -> impl Strategy<Value = CallSlot> {
    (0u8..2, 0u64..4, 0u32..2).prop_map(|(callee, block, seq)| CallSlot { callee, block, seq })
}

fn payload() -> impl Strategy<Value = Blob> {
    prop_oneof![
        10 => vec(prop::sample::select(vec![b'p', b'q']), 0..3).prop_map(|v| Blob(Bytes::from(v))),
        1 => Just(oversized()),
    ]
}

fn inbound() -> impl Strategy<Value = Inbound> {
    (0u8..2, 1u64..4, 0u32..2, 0u64..5, payload()).prop_map(
        |(callee, order_block, order_seq, call_block, payload)| Inbound {
            callee,
            order_block,
            order_seq,
            call_block,
            payload,
        },
    )
}

fn side_effect_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => vec((slot(), vec(payload(), 0..3)), 0..3).prop_map(Op::WriteOutputs),
        3 => slot().prop_map(Op::ReadOutputs),
        2 => (call_slot(), prop::option::of(payload())).prop_map(|(s, o)| Op::UpsertCallOutput(s, o)),
        2 => call_slot().prop_map(Op::ReadCallOutput),
        3 => vec(inbound(), 0..3).prop_map(Op::AppendInbound),
        2 => (0u8..2, prop::option::of((1u64..4, 0u32..2)), prop::option::of(0u64..6), limit())
            .prop_map(|(callee, from, until, limit)| Op::ReadInbound { callee, from, until, limit }),
        1 => (prop::option::of(slot()), limit()).prop_map(|(after, limit)| Op::ListOutputKeys { after, limit }),
        1 => (prop::option::of(call_slot()), limit())
            .prop_map(|(after, limit)| Op::ListCallOutputKeys { after, limit }),
        1 => (prop::option::of(0u8..3), limit()).prop_map(|(after, limit)| Op::ListCallees { after, limit }),
    ]
}

/// Any operation, weighted across the stores, with an occasional reopen.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => engine_op(),
        5 => state_op(),
        6 => ledger_op(),
        4 => segment_op(),
        4 => side_effect_op(),
        1 => Just(Op::Reopen),
    ]
}
