//! `LedgerStore` on the `ledger_*` tables, planned by the shared
//! [`LedgerPlanner`](store_kit::ledger::LedgerPlanner) reading through the write
//! transaction, and group-committed like every other backend.
//!
//! The planner's [`LedgerWrites`] map to rows: assets to `ledger_assets`, accounts (with
//! their running balance) to `ledger_accounts`, transactions to `ledger_transactions` and
//! `ledger_transaction_metadata`, postings to `ledger_postings`, events to `ledger_events`
//! (which reference the asset, account or transaction they announce), heads to
//! `ledger_book_heads`, totals to `ledger_totals`. Idempotency receipts need no table of
//! their own: a transaction row keeps its idempotency key, unique per book.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, Statement};
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, Posting, PostingRecord, SegmentId,
    Sequenced, StorageError, StorageErrorKind, StoredTransaction, Timestamp, Transaction,
    TrialBalanceRow, TxId,
};
use store_kit::checksum::{self, Fields};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, LedgerPlanner, LedgerRead, LedgerWrites,
    PlannedEventBody, balance_as_of, commit_grouped, first_event_after, history_page, keys,
    plan_batch, trial_balance_of_postings, trial_rows,
};
use store_kit::sql;

use crate::db::Db;
use crate::{
    BACKEND_NAME, SqlContext, corrupted, crc, limit_to_sql, query_page, u64_from_sql, u64_to_sql,
    verify_crc,
};

const ASSET: &str = "SELECT id, precision, name FROM ledger_assets WHERE id = ?1";
const ACCOUNT: &str = "SELECT asset, kind, normal_side, min_balance, balance, updated_seq \
                       FROM ledger_accounts WHERE book = ?1 AND path = ?2";
const HEAD: &str = "SELECT seq, last_at FROM ledger_book_heads WHERE book = ?1";
const IDEMPOTENCY: &str = "SELECT txid, seq, at FROM ledger_transactions \
                           WHERE book = ?1 AND idempotency_key = ?2";
const TX_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE txid = ?1)";
/// The greatest transaction id (BLOBs compare bytewise, as the key-value engines' keys).
const LAST_TXID: &str = "SELECT max(txid) FROM ledger_transactions";
const TOTALS: &str = "SELECT debits, credits FROM ledger_totals WHERE book = ?1 AND asset = ?2";
const BOOK_TOTALS: &str = "SELECT asset, debits, credits FROM ledger_totals WHERE book = ?1";
const TRANSACTION: &str = "SELECT book, seq, at, idempotency_key \
                           FROM ledger_transactions WHERE txid = ?1";
const TX_POSTINGS: &str = "SELECT book, path, asset, amount, direction, \
                           txid, idx, balance_after, seq, at, crc \
                           FROM ledger_postings WHERE txid = ?1 ORDER BY idx";
const TX_METADATA: &str =
    "SELECT key, value FROM ledger_transaction_metadata WHERE txid = ?1 ORDER BY key";
/// The columns [`posting_record`] reads, in order.
macro_rules! posting_columns {
    () => {
        "txid, seq, at, idx, book, path, asset, amount, direction, balance_after, crc"
    };
}
const HISTORY: &str = concat!(
    "SELECT ",
    posting_columns!(),
    " FROM ledger_postings WHERE book = ?1 AND path = ?2 AND seq > ?3 ORDER BY seq, idx"
);
const HISTORY_NEWEST_FIRST: &str = concat!(
    "SELECT ",
    posting_columns!(),
    " FROM ledger_postings WHERE book = ?1 AND path = ?2 ORDER BY seq DESC, idx DESC"
);
const BOOK_POSTINGS: &str = concat!(
    "SELECT ",
    posting_columns!(),
    " FROM ledger_postings WHERE book = ?1 ORDER BY seq, idx"
);
const EVENTS: &str = "SELECT seq, at, kind, asset, path, txid FROM ledger_events \
                      WHERE book = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3";
/// Listings: rows after the cursor `?1` (`''` lists from the first: names are never
/// empty), at most the last parameter. Names are `TEXT` compared with `memcmp` (`BINARY`),
/// which is the byte order of their UTF-8.
const LIST_BOOKS: &str =
    "SELECT book FROM ledger_book_heads WHERE book > ?1 ORDER BY book LIMIT ?2";
const LIST_ASSETS: &str =
    "SELECT id, precision, name FROM ledger_assets WHERE id > ?1 ORDER BY id LIMIT ?2";
const LIST_ACCOUNTS: &str = "SELECT path, asset, kind, normal_side, min_balance \
                             FROM ledger_accounts WHERE book = ?2 AND path > ?1 \
                             ORDER BY path LIMIT ?3";

const INSERT_ASSET: &str = "INSERT INTO ledger_assets (id, precision, name) VALUES (?1, ?2, ?3)";
/// The accounts of a plan: an upsert that keeps the definition and updates the balance.
const UPSERT_ACCOUNTS: Insert = Insert {
    head: "INSERT INTO ledger_accounts \
           (book, path, asset, kind, normal_side, min_balance, balance, updated_seq) VALUES",
    columns: 8,
    tail: "ON CONFLICT (book, path) DO UPDATE \
           SET balance = excluded.balance, updated_seq = excluded.updated_seq",
};
const INSERT_TRANSACTIONS: Insert = Insert {
    head: "INSERT INTO ledger_transactions \
           (txid, book, seq, at, idempotency_key, posting_count) VALUES",
    columns: 6,
    tail: "",
};
const INSERT_METADATA: &str =
    "INSERT INTO ledger_transaction_metadata (txid, key, value) VALUES (?1, ?2, ?3)";
const INSERT_POSTINGS: Insert = Insert {
    head: "INSERT INTO ledger_postings \
           (txid, idx, book, path, asset, amount, direction, balance_after, seq, at, crc) \
           VALUES",
    columns: 11,
    tail: "",
};
const INSERT_EVENTS: Insert = Insert {
    head: "INSERT INTO ledger_events (book, seq, at, kind, asset, path, txid) VALUES",
    columns: 7,
    tail: "",
};
const UPSERT_HEAD: &str = "INSERT INTO ledger_book_heads (book, seq, last_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (book) DO UPDATE SET seq = excluded.seq, last_at = excluded.last_at";
const UPSERT_TOTALS: &str = "INSERT INTO ledger_totals (book, asset, debits, credits) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (book, asset) DO UPDATE SET debits = excluded.debits, credits = excluded.credits";

/// The ledger.
pub struct SqliteLedger {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    queue: CommitQueue,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

// ---- column encodings -------------------------------------------------------------------

/// The ledger's text columns, decoded once for both relational backends.
const COLUMNS: sql::LedgerColumns = sql::LedgerColumns(crate::BACKEND_NAME);

fn txid_from(bytes: Vec<u8>) -> Result<TxId, StorageError> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| corrupted("decoding a transaction id"))?;
    // Every 128-bit id of store-api wraps the same UUID type.
    Ok(TxId(SegmentId::from_bytes(bytes).0))
}

fn seq_from(n: i64) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| corrupted("decoding a ledger sequence number"))
}

fn seq_to_sql(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|e| {
        StorageError::new(
            BACKEND_NAME,
            StorageErrorKind::Engine,
            "a ledger sequence number left the INTEGER range",
            e,
        )
    })
}

fn total_from(s: &str) -> Result<u128, StorageError> {
    s.parse().map_err(|_| corrupted("decoding a ledger total"))
}

/// The table whose rows carry posting checksums.
const POSTINGS: &str = "ledger_postings";

/// Where the columns of a posting row are in a statement's result.
struct PostingColumns {
    txid: usize,
    idx: usize,
    book: usize,
    path: usize,
    asset: usize,
    amount: usize,
    direction: usize,
    balance_after: usize,
    seq: usize,
    at: usize,
    crc: usize,
}

/// The columns of [`TX_POSTINGS`].
const TX_POSTING_COLUMNS: PostingColumns = PostingColumns {
    book: 0,
    path: 1,
    asset: 2,
    amount: 3,
    direction: 4,
    txid: 5,
    idx: 6,
    balance_after: 7,
    seq: 8,
    at: 9,
    crc: 10,
};

/// The columns of [`posting_columns`].
const POSTING_COLUMNS: PostingColumns = PostingColumns {
    txid: 0,
    seq: 1,
    at: 2,
    idx: 3,
    book: 4,
    path: 5,
    asset: 6,
    amount: 7,
    direction: 8,
    balance_after: 9,
    crc: 10,
};

/// The checksum key and value of a posting: keyed by `(txid, idx)`, over every other
/// column (text columns as their bytes).
#[allow(clippy::too_many_arguments)]
fn posting_fields(
    txid: &[u8],
    idx: i64,
    book: &[u8],
    path: &[u8],
    asset: &[u8],
    amount: i64,
    direction: &[u8],
    balance_after: i64,
    seq: i64,
    at: i64,
) -> (Fields, Fields) {
    (
        Fields::new().bytes(txid).int(idx),
        Fields::new()
            .bytes(book)
            .bytes(path)
            .bytes(asset)
            .int(amount)
            .bytes(direction)
            .int(balance_after)
            .int(seq)
            .int(at),
    )
}

/// Verifies a posting row against its `crc` before any column is decoded, so damage is a
/// `Corrupted` error naming the posting, not a misread.
fn verify_posting(row: &Row<'_>, c: &PostingColumns) -> Result<(), StorageError> {
    const CTX: &str = "reading a posting";
    let txid: Vec<u8> = row.get(c.txid).ctx(CTX)?;
    let idx: i64 = row.get(c.idx).ctx(CTX)?;
    let damaged = || {
        checksum::mismatch(
            BACKEND_NAME,
            POSTINGS,
            Fields::new().bytes(&txid).int(idx).as_slice(),
        )
    };
    let bytes = |i: usize| {
        row.get_ref(i)
            .ok()
            .and_then(|v| v.as_bytes().ok())
            .ok_or_else(damaged)
    };
    let int = |i: usize| row.get::<_, i64>(i).map_err(|_| damaged());
    let (key, value) = posting_fields(
        &txid,
        idx,
        bytes(c.book)?,
        bytes(c.path)?,
        bytes(c.asset)?,
        int(c.amount)?,
        bytes(c.direction)?,
        int(c.balance_after)?,
        int(c.seq)?,
        int(c.at)?,
    );
    verify_crc(row, c.crc, POSTINGS, key.as_slice(), value.as_slice())
}

/// A row of [`posting_columns`].
fn posting_record(row: &Row<'_>) -> Result<PostingRecord, StorageError> {
    const CTX: &str = "reading a posting";
    verify_posting(row, &POSTING_COLUMNS)?;
    let book = COLUMNS.book(row.get(4).ctx(CTX)?)?;
    Ok(PostingRecord {
        txid: txid_from(row.get(0).ctx(CTX)?)?,
        seq: seq_from(row.get(1).ctx(CTX)?)?,
        at: Timestamp(u64_from_sql(row.get(2).ctx(CTX)?)),
        index: u32::try_from(row.get::<_, i64>(3).ctx(CTX)?)
            .map_err(|_| corrupted("decoding a posting index"))?,
        account: AccountId {
            book,
            path: COLUMNS.account_path(row.get(5).ctx(CTX)?)?,
        },
        asset: COLUMNS.asset_id(row.get(6).ctx(CTX)?)?,
        amount: u64_from_sql(row.get(7).ctx(CTX)?),
        direction: COLUMNS.direction(&row.get::<_, String>(8).ctx(CTX)?)?,
        balance_after: row.get(9).ctx(CTX)?,
    })
}

// ---- reads shared by the planner and the API ----------------------------------------------

fn read_asset(conn: &Connection, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
    const CTX: &str = "reading an asset";
    let mut stmt = conn.prepare_cached(ASSET).ctx(CTX)?;
    let row = stmt
        .query_row([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()
        .ctx(CTX)?;
    row.map(|(id, precision, name)| asset_def(id, precision, name))
        .transpose()
}

/// An asset of the columns `id, precision, name`.
fn asset_def(id: String, precision: i64, name: String) -> Result<AssetDef, StorageError> {
    Ok(AssetDef {
        id: COLUMNS.asset_id(id)?,
        precision: u8::try_from(precision).map_err(|_| corrupted("decoding an asset precision"))?,
        name,
    })
}

fn read_account(conn: &Connection, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
    const CTX: &str = "reading an account";
    let mut stmt = conn.prepare_cached(ACCOUNT).ctx(CTX)?;
    let row = stmt
        .query_row((id.book.as_str(), id.path.as_str()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()
        .ctx(CTX)?;
    row.map(
        |(asset, kind, normal_side, min_balance, balance, updated_seq)| {
            Ok(AccountRecord {
                def: AccountDef {
                    id: id.clone(),
                    asset: COLUMNS.asset_id(asset)?,
                    kind: COLUMNS.account_kind(&kind)?,
                },
                cfg: AccountCfg {
                    normal_side: COLUMNS.direction(&normal_side)?,
                    min_balance,
                },
                balance,
                updated_seq: seq_from(updated_seq)?,
            })
        },
    )
    .transpose()
}

fn read_transaction(
    conn: &Connection,
    txid: &TxId,
) -> Result<Option<StoredTransaction>, StorageError> {
    const CTX: &str = "reading a transaction";
    let key = txid.0.into_bytes();
    let Some((book, seq, at, idempotency_key)) = conn
        .prepare_cached(TRANSACTION)
        .and_then(|mut stmt| {
            stmt.query_row([key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()
        })
        .ctx(CTX)?
    else {
        return Ok(None);
    };
    let mut postings = Vec::new();
    let mut stmt = conn.prepare_cached(TX_POSTINGS).ctx(CTX)?;
    let mut rows = stmt.query([key]).ctx(CTX)?;
    while let Some(row) = rows.next().ctx(CTX)? {
        verify_posting(row, &TX_POSTING_COLUMNS)?;
        postings.push(Posting {
            account: AccountId {
                book: COLUMNS.book(row.get(0).ctx(CTX)?)?,
                path: COLUMNS.account_path(row.get(1).ctx(CTX)?)?,
            },
            asset: COLUMNS.asset_id(row.get(2).ctx(CTX)?)?,
            amount: u64_from_sql(row.get(3).ctx(CTX)?),
            direction: COLUMNS.direction(&row.get::<_, String>(4).ctx(CTX)?)?,
        });
    }
    let mut metadata = BTreeMap::new();
    let mut stmt = conn.prepare_cached(TX_METADATA).ctx(CTX)?;
    let mut rows = stmt.query([key]).ctx(CTX)?;
    while let Some(row) = rows.next().ctx(CTX)? {
        metadata.insert(row.get(0).ctx(CTX)?, row.get(1).ctx(CTX)?);
    }
    Ok(Some(StoredTransaction {
        id: *txid,
        book: COLUMNS.book(book)?,
        postings,
        idempotency_key,
        metadata,
        seq: seq_from(seq)?,
        at: Timestamp(u64_from_sql(at)),
    }))
}

/// The planner's view of the ledger: reads inside the write transaction.
struct TxReader<'c> {
    conn: &'c Connection,
}

impl LedgerRead for TxReader<'_> {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        read_asset(self.conn, id)
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        read_account(self.conn, id)
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        const CTX: &str = "reading a book head";
        let row = self
            .conn
            .prepare_cached(HEAD)
            .and_then(|mut stmt| {
                stmt.query_row([book.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
            })
            .ctx(CTX)?;
        match row {
            None => Ok(BookHead::default()),
            Some((seq, last_at)) => Ok(BookHead {
                seq: seq_from(seq)?,
                last_at: Timestamp(u64_from_sql(last_at)),
            }),
        }
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        const CTX: &str = "reading an idempotency key";
        let row = self
            .conn
            .prepare_cached(IDEMPOTENCY)
            .and_then(|mut stmt| {
                stmt.query_row((book.as_str(), key), |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .ctx(CTX)?;
        row.map(|(txid, seq, at)| {
            Ok(Committed {
                txid: txid_from(txid)?,
                seq: seq_from(seq)?,
                at: Timestamp(u64_from_sql(at)),
            })
        })
        .transpose()
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        self.conn
            .prepare_cached(TX_EXISTS)
            .and_then(|mut stmt| stmt.query_row([txid.0.into_bytes()], |r| r.get(0)))
            .ctx("checking a transaction id")
    }

    fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        let last: Option<Vec<u8>> = self
            .conn
            .prepare_cached(LAST_TXID)
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .ctx("reading the last transaction id")?;
        Ok(keys::transaction_bound(last.as_deref()))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        const CTX: &str = "reading ledger totals";
        let row = self
            .conn
            .prepare_cached(TOTALS)
            .and_then(|mut stmt| {
                stmt.query_row((book.as_str(), asset.as_str()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
            })
            .ctx(CTX)?;
        match row {
            None => Ok(AssetTotals::default()),
            Some((debits, credits)) => Ok(AssetTotals {
                debits: total_from(&debits)?,
                credits: total_from(&credits)?,
            }),
        }
    }
}

/// A multi-row `INSERT`: one execution writes many rows, so the statement's fixed costs
/// (its transaction and cursor setup, the journal bookkeeping, the value lists of the
/// `CHECK (... IN (...))` constraints, which SQLite builds once per execution) are paid
/// once per [`INSERT_SIZES`] rows instead of once per row.
struct Insert {
    /// `INSERT INTO table (columns) VALUES`.
    head: &'static str,
    /// Values per row.
    columns: usize,
    /// What follows the rows (an upsert clause), or nothing.
    tail: &'static str,
}

/// Rows per execution: full runs of 64, then of 8, then single rows, so each table needs
/// at most three cached statements and a batch at most 14 executions beyond its full runs.
const INSERT_SIZES: [usize; 3] = [64, 8, 1];

impl Insert {
    /// The statement writing `rows` rows.
    fn sql(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; self.columns].join(", "));
        format!("{} {} {}", self.head, vec![row; rows].join(", "), self.tail)
    }

    /// Writes `rows`, in order; `bind` binds one row's values from the given 1-based
    /// parameter index on.
    fn run<T>(
        &self,
        conn: &Connection,
        rows: &[T],
        mut bind: impl FnMut(&mut Statement<'_>, usize, &T) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        const CTX: &str = "writing ledger records";
        let mut rest = rows;
        for size in INSERT_SIZES {
            if rest.len() < size {
                continue;
            }
            let mut stmt = conn.prepare_cached(&self.sql(size)).ctx(CTX)?;
            while rest.len() >= size {
                let (chunk, tail) = rest.split_at(size);
                for (i, row) in chunk.iter().enumerate() {
                    bind(&mut stmt, i * self.columns + 1, row)?;
                }
                stmt.raw_execute().ctx(CTX)?;
                rest = tail;
            }
        }
        Ok(())
    }
}

/// Binds `values` to `stmt`'s parameters from the 1-based index `at` on.
macro_rules! bind {
    ($stmt:expr, $at:expr, $($value:expr),+ $(,)?) => {{
        let mut index = $at;
        $(
            $stmt
                .raw_bind_parameter(index, $value)
                .ctx("binding ledger values")?;
            index += 1;
        )+
        let _ = index;
    }};
}

/// Writes everything the planner planned, in foreign-key order.
fn write_plan(conn: &Connection, writes: &LedgerWrites<'_>) -> Result<(), StorageError> {
    const CTX: &str = "writing ledger records";
    if writes.is_empty() {
        return Ok(());
    }
    if !writes.assets.is_empty() {
        let mut stmt = conn.prepare_cached(INSERT_ASSET).ctx(CTX)?;
        for def in &writes.assets {
            stmt.execute((def.id.as_str(), i64::from(def.precision), def.name.as_str()))
                .ctx(CTX)?;
        }
    }
    UPSERT_ACCOUNTS.run(conn, &writes.accounts, |stmt, at, record| {
        let id = &record.def.id;
        bind!(
            stmt,
            at,
            id.book.as_str(),
            id.path.as_str(),
            record.def.asset.as_str(),
            sql::account_kind_name(record.def.kind),
            sql::direction_name(record.cfg.normal_side),
            record.cfg.min_balance,
            record.balance,
            seq_to_sql(record.updated_seq)?,
        );
        Ok(())
    })?;
    INSERT_TRANSACTIONS.run(conn, &writes.transactions, |stmt, at, planned| {
        let tx = planned.tx;
        bind!(
            stmt,
            at,
            tx.id.0.into_bytes(),
            tx.book.as_str(),
            seq_to_sql(planned.seq)?,
            u64_to_sql(planned.at.0),
            tx.idempotency_key.as_deref(),
            i64::try_from(tx.postings.len()).unwrap_or(i64::MAX),
        );
        Ok(())
    })?;
    if writes
        .transactions
        .iter()
        .any(|t| !t.tx.metadata.is_empty())
    {
        let mut stmt = conn.prepare_cached(INSERT_METADATA).ctx(CTX)?;
        for planned in &writes.transactions {
            let txid = planned.tx.id.0.into_bytes();
            for (key, value) in &planned.tx.metadata {
                stmt.execute((txid, key.as_str(), value.as_str()))
                    .ctx(CTX)?;
            }
        }
    }
    INSERT_POSTINGS.run(conn, &writes.postings, |stmt, at, planned| {
        let p = planned.posting;
        let txid = planned.txid.0.into_bytes();
        let seq = seq_to_sql(planned.seq)?;
        let (key, value) = posting_fields(
            &txid,
            i64::from(planned.index),
            p.account.book.as_str().as_bytes(),
            p.account.path.as_str().as_bytes(),
            p.asset.as_str().as_bytes(),
            u64_to_sql(p.amount),
            sql::direction_name(p.direction).as_bytes(),
            planned.balance_after,
            seq,
            u64_to_sql(planned.at.0),
        );
        bind!(
            stmt,
            at,
            txid,
            i64::from(planned.index),
            p.account.book.as_str(),
            p.account.path.as_str(),
            p.asset.as_str(),
            u64_to_sql(p.amount),
            sql::direction_name(p.direction),
            planned.balance_after,
            seq,
            u64_to_sql(planned.at.0),
            crc(POSTINGS, key.as_slice(), value.as_slice()),
        );
        Ok(())
    })?;
    INSERT_EVENTS.run(conn, &writes.events, |stmt, at, event| {
        let (kind, asset, path, txid) = match event.body {
            PlannedEventBody::AssetRegistered(def) => {
                ("asset_registered", Some(def.id.as_str()), None, None)
            }
            PlannedEventBody::AccountOpened { def, .. } => {
                ("account_opened", None, Some(def.id.path.as_str()), None)
            }
            PlannedEventBody::TransactionPosted(tx) => {
                ("transaction_posted", None, None, Some(tx.id.0.into_bytes()))
            }
        };
        bind!(
            stmt,
            at,
            event.book.as_str(),
            seq_to_sql(event.seq)?,
            u64_to_sql(event.at.0),
            kind,
            asset,
            path,
            txid,
        );
        Ok(())
    })?;
    let mut stmt = conn.prepare_cached(UPSERT_HEAD).ctx(CTX)?;
    for (book, head) in &writes.heads {
        stmt.execute((
            book.as_str(),
            seq_to_sql(head.seq)?,
            u64_to_sql(head.last_at.0),
        ))
        .ctx(CTX)?;
    }
    if !writes.totals.is_empty() {
        let mut stmt = conn.prepare_cached(UPSERT_TOTALS).ctx(CTX)?;
        for (book, asset, totals) in &writes.totals {
            stmt.execute((
                book.as_str(),
                asset.as_str(),
                totals.debits.to_string(),
                totals.credits.to_string(),
            ))
            .ctx(CTX)?;
        }
    }
    Ok(())
}

impl SqliteLedger {
    /// The ledger of `db`, stamping events with `clock`.
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>) -> Self {
        SqliteLedger {
            db,
            clock,
            queue: CommitQueue::new(),
        }
    }

    /// Plans one operation against the write transaction and writes its plan.
    fn write<'t, T>(
        &self,
        plan: impl FnOnce(&mut LedgerPlanner<'t, '_, TxReader<'_>>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.db.write(|conn| {
            let mut reader = TxReader { conn };
            let mut planner = LedgerPlanner::new(&mut reader, self.clock.now());
            let out = plan(&mut planner)?;
            let writes = planner.into_writes();
            write_plan(conn, &writes)?;
            Ok(out)
        })
    }
}

impl LedgerStore for SqliteLedger {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.write(|p| p.register_asset(def))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.write(|p| p.open_account(def, cfg))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        let record = self.db.read(|conn| read_account(conn, id))?;
        Ok(record.map(|r| (r.def, r.cfg)))
    }

    fn commit(&self, tx: &Transaction) -> Result<Committed, LedgerError> {
        commit_grouped(&self.queue, tx, |txs| self.commit_batch(txs))
    }

    fn commit_batch(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError> {
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        self.db.write(|conn| {
            let mut reader = TxReader { conn };
            let (results, writes) = plan_batch(&mut reader, self.clock.now(), txs);
            write_plan(conn, &writes)?;
            Ok(results)
        })
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        self.db.read_tx(|conn| {
            let Some(record) = read_account(conn, account)? else {
                return Err(LedgerError::UnknownAccount {
                    account: account.clone(),
                });
            };
            let Some(as_of) = as_of else {
                return Ok(BalanceSnapshot {
                    amount: record.balance,
                    updated_seq: record.updated_seq,
                });
            };
            const CTX: &str = "reading an account's postings";
            let mut stmt = conn.prepare_cached(HISTORY_NEWEST_FIRST).ctx(CTX)?;
            let mut rows = stmt
                .query((account.book.as_str(), account.path.as_str()))
                .ctx(CTX)?;
            let postings = std::iter::from_fn(|| match rows.next() {
                Ok(Some(row)) => Some(posting_record(row)),
                Ok(None) => None,
                Err(e) => Some(Err(crate::sql_error(CTX, e))),
            });
            Ok(balance_as_of(postings, as_of)?)
        })
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        Ok(self.db.read(|conn| read_asset(conn, id))?)
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        Ok(self.db.read_tx(|conn| read_transaction(conn, txid))?)
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        const CTX: &str = "reading an account's history";
        self.db.read_tx(|conn| {
            if read_account(conn, account)?.is_none() {
                return Err(LedgerError::UnknownAccount {
                    account: account.clone(),
                });
            }
            // Stored seqs fit in i64: nothing comes after a larger one.
            let Ok(after_seq) = i64::try_from(after_seq) else {
                return Ok(Vec::new());
            };
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut stmt = conn.prepare_cached(HISTORY).ctx(CTX)?;
            let mut rows = stmt
                .query((account.book.as_str(), account.path.as_str(), after_seq))
                .ctx(CTX)?;
            let postings = std::iter::from_fn(|| match rows.next() {
                Ok(Some(row)) => Some(posting_record(row)),
                Ok(None) => None,
                Err(e) => Some(Err(crate::sql_error(CTX, e))),
            });
            Ok(history_page(postings, limit)?)
        })
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        Ok(self.db.read(|conn| match as_of {
            None => {
                const CTX: &str = "reading ledger totals";
                let mut stmt = conn.prepare_cached(BOOK_TOTALS).ctx(CTX)?;
                let mut rows = stmt.query([book.as_str()]).ctx(CTX)?;
                let mut totals = Vec::new();
                while let Some(row) = rows.next().ctx(CTX)? {
                    let asset = COLUMNS.asset_id(row.get(0).ctx(CTX)?)?;
                    let debits = total_from(&row.get::<_, String>(1).ctx(CTX)?)?;
                    let credits = total_from(&row.get::<_, String>(2).ctx(CTX)?)?;
                    totals.push((asset, AssetTotals { debits, credits }));
                }
                Ok::<_, StorageError>(trial_rows(totals))
            }
            Some(as_of) => {
                // The sums of the book's postings made by then.
                const CTX: &str = "reading a book's postings";
                let mut stmt = conn.prepare_cached(BOOK_POSTINGS).ctx(CTX)?;
                let mut rows = stmt.query([book.as_str()]).ctx(CTX)?;
                let postings = std::iter::from_fn(|| match rows.next() {
                    Ok(Some(row)) => Some(posting_record(row)),
                    Ok(None) => None,
                    Err(e) => Some(Err(crate::sql_error(CTX, e))),
                });
                trial_balance_of_postings(postings, as_of)
            }
        })?)
    }

    fn read_events(
        &self,
        book: &Book,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        let Some(Ok(from)) = first_event_after(after).map(i64::try_from) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        const CTX: &str = "reading ledger events";
        Ok(self.db.read_tx(|conn| {
            let mut stmt = conn.prepare_cached(EVENTS).ctx(CTX)?;
            let mut rows = stmt.query((book.as_str(), from, limit)).ctx(CTX)?;
            let mut heads = Vec::new();
            while let Some(row) = rows.next().ctx(CTX)? {
                heads.push((
                    row.get::<_, i64>(0).ctx(CTX)?,
                    row.get::<_, i64>(1).ctx(CTX)?,
                    row.get::<_, String>(2).ctx(CTX)?,
                    row.get::<_, Option<String>>(3).ctx(CTX)?,
                    row.get::<_, Option<String>>(4).ctx(CTX)?,
                    row.get::<_, Option<Vec<u8>>>(5).ctx(CTX)?,
                ));
            }
            drop(rows);
            let missing = || corrupted("an event refers to a record that does not exist");
            let mut events = Vec::with_capacity(heads.len());
            for (seq, at, kind, asset, path, txid) in heads {
                let event = match (kind.as_str(), asset, path, txid) {
                    ("asset_registered", Some(asset), None, None) => {
                        let def =
                            read_asset(conn, &COLUMNS.asset_id(asset)?)?.ok_or_else(missing)?;
                        LedgerEvent::AssetRegistered(def)
                    }
                    ("account_opened", None, Some(path), None) => {
                        let id = AccountId {
                            book: book.clone(),
                            path: COLUMNS.account_path(path)?,
                        };
                        let record = read_account(conn, &id)?.ok_or_else(missing)?;
                        LedgerEvent::AccountOpened {
                            def: record.def,
                            cfg: record.cfg,
                        }
                    }
                    ("transaction_posted", None, None, Some(txid)) => {
                        let tx = read_transaction(conn, &txid_from(txid)?)?.ok_or_else(missing)?;
                        LedgerEvent::TransactionPosted(tx)
                    }
                    _ => return Err(corrupted("decoding a ledger event")),
                };
                events.push(Sequenced {
                    seq: seq_from(seq)?,
                    at: Timestamp(u64_from_sql(at)),
                    event,
                });
            }
            Ok::<_, StorageError>(events)
        })?)
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        const CTX: &str = "listing books";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let params = (after.map_or("", Book::as_str), limit_to_sql(limit));
        self.db.read(|conn| {
            query_page(conn, LIST_BOOKS, params, CTX, |row| {
                COLUMNS.book(row.get(0).ctx(CTX)?)
            })
        })
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        const CTX: &str = "listing assets";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let params = (after.map_or("", AssetId::as_str), limit_to_sql(limit));
        self.db.read(|conn| {
            query_page(conn, LIST_ASSETS, params, CTX, |row| {
                asset_def(
                    row.get(0).ctx(CTX)?,
                    row.get(1).ctx(CTX)?,
                    row.get(2).ctx(CTX)?,
                )
            })
        })
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        const CTX: &str = "listing accounts";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let params = (
            after.map_or("", AccountPath::as_str),
            book.as_str(),
            limit_to_sql(limit),
        );
        self.db.read(|conn| {
            query_page(conn, LIST_ACCOUNTS, params, CTX, |row| {
                let def = AccountDef {
                    id: AccountId {
                        book: book.clone(),
                        path: COLUMNS.account_path(row.get(0).ctx(CTX)?)?,
                    },
                    asset: COLUMNS.asset_id(row.get(1).ctx(CTX)?)?,
                    kind: COLUMNS.account_kind(&row.get::<_, String>(2).ctx(CTX)?)?,
                };
                let cfg = AccountCfg {
                    normal_side: COLUMNS.direction(&row.get::<_, String>(3).ctx(CTX)?)?,
                    min_balance: row.get(4).ctx(CTX)?,
                };
                Ok((def, cfg))
            })
        })
    }
}
