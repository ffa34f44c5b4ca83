//! `LedgerStore` on any [`KvStore`], planned by the shared [`LedgerPlanner`] and
//! group-committed, in eight tables with the keys of [`store_kit::ledger::keys`] and
//! `postcard` records.
//!
//! A write (asset registration, account opening, a batch of drafts) is one write
//! transaction: the planner reads through the transaction ([`LedgerRead`]), and its
//! [`LedgerWrites`] are written by the same transaction before one commit, so a rejected
//! call writes nothing and an accepted one lands whole. Concurrent
//! [`commit`](LedgerStore::commit)s are grouped by the [`CommitQueue`] into one
//! `commit_batch`: one transaction, one durable commit. Reads run in read transactions.

use std::ops::Bound;
use std::sync::Arc;

use store_api::{
    AccountCfg, AccountDef, AccountId, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book,
    Clock, Committed, LedgerError, LedgerEvent, LedgerStore, PostingRecord, Sequenced,
    StorageError, StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};
use store_kit::codec::{self, prefix_successor};
use store_kit::ledger::{
    AccountRecord, AssetTotals, BookHead, CommitQueue, HistoryPage, KvTable, LedgerPlanner,
    LedgerRead, LedgerWrites, TxLocation, balance_after, commit_grouped, first_event_after, keys,
    plan_batch, trial_balance_of, trial_rows,
};

use crate::listing::{first_key, list_page};
use crate::{Commit, Direction, KvRead, KvStore, KvWrite, Visit};

/// The names of the ledger tables (their keys and records: [`KvTable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerTables {
    /// Asset id → `AssetDef`.
    pub assets: &'static str,
    /// `book NUL path NUL` → `AccountRecord`.
    pub accounts: &'static str,
    /// `book NUL path NUL seq:u64be index:u32be` → `PostingRecord`.
    pub postings: &'static str,
    /// `book NUL seq:u64be` → `Sequenced<LedgerEvent>`.
    pub events: &'static str,
    /// Book name → `BookHead`.
    pub heads: &'static str,
    /// `book NUL idempotency-key` → `Committed`.
    pub idempotency: &'static str,
    /// Transaction id (16 bytes) → `TxLocation`.
    pub transactions: &'static str,
    /// `book NUL asset NUL` → `AssetTotals`.
    pub totals: &'static str,
}

/// The table names redb, LMDB and sled databases have always used.
pub const LEDGER_TABLES: LedgerTables = LedgerTables {
    assets: "ledger.assets",
    accounts: "ledger.accounts",
    postings: "ledger.postings",
    events: "ledger.events",
    heads: "ledger.heads",
    idempotency: "ledger.idempotency",
    transactions: "ledger.transactions",
    totals: "ledger.totals",
};

impl LedgerTables {
    /// Every table name.
    pub fn names(&self) -> [&'static str; 8] {
        [
            self.assets,
            self.accounts,
            self.postings,
            self.events,
            self.heads,
            self.idempotency,
            self.transactions,
            self.totals,
        ]
    }
}

/// The eight ledger tables, resolved.
struct Tables<T> {
    assets: T,
    accounts: T,
    postings: T,
    events: T,
    heads: T,
    idempotency: T,
    transactions: T,
    totals: T,
}

impl<T> Tables<T> {
    fn of(&self, table: KvTable) -> &T {
        match table {
            KvTable::Assets => &self.assets,
            KvTable::Accounts => &self.accounts,
            KvTable::Postings => &self.postings,
            KvTable::Transactions => &self.transactions,
            KvTable::Events => &self.events,
            KvTable::Idempotency => &self.idempotency,
            KvTable::Heads => &self.heads,
            KvTable::Totals => &self.totals,
        }
    }
}

/// The ledger of a backend on the engine `K`.
pub struct KvLedger<K: KvStore> {
    t: Tables<K::Table>,
    clock: Arc<dyn Clock>,
    queue: CommitQueue,
    /// Declared last: the tables are dropped before the engine handle, which may close
    /// its files only once no table handle is left (sled does).
    kv: Arc<K>,
}

impl<K: KvStore> std::fmt::Debug for KvLedger<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvLedger")
            .field("backend", &K::NAME)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Decodes a ledger record of `K`'s backend.
fn decode<K: KvStore, T: serde::de::DeserializeOwned>(
    what: &'static str,
) -> impl Fn(&[u8]) -> Result<T, StorageError> {
    move |bytes| codec::decode(K::NAME, what, bytes)
}

/// The planner's reads, served from the write transaction.
struct PlanReader<'a, K: KvStore, R> {
    txn: &'a R,
    t: &'a Tables<K::Table>,
}

impl<K: KvStore, R: KvRead<Table = K::Table>> LedgerRead for PlanReader<'_, K, R> {
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError> {
        let key = id.as_str().as_bytes();
        self.txn.get(&self.t.assets, key, decode::<K, _>("asset"))
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
        let key = keys::account(id);
        self.txn
            .get(&self.t.accounts, &key, decode::<K, _>("account"))
    }

    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError> {
        let key = book.as_str().as_bytes();
        let head = self
            .txn
            .get(&self.t.heads, key, decode::<K, _>("book head"))?;
        Ok(head.unwrap_or_default())
    }

    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError> {
        let key = keys::idempotency(book, key);
        let receipt = decode::<K, _>("idempotency receipt");
        self.txn.get(&self.t.idempotency, &key, receipt)
    }

    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
        let key = keys::transaction(txid);
        let found = self.txn.get(&self.t.transactions, &key, |_| Ok(()))?;
        Ok(found.is_some())
    }

    fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        let all = (Bound::Unbounded, Bound::Unbounded);
        let last = first_key(self.txn, &self.t.transactions, all, Direction::Backward)?;
        Ok(keys::transaction_bound(last.as_deref()))
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError> {
        let key = keys::totals(book, asset);
        let totals = self
            .txn
            .get(&self.t.totals, &key, decode::<K, _>("totals"))?;
        Ok(totals.unwrap_or_default())
    }
}

/// Writes a plan's records, table by table in ascending key order. Each table is first
/// appended to ([`KvWrite::append`]: new events and time-ordered transaction ids are
/// usually above every stored key); from the first key the engine cannot append, the rest
/// of that table is put.
fn apply<W: KvWrite>(
    txn: &mut W,
    t: &Tables<W::Table>,
    writes: &LedgerWrites<'_>,
    backend: &'static str,
) -> Result<(), StorageError> {
    let mut appending: Option<KvTable> = None;
    let mut current: Option<KvTable> = None;
    writes.for_each_kv(backend, |table, key, value| {
        if current != Some(table) {
            current = Some(table);
            appending = Some(table);
        }
        let target = t.of(table);
        if appending == Some(table) {
            if txn.append(target, key, value)? {
                return Ok(());
            }
            appending = None;
        }
        txn.put(target, key, value)
    })
}

/// `(Included(start), Excluded(successor of prefix))`, unbounded above when the prefix has
/// no successor.
fn from_in_prefix<'a>(start: &'a [u8], end: &'a Option<Vec<u8>>) -> crate::KeyBounds<'a> {
    (
        Bound::Included(start),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

impl<K: KvStore> KvLedger<K> {
    /// The ledger over `kv`, in the tables `tables` names, stamping records with `clock`.
    pub fn open(
        kv: Arc<K>,
        tables: LedgerTables,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StorageError> {
        Ok(KvLedger {
            t: Tables {
                assets: kv.table(tables.assets)?,
                accounts: kv.table(tables.accounts)?,
                postings: kv.table(tables.postings)?,
                events: kv.table(tables.events)?,
                heads: kv.table(tables.heads)?,
                idempotency: kv.table(tables.idempotency)?,
                transactions: kv.table(tables.transactions)?,
                totals: kv.table(tables.totals)?,
            },
            kv,
            clock,
            queue: CommitQueue::new(),
        })
    }

    /// Plans with `plan` in one write transaction and writes what it planned there (a plan
    /// that writes nothing commits nothing). The clock is read once the write transaction
    /// is held, so times follow commit order.
    fn write<'t, T>(
        &self,
        context: &'static str,
        plan: impl Fn(&mut PlanReader<'_, K, K::Write<'_>>, Timestamp) -> (T, LedgerWrites<'t>),
    ) -> Result<T, LedgerError> {
        Ok(self.kv.write(Commit::Backend, context, |txn| {
            let (out, writes) = {
                let mut reader = PlanReader {
                    txn: &*txn,
                    t: &self.t,
                };
                plan(&mut reader, self.clock.now())
            };
            if !writes.is_empty() {
                apply(txn, &self.t, &writes, K::NAME)?;
            }
            Ok::<_, StorageError>(out)
        })?)
    }

    fn single<'t>(
        &self,
        context: &'static str,
        op: impl Fn(
            &mut LedgerPlanner<'t, '_, PlanReader<'_, K, K::Write<'_>>>,
        ) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write(context, |reader, now| {
            let mut planner = LedgerPlanner::new(reader, now);
            match op(&mut planner) {
                Ok(()) => (Ok(()), planner.into_writes()),
                Err(e) => (Err(e), LedgerWrites::default()),
            }
        })?
    }
}

impl<K: KvStore> LedgerStore for KvLedger<K> {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        self.single("registering an asset", |p| p.register_asset(def))
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        self.single("opening an account", |p| p.open_account(def, cfg))
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        let record: Option<AccountRecord> = self.kv.read("reading an account", |txn| {
            txn.get(
                &self.t.accounts,
                &keys::account(id),
                decode::<K, _>("account"),
            )
        })?;
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
        self.write("committing ledger transactions", |reader, now| {
            plan_batch(reader, now, txs)
        })
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        self.kv.read("reading a balance", |txn| {
            let account_key = keys::account(account);
            let record: Option<AccountRecord> =
                txn.get(&self.t.accounts, &account_key, decode::<K, _>("account"))?;
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
            let end = prefix_successor(&account_key);
            let mut balance = BalanceSnapshot::default();
            let range = from_in_prefix(&account_key, &end);
            txn.scan(&self.t.postings, range, Direction::Backward, |_, value| {
                let posting: PostingRecord = decode::<K, _>("posting")(value)?;
                Ok::<_, StorageError>(match balance_after(&posting, as_of) {
                    Some(found) => {
                        balance = found;
                        Visit::Break(())
                    }
                    None => Visit::Continue(()),
                })
            })?;
            Ok(balance)
        })
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        Ok(self.kv.read("reading an asset", |txn| {
            let key = id.as_str().as_bytes();
            txn.get(&self.t.assets, key, decode::<K, _>("asset"))
        })?)
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        Ok(self.kv.read("reading a transaction", |txn| {
            let location: Option<TxLocation> = txn.get(
                &self.t.transactions,
                &keys::transaction(txid),
                decode::<K, _>("transaction location"),
            )?;
            let Some(location) = location else {
                return Ok(None);
            };
            let event: Option<Sequenced<LedgerEvent>> = txn.get(
                &self.t.events,
                &keys::event(&location.book, location.seq),
                decode::<K, _>("event"),
            )?;
            match event {
                Some(Sequenced {
                    event: LedgerEvent::TransactionPosted(tx),
                    ..
                }) => Ok(Some(tx)),
                _ => Err(StorageError::corrupted(
                    K::NAME,
                    "the transaction index points at an event that is not the transaction",
                )),
            }
        })?)
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        self.kv.read("reading an account history", |txn| {
            let account_key = keys::account(account);
            if txn
                .get(&self.t.accounts, &account_key, |_| Ok(()))?
                .is_none()
            {
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
            let start = keys::posting(account, first, 0);
            let end = prefix_successor(&account_key);
            let mut page = HistoryPage::new(limit);
            let range = from_in_prefix(&start, &end);
            txn.scan(&self.t.postings, range, Direction::Forward, |_, value| {
                let posting = decode::<K, _>("posting")(value)?;
                Ok::<_, StorageError>(if page.push(posting) {
                    Visit::Continue(())
                } else {
                    Visit::Break(())
                })
            })?;
            Ok(page.finish())
        })
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        Ok(self.kv.read("reading a trial balance", |txn| {
            let prefix = keys::book_prefix(book);
            let end = prefix_successor(&prefix);
            let range = from_in_prefix(&prefix, &end);
            match as_of {
                None => {
                    let mut rows = Vec::new();
                    txn.scan(&self.t.totals, range, Direction::Forward, |key, value| {
                        let asset = totals_asset(K::NAME, key, prefix.len())?;
                        let sums: AssetTotals = decode::<K, _>("totals")(value)?;
                        rows.push((asset, sums));
                        Ok::<_, StorageError>(Visit::Continue(()))
                    })?;
                    Ok::<_, StorageError>(trial_rows(rows))
                }
                Some(as_of) => {
                    let mut posted: Vec<StoredTransaction> = Vec::new();
                    txn.scan(&self.t.events, range, Direction::Forward, |_, value| {
                        let event: Sequenced<LedgerEvent> = decode::<K, _>("event")(value)?;
                        // Events are in sequence order and `at` never decreases with `seq`.
                        if event.at > as_of {
                            return Ok::<_, StorageError>(Visit::Break(()));
                        }
                        if let LedgerEvent::TransactionPosted(tx) = event.event {
                            posted.push(tx);
                        }
                        Ok(Visit::Continue(()))
                    })?;
                    Ok(trial_balance_of(&posted, as_of))
                }
            }
        })?)
    }

    fn read_events(
        &self,
        book: &Book,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        let Some(from) = first_event_after(after).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        Ok(self.kv.read("reading ledger events", |txn| {
            let start = keys::event(book, from);
            let end = prefix_successor(&keys::book_prefix(book));
            let mut out = Vec::new();
            let range = from_in_prefix(&start, &end);
            txn.scan(&self.t.events, range, Direction::Forward, |_, value| {
                out.push(decode::<K, _>("event")(value)?);
                Ok::<_, StorageError>(if out.len() == limit {
                    Visit::Break(())
                } else {
                    Visit::Continue(())
                })
            })?;
            Ok::<_, StorageError>(out)
        })?)
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        let range = keys::books_after(after);
        Ok(self.kv.read("listing books", |txn| {
            list_page(txn, &self.t.heads, &range, limit, |key, _| {
                keys::head_book(K::NAME, key)
            })
        })?)
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        let range = keys::assets_after(after);
        Ok(self.kv.read("listing assets", |txn| {
            list_page(txn, &self.t.assets, &range, limit, |_, value| {
                decode::<K, _>("asset")(value)
            })
        })?)
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        let range = keys::accounts_after(book, after);
        Ok(self.kv.read("listing accounts", |txn| {
            list_page(txn, &self.t.accounts, &range, limit, |_, value| {
                AccountRecord::listed(K::NAME, value)
            })
        })?)
    }
}

/// The asset id of a totals key `book NUL asset NUL`, given the length of `book NUL`.
fn totals_asset(
    backend: &'static str,
    key: &[u8],
    prefix_len: usize,
) -> Result<AssetId, StorageError> {
    let corrupted = || StorageError::corrupted(backend, "decoding a ledger totals key");
    let name = key
        .get(prefix_len..)
        .and_then(|rest| rest.strip_suffix(&[0]))
        .ok_or_else(corrupted)?;
    let name = std::str::from_utf8(name).map_err(|_| corrupted())?;
    AssetId::new(name).map_err(|_| corrupted())
}
