//! `LedgerStore` on eight sled trees (the layout of [`store_kit::ledger::keys`]), planned
//! by the shared [`LedgerPlanner`] and group-committed.
//!
//! Every write (an asset, an account, a batch of drafts) is one sled transaction over the
//! eight trees: the planner reads through the transaction, and its [`LedgerWrites`] are
//! written by the same transaction, so a rejected call writes nothing and an accepted one
//! lands whole, also across a crash. `commit` goes through the [`CommitQueue`], so
//! concurrent commits share one transaction and one flush.
//!
//! A read-write lock keeps readers out while a write commits **and** is made durable, so a
//! read never returns a write that is not yet durable (under `Immediate`) and never sees
//! half of one.

use std::sync::Arc;

use parking_lot::RwLock;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
    UnabortableTransactionError,
};
use sled::{IVec, Tree};
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, PostingRecord, Sequenced,
    StorageError, StorageErrorKind, StoredTransaction, Timestamp, Transaction, TrialBalanceRow,
    TxId,
};
use store_kit::codec::{decode, prefix_successor};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, KvTable, LedgerPlanner, LedgerRead,
    LedgerWrites, TxLocation, balance_as_of, commit_grouped, history_page, keys, plan_batch,
    trial_balance_of, trial_rows,
};

use crate::listing::list_page;
use crate::{BACKEND_NAME, Shared, storage_error, trees};

/// The ledger of a [`SledBackend`](crate::SledBackend).
pub struct SledLedger {
    assets: Tree,
    accounts: Tree,
    postings: Tree,
    events: Tree,
    heads: Tree,
    idempotency: Tree,
    transactions: Tree,
    totals: Tree,
    clock: Arc<dyn Clock>,
    /// Writers hold it exclusively from planning until the write is durable; readers hold
    /// it shared.
    lock: RwLock<()>,
    queue: CommitQueue,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SledLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledLedger")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<LedgerError>>;

/// Why a ledger transaction ended without committing.
enum Stop<T> {
    /// The call was rejected (or a record did not decode): nothing is written.
    Rejected(LedgerError),
    /// The call succeeded with nothing to write: its result.
    Unchanged(T),
}

/// A failure of the transaction body, as a failure of a transaction that may also stop
/// early.
fn stop<T>(
    error: ConflictableTransactionError<LedgerError>,
) -> ConflictableTransactionError<Stop<T>> {
    match error {
        ConflictableTransactionError::Abort(e) => {
            ConflictableTransactionError::Abort(Stop::Rejected(e))
        }
        ConflictableTransactionError::Conflict => ConflictableTransactionError::Conflict,
        ConflictableTransactionError::Storage(e) => ConflictableTransactionError::Storage(e),
    }
}

/// The eight ledger trees inside one sled transaction.
struct TxTrees<'a> {
    assets: &'a TransactionalTree,
    accounts: &'a TransactionalTree,
    postings: &'a TransactionalTree,
    events: &'a TransactionalTree,
    heads: &'a TransactionalTree,
    idempotency: &'a TransactionalTree,
    transactions: &'a TransactionalTree,
    totals: &'a TransactionalTree,
}

/// The planner's reads, served from the write transaction. The first failure is kept so
/// the transaction can end with it: sled's own errors (including a conflict, which makes
/// sled retry) go back to sled, records that do not decode abort the whole call.
struct TxReader<'a> {
    trees: TxTrees<'a>,
    failure: Option<ConflictableTransactionError<LedgerError>>,
}

impl TxReader<'_> {
    /// The stored bytes of `key`, recording a sled failure.
    fn raw(
        failure: &mut Option<ConflictableTransactionError<LedgerError>>,
        tree: &TransactionalTree,
        key: &[u8],
    ) -> Result<Option<IVec>, StorageError> {
        tree.get(key).map_err(|e| {
            failure.get_or_insert(match e {
                UnabortableTransactionError::Conflict => ConflictableTransactionError::Conflict,
                UnabortableTransactionError::Storage(e) => ConflictableTransactionError::Storage(e),
            });
            stand_in()
        })
    }

    /// A decoded record, recording a decode failure.
    fn check<T>(&mut self, decoded: Result<T, StorageError>) -> Result<T, StorageError> {
        decoded.map_err(|e| {
            self.failure
                .get_or_insert(ConflictableTransactionError::Abort(e.into()));
            stand_in()
        })
    }
}

/// What the planner sees of a failed read; the real error ends the transaction.
fn stand_in() -> StorageError {
    StorageError::without_source(
        BACKEND_NAME,
        StorageErrorKind::Engine,
        "reading the ledger inside a transaction",
    )
}

impl LedgerRead for TxReader<'_> {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        let tree = self.trees.assets;
        match Self::raw(&mut self.failure, tree, id.as_str().as_bytes())? {
            None => Ok(None),
            Some(stored) => self.check(decode(BACKEND_NAME, "asset", &stored)).map(Some),
        }
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        let tree = self.trees.accounts;
        match Self::raw(&mut self.failure, tree, &keys::account(id))? {
            None => Ok(None),
            Some(stored) => self
                .check(decode(BACKEND_NAME, "account", &stored))
                .map(Some),
        }
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        let tree = self.trees.heads;
        match Self::raw(&mut self.failure, tree, book.as_str().as_bytes())? {
            None => Ok(BookHead::default()),
            Some(stored) => self.check(decode(BACKEND_NAME, "book head", &stored)),
        }
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        let tree = self.trees.idempotency;
        match Self::raw(&mut self.failure, tree, &keys::idempotency(book, key))? {
            None => Ok(None),
            Some(stored) => self
                .check(decode(BACKEND_NAME, "idempotency receipt", &stored))
                .map(Some),
        }
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        let tree = self.trees.transactions;
        Ok(Self::raw(&mut self.failure, tree, &keys::transaction(txid))?.is_some())
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        let tree = self.trees.totals;
        match Self::raw(&mut self.failure, tree, &keys::totals(book, asset))? {
            None => Ok(AssetTotals::default()),
            Some(stored) => self.check(decode(BACKEND_NAME, "asset totals", &stored)),
        }
    }
}

/// Why writing a plan stopped: a record did not encode, or sled refused a write.
enum WriteError {
    Encode(StorageError),
    Sled(UnabortableTransactionError),
}

impl From<StorageError> for WriteError {
    fn from(e: StorageError) -> Self {
        WriteError::Encode(e)
    }
}

/// Writes everything the planner planned, inside the transaction, table by table in
/// ascending key order.
fn write_all(trees: &TxTrees<'_>, writes: &LedgerWrites<'_>) -> TxResult<()> {
    let written = writes.for_each_kv(BACKEND_NAME, |table, key, value| {
        let tree = match table {
            KvTable::Assets => trees.assets,
            KvTable::Accounts => trees.accounts,
            KvTable::Postings => trees.postings,
            KvTable::Transactions => trees.transactions,
            KvTable::Events => trees.events,
            KvTable::Idempotency => trees.idempotency,
            KvTable::Heads => trees.heads,
            KvTable::Totals => trees.totals,
        };
        tree.insert(key, value).map_err(WriteError::Sled)?;
        Ok(())
    });
    match written {
        Ok(()) => Ok(()),
        Err(WriteError::Encode(e)) => Err(ConflictableTransactionError::Abort(e.into())),
        Err(WriteError::Sled(e)) => Err(e.into()),
    }
}

/// The stored bytes of `key`, read outside a transaction.
fn read(tree: &Tree, key: &[u8]) -> Result<Option<IVec>, StorageError> {
    tree.get(key)
        .map_err(|e| storage_error("reading the ledger", e))
}

/// The stored values of a scan.
fn values(
    rows: impl Iterator<Item = sled::Result<(IVec, IVec)>>,
) -> impl Iterator<Item = Result<IVec, LedgerError>> {
    rows.map(|row| match row {
        Ok((_, stored)) => Ok(stored),
        Err(e) => Err(storage_error("scanning the ledger", e).into()),
    })
}

impl SledLedger {
    pub(crate) fn open(shared: Arc<Shared>, clock: Arc<dyn Clock>) -> Result<Self, StorageError> {
        Ok(SledLedger {
            assets: shared.tree(trees::LEDGER_ASSETS)?,
            accounts: shared.tree(trees::LEDGER_ACCOUNTS)?,
            postings: shared.tree(trees::LEDGER_POSTINGS)?,
            events: shared.tree(trees::LEDGER_EVENTS)?,
            heads: shared.tree(trees::LEDGER_HEADS)?,
            idempotency: shared.tree(trees::LEDGER_IDEMPOTENCY)?,
            transactions: shared.tree(trees::LEDGER_TRANSACTIONS)?,
            totals: shared.tree(trees::LEDGER_TOTALS)?,
            clock,
            lock: RwLock::new(()),
            queue: CommitQueue::new(),
            shared,
        })
    }

    /// Runs `plan` over the ledger inside one sled transaction and writes what it planned;
    /// an error from `plan` aborts the transaction (nothing is written). Made durable
    /// before the lock is released.
    ///
    /// A plan that writes nothing (an identical repeat, an idempotent replay, a batch of
    /// rejected drafts) also ends the transaction by aborting it: a sled commit, even an
    /// empty one, appends a record to sled's log, and a call that changes nothing must not
    /// touch the files.
    fn write<'t, T>(
        &self,
        context: &'static str,
        plan: impl Fn(&mut TxReader<'_>, Timestamp) -> Result<(T, LedgerWrites<'t>), LedgerError>,
    ) -> Result<T, LedgerError> {
        let _lock = self.lock.write();
        self.shared.writable()?;
        let now = self.clock.now();
        let trees = (
            &self.assets,
            &self.accounts,
            &self.postings,
            &self.events,
            &self.heads,
            &self.idempotency,
            &self.transactions,
            &self.totals,
        );
        let result = trees.transaction(
            |(assets, accounts, postings, events, heads, idempotency, transactions, totals)| {
                let mut reader = TxReader {
                    trees: TxTrees {
                        assets,
                        accounts,
                        postings,
                        events,
                        heads,
                        idempotency,
                        transactions,
                        totals,
                    },
                    failure: None,
                };
                let planned = plan(&mut reader, now);
                if let Some(failure) = reader.failure.take() {
                    return Err(stop(failure));
                }
                let (out, writes) =
                    planned.map_err(|e| ConflictableTransactionError::Abort(Stop::Rejected(e)))?;
                if writes.is_empty() {
                    return Err(ConflictableTransactionError::Abort(Stop::Unchanged(out)));
                }
                write_all(&reader.trees, &writes).map_err(stop)?;
                Ok(out)
            },
        );
        match result {
            Ok(out) => {
                self.shared.sync(context)?;
                Ok(out)
            }
            Err(TransactionError::Abort(Stop::Unchanged(out))) => Ok(out),
            Err(TransactionError::Abort(Stop::Rejected(e))) => Err(e),
            Err(TransactionError::Storage(e)) => {
                Err(self.shared.poisoning(storage_error(context, e)).into())
            }
        }
    }

    fn book_events(
        &self,
        book: &Book,
        from: u64,
    ) -> impl Iterator<Item = Result<Sequenced<LedgerEvent>, LedgerError>> {
        let lower = keys::event(book, from);
        let prefix = keys::book_prefix(book);
        // A book prefix ends with NUL, so it always has a successor.
        let rows = match prefix_successor(&prefix) {
            Some(upper) => self.events.range(lower..upper),
            None => self.events.range(lower..),
        };
        values(rows).map(|stored| Ok(decode(BACKEND_NAME, "event", &stored?)?))
    }
}

fn decode_posting(stored: Result<IVec, LedgerError>) -> Result<PostingRecord, LedgerError> {
    Ok(decode(BACKEND_NAME, "posting", &stored?)?)
}

impl LedgerStore for SledLedger {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.write("registering an asset", |reader, now| {
            let mut planner = LedgerPlanner::new(reader, now);
            planner.register_asset(def)?;
            Ok(((), planner.into_writes()))
        })
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.write("opening an account", |reader, now| {
            let mut planner = LedgerPlanner::new(reader, now);
            planner.open_account(def, cfg)?;
            Ok(((), planner.into_writes()))
        })
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        self.shared.readable()?;
        let _lock = self.lock.read();
        match read(&self.accounts, &keys::account(id))? {
            None => Ok(None),
            Some(stored) => {
                let record: AccountRecord = decode(BACKEND_NAME, "account", &stored)?;
                Ok(Some((record.def, record.cfg)))
            }
        }
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
        self.write("committing ledger transactions", |reader, now| {
            Ok(plan_batch(reader, now, txs))
        })
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        self.shared.readable()?;
        let _lock = self.lock.read();
        let key = keys::account(account);
        let Some(stored) = read(&self.accounts, &key)? else {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        };
        let record: AccountRecord = decode(BACKEND_NAME, "account", &stored)?;
        match as_of {
            None => Ok(BalanceSnapshot {
                amount: record.balance,
                updated_seq: record.updated_seq,
            }),
            Some(as_of) => balance_as_of(
                values(self.postings.scan_prefix(&key).rev()).map(decode_posting),
                as_of,
            ),
        }
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        self.shared.readable()?;
        let _lock = self.lock.read();
        match read(&self.assets, id.as_str().as_bytes())? {
            None => Ok(None),
            Some(stored) => Ok(Some(decode(BACKEND_NAME, "asset", &stored)?)),
        }
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        self.shared.readable()?;
        let _lock = self.lock.read();
        let Some(stored) = read(&self.transactions, &keys::transaction(txid))? else {
            return Ok(None);
        };
        let location: TxLocation = decode(BACKEND_NAME, "transaction location", &stored)?;
        let Some(stored) = read(&self.events, &keys::event(&location.book, location.seq))? else {
            return Ok(None);
        };
        let event: Sequenced<LedgerEvent> = decode(BACKEND_NAME, "event", &stored)?;
        match event.event {
            LedgerEvent::TransactionPosted(tx) => Ok(Some(tx)),
            _ => Ok(None),
        }
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        self.shared.readable()?;
        let _lock = self.lock.read();
        let prefix = keys::account(account);
        if read(&self.accounts, &prefix)?.is_none() {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        }
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let lower = keys::posting(account, first, 0);
        // An account key ends with NUL, so it always has a successor.
        let rows = match prefix_successor(&prefix) {
            Some(upper) => self.postings.range(lower..upper),
            None => self.postings.range(lower..),
        };
        history_page(values(rows).map(decode_posting), limit)
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        self.shared.readable()?;
        let _lock = self.lock.read();
        match as_of {
            None => {
                let prefix = keys::book_prefix(book);
                let mut totals = Vec::new();
                for row in self.totals.scan_prefix(&prefix) {
                    let (key, stored) =
                        row.map_err(|e| storage_error("reading the ledger totals", e))?;
                    let asset = key
                        .get(prefix.len()..key.len().saturating_sub(1))
                        .and_then(|name| std::str::from_utf8(name).ok())
                        .and_then(|name| AssetId::new(name).ok())
                        .ok_or_else(|| {
                            StorageError::corrupted(
                                BACKEND_NAME,
                                "reading the ledger totals: a key does not hold an asset id",
                            )
                        })?;
                    let t: AssetTotals = decode(BACKEND_NAME, "asset totals", &stored)?;
                    totals.push((asset, t));
                }
                Ok(trial_rows(totals))
            }
            Some(as_of) => {
                // `at` never decreases with `seq` in a book: stop at the first later event.
                let mut posted: Vec<StoredTransaction> = Vec::new();
                for event in self.book_events(book, 1) {
                    let event = event?;
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
        self.shared.readable()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let _lock = self.lock.read();
        self.book_events(book, from).take(limit).collect()
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        let _lock = self.lock.read();
        let range = keys::books_after(after);
        list_page(&self.heads, &range, limit, "listing books", |key, _| {
            keys::head_book(BACKEND_NAME, key)
        })
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        let _lock = self.lock.read();
        let range = keys::assets_after(after);
        list_page(&self.assets, &range, limit, "listing assets", |_, value| {
            decode(BACKEND_NAME, "asset", value)
        })
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        let _lock = self.lock.read();
        let range = keys::accounts_after(book, after);
        list_page(
            &self.accounts,
            &range,
            limit,
            "listing accounts",
            |_, value| AccountRecord::listed(BACKEND_NAME, value),
        )
    }
}
