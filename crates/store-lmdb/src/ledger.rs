//! `LedgerStore` on eight LMDB databases (`ledger.assets`, `ledger.accounts`,
//! `ledger.postings`, `ledger.events`, `ledger.heads`, `ledger.idempotency`,
//! `ledger.transactions`, `ledger.totals`) with the keys of
//! [`store_kit::ledger::keys`] and `postcard` records.
//!
//! Every write is planned by the shared [`LedgerPlanner`] reading through the write
//! transaction itself, and the plan's [`LedgerWrites`] are written in that same
//! transaction: one commit, one durable write. Concurrent `commit`s are grouped by the
//! shared [`CommitQueue`] into one `commit_batch`.

use std::ops::Bound;
use std::sync::Arc;

use heed::{MdbError, PutFlags, RoTxn, RwTxn};
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, PostingRecord, Sequenced,
    StorageError, StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};
use store_kit::codec::{decode, prefix_successor};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, KvTable, LedgerPlanner, LedgerRead,
    LedgerWrites, TxLocation, balance_as_of, commit_grouped, history_page, keys, plan_batch,
    trial_balance_of, trial_rows,
};

use crate::listing::list_page;
use crate::tables::{Abort, Db, Tables};
use crate::{BACKEND_NAME, HeedExt};

/// The LMDB ledger.
#[derive(Debug)]
pub struct LmdbLedger {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    queue: CommitQueue,
}

/// Reads and decodes the `postcard` record of `$key` in `$table`, or `None`.
macro_rules! get {
    ($txn:expr, $table:expr, $key:expr, $what:literal) => {
        match $table
            .get($txn, $key)
            .ctx(concat!("reading a ledger ", $what))?
        {
            Some(bytes) => Some(decode(BACKEND_NAME, $what, bytes)?),
            None => None,
        }
    };
}

/// Range bounds from `start` (inclusive) to the end of the keys starting with `prefix`.
fn prefix_range(start: Vec<u8>, prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let upper = match prefix_successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(start), upper)
}

fn borrow_bounds(bounds: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        bounds.0.as_ref().map(Vec::as_slice),
        bounds.1.as_ref().map(Vec::as_slice),
    )
}

/// The planner's view of the ledger: reads through one transaction.
struct Reader<'a, 'e> {
    txn: &'a RoTxn<'e>,
    t: &'a Tables<'static>,
}

impl LedgerRead for Reader<'_, '_> {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        Ok(get!(
            self.txn,
            self.t.ledger_assets,
            id.as_str().as_bytes(),
            "asset"
        ))
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        Ok(get!(
            self.txn,
            self.t.ledger_accounts,
            &keys::account(id),
            "account"
        ))
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        let head: Option<BookHead> = get!(
            self.txn,
            self.t.ledger_heads,
            book.as_str().as_bytes(),
            "book head"
        );
        Ok(head.unwrap_or_default())
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        Ok(get!(
            self.txn,
            self.t.ledger_idempotency,
            &keys::idempotency(book, key),
            "idempotency receipt"
        ))
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        Ok(self
            .t
            .ledger_transactions
            .get(self.txn, &keys::transaction(txid))
            .ctx("reading a transaction location")?
            .is_some())
    }

    fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        let last = self
            .t
            .ledger_transactions
            .last(self.txn)
            .ctx("reading the last transaction id")?;
        Ok(keys::transaction_bound(last.map(|(key, _)| key)))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        let totals: Option<AssetTotals> = get!(
            self.txn,
            self.t.ledger_totals,
            &keys::totals(book, asset),
            "asset totals"
        );
        Ok(totals.unwrap_or_default())
    }
}

/// Writes everything a plan produced, in the plan's transaction.
///
/// The pairs come table by table with ascending keys. Each table is first tried with
/// `MDB_APPEND`, which skips the key search and fills pages completely, and is valid as
/// long as every key is above the table's last one: new events (sequence numbers grow)
/// and new transactions (time-ordered ids) usually are. LMDB refuses an append below the
/// last key with `MDB_KEYEXIST` without changing anything; that pair and the rest of its
/// table are then written with plain puts. Either way each pair is stored exactly as a
/// plain put would store it.
fn apply(
    txn: &mut RwTxn<'_>,
    t: &Tables<'static>,
    writes: &LedgerWrites<'_>,
) -> Result<(), Abort<LedgerError>> {
    let mut appending: Option<KvTable> = None;
    let mut current: Option<KvTable> = None;
    writes.for_each_kv(BACKEND_NAME, |table, key, value| {
        let db = match table {
            KvTable::Assets => t.ledger_assets,
            KvTable::Accounts => t.ledger_accounts,
            KvTable::Postings => t.ledger_postings,
            KvTable::Transactions => t.ledger_transactions,
            KvTable::Events => t.ledger_events,
            KvTable::Idempotency => t.ledger_idempotency,
            KvTable::Heads => t.ledger_heads,
            KvTable::Totals => t.ledger_totals,
        };
        if current != Some(table) {
            current = Some(table);
            appending = Some(table);
        }
        if appending == Some(table) {
            match db.put_with_flags(txn, PutFlags::APPEND, key, value) {
                Ok(()) => return Ok(()),
                Err(heed::Error::Mdb(MdbError::KeyExist)) => appending = None,
                Err(e) => return Err(Abort::Engine(e)),
            }
        }
        db.put(txn, key, value).map_err(Abort::Engine)
    })
}

impl LmdbLedger {
    /// The ledger of `db`, stamping records with `clock`.
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>) -> Self {
        LmdbLedger {
            db,
            clock,
            queue: CommitQueue::new(),
        }
    }

    /// Plans one operation in a write transaction and writes the plan there.
    fn write<'t>(
        &self,
        what: &'static str,
        plan: impl Fn(&mut LedgerPlanner<'t, '_, Reader<'_, '_>>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let now = self.clock.now();
        self.db.write(what, |txn, t| {
            let writes = {
                let mut reader = Reader { txn, t };
                let mut planner = LedgerPlanner::new(&mut reader, now);
                plan(&mut planner).map_err(Abort::Fail)?;
                planner.into_writes()
            };
            apply(txn, t, &writes)
        })
    }
}

impl LedgerStore for LmdbLedger {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.write("registering an asset", |p| p.register_asset(def))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.write("opening an account", |p| p.open_account(def, cfg))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        self.db.read("reading an account", |txn, t| {
            let record: Option<AccountRecord> =
                get!(txn, t.ledger_accounts, &keys::account(id), "account");
            Ok(record.map(|r| (r.def, r.cfg)))
        })
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
        let now = self.clock.now();
        self.db.write("committing transactions", |txn, t| {
            let (results, writes) = {
                let mut reader = Reader { txn, t };
                plan_batch(&mut reader, now, txs)
            };
            apply(txn, t, &writes)?;
            Ok(results)
        })
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        const WHAT: &str = "reading a balance";
        self.db.read(WHAT, |txn, t| {
            let account_key = keys::account(account);
            let record: Option<AccountRecord> =
                get!(txn, t.ledger_accounts, &account_key, "account");
            let Some(record) = record else {
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
            let bounds = prefix_range(account_key.clone(), &account_key);
            let postings = t
                .ledger_postings
                .rev_range(txn, &borrow_bounds(&bounds))
                .ctx(WHAT)?
                .map(|row| {
                    let (_, bytes) = row.ctx(WHAT)?;
                    Ok::<_, LedgerError>(decode::<PostingRecord>(BACKEND_NAME, "posting", bytes)?)
                });
            balance_as_of(postings, as_of)
        })
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        self.db.read("reading an asset", |txn, t| {
            Ok(get!(txn, t.ledger_assets, id.as_str().as_bytes(), "asset"))
        })
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        self.db.read("reading a transaction", |txn, t| {
            let location: Option<TxLocation> = get!(
                txn,
                t.ledger_transactions,
                &keys::transaction(txid),
                "transaction location"
            );
            let Some(location) = location else {
                return Ok(None);
            };
            let event: Option<Sequenced<LedgerEvent>> = get!(
                txn,
                t.ledger_events,
                &keys::event(&location.book, location.seq),
                "event"
            );
            match event {
                Some(Sequenced {
                    event: LedgerEvent::TransactionPosted(tx),
                    ..
                }) if tx.id == *txid => Ok(Some(tx)),
                _ => Err(StorageError::corrupted(
                    BACKEND_NAME,
                    "a transaction location does not lead to its event",
                )
                .into()),
            }
        })
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        const WHAT: &str = "reading an account history";
        self.db.read(WHAT, |txn, t| {
            let account_key = keys::account(account);
            if t.ledger_accounts
                .get(txn, &account_key)
                .ctx(WHAT)?
                .is_none()
            {
                return Err(LedgerError::UnknownAccount {
                    account: account.clone(),
                });
            }
            let Some(first) = after_seq.checked_add(1) else {
                return Ok(Vec::new());
            };
            let bounds = prefix_range(keys::posting(account, first, 0), &account_key);
            let postings = t
                .ledger_postings
                .range(txn, &borrow_bounds(&bounds))
                .ctx(WHAT)?
                .map(|row| {
                    let (_, bytes) = row.ctx(WHAT)?;
                    Ok::<_, LedgerError>(decode::<PostingRecord>(BACKEND_NAME, "posting", bytes)?)
                });
            history_page(postings, limit)
        })
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        const WHAT: &str = "reading a trial balance";
        let prefix = keys::book_prefix(book);
        self.db.read(WHAT, |txn, t| match as_of {
            None => {
                let mut totals = Vec::new();
                for row in t.ledger_totals.prefix_iter(txn, &prefix).ctx(WHAT)? {
                    let (key, bytes) = row.ctx(WHAT)?;
                    let asset = key
                        .get(prefix.len()..key.len().saturating_sub(1))
                        .and_then(|name| std::str::from_utf8(name).ok())
                        .and_then(|name| AssetId::new(name).ok())
                        .ok_or_else(|| {
                            StorageError::corrupted(
                                BACKEND_NAME,
                                "an asset totals key does not decode",
                            )
                        })?;
                    let sums: AssetTotals = decode(BACKEND_NAME, "asset totals", bytes)?;
                    totals.push((asset, sums));
                }
                Ok(trial_rows(totals))
            }
            Some(as_of) => {
                let mut posted: Vec<StoredTransaction> = Vec::new();
                for row in t.ledger_events.prefix_iter(txn, &prefix).ctx(WHAT)? {
                    let (_, bytes) = row.ctx(WHAT)?;
                    let event: Sequenced<LedgerEvent> = decode(BACKEND_NAME, "event", bytes)?;
                    // `at` never decreases with `seq` in a book: nothing later counts.
                    if event.at > as_of {
                        break;
                    }
                    if let LedgerEvent::TransactionPosted(tx) = event.event {
                        posted.push(tx);
                    }
                }
                Ok(trial_balance_of(&posted, as_of))
            }
        })
    }

    fn read_events(
        &self,
        book: &Book,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        const WHAT: &str = "reading events";
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.db.read(WHAT, |txn, t| {
            let bounds = prefix_range(keys::event(book, from), &keys::book_prefix(book));
            let mut events = Vec::new();
            for row in t
                .ledger_events
                .range(txn, &borrow_bounds(&bounds))
                .ctx(WHAT)?
                .take(limit)
            {
                let (_, bytes) = row.ctx(WHAT)?;
                events.push(decode(BACKEND_NAME, "event", bytes)?);
            }
            Ok(events)
        })
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        let range = keys::books_after(after);
        list_page(
            &self.db,
            |t| t.ledger_heads,
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
            |t| t.ledger_assets,
            &range,
            limit,
            "listing assets",
            |_, value| decode(BACKEND_NAME, "asset", value),
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
            |t| t.ledger_accounts,
            &range,
            limit,
            "listing accounts",
            |_, value| AccountRecord::listed(BACKEND_NAME, value),
        )
    }
}
