//! `LedgerStore` on in-memory maps, planned by the shared
//! [`LedgerPlanner`](store_kit::ledger::LedgerPlanner) and group-committed like every
//! other backend.
//!
//! Each committed transaction is stored once, behind an `Arc` shared by its event, its
//! postings and the transaction index. An account keeps its postings in a list in commit
//! order (which is `(seq, index)` order, as every posting of an account is in its book),
//! and a book its events in sequence order, so appends are pushes and ranges are binary
//! searches. Books, their account paths and the assets are kept in order, so every listing
//! is a range read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, PostingRecord, Sequenced,
    StorageError, StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, LedgerPlanner, LedgerRead, LedgerWrites,
    PlannedEventBody, PlannedTransaction, balance_as_of, commit_grouped, first_event_after,
    history_page, plan_batch, trial_balance_of, trial_rows,
};

use crate::BACKEND_NAME;

/// The in-memory ledger.
#[derive(Debug)]
pub struct MemLedger {
    clock: Arc<dyn Clock>,
    tables: RwLock<Tables>,
    queue: CommitQueue,
}

#[derive(Debug, Default)]
struct Tables {
    assets: BTreeMap<AssetId, AssetDef>,
    accounts: HashMap<AccountId, Account>,
    books: BTreeMap<Book, BookLog>,
    transactions: HashMap<TxId, Arc<StoredTransaction>>,
}

/// An open account and its postings in commit order.
#[derive(Debug)]
struct Account {
    record: AccountRecord,
    postings: Vec<StoredPosting>,
}

/// A posting: its transaction, its index there and the account's balance after it.
#[derive(Debug)]
struct StoredPosting {
    tx: Arc<StoredTransaction>,
    index: usize,
    balance_after: i64,
}

impl StoredPosting {
    fn record(&self) -> Result<PostingRecord, LedgerError> {
        let Some(posting) = self.tx.postings.get(self.index) else {
            return Err(StorageError::corrupted(
                BACKEND_NAME,
                "a stored posting's index is outside its transaction",
            )
            .into());
        };
        Ok(PostingRecord {
            txid: self.tx.id,
            seq: self.tx.seq,
            at: self.tx.at,
            index: self.index as u32,
            account: posting.account.clone(),
            asset: posting.asset.clone(),
            amount: posting.amount,
            direction: posting.direction,
            balance_after: self.balance_after,
        })
    }
}

/// A book: its head, its events in sequence order, the paths of its accounts, its
/// idempotency receipts and totals.
#[derive(Debug, Default)]
struct BookLog {
    head: BookHead,
    accounts: BTreeSet<AccountPath>,
    events: Vec<StoredEvent>,
    idempotency: HashMap<String, Committed>,
    totals: BTreeMap<AssetId, AssetTotals>,
}

impl BookLog {
    /// The events with `seq >= from`.
    fn events_from(&self, from: u64) -> &[StoredEvent] {
        let start = self.events.partition_point(|e| e.seq < from);
        &self.events[start..]
    }
}

#[derive(Debug)]
struct StoredEvent {
    seq: u64,
    at: Timestamp,
    body: EventBody,
}

#[derive(Debug)]
enum EventBody {
    AssetRegistered(AssetDef),
    AccountOpened { def: AccountDef, cfg: AccountCfg },
    TransactionPosted(Arc<StoredTransaction>),
}

impl StoredEvent {
    fn to_event(&self) -> Sequenced<LedgerEvent> {
        let event = match &self.body {
            EventBody::AssetRegistered(def) => LedgerEvent::AssetRegistered(def.clone()),
            EventBody::AccountOpened { def, cfg } => LedgerEvent::AccountOpened {
                def: def.clone(),
                cfg: *cfg,
            },
            EventBody::TransactionPosted(tx) => LedgerEvent::TransactionPosted((**tx).clone()),
        };
        Sequenced {
            seq: self.seq,
            at: self.at,
            event,
        }
    }
}

impl LedgerRead for Tables {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        Ok(self.assets.get(id).cloned())
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        Ok(self.accounts.get(id).map(|a| a.record.clone()))
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        Ok(self.books.get(book).map(|b| b.head).unwrap_or_default())
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        Ok(self
            .books
            .get(book)
            .and_then(|b| b.idempotency.get(key))
            .copied())
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        Ok(self.transactions.contains_key(txid))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        Ok(self
            .books
            .get(book)
            .and_then(|b| b.totals.get(asset))
            .copied()
            .unwrap_or_default())
    }
}

/// Calls `f` with the log of each item's book, looking the book up once per run of items
/// of the same book (plans list a book's records together).
fn per_book<'w, T>(
    books: &mut BTreeMap<Book, BookLog>,
    items: impl IntoIterator<Item = (&'w Book, T)>,
    mut f: impl FnMut(&mut BookLog, T),
) {
    let mut items = items.into_iter().peekable();
    while let Some((book, item)) = items.next() {
        let log = books.entry(book.clone()).or_default();
        f(log, item);
        while let Some((_, item)) = items.next_if(|(next, _)| *next == book) {
            f(log, item);
        }
    }
}

impl Tables {
    /// Applies a plan. Everything that can fail is checked before anything changes, so a
    /// plan is applied whole or not at all.
    fn apply(&mut self, writes: &LedgerWrites<'_>) -> Result<(), LedgerError> {
        let mut stored: HashMap<TxId, Arc<StoredTransaction>> =
            HashMap::with_capacity(writes.transactions.len());
        let events: Vec<(&Book, StoredEvent)> = writes
            .events
            .iter()
            .map(|e| {
                let body = match e.body {
                    PlannedEventBody::AssetRegistered(def) => {
                        EventBody::AssetRegistered(def.clone())
                    }
                    PlannedEventBody::AccountOpened { def, cfg } => EventBody::AccountOpened {
                        def: def.clone(),
                        cfg,
                    },
                    PlannedEventBody::TransactionPosted(tx) => {
                        let planned = PlannedTransaction {
                            tx,
                            seq: e.seq,
                            at: e.at,
                        };
                        let tx = Arc::new(planned.to_stored());
                        stored.insert(tx.id, Arc::clone(&tx));
                        EventBody::TransactionPosted(tx)
                    }
                };
                let event = StoredEvent {
                    seq: e.seq,
                    at: e.at,
                    body,
                };
                (e.book, event)
            })
            .collect();
        let postings = prepare_postings(writes, &stored)?;

        let Tables {
            assets,
            accounts,
            books,
            transactions,
        } = self;
        for def in &writes.assets {
            assets.insert(def.id.clone(), (*def).clone());
        }
        let mut postings = postings.into_iter().peekable();
        for record in &writes.accounts {
            let account = accounts
                .entry(record.def.id.clone())
                .and_modify(|a| a.record = record.clone())
                .or_insert_with(|| {
                    let id = &record.def.id;
                    let book = books.entry(id.book.clone()).or_default();
                    book.accounts.insert(id.path.clone());
                    Account {
                        record: record.clone(),
                        postings: Vec::new(),
                    }
                });
            while let Some((_, posting)) = postings.next_if(|(id, _)| *id == &record.def.id) {
                account.postings.push(posting);
            }
        }
        transactions.extend(stored);
        per_book(books, events, |log, event| log.events.push(event));
        let receipts = writes.idempotency.iter().map(|(b, k, c)| (*b, (*k, *c)));
        per_book(books, receipts, |log, (key, committed)| {
            log.idempotency.insert(key.to_owned(), committed);
        });
        per_book(books, writes.heads.iter().copied(), |log, head| {
            log.head = head
        });
        let totals = writes.totals.iter().map(|(b, a, t)| (*b, (*a, *t)));
        per_book(books, totals, |log, (asset, totals)| {
            log.totals.insert(asset.clone(), totals);
        });
        Ok(())
    }
}

/// The stored form of every planned posting, with its account, in the plan's (account)
/// order; fails, before anything is applied, unless every posting's transaction is in the
/// plan and every posting's account is among the plan's accounts (as the planner
/// guarantees), so that applying them cannot fail.
fn prepare_postings<'w>(
    writes: &'w LedgerWrites<'_>,
    stored: &HashMap<TxId, Arc<StoredTransaction>>,
) -> Result<Vec<(&'w AccountId, StoredPosting)>, LedgerError> {
    let inconsistent =
        |what: &'static str| -> LedgerError { StorageError::corrupted(BACKEND_NAME, what).into() };
    let mut accounts = writes.accounts.iter().map(|r| &r.def.id).peekable();
    let mut out = Vec::with_capacity(writes.postings.len());
    for p in &writes.postings {
        let account = &p.posting.account;
        while accounts.next_if(|id| *id < account).is_some() {}
        if accounts.peek() != Some(&account) {
            return Err(inconsistent(
                "a planned posting's account is not in the plan",
            ));
        }
        let Some(tx) = stored.get(&p.txid) else {
            return Err(inconsistent(
                "a planned posting's transaction is not in the plan",
            ));
        };
        out.push((
            account,
            StoredPosting {
                tx: Arc::clone(tx),
                index: p.index as usize,
                balance_after: p.balance_after,
            },
        ));
    }
    Ok(out)
}

impl MemLedger {
    /// An empty ledger stamping events with `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemLedger {
            clock,
            tables: RwLock::new(Tables::default()),
            queue: CommitQueue::new(),
        }
    }

    fn write<'t, T>(
        &self,
        plan: impl FnOnce(&mut LedgerPlanner<'t, '_, Tables>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut tables = self.tables.write();
        let now = self.clock.now();
        let mut planner = LedgerPlanner::new(&mut *tables, now);
        let out = plan(&mut planner)?;
        let writes = planner.into_writes();
        tables.apply(&writes)?;
        Ok(out)
    }
}

impl LedgerStore for MemLedger {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.write(|p| p.register_asset(def))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.write(|p| p.open_account(def, cfg))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        Ok(self
            .tables
            .read()
            .accounts
            .get(id)
            .map(|a| (a.record.def.clone(), a.record.cfg)))
    }

    fn commit(&self, tx: &Transaction) -> Result<Committed, LedgerError> {
        commit_grouped(&self.queue, tx, |txs| self.commit_batch(txs))
    }

    fn commit_batch(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError> {
        let mut tables = self.tables.write();
        let (results, writes) = plan_batch(&mut *tables, self.clock.now(), txs);
        tables.apply(&writes)?;
        Ok(results)
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        let tables = self.tables.read();
        let Some(stored) = tables.accounts.get(account) else {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        };
        match as_of {
            None => Ok(BalanceSnapshot {
                amount: stored.record.balance,
                updated_seq: stored.record.updated_seq,
            }),
            Some(as_of) => balance_as_of(
                stored.postings.iter().rev().map(StoredPosting::record),
                as_of,
            ),
        }
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        Ok(self.tables.read().assets.get(id).cloned())
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        Ok(self
            .tables
            .read()
            .transactions
            .get(txid)
            .map(|tx| (**tx).clone()))
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        let tables = self.tables.read();
        let Some(stored) = tables.accounts.get(account) else {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        };
        let start = stored.postings.partition_point(|p| p.tx.seq <= after_seq);
        let postings = stored.postings[start..].iter().map(StoredPosting::record);
        history_page(postings, limit)
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        let tables = self.tables.read();
        let Some(log) = tables.books.get(book) else {
            return Ok(Vec::new());
        };
        Ok(match as_of {
            None => trial_rows(log.totals.iter().map(|(asset, t)| (asset.clone(), *t))),
            Some(as_of) => trial_balance_of(
                log.events.iter().filter_map(|e| match &e.body {
                    EventBody::TransactionPosted(tx) => Some(&**tx),
                    _ => None,
                }),
                as_of,
            ),
        })
    }

    fn read_events(
        &self,
        book: &Book,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        let Some(from) = first_event_after(after) else {
            return Ok(Vec::new());
        };
        let tables = self.tables.read();
        let Some(log) = tables.books.get(book) else {
            return Ok(Vec::new());
        };
        Ok(log
            .events_from(from)
            .iter()
            .take(limit)
            .map(StoredEvent::to_event)
            .collect())
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .tables
            .read()
            .books
            .range((lower, Bound::Unbounded))
            .filter(|(_, log)| log.head.seq > 0)
            .map(|(book, _)| book.clone())
            .take(limit)
            .collect())
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .tables
            .read()
            .assets
            .range((lower, Bound::Unbounded))
            .map(|(_, def)| def.clone())
            .take(limit)
            .collect())
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        let tables = self.tables.read();
        let Some(log) = tables.books.get(book) else {
            return Ok(Vec::new());
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        log.accounts
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|path| {
                let id = AccountId {
                    book: book.clone(),
                    path: path.clone(),
                };
                match tables.accounts.get(&id) {
                    Some(account) => Ok((account.record.def.clone(), account.record.cfg)),
                    None => Err(StorageError::corrupted(
                        BACKEND_NAME,
                        "a book lists an account that is not open",
                    )
                    .into()),
                }
            })
            .collect()
    }
}
