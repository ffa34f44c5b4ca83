//! `LedgerStore` on the `ledger_*` tables, planned by the shared
//! [`LedgerPlanner`](store_kit::ledger::LedgerPlanner) reading through the write
//! transaction, and group-committed like every other backend.
//!
//! The planner's [`LedgerWrites`] map to rows exactly as on SQLite: assets to
//! `ledger_assets`, accounts (with their running balance) to `ledger_accounts`,
//! transactions to `ledger_transactions` and `ledger_transaction_metadata`, postings to
//! `ledger_postings`, events to `ledger_events`, heads to `ledger_book_heads`, totals to
//! `ledger_totals`; one statement writes every table (an `unnest` of arrays per table).
//!
//! # Round trips
//! A commit batch costs five: `BEGIN`, the books' locks, one statement reading every record
//! the planner needs ([`PREFETCH`]), one statement writing the plan ([`WRITE_PLAN`]), and
//! `COMMIT`; every statement is prepared once per connection (see `db::Statements`).
//!
//! # Sharing
//! Before the planner reads anything, a write transaction takes a transaction-level
//! advisory lock for every book it touches (asset registrations touch `_system`), in key
//! order. Every writer of a book, in any process, holds that lock until it commits, so the
//! planner's reads (`READ COMMITTED`: each statement sees every commit made before it) are
//! the book's current state: sequence numbers stay gapless per book, an idempotency key
//! commits once, and `min_balance` holds. What the locks do not order (a transaction id
//! reused in two books at once) ends in a unique violation, which the backend retries: the
//! retry sees the other commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use postgres::Row;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, Posting, PostingRecord, Sequenced,
    StorageError, StoredTransaction, Timestamp, Transaction as Draft, TrialBalanceRow, TxId,
};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, LedgerPlanner, LedgerRead, LedgerWrites,
    PlannedEventBody, balance_as_of, commit_grouped, first_event_after, history_page, keys,
    plan_batch, trial_balance_of_postings, trial_rows,
};
use store_kit::sql;
use uuid::Uuid;

use crate::db::{Db, Sql, Tx, execute, get, query, query_opt};
use crate::{corrupted, seq_from_sql, seq_to_sql, u64_from_sql, u64_to_sql};

/// Locks the books named in `$2` (text[]) for this transaction, in key order, and has the
/// rest of the transaction run its prepared statements with their generic plans: the
/// server would otherwise plan [`PREFETCH`] and [`WRITE_PLAN`] anew on every run (a
/// third of a millisecond each), and their generic plans probe the same indexes (the
/// `plans` tests check the prefetch's).
const LOCK_BOOKS: &str = "SELECT pg_advisory_xact_lock(k), \
                          set_config('plan_cache_mode', 'force_generic_plan', true) FROM (\
                          SELECT DISTINCT hashtextextended(\
                          'store-postgres ledger ' || $1 || '/' || b, 0) AS k \
                          FROM unnest($2::text[]) AS t (b) ORDER BY k) AS keys";
const ASSET: &str = "SELECT id, precision, name FROM ledger_assets WHERE id = $1";
const ACCOUNT: &str = "SELECT asset, kind, normal_side, min_balance, balance, updated_seq \
                       FROM ledger_accounts WHERE book = $1 AND path = $2";
const HEAD: &str = "SELECT seq, last_at FROM ledger_book_heads WHERE book = $1";
const IDEMPOTENCY: &str = "SELECT txid, seq, at FROM ledger_transactions \
                           WHERE book = $1 AND idempotency_key = $2";
const TX_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE txid = $1)";
/// The greatest transaction id (uuid compares bytewise, as the key-value engines' keys).
const LAST_TXID: &str = "SELECT txid FROM ledger_transactions ORDER BY txid DESC LIMIT 1";
const TOTALS: &str = "SELECT debits::text, credits::text FROM ledger_totals \
                      WHERE book = $1 AND asset = $2";
const BOOK_TOTALS: &str =
    "SELECT asset, debits::text, credits::text FROM ledger_totals WHERE book = $1";
const TRANSACTION: &str = "SELECT book, seq, at, idempotency_key \
                           FROM ledger_transactions WHERE txid = $1";
const TX_POSTINGS: &str = "SELECT book, path, asset, amount::text, direction \
                           FROM ledger_postings WHERE txid = $1 ORDER BY idx";
const TX_METADATA: &str =
    "SELECT key, value FROM ledger_transaction_metadata WHERE txid = $1 ORDER BY key";
/// The columns [`posting_record`] reads, in order.
macro_rules! posting_columns {
    () => {
        "txid, seq, at, idx, book, path, asset, amount::text, direction, balance_after"
    };
}
const HISTORY: &str = concat!(
    "SELECT ",
    posting_columns!(),
    " FROM ledger_postings WHERE book = $1 AND path = $2 AND seq > $3 ORDER BY seq, idx"
);
const HISTORY_NEWEST_FIRST: &str = concat!(
    "SELECT ",
    posting_columns!(),
    " FROM ledger_postings WHERE book = $1 AND path = $2 ORDER BY seq DESC, idx DESC"
);
const BOOK_POSTINGS: &str = concat!(
    "SELECT ",
    posting_columns!(),
    " FROM ledger_postings WHERE book = $1 ORDER BY seq, idx"
);
/// The books holding an event (a book's head row is written with its first event), by
/// name after `$1` (`''` lists from the first), at most `$2`: the primary key's order,
/// which is bytewise (`COLLATE "C"`).
pub(crate) const LIST_BOOKS: &str =
    "SELECT book FROM ledger_book_heads WHERE book > $1 ORDER BY book LIMIT $2";
/// The assets by id after `$1`, at most `$2`, in the primary key's (bytewise) order.
pub(crate) const LIST_ASSETS: &str =
    "SELECT id, precision, name FROM ledger_assets WHERE id > $1 ORDER BY id LIMIT $2";
/// Book `$1`'s accounts by path after `$2`, at most `$3`, in the primary key's (bytewise)
/// order; the columns of [`account_from_row`], then the path.
pub(crate) const LIST_ACCOUNTS: &str = "SELECT asset, kind, normal_side, min_balance, path \
                             FROM ledger_accounts WHERE book = $1 AND path > $2 \
                             ORDER BY path LIMIT $3";
const EVENTS: &str = "SELECT seq, at, kind, asset, path, txid FROM ledger_events \
                      WHERE book = $1 AND seq >= $2 ORDER BY seq LIMIT $3";

/// Everything the planner reads for a batch of drafts, in one statement run after the
/// books are locked: the heads of books `$1`; the receipts of the idempotency keys
/// `($2, $3)` (book, key); the accounts `($4, $5)` (book, path); the totals `($6, $7)`
/// (book, asset); the greatest transaction id; and which of the drafts' ids `$8` are
/// committed already. One row per record found, its kind in the first column (`h`, `i`,
/// `a`, `t`, `x`, `e`), then text columns `c1`..`c5`, bigint
/// columns `n1`..`n3` and a uuid, as [`Prefetched::read`] reads them. Each lookup is a
/// `LATERAL ... LIMIT 1` by primary or unique key, so the server probes the index once per
/// key whatever it estimates of the arrays (a join it could plan freely might scan).
pub(crate) const PREFETCH: &str = "\
     SELECT 'h'::text AS kind, book::text AS c1, NULL::text AS c2, NULL::text AS c3, \
     NULL::text AS c4, NULL::text AS c5, seq AS n1, last_at AS n2, NULL::int8 AS n3, \
     NULL::uuid AS u \
     FROM ledger_book_heads WHERE book = ANY($1::text[]) \
     UNION ALL \
     SELECT 'i', r.book, r.idempotency_key, NULL, NULL, NULL, r.seq, r.at, NULL, r.txid \
     FROM unnest($2::text[], $3::text[]) AS k (book, key), LATERAL (\
     SELECT book, idempotency_key, seq, at, txid FROM ledger_transactions \
     WHERE book = k.book AND idempotency_key = k.key LIMIT 1) AS r \
     UNION ALL \
     SELECT 'a', r.book, r.path, r.asset, r.kind, r.normal_side, r.min_balance, r.balance, \
     r.updated_seq, NULL \
     FROM unnest($4::text[], $5::text[]) AS k (book, path), LATERAL (\
     SELECT book, path, asset, kind, normal_side, min_balance, balance, updated_seq \
     FROM ledger_accounts WHERE book = k.book AND path = k.path LIMIT 1) AS r \
     UNION ALL \
     SELECT 't', r.book, r.asset, r.debits::text, r.credits::text, NULL, NULL, NULL, NULL, \
     NULL \
     FROM unnest($6::text[], $7::text[]) AS k (book, asset), LATERAL (\
     SELECT book, asset, debits, credits FROM ledger_totals \
     WHERE book = k.book AND asset = k.asset LIMIT 1) AS r \
     UNION ALL \
     (SELECT 'x', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, txid \
     FROM ledger_transactions ORDER BY txid DESC LIMIT 1) \
     UNION ALL \
     SELECT 'e', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, r.txid \
     FROM unnest($8::uuid[]) AS k (txid), LATERAL (\
     SELECT txid FROM ledger_transactions WHERE txid = k.txid LIMIT 1) AS r";

/// Every row of a plan in one statement, one `unnest` of arrays per table (an empty array
/// writes nothing). Foreign keys are checked when the statement ends, so the order of the
/// parts does not matter.
const WRITE_PLAN: &str = "WITH \
     assets AS (INSERT INTO ledger_assets (id, precision, name) \
     SELECT * FROM unnest($1::text[], $2::int2[], $3::text[])), \
     accounts AS (INSERT INTO ledger_accounts \
     (book, path, asset, kind, normal_side, min_balance, balance, updated_seq) \
     SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
     $9::int8[], $10::int8[], $11::int8[]) \
     ON CONFLICT (book, path) DO UPDATE \
     SET balance = excluded.balance, updated_seq = excluded.updated_seq), \
     transactions AS (INSERT INTO ledger_transactions \
     (txid, book, seq, at, idempotency_key, posting_count) \
     SELECT * FROM unnest($12::uuid[], $13::text[], $14::int8[], $15::int8[], $16::text[], \
     $17::int4[])), \
     metadata AS (INSERT INTO ledger_transaction_metadata (txid, key, value) \
     SELECT * FROM unnest($18::uuid[], $19::text[], $20::text[])), \
     postings AS (INSERT INTO ledger_postings \
     (txid, idx, book, path, asset, amount, direction, balance_after, seq, at) \
     SELECT txid, idx, book, path, asset, amount::numeric, direction, balance_after, seq, at \
     FROM unnest($21::uuid[], $22::int4[], $23::text[], $24::text[], $25::text[], \
     $26::text[], $27::text[], $28::int8[], $29::int8[], $30::int8[]) \
     AS t (txid, idx, book, path, asset, amount, direction, balance_after, seq, at)), \
     events AS (INSERT INTO ledger_events (book, seq, at, kind, asset, path, txid) \
     SELECT * FROM unnest($31::text[], $32::int8[], $33::int8[], $34::text[], $35::text[], \
     $36::text[], $37::uuid[])), \
     heads AS (INSERT INTO ledger_book_heads (book, seq, last_at) \
     SELECT * FROM unnest($38::text[], $39::int8[], $40::int8[]) \
     ON CONFLICT (book) DO UPDATE SET seq = excluded.seq, last_at = excluded.last_at), \
     totals AS (INSERT INTO ledger_totals (book, asset, debits, credits) \
     SELECT book, asset, debits::numeric, credits::numeric \
     FROM unnest($41::text[], $42::text[], $43::text[], $44::text[]) \
     AS t (book, asset, debits, credits) \
     ON CONFLICT (book, asset) DO UPDATE \
     SET debits = excluded.debits, credits = excluded.credits) \
     SELECT 1";

/// The ledger.
pub struct PostgresLedger {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    queue: CommitQueue,
}

impl std::fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLedger")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

// ---- column encodings -------------------------------------------------------------------

/// The ledger's text columns, decoded once for both relational backends.
const COLUMNS: sql::LedgerColumns = sql::LedgerColumns(crate::BACKEND_NAME);

fn seq_from(n: i64) -> Result<u64, StorageError> {
    seq_from_sql(n, "decoding a ledger sequence number")
}

fn amount_from(s: &str) -> Result<u64, StorageError> {
    s.parse()
        .map_err(|_| corrupted("decoding a posting amount"))
}

fn total_from(s: &str) -> Result<u128, StorageError> {
    s.parse().map_err(|_| corrupted("decoding a ledger total"))
}

/// A row of [`posting_columns`].
fn posting_record(row: &Row) -> Result<PostingRecord, StorageError> {
    const CTX: &str = "reading a posting";
    let book = COLUMNS.book(get(row, 4, CTX)?)?;
    Ok(PostingRecord {
        txid: TxId(get::<Uuid>(row, 0, CTX)?),
        seq: seq_from(get(row, 1, CTX)?)?,
        at: Timestamp(u64_from_sql(get(row, 2, CTX)?)),
        index: u32::try_from(get::<i32>(row, 3, CTX)?)
            .map_err(|_| corrupted("decoding a posting index"))?,
        account: AccountId {
            book,
            path: COLUMNS.account_path(get(row, 5, CTX)?)?,
        },
        asset: COLUMNS.asset_id(get(row, 6, CTX)?)?,
        amount: amount_from(&get::<String>(row, 7, CTX)?)?,
        direction: COLUMNS.direction(&get::<String>(row, 8, CTX)?)?,
        balance_after: get(row, 9, CTX)?,
    })
}

// ---- reads shared by the planner and the API ----------------------------------------------

/// The asset of a row whose first columns are `id, precision, name`.
fn asset_from_row(row: &Row, context: &'static str) -> Result<AssetDef, StorageError> {
    Ok(AssetDef {
        id: COLUMNS.asset_id(get(row, 0, context)?)?,
        precision: u8::try_from(get::<i16>(row, 1, context)?)
            .map_err(|_| corrupted("decoding an asset precision"))?,
        name: get(row, 2, context)?,
    })
}

/// The definition and configuration of account `id`, from a row whose first columns are
/// `asset, kind, normal_side, min_balance`.
fn account_from_row(
    row: &Row,
    id: AccountId,
    context: &'static str,
) -> Result<(AccountDef, AccountCfg), StorageError> {
    Ok((
        AccountDef {
            id,
            asset: COLUMNS.asset_id(get(row, 0, context)?)?,
            kind: COLUMNS.account_kind(&get::<String>(row, 1, context)?)?,
        },
        AccountCfg {
            normal_side: COLUMNS.direction(&get::<String>(row, 2, context)?)?,
            min_balance: get(row, 3, context)?,
        },
    ))
}

fn read_asset(client: &mut impl Sql, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
    const CTX: &str = "reading an asset";
    query_opt(client, ASSET, &[&id.as_str()], CTX)?
        .map(|row| asset_from_row(&row, CTX))
        .transpose()
}

fn read_account(
    client: &mut impl Sql,
    id: &AccountId,
) -> Result<Option<AccountRecord>, StorageError> {
    const CTX: &str = "reading an account";
    let Some(row) = query_opt(
        client,
        ACCOUNT,
        &[&id.book.as_str(), &id.path.as_str()],
        CTX,
    )?
    else {
        return Ok(None);
    };
    let (def, cfg) = account_from_row(&row, id.clone(), CTX)?;
    Ok(Some(AccountRecord {
        def,
        cfg,
        balance: get(&row, 4, CTX)?,
        updated_seq: seq_from(get(&row, 5, CTX)?)?,
    }))
}

fn read_transaction(
    client: &mut impl Sql,
    txid: &TxId,
) -> Result<Option<StoredTransaction>, StorageError> {
    const CTX: &str = "reading a transaction";
    let Some(row) = query_opt(client, TRANSACTION, &[&txid.0], CTX)? else {
        return Ok(None);
    };
    let mut postings = Vec::new();
    for p in query(client, TX_POSTINGS, &[&txid.0], CTX)? {
        postings.push(Posting {
            account: AccountId {
                book: COLUMNS.book(get(&p, 0, CTX)?)?,
                path: COLUMNS.account_path(get(&p, 1, CTX)?)?,
            },
            asset: COLUMNS.asset_id(get(&p, 2, CTX)?)?,
            amount: amount_from(&get::<String>(&p, 3, CTX)?)?,
            direction: COLUMNS.direction(&get::<String>(&p, 4, CTX)?)?,
        });
    }
    let mut metadata = BTreeMap::new();
    for m in query(client, TX_METADATA, &[&txid.0], CTX)? {
        metadata.insert(get(&m, 0, CTX)?, get(&m, 1, CTX)?);
    }
    Ok(Some(StoredTransaction {
        id: *txid,
        book: COLUMNS.book(get(&row, 0, CTX)?)?,
        postings,
        idempotency_key: get(&row, 3, CTX)?,
        metadata,
        seq: seq_from(get(&row, 1, CTX)?)?,
        at: Timestamp(u64_from_sql(get(&row, 2, CTX)?)),
    }))
}

/// What [`PREFETCH`] read for a batch of drafts, so that planning it costs one round trip
/// instead of one per record: every record asked for, with what the server holds (`None`
/// or the default when nothing). Read after the books are locked, it is what the planner
/// would read record by record. The reader takes each answer out once; anything not
/// asked for here (assets, ids below the bound) it asks the server for.
#[derive(Debug, Default)]
struct Prefetched {
    heads: HashMap<String, BookHead>,
    idempotency: HashMap<(String, String), Option<Committed>>,
    accounts: HashMap<(String, String), Option<AccountRecord>>,
    totals: HashMap<(String, String), AssetTotals>,
    /// The greatest transaction id (inner `None`: no transaction), once read.
    last_txid: Option<Option<Uuid>>,
    /// Whether each draft's id is committed already, so that a draft whose id is not above
    /// the bound (a v7 id made in the same millisecond as the last commit) costs no round
    /// trip of its own.
    txids: HashMap<Uuid, bool>,
}

/// A column a prefetched row of its kind always has.
fn required<T>(value: Option<T>) -> Result<T, StorageError> {
    value.ok_or_else(|| corrupted("a prefetched ledger record lacks a column"))
}

impl Prefetched {
    /// Reads, in one statement, the records planning `drafts` asks for.
    fn read(tx: &mut Tx<'_>, drafts: &[Draft]) -> Result<Self, StorageError> {
        const CTX: &str = "reading ledger records";
        let mut found = Prefetched {
            last_txid: Some(None),
            ..Prefetched::default()
        };
        for draft in drafts {
            let book = draft.book.as_str();
            found.txids.insert(draft.id.0, false);
            found.heads.entry(book.to_owned()).or_default();
            if let Some(key) = &draft.idempotency_key {
                found
                    .idempotency
                    .entry((book.to_owned(), key.clone()))
                    .or_default();
            }
            for posting in &draft.postings {
                let account = &posting.account;
                found
                    .accounts
                    .entry((
                        account.book.as_str().to_owned(),
                        account.path.as_str().to_owned(),
                    ))
                    .or_default();
                found
                    .totals
                    .entry((book.to_owned(), posting.asset.as_str().to_owned()))
                    .or_default();
            }
        }
        let books: Vec<&str> = found.heads.keys().map(String::as_str).collect();
        let (key_books, keys): (Vec<&str>, Vec<&str>) = found
            .idempotency
            .keys()
            .map(|(b, k)| (b.as_str(), k.as_str()))
            .unzip();
        let (account_books, paths): (Vec<&str>, Vec<&str>) = found
            .accounts
            .keys()
            .map(|(b, p)| (b.as_str(), p.as_str()))
            .unzip();
        let (total_books, assets): (Vec<&str>, Vec<&str>) = found
            .totals
            .keys()
            .map(|(b, a)| (b.as_str(), a.as_str()))
            .unzip();
        let txids: Vec<Uuid> = found.txids.keys().copied().collect();
        let rows = query(
            tx,
            PREFETCH,
            &[
                &books,
                &key_books,
                &keys,
                &account_books,
                &paths,
                &total_books,
                &assets,
                &txids,
            ],
            CTX,
        )?;
        for row in &rows {
            let kind: String = get(row, 0, CTX)?;
            let text = |i| get::<Option<String>>(row, i, CTX).and_then(required);
            let number = |i| get::<Option<i64>>(row, i, CTX);
            match kind.as_str() {
                "h" => {
                    let head = BookHead {
                        seq: seq_from(required(number(6)?)?)?,
                        last_at: Timestamp(u64_from_sql(required(number(7)?)?)),
                    };
                    found.heads.insert(text(1)?, head);
                }
                "i" => {
                    let committed = Committed {
                        txid: TxId(required(get::<Option<Uuid>>(row, 9, CTX)?)?),
                        seq: seq_from(required(number(6)?)?)?,
                        at: Timestamp(u64_from_sql(required(number(7)?)?)),
                    };
                    found
                        .idempotency
                        .insert((text(1)?, text(2)?), Some(committed));
                }
                "a" => {
                    let (book, path) = (text(1)?, text(2)?);
                    let record = AccountRecord {
                        def: AccountDef {
                            id: AccountId {
                                book: COLUMNS.book(book.clone())?,
                                path: COLUMNS.account_path(path.clone())?,
                            },
                            asset: COLUMNS.asset_id(text(3)?)?,
                            kind: COLUMNS.account_kind(&text(4)?)?,
                        },
                        cfg: AccountCfg {
                            normal_side: COLUMNS.direction(&text(5)?)?,
                            min_balance: number(6)?,
                        },
                        balance: required(number(7)?)?,
                        updated_seq: seq_from(required(number(8)?)?)?,
                    };
                    found.accounts.insert((book, path), Some(record));
                }
                "t" => {
                    let totals = AssetTotals {
                        debits: total_from(&text(3)?)?,
                        credits: total_from(&text(4)?)?,
                    };
                    found.totals.insert((text(1)?, text(2)?), totals);
                }
                "x" => found.last_txid = Some(get::<Option<Uuid>>(row, 9, CTX)?),
                "e" => {
                    found
                        .txids
                        .insert(required(get::<Option<Uuid>>(row, 9, CTX)?)?, true);
                }
                _ => return Err(corrupted("decoding a prefetched ledger record")),
            }
        }
        Ok(found)
    }
}

/// The planner's view of the ledger: reads inside the write transaction, after the books'
/// locks are taken, answered from `prefetched` where it can.
struct TxReader<'a, 'c> {
    tx: &'a mut Tx<'c>,
    prefetched: Prefetched,
}

impl LedgerRead for TxReader<'_, '_> {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        read_asset(self.tx, id)
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        let key = (id.book.as_str().to_owned(), id.path.as_str().to_owned());
        if let Some(found) = self.prefetched.accounts.remove(&key) {
            return Ok(found);
        }
        read_account(self.tx, id)
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        const CTX: &str = "reading a book head";
        if let Some(found) = self.prefetched.heads.remove(book.as_str()) {
            return Ok(found);
        }
        match query_opt(self.tx, HEAD, &[&book.as_str()], CTX)? {
            None => Ok(BookHead::default()),
            Some(row) => Ok(BookHead {
                seq: seq_from(get(&row, 0, CTX)?)?,
                last_at: Timestamp(u64_from_sql(get(&row, 1, CTX)?)),
            }),
        }
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        const CTX: &str = "reading an idempotency key";
        let slot = (book.as_str().to_owned(), key.to_owned());
        if let Some(found) = self.prefetched.idempotency.remove(&slot) {
            return Ok(found);
        }
        query_opt(self.tx, IDEMPOTENCY, &[&book.as_str(), &key], CTX)?
            .map(|row| {
                Ok(Committed {
                    txid: TxId(get::<Uuid>(&row, 0, CTX)?),
                    seq: seq_from(get(&row, 1, CTX)?)?,
                    at: Timestamp(u64_from_sql(get(&row, 2, CTX)?)),
                })
            })
            .transpose()
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        const CTX: &str = "checking a transaction id";
        if let Some(found) = self.prefetched.txids.get(&txid.0) {
            return Ok(*found);
        }
        let row = query_opt(self.tx, TX_EXISTS, &[&txid.0], CTX)?
            .ok_or_else(|| corrupted("EXISTS returned no row"))?;
        get(&row, 0, CTX)
    }

    fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        const CTX: &str = "reading the last transaction id";
        let last = match self.prefetched.last_txid.take() {
            Some(last) => last,
            None => query_opt(self.tx, LAST_TXID, &[], CTX)?
                .map(|row| get::<Uuid>(&row, 0, CTX))
                .transpose()?,
        };
        Ok(keys::transaction_bound(
            last.as_ref().map(|id| &id.as_bytes()[..]),
        ))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        const CTX: &str = "reading ledger totals";
        let slot = (book.as_str().to_owned(), asset.as_str().to_owned());
        if let Some(found) = self.prefetched.totals.remove(&slot) {
            return Ok(found);
        }
        match query_opt(self.tx, TOTALS, &[&book.as_str(), &asset.as_str()], CTX)? {
            None => Ok(AssetTotals::default()),
            Some(row) => Ok(AssetTotals {
                debits: total_from(&get::<String>(&row, 0, CTX)?)?,
                credits: total_from(&get::<String>(&row, 1, CTX)?)?,
            }),
        }
    }
}

/// The advisory lock keys of the books in `$2` (text[]), in the order [`LOCK_BOOKS`] takes
/// them.
const BOOK_LOCK_KEYS: &str = "SELECT DISTINCT hashtextextended(\
                              'store-postgres ledger ' || $1 || '/' || b, 0) AS k \
                              FROM unnest($2::text[]) AS t (b) ORDER BY k";
const TRY_LOCK_KEY: &str = "SELECT pg_try_advisory_xact_lock($1)";
const LOCK_KEY: &str = "SELECT pg_advisory_xact_lock($1)";
const GENERIC_PLANS: &str = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";

/// Locks `books` (names, possibly invalid: a lock on a name writes nothing) for the rest
/// of the transaction.
///
/// When a subscriber wants [`lock_wait`](store_kit::lock_wait) events, the books are
/// locked one by one, each tried first, in the same key order as [`LOCK_BOOKS`] (so no
/// new deadlock is possible), and a book that another transaction held is an event with
/// the time this one waited for it. That costs a round trip per book, so it is done only
/// then; otherwise one statement takes every lock.
fn lock_books(tx: &mut Tx<'_>, schema: &str, books: &[&str]) -> Result<(), StorageError> {
    const CTX: &str = "locking ledger books";
    if !store_kit::lock_wait::enabled() {
        execute(tx, LOCK_BOOKS, &[&schema, &books], CTX)?;
        return Ok(());
    }
    for row in query(tx, BOOK_LOCK_KEYS, &[&schema, &books], CTX)? {
        let key: i64 = get(&row, 0, CTX)?;
        let taken = query_opt(tx, TRY_LOCK_KEY, &[&key], CTX)?
            .map(|row| get::<bool>(&row, 0, CTX))
            .transpose()?
            .unwrap_or(false);
        if !taken {
            let started = std::time::Instant::now();
            execute(tx, LOCK_KEY, &[&key], CTX)?;
            store_kit::lock_wait::waited("postgres ledger book", started);
        }
    }
    execute(tx, GENERIC_PLANS, &[], CTX)?;
    Ok(())
}

/// Writes everything the planner planned in one statement ([`WRITE_PLAN`]).
fn write_plan(tx: &mut Tx<'_>, writes: &LedgerWrites<'_>) -> Result<(), StorageError> {
    const CTX: &str = "writing ledger records";
    if writes.is_empty() {
        return Ok(());
    }
    let asset_ids: Vec<&str> = writes.assets.iter().map(|d| d.id.as_str()).collect();
    let asset_precisions: Vec<i16> = writes
        .assets
        .iter()
        .map(|d| i16::from(d.precision))
        .collect();
    let asset_names: Vec<&str> = writes.assets.iter().map(|d| d.name.as_str()).collect();

    let a = &writes.accounts;
    let account_books: Vec<&str> = a.iter().map(|r| r.def.id.book.as_str()).collect();
    let account_paths: Vec<&str> = a.iter().map(|r| r.def.id.path.as_str()).collect();
    let account_assets: Vec<&str> = a.iter().map(|r| r.def.asset.as_str()).collect();
    let account_kinds: Vec<&str> = a
        .iter()
        .map(|r| sql::account_kind_name(r.def.kind))
        .collect();
    let account_sides: Vec<&str> = a
        .iter()
        .map(|r| sql::direction_name(r.cfg.normal_side))
        .collect();
    let account_mins: Vec<Option<i64>> = a.iter().map(|r| r.cfg.min_balance).collect();
    let account_balances: Vec<i64> = a.iter().map(|r| r.balance).collect();
    let account_updated: Vec<i64> = a
        .iter()
        .map(|r| seq_to_sql(r.updated_seq))
        .collect::<Result<_, _>>()?;

    let t = &writes.transactions;
    let tx_ids: Vec<Uuid> = t.iter().map(|p| p.tx.id.0).collect();
    let tx_books: Vec<&str> = t.iter().map(|p| p.tx.book.as_str()).collect();
    let tx_seqs: Vec<i64> = t
        .iter()
        .map(|p| seq_to_sql(p.seq))
        .collect::<Result<_, _>>()?;
    let tx_ats: Vec<i64> = t.iter().map(|p| u64_to_sql(p.at.0)).collect();
    let tx_keys: Vec<Option<&str>> = t.iter().map(|p| p.tx.idempotency_key.as_deref()).collect();
    let tx_counts: Vec<i32> = t
        .iter()
        .map(|p| i32::try_from(p.tx.postings.len()).unwrap_or(i32::MAX))
        .collect();
    let mut meta_ids = Vec::new();
    let mut meta_keys: Vec<&str> = Vec::new();
    let mut meta_values: Vec<&str> = Vec::new();
    for planned in t {
        for (key, value) in &planned.tx.metadata {
            meta_ids.push(planned.tx.id.0);
            meta_keys.push(key);
            meta_values.push(value);
        }
    }

    let p = &writes.postings;
    let posting_txids: Vec<Uuid> = p.iter().map(|x| x.txid.0).collect();
    let posting_idxs: Vec<i32> = p
        .iter()
        .map(|x| i32::try_from(x.index).unwrap_or(i32::MAX))
        .collect();
    let posting_books: Vec<&str> = p.iter().map(|x| x.posting.account.book.as_str()).collect();
    let posting_paths: Vec<&str> = p.iter().map(|x| x.posting.account.path.as_str()).collect();
    let posting_assets: Vec<&str> = p.iter().map(|x| x.posting.asset.as_str()).collect();
    let posting_amounts: Vec<String> = p.iter().map(|x| x.posting.amount.to_string()).collect();
    let posting_directions: Vec<&str> = p
        .iter()
        .map(|x| sql::direction_name(x.posting.direction))
        .collect();
    let posting_after: Vec<i64> = p.iter().map(|x| x.balance_after).collect();
    let posting_seqs: Vec<i64> = p
        .iter()
        .map(|x| seq_to_sql(x.seq))
        .collect::<Result<_, _>>()?;
    let posting_ats: Vec<i64> = p.iter().map(|x| u64_to_sql(x.at.0)).collect();

    let e = &writes.events;
    let event_books: Vec<&str> = e.iter().map(|x| x.book.as_str()).collect();
    let event_seqs: Vec<i64> = e
        .iter()
        .map(|x| seq_to_sql(x.seq))
        .collect::<Result<_, _>>()?;
    let event_ats: Vec<i64> = e.iter().map(|x| u64_to_sql(x.at.0)).collect();
    let mut event_kinds: Vec<&str> = Vec::with_capacity(e.len());
    let mut event_assets: Vec<Option<&str>> = Vec::with_capacity(e.len());
    let mut event_paths: Vec<Option<&str>> = Vec::with_capacity(e.len());
    let mut event_txids: Vec<Option<Uuid>> = Vec::with_capacity(e.len());
    for event in e {
        let (kind, asset, path, txid) = match event.body {
            PlannedEventBody::AssetRegistered(def) => {
                ("asset_registered", Some(def.id.as_str()), None, None)
            }
            PlannedEventBody::AccountOpened { def, .. } => {
                ("account_opened", None, Some(def.id.path.as_str()), None)
            }
            PlannedEventBody::TransactionPosted(tx) => {
                ("transaction_posted", None, None, Some(tx.id.0))
            }
        };
        event_kinds.push(kind);
        event_assets.push(asset);
        event_paths.push(path);
        event_txids.push(txid);
    }

    let head_books: Vec<&str> = writes.heads.iter().map(|(b, _)| b.as_str()).collect();
    let head_seqs: Vec<i64> = writes
        .heads
        .iter()
        .map(|(_, h)| seq_to_sql(h.seq))
        .collect::<Result<_, _>>()?;
    let head_ats: Vec<i64> = writes
        .heads
        .iter()
        .map(|(_, h)| u64_to_sql(h.last_at.0))
        .collect();

    let totals = &writes.totals;
    let total_books: Vec<&str> = totals.iter().map(|(b, _, _)| b.as_str()).collect();
    let total_assets: Vec<&str> = totals.iter().map(|(_, a, _)| a.as_str()).collect();
    let total_debits: Vec<String> = totals
        .iter()
        .map(|(_, _, x)| x.debits.to_string())
        .collect();
    let total_credits: Vec<String> = totals
        .iter()
        .map(|(_, _, x)| x.credits.to_string())
        .collect();

    execute(
        tx,
        WRITE_PLAN,
        &[
            &asset_ids,
            &asset_precisions,
            &asset_names,
            &account_books,
            &account_paths,
            &account_assets,
            &account_kinds,
            &account_sides,
            &account_mins,
            &account_balances,
            &account_updated,
            &tx_ids,
            &tx_books,
            &tx_seqs,
            &tx_ats,
            &tx_keys,
            &tx_counts,
            &meta_ids,
            &meta_keys,
            &meta_values,
            &posting_txids,
            &posting_idxs,
            &posting_books,
            &posting_paths,
            &posting_assets,
            &posting_amounts,
            &posting_directions,
            &posting_after,
            &posting_seqs,
            &posting_ats,
            &event_books,
            &event_seqs,
            &event_ats,
            &event_kinds,
            &event_assets,
            &event_paths,
            &event_txids,
            &head_books,
            &head_seqs,
            &head_ats,
            &total_books,
            &total_assets,
            &total_debits,
            &total_credits,
        ],
        CTX,
    )?;
    Ok(())
}

impl PostgresLedger {
    /// The ledger of `db`, stamping events with `clock`.
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>) -> Self {
        PostgresLedger {
            db,
            clock,
            queue: CommitQueue::new(),
        }
    }

    /// Plans one operation touching `book` against the write transaction (after locking
    /// the book) and writes its plan.
    fn write_one<'t, T>(
        &self,
        book: &str,
        mut plan: impl FnMut(&mut LedgerPlanner<'t, '_, TxReader<'_, '_>>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let schema = self.db.location().schema();
        self.db.write(|tx| {
            lock_books(tx, schema, &[book])?;
            let now = self.clock.now();
            let mut reader = TxReader {
                tx,
                prefetched: Prefetched::default(),
            };
            let mut planner = LedgerPlanner::new(&mut reader, now);
            let out = plan(&mut planner)?;
            let writes = planner.into_writes();
            write_plan(reader.tx, &writes)?;
            Ok(out)
        })
    }
}

impl LedgerStore for PostgresLedger {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.write_one(Book::system().as_str(), |p| p.register_asset(def))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.write_one(def.id.book.as_str(), |p| p.open_account(def, cfg))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        let record = self
            .db
            .read(|conn| Ok::<_, LedgerError>(read_account(conn, id)?))?;
        Ok(record.map(|r| (r.def, r.cfg)))
    }

    fn commit(&self, tx: &Draft) -> Result<Committed, LedgerError> {
        commit_grouped(&self.queue, tx, |txs| self.commit_batch(txs))
    }

    fn commit_batch(
        &self,
        txs: &[Draft],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError> {
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.db.location().schema();
        let books: Vec<&str> = txs.iter().map(|t| t.book.as_str()).collect();
        self.db.write(|tx| {
            lock_books(tx, schema, &books)?;
            let now = self.clock.now();
            let prefetched = Prefetched::read(tx, txs)?;
            let mut reader = TxReader { tx, prefetched };
            let (results, writes) = plan_batch(&mut reader, now, txs);
            write_plan(reader.tx, &writes)?;
            Ok(results)
        })
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        self.db.read_tx(|tx| {
            let Some(record) = read_account(tx, account)? else {
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
            let rows = query(
                tx,
                HISTORY_NEWEST_FIRST,
                &[&account.book.as_str(), &account.path.as_str()],
                "reading an account's postings",
            )?;
            Ok(balance_as_of(rows.iter().map(posting_record), as_of)?)
        })
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        self.db
            .read(|conn| Ok::<_, LedgerError>(read_asset(conn, id)?))
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        self.db
            .read_tx(|tx| Ok::<_, LedgerError>(read_transaction(tx, txid)?))
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        self.db.read_tx(|tx| {
            if read_account(tx, account)?.is_none() {
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
            let rows = query(
                tx,
                HISTORY,
                &[&account.book.as_str(), &account.path.as_str(), &after_seq],
                "reading an account's history",
            )?;
            Ok(history_page(rows.iter().map(posting_record), limit)?)
        })
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        self.db.read(|conn| match as_of {
            None => {
                const CTX: &str = "reading ledger totals";
                let mut totals = Vec::new();
                for row in query(conn, BOOK_TOTALS, &[&book.as_str()], CTX)? {
                    let asset = COLUMNS.asset_id(get(&row, 0, CTX)?)?;
                    let debits = total_from(&get::<String>(&row, 1, CTX)?)?;
                    let credits = total_from(&get::<String>(&row, 2, CTX)?)?;
                    totals.push((asset, AssetTotals { debits, credits }));
                }
                Ok::<_, LedgerError>(trial_rows(totals))
            }
            Some(as_of) => {
                // The sums of the book's postings made by then.
                let rows = query(
                    conn,
                    BOOK_POSTINGS,
                    &[&book.as_str()],
                    "reading a book's postings",
                )?;
                Ok(trial_balance_of_postings(
                    rows.iter().map(posting_record),
                    as_of,
                )?)
            }
        })
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
        self.db.read_tx(|tx| {
            let rows = query(tx, EVENTS, &[&book.as_str(), &from, &limit], CTX)?;
            let missing = || corrupted("an event refers to a record that does not exist");
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let kind: String = get(row, 2, CTX)?;
                let asset: Option<String> = get(row, 3, CTX)?;
                let path: Option<String> = get(row, 4, CTX)?;
                let txid: Option<Uuid> = get(row, 5, CTX)?;
                let event = match (kind.as_str(), asset, path, txid) {
                    ("asset_registered", Some(asset), None, None) => {
                        let def = read_asset(tx, &COLUMNS.asset_id(asset)?)?.ok_or_else(missing)?;
                        LedgerEvent::AssetRegistered(def)
                    }
                    ("account_opened", None, Some(path), None) => {
                        let id = AccountId {
                            book: book.clone(),
                            path: COLUMNS.account_path(path)?,
                        };
                        let record = read_account(tx, &id)?.ok_or_else(missing)?;
                        LedgerEvent::AccountOpened {
                            def: record.def,
                            cfg: record.cfg,
                        }
                    }
                    ("transaction_posted", None, None, Some(txid)) => {
                        let stored = read_transaction(tx, &TxId(txid))?.ok_or_else(missing)?;
                        LedgerEvent::TransactionPosted(stored)
                    }
                    _ => return Err(corrupted("decoding a ledger event").into()),
                };
                events.push(Sequenced {
                    seq: seq_from(get(row, 0, CTX)?)?,
                    at: Timestamp(u64_from_sql(get(row, 1, CTX)?)),
                    event,
                });
            }
            Ok(events)
        })
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        const CTX: &str = "listing books";
        let after = after.map_or("", Book::as_str);
        self.db.list(LIST_BOOKS, &[&after], limit, CTX, |row| {
            COLUMNS.book(get(row, 0, CTX)?)
        })
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        const CTX: &str = "listing assets";
        let after = after.map_or("", AssetId::as_str);
        self.db.list(LIST_ASSETS, &[&after], limit, CTX, |row| {
            asset_from_row(row, CTX)
        })
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        const CTX: &str = "listing accounts";
        let after = after.map_or("", AccountPath::as_str);
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&book.as_str(), &after];
        self.db.list(LIST_ACCOUNTS, &params, limit, CTX, |row| {
            let id = AccountId {
                book: book.clone(),
                path: COLUMNS.account_path(get(row, 4, CTX)?)?,
            };
            account_from_row(row, id, CTX)
        })
    }
}
