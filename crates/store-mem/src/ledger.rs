//! `LedgerStore` on in-memory maps, planned by the shared
//! [`LedgerPlanner`](store_kit::ledger::LedgerPlanner) and group-committed like every
//! other backend.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use store_api::{
    AccountCfg, AccountDef, AccountId, AssetDef, AssetId, BalanceSnapshot, Book, Clock, Committed,
    LedgerError, LedgerEvent, LedgerStore, PostingRecord, Sequenced, StorageError,
    StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, LedgerPlanner, LedgerRead, LedgerWrites,
    TxLocation, balance_as_of, commit_grouped, history_page, plan_batch, trial_balance_of,
    trial_rows,
};

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
    accounts: HashMap<AccountId, AccountRecord>,
    postings: BTreeMap<(AccountId, u64, u32), PostingRecord>,
    events: BTreeMap<(Book, u64), Sequenced<LedgerEvent>>,
    heads: HashMap<Book, BookHead>,
    idempotency: HashMap<(Book, String), Committed>,
    transactions: HashMap<TxId, TxLocation>,
    totals: HashMap<Book, BTreeMap<AssetId, AssetTotals>>,
}

impl LedgerRead for Tables {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        Ok(self.assets.get(id).cloned())
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        Ok(self.accounts.get(id).cloned())
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        Ok(self.heads.get(book).copied().unwrap_or_default())
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        Ok(self
            .idempotency
            .get(&(book.clone(), key.to_owned()))
            .copied())
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        Ok(self.transactions.contains_key(txid))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        Ok(self
            .totals
            .get(book)
            .and_then(|assets| assets.get(asset))
            .copied()
            .unwrap_or_default())
    }
}

impl Tables {
    fn apply(&mut self, writes: LedgerWrites) {
        for def in writes.assets {
            self.assets.insert(def.id.clone(), def);
        }
        self.accounts.extend(writes.accounts);
        for p in writes.postings {
            self.postings.insert((p.account.clone(), p.seq, p.index), p);
        }
        for tx in &writes.transactions {
            self.transactions.insert(
                tx.id,
                TxLocation {
                    book: tx.book.clone(),
                    seq: tx.seq,
                },
            );
        }
        for (book, event) in writes.events {
            self.events.insert((book, event.seq), event);
        }
        for (book, key, committed) in writes.idempotency {
            self.idempotency.insert((book, key), committed);
        }
        self.heads.extend(writes.heads);
        for ((book, asset), totals) in writes.totals {
            self.totals.entry(book).or_default().insert(asset, totals);
        }
    }

    fn book_events(&self, book: &Book, from: u64) -> impl Iterator<Item = &Sequenced<LedgerEvent>> {
        self.events
            .range((book.clone(), from)..=(book.clone(), u64::MAX))
            .map(|(_, e)| e)
    }
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

    fn write<T>(
        &self,
        plan: impl FnOnce(&mut LedgerPlanner<'_, Tables>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut tables = self.tables.write();
        let now = self.clock.now();
        let mut planner = LedgerPlanner::new(&mut *tables, now);
        let out = plan(&mut planner)?;
        let writes = planner.into_writes();
        tables.apply(writes);
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
            .map(|r| (r.def.clone(), r.cfg)))
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
        tables.apply(writes);
        Ok(results)
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        let tables = self.tables.read();
        let Some(record) = tables.accounts.get(account) else {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        };
        match as_of {
            None => Ok(BalanceSnapshot {
                amount: record.balance,
                updated_seq: record.updated_seq,
            }),
            Some(as_of) => {
                let postings = tables
                    .postings
                    .range((account.clone(), 0, 0)..=(account.clone(), u64::MAX, u32::MAX))
                    .rev()
                    .map(|(_, p)| Ok::<_, LedgerError>(p.clone()));
                balance_as_of(postings, as_of)
            }
        }
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        Ok(self.tables.read().assets.get(id).cloned())
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        let tables = self.tables.read();
        let Some(location) = tables.transactions.get(txid) else {
            return Ok(None);
        };
        match tables.events.get(&(location.book.clone(), location.seq)) {
            Some(Sequenced {
                event: LedgerEvent::TransactionPosted(tx),
                ..
            }) => Ok(Some(tx.clone())),
            _ => Ok(None),
        }
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        let tables = self.tables.read();
        if !tables.accounts.contains_key(account) {
            return Err(LedgerError::UnknownAccount {
                account: account.clone(),
            });
        }
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let postings = tables
            .postings
            .range((account.clone(), first, 0)..=(account.clone(), u64::MAX, u32::MAX))
            .map(|(_, p)| Ok::<_, LedgerError>(p.clone()));
        history_page(postings, limit)
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        let tables = self.tables.read();
        Ok(match as_of {
            None => trial_rows(
                tables
                    .totals
                    .get(book)
                    .into_iter()
                    .flatten()
                    .map(|(asset, t)| (asset.clone(), *t)),
            ),
            Some(as_of) => trial_balance_of(
                tables.book_events(book, 1).filter_map(|e| match &e.event {
                    LedgerEvent::TransactionPosted(tx) => Some(tx),
                    _ => None,
                }),
                as_of,
            ),
        })
    }

    fn read_events(
        &self,
        book: &Book,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        let tables = self.tables.read();
        Ok(tables
            .book_events(book, from)
            .take(limit)
            .cloned()
            .collect())
    }
}
