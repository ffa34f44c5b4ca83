//! `LedgerStore` on redb, planned by the shared [`LedgerPlanner`] and group-committed.
//!
//! A write (asset registration, account opening, a batch of drafts) is one redb write
//! transaction: the planner reads through the transaction's own tables ([`LedgerRead`]),
//! and its [`LedgerWrites`] are written to the same tables before one commit. Reads use
//! read transactions and never write anything.

use std::ops::Bound;
use std::sync::Arc;

use redb::ReadableTable;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, PostingRecord, Sequenced,
    StorageError, StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};
use store_kit::codec::{self, prefix_successor};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, KvTable, LedgerPlanner, LedgerRead,
    LedgerWrites, TxLocation, balance_as_of, commit_grouped, history_page, keys, plan_batch,
    trial_balance_of, trial_rows,
};

use crate::BACKEND_NAME;
use crate::db::{Context, Db, WriteTable, WriteTxn, get_with, list_page, read_table};
use crate::tables::{
    LEDGER_ACCOUNTS, LEDGER_ASSETS, LEDGER_EVENTS, LEDGER_HEADS, LEDGER_IDEMPOTENCY,
    LEDGER_POSTINGS, LEDGER_TOTALS, LEDGER_TRANSACTIONS,
};

/// The ledger of a [`RedbBackend`](crate::RedbBackend).
///
/// [`commit`](LedgerStore::commit) goes through a group-commit queue: concurrent commits are
/// planned together and written by one write transaction (one durable commit).
#[derive(Debug)]
pub struct RedbLedger {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    queue: CommitQueue,
}

/// The ledger tables of one write transaction: the planner reads them, then the plan is
/// written to them.
struct Tables<'txn> {
    assets: WriteTable<'txn>,
    accounts: WriteTable<'txn>,
    postings: WriteTable<'txn>,
    events: WriteTable<'txn>,
    heads: WriteTable<'txn>,
    idempotency: WriteTable<'txn>,
    transactions: WriteTable<'txn>,
    totals: WriteTable<'txn>,
}

const PLAN: &str = "reading the ledger for a commit";
const WRITE: &str = "writing ledger records";

/// Decodes a ledger record of the type the caller expects.
fn decode<T: Record>(what: &'static str) -> impl Fn(&[u8]) -> Result<T, StorageError> {
    move |bytes| T::decode(what, bytes)
}

/// A record stored in a ledger table: each type's decoder named once (plans are encoded
/// by [`LedgerWrites::for_each_kv`]).
trait Record: Sized {
    fn decode(what: &'static str, bytes: &[u8]) -> Result<Self, StorageError>;
}

macro_rules! record {
    ($($t:ty),* $(,)?) => {$(
        impl Record for $t {
            fn decode(what: &'static str, bytes: &[u8]) -> Result<Self, StorageError> {
                codec::decode(BACKEND_NAME, what, bytes)
            }
        }
    )*};
}

record!(
    AssetDef,
    AccountRecord,
    BookHead,
    Committed,
    AssetTotals,
    TxLocation,
    PostingRecord,
    Sequenced<LedgerEvent>,
);

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTxn<'_>) -> Result<Self, StorageError> {
        Ok(Tables {
            assets: txn.table(LEDGER_ASSETS, PLAN)?,
            accounts: txn.table(LEDGER_ACCOUNTS, PLAN)?,
            postings: txn.table(LEDGER_POSTINGS, PLAN)?,
            events: txn.table(LEDGER_EVENTS, PLAN)?,
            heads: txn.table(LEDGER_HEADS, PLAN)?,
            idempotency: txn.table(LEDGER_IDEMPOTENCY, PLAN)?,
            transactions: txn.table(LEDGER_TRANSACTIONS, PLAN)?,
            totals: txn.table(LEDGER_TOTALS, PLAN)?,
        })
    }

    /// Writes a plan's records, table by table in ascending key order (redb's B-trees
    /// insert sorted keys with the least page work).
    fn write(&mut self, writes: &LedgerWrites<'_>) -> Result<(), StorageError> {
        writes.for_each_kv(BACKEND_NAME, |table, key, value| {
            let table = match table {
                KvTable::Assets => &mut self.assets,
                KvTable::Accounts => &mut self.accounts,
                KvTable::Postings => &mut self.postings,
                KvTable::Transactions => &mut self.transactions,
                KvTable::Events => &mut self.events,
                KvTable::Idempotency => &mut self.idempotency,
                KvTable::Heads => &mut self.heads,
                KvTable::Totals => &mut self.totals,
            };
            table.insert(key, value).ctx(WRITE)?;
            Ok(())
        })
    }
}

impl LedgerRead for Tables<'_> {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        get_with(&self.assets, id.as_str().as_bytes(), PLAN, decode("asset"))
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        get_with(&self.accounts, &keys::account(id), PLAN, decode("account"))
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        Ok(get_with(
            &self.heads,
            book.as_str().as_bytes(),
            PLAN,
            decode("book head"),
        )?
        .unwrap_or_default())
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        get_with(
            &self.idempotency,
            &keys::idempotency(book, key),
            PLAN,
            decode("idempotency receipt"),
        )
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        Ok(self
            .transactions
            .get(keys::transaction(txid).as_slice())
            .ctx(PLAN)?
            .is_some())
    }

    fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        let last = self.transactions.last().ctx(PLAN)?;
        Ok(keys::transaction_bound(
            last.as_ref().map(|(key, _)| key.value()),
        ))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        Ok(get_with(
            &self.totals,
            &keys::totals(book, asset),
            PLAN,
            decode("totals"),
        )?
        .unwrap_or_default())
    }
}

/// `(Included(start), Excluded(end))`, or unbounded above when `end` is `None`.
fn bounds<'a>(start: &'a [u8], end: Option<&'a [u8]>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (
        Bound::Included(start),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

impl RedbLedger {
    /// The ledger over `db`, stamping records with `clock`.
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>) -> Self {
        RedbLedger {
            db,
            clock,
            queue: CommitQueue::new(),
        }
    }

    /// Plans with `plan` in one write transaction and commits what it planned (nothing is
    /// committed when the plan writes nothing).
    fn write<'t, T>(
        &self,
        context: &'static str,
        plan: impl FnOnce(&mut Tables<'_>, Timestamp) -> (T, LedgerWrites<'t>),
    ) -> Result<T, LedgerError> {
        let txn = self.db.begin_write(context)?;
        let out = {
            let mut tables = Tables::open(&txn)?;
            // Read the clock once the write slot is held, so times follow commit order.
            let (out, writes) = plan(&mut tables, self.clock.now());
            if writes.is_empty() {
                return Ok(out);
            }
            tables.write(&writes)?;
            out
        };
        txn.commit(context)?;
        Ok(out)
    }

    fn single<'t>(
        &self,
        context: &'static str,
        op: impl FnOnce(&mut LedgerPlanner<'t, '_, Tables<'_>>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write(context, |tables, now| {
            let mut planner = LedgerPlanner::new(tables, now);
            match op(&mut planner) {
                Ok(()) => (Ok(()), planner.into_writes()),
                Err(e) => (Err(e), LedgerWrites::default()),
            }
        })?
    }
}

impl LedgerStore for RedbLedger {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.single("registering an asset", |p| p.register_asset(def))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.single("opening an account", |p| p.open_account(def, cfg))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        const CONTEXT: &str = "reading an account";
        let txn = self.db.begin_read(CONTEXT)?;
        let accounts = read_table(&txn, LEDGER_ACCOUNTS, CONTEXT)?;
        let record: Option<AccountRecord> =
            get_with(&accounts, &keys::account(id), CONTEXT, decode("account"))?;
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
        self.write("committing ledger transactions", |tables, now| {
            plan_batch(tables, now, txs)
        })
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        const CONTEXT: &str = "reading a balance";
        let txn = self.db.begin_read(CONTEXT)?;
        let accounts = read_table(&txn, LEDGER_ACCOUNTS, CONTEXT)?;
        let account_key = keys::account(account);
        let Some(record) =
            get_with::<AccountRecord>(&accounts, &account_key, CONTEXT, decode("account"))?
        else {
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
        let postings = read_table(&txn, LEDGER_POSTINGS, CONTEXT)?;
        let end = prefix_successor(&account_key);
        let newest_first = postings
            .range::<&[u8]>(bounds(&account_key, end.as_deref()))
            .ctx(CONTEXT)?
            .rev()
            .map(|entry| {
                let (_, value) = entry.ctx(CONTEXT)?;
                Record::decode("posting", value.value())
            });
        Ok(balance_as_of(newest_first, as_of)?)
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        const CONTEXT: &str = "reading an asset";
        let txn = self.db.begin_read(CONTEXT)?;
        let assets = read_table(&txn, LEDGER_ASSETS, CONTEXT)?;
        Ok(get_with(
            &assets,
            id.as_str().as_bytes(),
            CONTEXT,
            decode("asset"),
        )?)
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        const CONTEXT: &str = "reading a transaction";
        let txn = self.db.begin_read(CONTEXT)?;
        let transactions = read_table(&txn, LEDGER_TRANSACTIONS, CONTEXT)?;
        let Some(location) = get_with::<TxLocation>(
            &transactions,
            keys::transaction(txid).as_slice(),
            CONTEXT,
            decode("transaction location"),
        )?
        else {
            return Ok(None);
        };
        let events = read_table(&txn, LEDGER_EVENTS, CONTEXT)?;
        let event: Option<Sequenced<LedgerEvent>> = get_with(
            &events,
            &keys::event(&location.book, location.seq),
            CONTEXT,
            decode("event"),
        )?;
        match event {
            Some(Sequenced {
                event: LedgerEvent::TransactionPosted(tx),
                ..
            }) => Ok(Some(tx)),
            _ => Err(StorageError::corrupted(
                BACKEND_NAME,
                "the transaction index points at an event that is not the transaction",
            )
            .into()),
        }
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        const CONTEXT: &str = "reading an account history";
        let txn = self.db.begin_read(CONTEXT)?;
        let account_key = keys::account(account);
        let accounts = read_table(&txn, LEDGER_ACCOUNTS, CONTEXT)?;
        if accounts.get(account_key.as_slice()).ctx(CONTEXT)?.is_none() {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        }
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let postings = read_table(&txn, LEDGER_POSTINGS, CONTEXT)?;
        let start = keys::posting(account, first, 0);
        let end = prefix_successor(&account_key);
        let page = postings
            .range::<&[u8]>(bounds(&start, end.as_deref()))
            .ctx(CONTEXT)?
            .map(|entry| {
                let (_, value) = entry.ctx(CONTEXT)?;
                Record::decode("posting", value.value())
            });
        Ok(history_page(page, limit)?)
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        const CONTEXT: &str = "reading a trial balance";
        let txn = self.db.begin_read(CONTEXT)?;
        let prefix = keys::book_prefix(book);
        let end = prefix_successor(&prefix);
        match as_of {
            None => {
                let totals = read_table(&txn, LEDGER_TOTALS, CONTEXT)?;
                let mut rows = Vec::new();
                for entry in totals
                    .range::<&[u8]>(bounds(&prefix, end.as_deref()))
                    .ctx(CONTEXT)?
                {
                    let (key, value) = entry.ctx(CONTEXT)?;
                    let asset = totals_asset(key.value(), prefix.len())?;
                    let sums: AssetTotals = Record::decode("totals", value.value())?;
                    rows.push((asset, sums));
                }
                Ok(trial_rows(rows))
            }
            Some(as_of) => {
                let events = read_table(&txn, LEDGER_EVENTS, CONTEXT)?;
                let mut posted: Vec<StoredTransaction> = Vec::new();
                for entry in events
                    .range::<&[u8]>(bounds(&prefix, end.as_deref()))
                    .ctx(CONTEXT)?
                {
                    let (_, value) = entry.ctx(CONTEXT)?;
                    let event: Sequenced<LedgerEvent> = Record::decode("event", value.value())?;
                    // Events are in sequence order and `at` never decreases with `seq`.
                    if event.at > as_of {
                        break;
                    }
                    if let LedgerEvent::TransactionPosted(tx) = event.event {
                        posted.push(tx);
                    }
                }
                Ok(trial_balance_of(&posted, as_of))
            }
        }
    }

    fn read_events(
        &self,
        book: &Book,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        const CONTEXT: &str = "reading ledger events";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read(CONTEXT)?;
        let events = read_table(&txn, LEDGER_EVENTS, CONTEXT)?;
        let start = keys::event(book, from);
        let end = prefix_successor(&keys::book_prefix(book));
        let mut out = Vec::new();
        for entry in events
            .range::<&[u8]>(bounds(&start, end.as_deref()))
            .ctx(CONTEXT)?
            .take(limit)
        {
            let (_, value) = entry.ctx(CONTEXT)?;
            out.push(Record::decode("event", value.value())?);
        }
        Ok(out)
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        let range = keys::books_after(after);
        list_page(
            &self.db,
            LEDGER_HEADS,
            &range,
            limit,
            "listing books",
            |key, _| keys::head_book(BACKEND_NAME, key),
        )
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        let range = keys::assets_after(after);
        list_page(
            &self.db,
            LEDGER_ASSETS,
            &range,
            limit,
            "listing assets",
            |_, value| Record::decode("asset", value),
        )
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        let range = keys::accounts_after(book, after);
        list_page(
            &self.db,
            LEDGER_ACCOUNTS,
            &range,
            limit,
            "listing accounts",
            |_, value| AccountRecord::listed(BACKEND_NAME, value),
        )
    }
}

/// The asset id of a totals key `book NUL asset NUL`, given the length of `book NUL`.
fn totals_asset(key: &[u8], prefix_len: usize) -> Result<AssetId, StorageError> {
    let corrupted = || StorageError::corrupted(BACKEND_NAME, "decoding a ledger totals key");
    let name = key
        .get(prefix_len..)
        .and_then(|rest| rest.strip_suffix(&[0]))
        .ok_or_else(corrupted)?;
    let name = std::str::from_utf8(name).map_err(|_| corrupted())?;
    AssetId::new(name).map_err(|_| corrupted())
}
