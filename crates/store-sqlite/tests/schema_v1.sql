-- The store-sqlite schema, version 1. Every table is STRICT (column types are enforced);
-- tables keyed by a natural key are WITHOUT ROWID. Blobs compare with memcmp, so the byte
-- order of keys is the contract's key order. Integers that the API holds as u64 (ledger
-- amounts, sequence numbers, timestamps) are stored as INTEGER (i64); a u64 above 2^63-1
-- is stored as its two's-complement bit pattern (a negative number), so it round-trips
-- exactly. Lifetime ledger totals are u128 and stored as decimal TEXT.

-- What this file is: one row, the schema version this crate wrote.
CREATE TABLE schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    written_by TEXT NOT NULL
) STRICT;

-- StoreEngine: the data, the batch log (one row per mutation) and the sequence counter.
CREATE TABLE engine_kv (
    key BLOB PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 480),
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE engine_batch_log (
    seq INTEGER NOT NULL CHECK (seq >= 1),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    op TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    key BLOB NOT NULL,
    value BLOB,
    PRIMARY KEY (seq, idx),
    CHECK ((op = 'put') = (value IS NOT NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE engine_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO engine_meta (key, value) VALUES ('sequence', 0);

-- StateStore: partitions by name, their entries keyed by (partition id, key).
CREATE TABLE state_partitions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 255)
) STRICT;

CREATE TABLE state_entries (
    partition_id INTEGER NOT NULL REFERENCES state_partitions (id),
    key BLOB NOT NULL CHECK (length(key) BETWEEN 1 AND 480),
    value BLOB NOT NULL,
    PRIMARY KEY (partition_id, key)
) STRICT, WITHOUT ROWID;

-- LedgerStore.
CREATE TABLE ledger_assets (
    id TEXT PRIMARY KEY NOT NULL,
    precision INTEGER NOT NULL CHECK (precision BETWEEN 0 AND 18),
    name TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE ledger_accounts (
    book TEXT NOT NULL,
    path TEXT NOT NULL,
    asset TEXT NOT NULL REFERENCES ledger_assets (id),
    kind TEXT NOT NULL
        CHECK (kind IN ('asset', 'liability', 'income', 'expense', 'equity', 'clearing')),
    normal_side TEXT NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    min_balance INTEGER,
    balance INTEGER NOT NULL,
    updated_seq INTEGER NOT NULL CHECK (updated_seq >= 0),
    PRIMARY KEY (book, path),
    CHECK (book NOT LIKE '\_%' ESCAPE '\')
) STRICT, WITHOUT ROWID;

CREATE TABLE ledger_transactions (
    txid BLOB PRIMARY KEY NOT NULL CHECK (length(txid) = 16),
    book TEXT NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    at INTEGER NOT NULL,
    idempotency_key TEXT,
    posting_count INTEGER NOT NULL CHECK (posting_count >= 1),
    UNIQUE (book, seq)
) STRICT, WITHOUT ROWID;

-- An idempotency key is used at most once per book.
CREATE UNIQUE INDEX ledger_transactions_idempotency
    ON ledger_transactions (book, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE ledger_transaction_metadata (
    txid BLOB NOT NULL REFERENCES ledger_transactions (txid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (txid, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE ledger_postings (
    txid BLOB NOT NULL REFERENCES ledger_transactions (txid),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    book TEXT NOT NULL,
    path TEXT NOT NULL,
    asset TEXT NOT NULL REFERENCES ledger_assets (id),
    amount INTEGER NOT NULL CHECK (amount <> 0),
    direction TEXT NOT NULL CHECK (direction IN ('debit', 'credit')),
    balance_after INTEGER NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    at INTEGER NOT NULL,
    PRIMARY KEY (txid, idx),
    FOREIGN KEY (book, path) REFERENCES ledger_accounts (book, path)
) STRICT, WITHOUT ROWID;

CREATE INDEX ledger_postings_by_account ON ledger_postings (book, path, seq, idx);

CREATE TABLE ledger_events (
    book TEXT NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    at INTEGER NOT NULL,
    kind TEXT NOT NULL
        CHECK (kind IN ('asset_registered', 'account_opened', 'transaction_posted')),
    asset TEXT REFERENCES ledger_assets (id),
    path TEXT,
    txid BLOB REFERENCES ledger_transactions (txid),
    PRIMARY KEY (book, seq),
    FOREIGN KEY (book, path) REFERENCES ledger_accounts (book, path),
    CHECK ((kind = 'asset_registered') = (asset IS NOT NULL)),
    CHECK ((kind = 'account_opened') = (path IS NOT NULL)),
    CHECK ((kind = 'transaction_posted') = (txid IS NOT NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE ledger_book_heads (
    book TEXT PRIMARY KEY NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 0),
    last_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE ledger_totals (
    book TEXT NOT NULL,
    asset TEXT NOT NULL REFERENCES ledger_assets (id),
    debits TEXT NOT NULL
        CHECK (length(debits) BETWEEN 1 AND 39 AND debits NOT GLOB '*[^0-9]*'),
    credits TEXT NOT NULL
        CHECK (length(credits) BETWEEN 1 AND 39 AND credits NOT GLOB '*[^0-9]*'),
    PRIMARY KEY (book, asset)
) STRICT, WITHOUT ROWID;

-- SideEffectStore. Lyquid ids are 20-byte blobs, chain positions 16-byte big-endian blobs
-- (so they order by block, then index).
CREATE TABLE side_effect_outputs (
    lyquid BLOB NOT NULL CHECK (length(lyquid) = 20),
    pos BLOB NOT NULL CHECK (length(pos) = 16),
    kind TEXT NOT NULL CHECK (kind IN ('event', 'call', 'timer')),
    payload_count INTEGER NOT NULL CHECK (payload_count >= 0),
    PRIMARY KEY (lyquid, pos, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE side_effect_output_payloads (
    lyquid BLOB NOT NULL,
    pos BLOB NOT NULL,
    kind TEXT NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    payload BLOB NOT NULL,
    PRIMARY KEY (lyquid, pos, kind, idx),
    FOREIGN KEY (lyquid, pos, kind) REFERENCES side_effect_outputs (lyquid, pos, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE side_effect_call_outputs (
    callee BLOB NOT NULL CHECK (length(callee) = 20),
    pos BLOB NOT NULL CHECK (length(pos) = 16),
    inter_call_seq INTEGER NOT NULL CHECK (inter_call_seq BETWEEN 0 AND 4294967295),
    output BLOB,
    PRIMARY KEY (callee, pos, inter_call_seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE side_effect_inbound (
    callee BLOB NOT NULL CHECK (length(callee) = 20),
    order_pos BLOB NOT NULL CHECK (length(order_pos) = 16),
    order_seq INTEGER NOT NULL CHECK (order_seq BETWEEN 0 AND 4294967295),
    caller BLOB NOT NULL CHECK (length(caller) = 20),
    call_pos BLOB NOT NULL CHECK (length(call_pos) = 16 AND call_pos <= order_pos),
    payload BLOB NOT NULL,
    PRIMARY KEY (callee, order_pos, order_seq)
) STRICT, WITHOUT ROWID;

-- SegmentLogStore. Session and segment ids are 16-byte blobs (UUID bytes, big-endian).
CREATE TABLE segments (
    segment BLOB PRIMARY KEY NOT NULL CHECK (length(segment) = 16),
    session BLOB NOT NULL CHECK (length(session) = 16),
    entries INTEGER NOT NULL CHECK (entries >= 0),
    traces INTEGER NOT NULL CHECK (traces >= 0),
    live INTEGER NOT NULL CHECK (live IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE INDEX segments_by_session ON segments (session, segment) WHERE live = 1;

CREATE TABLE segment_entries (
    segment BLOB NOT NULL REFERENCES segments (segment),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    entry BLOB NOT NULL,
    PRIMARY KEY (segment, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE segment_traces (
    segment BLOB NOT NULL REFERENCES segments (segment),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    entry BLOB NOT NULL,
    PRIMARY KEY (segment, idx)
) STRICT, WITHOUT ROWID;
