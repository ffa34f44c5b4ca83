-- The store-postgres schema, version 1, created in the store's own PostgreSQL schema
-- (the search_path names only it while this runs). Keys, values and payloads are bytea
-- (bytea compares bytewise, which is the contract's key order); names are text in the "C"
-- collation (compared and sorted bytewise too); u64 counters, sequence numbers and
-- timestamps are bigint; ledger amounts and lifetime totals are exact numerics; ids are
-- uuid (uuid also compares bytewise).

-- What this schema is: one row, the schema version this crate wrote.
CREATE TABLE store_version (
    id integer PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL,
    written_by text NOT NULL
);

-- StoreEngine: the data, the batch log (one row per mutation) and the sequence counter.
CREATE TABLE engine_kv (
    key bytea PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 480),
    value bytea NOT NULL
);

CREATE TABLE engine_batch_log (
    seq bigint NOT NULL CHECK (seq >= 1),
    idx integer NOT NULL CHECK (idx >= 0),
    op text NOT NULL CHECK (op IN ('put', 'delete')),
    key bytea NOT NULL,
    value bytea,
    PRIMARY KEY (seq, idx),
    CHECK ((op = 'put') = (value IS NOT NULL))
);

CREATE TABLE engine_meta (
    key text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
);

INSERT INTO engine_meta (key, value) VALUES ('sequence', 0);

-- StateStore: partitions by name, their entries keyed by (partition id, key).
CREATE TABLE state_partitions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE CHECK (octet_length(name) BETWEEN 1 AND 255)
);

CREATE TABLE state_entries (
    partition_id bigint NOT NULL REFERENCES state_partitions (id),
    key bytea NOT NULL CHECK (length(key) BETWEEN 1 AND 480),
    value bytea NOT NULL,
    PRIMARY KEY (partition_id, key)
);

-- LedgerStore.
CREATE TABLE ledger_assets (
    id text COLLATE "C" PRIMARY KEY,
    precision smallint NOT NULL CHECK (precision BETWEEN 0 AND 18),
    name text NOT NULL
);

CREATE TABLE ledger_accounts (
    book text COLLATE "C" NOT NULL CHECK (book NOT LIKE '\_%'),
    path text COLLATE "C" NOT NULL,
    asset text COLLATE "C" NOT NULL REFERENCES ledger_assets (id),
    kind text NOT NULL
        CHECK (kind IN ('asset', 'liability', 'income', 'expense', 'equity', 'clearing')),
    normal_side text NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    min_balance bigint,
    balance bigint NOT NULL,
    updated_seq bigint NOT NULL CHECK (updated_seq >= 0),
    PRIMARY KEY (book, path)
);

CREATE TABLE ledger_transactions (
    txid uuid PRIMARY KEY,
    book text COLLATE "C" NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 1),
    at bigint NOT NULL,
    idempotency_key text COLLATE "C",
    posting_count integer NOT NULL CHECK (posting_count >= 1),
    UNIQUE (book, seq)
);

-- An idempotency key is used at most once per book.
CREATE UNIQUE INDEX ledger_transactions_idempotency
    ON ledger_transactions (book, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE ledger_transaction_metadata (
    txid uuid NOT NULL REFERENCES ledger_transactions (txid),
    key text COLLATE "C" NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (txid, key)
);

CREATE TABLE ledger_postings (
    txid uuid NOT NULL REFERENCES ledger_transactions (txid),
    idx integer NOT NULL CHECK (idx >= 0),
    book text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    asset text COLLATE "C" NOT NULL REFERENCES ledger_assets (id),
    amount numeric(20, 0) NOT NULL CHECK (amount > 0),
    direction text NOT NULL CHECK (direction IN ('debit', 'credit')),
    balance_after bigint NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 1),
    at bigint NOT NULL,
    PRIMARY KEY (txid, idx),
    FOREIGN KEY (book, path) REFERENCES ledger_accounts (book, path)
);

CREATE INDEX ledger_postings_by_account ON ledger_postings (book, path, seq, idx);

CREATE TABLE ledger_events (
    book text COLLATE "C" NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 1),
    at bigint NOT NULL,
    kind text NOT NULL
        CHECK (kind IN ('asset_registered', 'account_opened', 'transaction_posted')),
    asset text COLLATE "C" REFERENCES ledger_assets (id),
    path text COLLATE "C",
    txid uuid REFERENCES ledger_transactions (txid),
    PRIMARY KEY (book, seq),
    FOREIGN KEY (book, path) REFERENCES ledger_accounts (book, path),
    CHECK ((kind = 'asset_registered') = (asset IS NOT NULL)),
    CHECK ((kind = 'account_opened') = (path IS NOT NULL)),
    CHECK ((kind = 'transaction_posted') = (txid IS NOT NULL))
);

CREATE TABLE ledger_book_heads (
    book text COLLATE "C" PRIMARY KEY,
    seq bigint NOT NULL CHECK (seq >= 0),
    last_at bigint NOT NULL
);

CREATE TABLE ledger_totals (
    book text COLLATE "C" NOT NULL,
    asset text COLLATE "C" NOT NULL REFERENCES ledger_assets (id),
    debits numeric(39, 0) NOT NULL CHECK (debits >= 0),
    credits numeric(39, 0) NOT NULL CHECK (credits >= 0),
    PRIMARY KEY (book, asset)
);

-- SideEffectStore. Lyquid ids are 20-byte bytea, chain positions 16-byte big-endian bytea
-- (so they order by block, then index).
CREATE TABLE side_effect_outputs (
    lyquid bytea NOT NULL CHECK (length(lyquid) = 20),
    pos bytea NOT NULL CHECK (length(pos) = 16),
    kind text NOT NULL CHECK (kind IN ('event', 'call', 'timer')),
    payloads bytea[] NOT NULL,
    PRIMARY KEY (lyquid, pos, kind)
);

CREATE TABLE side_effect_call_outputs (
    callee bytea NOT NULL CHECK (length(callee) = 20),
    pos bytea NOT NULL CHECK (length(pos) = 16),
    inter_call_seq bigint NOT NULL CHECK (inter_call_seq BETWEEN 0 AND 4294967295),
    output bytea,
    PRIMARY KEY (callee, pos, inter_call_seq)
);

CREATE TABLE side_effect_inbound (
    callee bytea NOT NULL CHECK (length(callee) = 20),
    order_pos bytea NOT NULL CHECK (length(order_pos) = 16),
    order_seq bigint NOT NULL CHECK (order_seq BETWEEN 0 AND 4294967295),
    caller bytea NOT NULL CHECK (length(caller) = 20),
    call_pos bytea NOT NULL CHECK (length(call_pos) = 16 AND call_pos <= order_pos),
    payload bytea NOT NULL,
    PRIMARY KEY (callee, order_pos, order_seq)
);

-- SegmentLogStore.
CREATE TABLE segments (
    segment uuid PRIMARY KEY,
    session uuid NOT NULL,
    entries bigint NOT NULL CHECK (entries >= 0),
    traces bigint NOT NULL CHECK (traces >= 0),
    live boolean NOT NULL
);

CREATE INDEX segments_by_session ON segments (session, segment) WHERE live;

CREATE TABLE segment_entries (
    segment uuid NOT NULL REFERENCES segments (segment),
    idx bigint NOT NULL CHECK (idx >= 0),
    entry bytea NOT NULL,
    PRIMARY KEY (segment, idx)
);

CREATE TABLE segment_traces (
    segment uuid NOT NULL REFERENCES segments (segment),
    idx bigint NOT NULL CHECK (idx >= 0),
    entry bytea NOT NULL,
    PRIMARY KEY (segment, idx)
);
