//! The redb tables of every store. Each store kind owns its own tables, so no store ever
//! sees another's keys. Every table maps raw bytes to raw bytes; the key formats are the
//! shared ones of `store_kit` and are listed in the crate docs.

use redb::TableDefinition;
use store_kv::{LEDGER_TABLES, SEGMENT_TABLES, SIDE_EFFECT_TABLES, StateTables};

/// The state tables; partition ids start at 1.
pub(crate) const STATE: StateTables = StateTables {
    entries: "state.entries",
    partitions: "state.partitions",
    meta: "state.meta",
    first_id: 1,
};

/// A table of byte keys and byte values.
pub(crate) type Bytes2Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Backend metadata: the on-disk format version.
pub(crate) const META: Bytes2Bytes = TableDefinition::new("meta");
/// Key of the format version in [`META`].
pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// The format version this build writes and reads.
pub(crate) const FORMAT_VERSION: &[u8] = b"store-redb/1";

/// `StoreEngine` data: caller key → value.
pub(crate) const ENGINE_DATA: Bytes2Bytes = TableDefinition::new("engine.data");
/// `StoreEngine` batch log: `seq:u64be` → encoded mutations.
pub(crate) const ENGINE_LOG: Bytes2Bytes = TableDefinition::new("engine.log");
/// `StoreEngine` metadata: the sequence counter (`u64be`).
pub(crate) const ENGINE_META: Bytes2Bytes = TableDefinition::new("engine.meta");

/// State entries of every partition: `partition_id:u32be key` → value.
pub(crate) const STATE_ENTRIES: Bytes2Bytes = TableDefinition::new(STATE.entries);
/// State partition names: UTF-8 name → `partition_id:u32be`.
pub(crate) const STATE_PARTITIONS: Bytes2Bytes = TableDefinition::new(STATE.partitions);
/// State metadata: the next partition id (`u32be`).
pub(crate) const STATE_META: Bytes2Bytes = TableDefinition::new(STATE.meta);

/// Ledger assets: asset id → `AssetDef`.
pub(crate) const LEDGER_ASSETS: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.assets);
/// Ledger accounts: `book NUL path NUL` → `AccountRecord`.
pub(crate) const LEDGER_ACCOUNTS: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.accounts);
/// Ledger postings: `book NUL path NUL seq:u64be index:u32be` → `PostingRecord`.
pub(crate) const LEDGER_POSTINGS: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.postings);
/// Ledger events: `book NUL seq:u64be` → `Sequenced<LedgerEvent>`.
pub(crate) const LEDGER_EVENTS: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.events);
/// Ledger book heads: book name → `BookHead`.
pub(crate) const LEDGER_HEADS: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.heads);
/// Ledger idempotency receipts: `book NUL key` → `Committed`.
pub(crate) const LEDGER_IDEMPOTENCY: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.idempotency);
/// Ledger transaction index: txid (16 bytes) → `TxLocation`.
pub(crate) const LEDGER_TRANSACTIONS: Bytes2Bytes =
    TableDefinition::new(LEDGER_TABLES.transactions);
/// Ledger lifetime totals: `book NUL asset NUL` → `AssetTotals`.
pub(crate) const LEDGER_TOTALS: Bytes2Bytes = TableDefinition::new(LEDGER_TABLES.totals);

/// Side-effect output slots: `lyquid(20) pos:u128be kind(1)` → `EventOutputs`.
pub(crate) const SIDE_EFFECT_OUTPUTS: Bytes2Bytes =
    TableDefinition::new(SIDE_EFFECT_TABLES.outputs);
/// Inter-call outputs: `callee(20) pos:u128be inter_call_seq:u32be` → `Option<Bytes>`.
pub(crate) const SIDE_EFFECT_CALL_OUTPUTS: Bytes2Bytes =
    TableDefinition::new(SIDE_EFFECT_TABLES.call_outputs);
/// Inbound calls: `callee(20) order.pos:u128be order.seq:u32be` → `InboundInterCall`.
pub(crate) const SIDE_EFFECT_INBOUND: Bytes2Bytes =
    TableDefinition::new(SIDE_EFFECT_TABLES.inbound);

/// Segment metadata: segment id (16 bytes) → `SegmentMeta`.
pub(crate) const SEGMENT_META: Bytes2Bytes = TableDefinition::new(SEGMENT_TABLES.meta);
/// Live segments by session: `session(16) segment(16)` → empty.
pub(crate) const SEGMENT_SESSIONS: Bytes2Bytes = TableDefinition::new(SEGMENT_TABLES.sessions);
/// Segment log entries: `segment(16) index:u64be` → entry bytes.
pub(crate) const SEGMENT_ENTRIES: Bytes2Bytes = TableDefinition::new(SEGMENT_TABLES.entries);
/// Segment trace entries: `segment(16) index:u64be` → entry bytes.
pub(crate) const SEGMENT_TRACES: Bytes2Bytes = TableDefinition::new(SEGMENT_TABLES.traces);

/// Every table, created together when a database is first made.
pub(crate) const ALL: [Bytes2Bytes; 22] = [
    META,
    ENGINE_DATA,
    ENGINE_LOG,
    ENGINE_META,
    STATE_ENTRIES,
    STATE_PARTITIONS,
    STATE_META,
    LEDGER_ASSETS,
    LEDGER_ACCOUNTS,
    LEDGER_POSTINGS,
    LEDGER_EVENTS,
    LEDGER_HEADS,
    LEDGER_IDEMPOTENCY,
    LEDGER_TRANSACTIONS,
    LEDGER_TOTALS,
    SIDE_EFFECT_OUTPUTS,
    SIDE_EFFECT_CALL_OUTPUTS,
    SIDE_EFFECT_INBOUND,
    SEGMENT_META,
    SEGMENT_SESSIONS,
    SEGMENT_ENTRIES,
    SEGMENT_TRACES,
];
