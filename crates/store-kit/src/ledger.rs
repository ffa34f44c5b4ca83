//! The ledger's engine-independent half: the records every backend stores, their keys for
//! ordered key-value engines, and the [`LedgerPlanner`] that checks drafts and computes
//! every write of a commit. A backend only reads records for the planner (through
//! [`LedgerRead`]) and writes the planner's [`LedgerWrites`] in one engine transaction.
//!
//! Ledger arithmetic, check order, idempotency and sequence assignment therefore exist
//! exactly once, here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use store_api::{
    AccountCfg, AccountDef, AccountId, AssetDef, AssetId, BalanceSnapshot, Book, Committed,
    Direction, LedgerError, LedgerEvent, NameRule, PostingRecord, Sequenced, StorageError,
    StorageErrorKind, StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};

use crate::codec::KeyBuf;

/// An open account with its current balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Its definition.
    pub def: AccountDef,
    /// Its configuration.
    pub cfg: AccountCfg,
    /// Current normal-side balance.
    pub balance: i64,
    /// Book sequence number of the last transaction that touched it (0 when none).
    pub updated_seq: u64,
}

/// The head of a book's sequence: the last number and time used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BookHead {
    /// Last sequence number used (0 for a new book).
    pub seq: u64,
    /// Time of the last event (`at` never goes below it).
    pub last_at: Timestamp,
}

/// Lifetime debit and credit sums of one asset in one book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AssetTotals {
    /// Sum of debits.
    pub debits: u128,
    /// Sum of credits.
    pub credits: u128,
}

/// Where a transaction's event lives: its book and sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// The book.
    pub book: Book,
    /// The sequence number of its `TransactionPosted` event.
    pub seq: u64,
}

/// Reads the planner needs, served from the backend's write transaction so that the plan
/// and the writes see one consistent state.
pub trait LedgerRead {
    /// A registered asset.
    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, StorageError>;
    /// An open account.
    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError>;
    /// A book's head (default for a book never written).
    fn book_head(&mut self, book: &Book) -> Result<BookHead, StorageError>;
    /// The receipt stored for an idempotency key in a book.
    fn idempotency(&mut self, book: &Book, key: &str) -> Result<Option<Committed>, StorageError>;
    /// Whether a transaction id was committed.
    fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError>;
    /// A book's lifetime totals for one asset.
    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError>;
}

/// Everything one planned batch writes. Maps hold final values; lists are in write order.
#[derive(Debug, Default, Clone)]
pub struct LedgerWrites {
    /// New assets.
    pub assets: Vec<AssetDef>,
    /// New or changed accounts, with their final state.
    pub accounts: BTreeMap<AccountId, AccountRecord>,
    /// New postings, in commit order.
    pub postings: Vec<PostingRecord>,
    /// New transactions, in commit order.
    pub transactions: Vec<StoredTransaction>,
    /// New events, in sequence order per book.
    pub events: Vec<(Book, Sequenced<LedgerEvent>)>,
    /// New idempotency receipts.
    pub idempotency: Vec<(Book, String, Committed)>,
    /// Changed book heads.
    pub heads: BTreeMap<Book, BookHead>,
    /// Changed lifetime totals.
    pub totals: BTreeMap<(Book, AssetId), AssetTotals>,
}

impl LedgerWrites {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

/// Checks ledger operations in order against a [`LedgerRead`] plus everything planned so
/// far, and accumulates the writes. A rejected operation leaves the plan unchanged, so one
/// planner serves a whole `commit_batch` (later drafts see earlier ones).
pub struct LedgerPlanner<'r, R: LedgerRead + ?Sized> {
    reader: &'r mut R,
    now: Timestamp,
    assets: HashMap<AssetId, Option<AssetDef>>,
    accounts: HashMap<AccountId, Option<AccountRecord>>,
    heads: HashMap<Book, BookHead>,
    idempotency: HashMap<(Book, String), Committed>,
    txids: HashSet<TxId>,
    totals: HashMap<(Book, AssetId), AssetTotals>,
    dirty_accounts: BTreeSet<AccountId>,
    writes: LedgerWrites,
}

fn invalid_book(book: &Book) -> LedgerError {
    LedgerError::InvalidBook {
        book: book.clone(),
        rule: NameRule::Reserved,
    }
}

impl<'r, R: LedgerRead + ?Sized> LedgerPlanner<'r, R> {
    /// A planner over `reader`, stamping events at `now` (or later, to keep `at`
    /// non-decreasing within each book).
    pub fn new(reader: &'r mut R, now: Timestamp) -> Self {
        LedgerPlanner {
            reader,
            now,
            assets: HashMap::new(),
            accounts: HashMap::new(),
            heads: HashMap::new(),
            idempotency: HashMap::new(),
            txids: HashSet::new(),
            totals: HashMap::new(),
            dirty_accounts: BTreeSet::new(),
            writes: LedgerWrites::default(),
        }
    }

    fn asset(&mut self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        if let Some(found) = self.assets.get(id) {
            return Ok(found.clone());
        }
        let found = self.reader.asset(id)?;
        self.assets.insert(id.clone(), found.clone());
        Ok(found)
    }

    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, LedgerError> {
        if let Some(found) = self.accounts.get(id) {
            return Ok(found.clone());
        }
        let found = self.reader.account(id)?;
        self.accounts.insert(id.clone(), found.clone());
        Ok(found)
    }

    fn head(&mut self, book: &Book) -> Result<BookHead, LedgerError> {
        if let Some(head) = self.heads.get(book) {
            return Ok(*head);
        }
        let head = self.reader.book_head(book)?;
        self.heads.insert(book.clone(), head);
        Ok(head)
    }

    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, LedgerError> {
        let key = (book.clone(), asset.clone());
        if let Some(totals) = self.totals.get(&key) {
            return Ok(*totals);
        }
        let totals = self.reader.totals(book, asset)?;
        self.totals.insert(key, totals);
        Ok(totals)
    }

    /// Takes the next sequence number and time of `book` and records the event.
    fn append_event(&mut self, book: &Book, event: impl FnOnce(u64, Timestamp) -> LedgerEvent) {
        let head = self.heads.get(book).copied().unwrap_or_default();
        let next = BookHead {
            seq: head.seq + 1,
            last_at: head.last_at.max(self.now),
        };
        self.heads.insert(book.clone(), next);
        self.writes.heads.insert(book.clone(), next);
        let event = event(next.seq, next.last_at);
        self.writes.events.push((
            book.clone(),
            Sequenced {
                seq: next.seq,
                at: next.last_at,
                event,
            },
        ));
    }

    /// Plans an asset registration (idempotent for an identical definition).
    pub fn register_asset(&mut self, def: &AssetDef) -> Result<(), LedgerError> {
        def.check()?;
        match self.asset(&def.id)? {
            Some(existing) if existing == *def => return Ok(()),
            Some(_) => {
                return Err(LedgerError::AlreadyExists {
                    entity: "asset",
                    id: def.id.to_string(),
                });
            }
            None => {}
        }
        let book = Book::system();
        self.head(&book)?;
        self.assets.insert(def.id.clone(), Some(def.clone()));
        self.writes.assets.push(def.clone());
        self.append_event(&book, |_, _| LedgerEvent::AssetRegistered(def.clone()));
        Ok(())
    }

    /// Plans an account opening (idempotent for an identical definition and configuration).
    pub fn open_account(&mut self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        if def.id.book.is_reserved() {
            return Err(invalid_book(&def.id.book));
        }
        if let Some(existing) = self.account(&def.id)? {
            if existing.def == *def && existing.cfg == *cfg {
                return Ok(());
            }
            return Err(LedgerError::AlreadyExists {
                entity: "account",
                id: def.id.to_string(),
            });
        }
        if self.asset(&def.asset)?.is_none() {
            return Err(LedgerError::UnknownAsset {
                asset: def.asset.clone(),
            });
        }
        let book = def.id.book.clone();
        self.head(&book)?;
        let record = AccountRecord {
            def: def.clone(),
            cfg: *cfg,
            balance: 0,
            updated_seq: 0,
        };
        self.accounts.insert(def.id.clone(), Some(record));
        self.dirty_accounts.insert(def.id.clone());
        self.append_event(&book, |_, _| LedgerEvent::AccountOpened {
            def: def.clone(),
            cfg: *cfg,
        });
        Ok(())
    }

    /// Plans a commit, checking in the order documented on
    /// [`LedgerStore::commit`](store_api::LedgerStore::commit).
    pub fn commit(&mut self, tx: &Transaction) -> Result<Committed, LedgerError> {
        let book = &tx.book;
        if book.is_reserved() {
            return Err(invalid_book(book));
        }
        tx.check_fields()?;
        if tx.postings.is_empty() {
            return Err(LedgerError::EmptyTransaction);
        }
        if let Some(index) = tx.postings.iter().position(|p| p.amount == 0) {
            return Err(LedgerError::InvalidAmount { index });
        }
        if let Some((index, p)) = tx
            .postings
            .iter()
            .enumerate()
            .find(|(_, p)| p.account.book != *book)
        {
            return Err(LedgerError::AccountOutsideBook {
                index,
                account: p.account.clone(),
                book: book.clone(),
            });
        }
        if let Some(key) = &tx.idempotency_key {
            let slot = (book.clone(), key.clone());
            if let Some(first) = self.idempotency.get(&slot) {
                return Ok(*first);
            }
            if let Some(first) = self.reader.idempotency(book, key)? {
                self.idempotency.insert(slot, first);
                return Ok(first);
            }
        }
        if self.txids.contains(&tx.id) || self.reader.transaction_exists(&tx.id)? {
            return Err(LedgerError::DuplicateTransaction { txid: tx.id });
        }

        // Load every account once, in first-use order.
        let mut order: Vec<AccountId> = Vec::new();
        let mut records: HashMap<AccountId, AccountRecord> = HashMap::new();
        for p in &tx.postings {
            if records.contains_key(&p.account) {
                continue;
            }
            let Some(record) = self.account(&p.account)? else {
                return Err(LedgerError::UnknownAccount {
                    account: p.account.clone(),
                });
            };
            order.push(p.account.clone());
            records.insert(p.account.clone(), record);
        }
        for p in &tx.postings {
            let expected = &records[&p.account].def.asset;
            if *expected != p.asset {
                return Err(LedgerError::AssetMismatch {
                    account: p.account.clone(),
                    expected: expected.clone(),
                    found: p.asset.clone(),
                });
            }
        }
        let mut sums: BTreeMap<&AssetId, AssetTotals> = BTreeMap::new();
        for p in &tx.postings {
            let s = sums.entry(&p.asset).or_default();
            match p.direction {
                Direction::Debit => s.debits += u128::from(p.amount),
                Direction::Credit => s.credits += u128::from(p.amount),
            }
        }
        if let Some((asset, s)) = sums.iter().find(|(_, s)| s.debits != s.credits) {
            return Err(LedgerError::Unbalanced {
                asset: (*asset).clone(),
                debits: s.debits,
                credits: s.credits,
            });
        }

        // Running balances, in i128 so that no intermediate can overflow.
        let mut running: HashMap<AccountId, i128> = records
            .iter()
            .map(|(id, r)| (id.clone(), i128::from(r.balance)))
            .collect();
        let mut after: Vec<i128> = Vec::with_capacity(tx.postings.len());
        for p in &tx.postings {
            let normal = records[&p.account].cfg.normal_side;
            let delta = i128::from(p.amount);
            let balance = running.entry(p.account.clone()).or_default();
            *balance += if p.direction == normal { delta } else { -delta };
            after.push(*balance);
        }
        for id in &order {
            let record = &records[id];
            if let Some(min_balance) = record.cfg.min_balance {
                let would_be = running[id];
                if would_be < i128::from(min_balance) {
                    return Err(LedgerError::ConstraintViolation {
                        account: id.clone(),
                        min_balance,
                        would_be,
                    });
                }
            }
        }
        if let Some((p, _)) = tx
            .postings
            .iter()
            .zip(&after)
            .find(|(_, b)| i64::try_from(**b).is_err())
        {
            return Err(LedgerError::Overflow {
                account: p.account.clone(),
            });
        }
        let mut new_totals: Vec<((Book, AssetId), AssetTotals)> = Vec::new();
        for (asset, s) in &sums {
            let old = self.totals(book, asset)?;
            let (Some(debits), Some(credits)) = (
                old.debits.checked_add(s.debits),
                old.credits.checked_add(s.credits),
            ) else {
                let account = tx
                    .postings
                    .iter()
                    .find(|p| p.asset == **asset)
                    .map(|p| p.account.clone())
                    .unwrap_or_else(|| tx.postings[0].account.clone());
                return Err(LedgerError::Overflow { account });
            };
            new_totals.push((
                (book.clone(), (*asset).clone()),
                AssetTotals { debits, credits },
            ));
        }

        // Every check passed: apply to the plan.
        self.head(book)?;
        let mut committed = Committed {
            txid: tx.id,
            seq: 0,
            at: Timestamp::default(),
        };
        let stored = |seq, at| StoredTransaction {
            id: tx.id,
            book: book.clone(),
            postings: tx.postings.clone(),
            idempotency_key: tx.idempotency_key.clone(),
            metadata: tx.metadata.clone(),
            seq,
            at,
        };
        self.append_event(book, |seq, at| {
            committed.seq = seq;
            committed.at = at;
            LedgerEvent::TransactionPosted(stored(seq, at))
        });
        self.writes
            .transactions
            .push(stored(committed.seq, committed.at));
        for (index, (p, balance)) in tx.postings.iter().zip(&after).enumerate() {
            self.writes.postings.push(PostingRecord {
                txid: tx.id,
                seq: committed.seq,
                at: committed.at,
                index: index as u32,
                account: p.account.clone(),
                asset: p.asset.clone(),
                amount: p.amount,
                direction: p.direction,
                balance_after: i64::try_from(*balance).unwrap_or_default(),
            });
        }
        for (id, mut record) in records {
            record.balance = i64::try_from(running[&id]).unwrap_or_default();
            record.updated_seq = committed.seq;
            self.dirty_accounts.insert(id.clone());
            self.accounts.insert(id, Some(record));
        }
        for (key, totals) in new_totals {
            self.writes.totals.insert(key.clone(), totals);
            self.totals.insert(key, totals);
        }
        self.txids.insert(tx.id);
        if let Some(key) = &tx.idempotency_key {
            self.idempotency
                .insert((book.clone(), key.clone()), committed);
            self.writes
                .idempotency
                .push((book.clone(), key.clone(), committed));
        }
        Ok(committed)
    }

    /// The writes planned so far.
    pub fn into_writes(mut self) -> LedgerWrites {
        for id in std::mem::take(&mut self.dirty_accounts) {
            if let Some(Some(record)) = self.accounts.remove(&id) {
                self.writes.accounts.insert(id, record);
            }
        }
        self.writes
    }
}

/// Plans and runs a batch of drafts: one planner over `reader`, one result per draft.
pub fn plan_batch<R: LedgerRead + ?Sized>(
    reader: &mut R,
    now: Timestamp,
    txs: &[Transaction],
) -> (Vec<Result<Committed, LedgerError>>, LedgerWrites) {
    let mut planner = LedgerPlanner::new(reader, now);
    let results = txs.iter().map(|tx| planner.commit(tx)).collect();
    (results, planner.into_writes())
}

/// A copy of a storage failure for every member of a group commit but the one that
/// gets the original (errors with a boxed source cannot be cloned).
pub fn share_error(error: &LedgerError) -> LedgerError {
    match error {
        LedgerError::Storage(e) => LedgerError::Storage(StorageError::without_source(
            e.backend(),
            e.kind(),
            format!("{} (in a shared group commit): {error}", e.context()),
        )),
        other => LedgerError::Storage(StorageError::without_source(
            "ledger",
            StorageErrorKind::Engine,
            format!("shared group commit failed: {other}"),
        )),
    }
}

/// The postings of one page of `account_history`: `postings` ascending with
/// `seq > after_seq`, cut after `limit` whole transactions.
pub fn history_page<E>(
    postings: impl IntoIterator<Item = Result<PostingRecord, E>>,
    limit: usize,
) -> Result<Vec<PostingRecord>, E> {
    let mut page: Vec<PostingRecord> = Vec::new();
    let mut transactions = 0usize;
    for posting in postings {
        let posting = posting?;
        if page.last().map(|last| last.seq) != Some(posting.seq) {
            if transactions == limit {
                break;
            }
            transactions += 1;
        }
        page.push(posting);
    }
    Ok(page)
}

/// The balance as of `as_of` from the account's postings read **newest first**: the
/// balance after the newest posting with `at <= as_of`, or zero when none.
pub fn balance_as_of<E>(
    postings_newest_first: impl IntoIterator<Item = Result<PostingRecord, E>>,
    as_of: Timestamp,
) -> Result<BalanceSnapshot, E> {
    for posting in postings_newest_first {
        let posting = posting?;
        if posting.at <= as_of {
            return Ok(BalanceSnapshot {
                amount: posting.balance_after,
                updated_seq: posting.seq,
            });
        }
    }
    Ok(BalanceSnapshot::default())
}

/// Trial-balance rows from a book's transactions with `at <= as_of`, sorted by asset.
pub fn trial_balance_of<'a>(
    transactions: impl IntoIterator<Item = &'a StoredTransaction>,
    as_of: Timestamp,
) -> Vec<TrialBalanceRow> {
    let mut sums: BTreeMap<AssetId, AssetTotals> = BTreeMap::new();
    for tx in transactions.into_iter().filter(|tx| tx.at <= as_of) {
        for p in &tx.postings {
            let s = sums.entry(p.asset.clone()).or_default();
            match p.direction {
                Direction::Debit => s.debits = s.debits.saturating_add(u128::from(p.amount)),
                Direction::Credit => s.credits = s.credits.saturating_add(u128::from(p.amount)),
            }
        }
    }
    trial_rows(sums)
}

/// Trial-balance rows from per-asset totals, sorted by asset.
pub fn trial_rows(
    totals: impl IntoIterator<Item = (AssetId, AssetTotals)>,
) -> Vec<TrialBalanceRow> {
    let mut rows: Vec<TrialBalanceRow> = totals
        .into_iter()
        .map(|(asset, t)| TrialBalanceRow {
            asset,
            debits: t.debits,
            credits: t.credits,
        })
        .collect();
    rows.sort_by(|a, b| a.asset.cmp(&b.asset));
    rows
}

/// Keys of the ledger tables on ordered key-value engines (redb, LMDB, sled). Each table
/// is its own engine table/tree/database; values are `postcard` records.
///
/// | table | key | value |
/// | --- | --- | --- |
/// | assets | asset id | [`AssetDef`] |
/// | accounts | [`account`] | [`AccountRecord`] |
/// | postings | [`posting`] | [`PostingRecord`] |
/// | events | [`event`] | `Sequenced<LedgerEvent>` |
/// | heads | book name | [`BookHead`] |
/// | idempotency | [`idempotency`] | [`Committed`] |
/// | transactions | txid (16 bytes) | [`TxLocation`] |
/// | totals | [`totals`] | [`AssetTotals`] |
pub mod keys {
    use super::*;

    /// `book NUL path NUL`.
    pub fn account(id: &AccountId) -> Vec<u8> {
        KeyBuf::with_capacity(id.book.as_str().len() + id.path.as_str().len() + 2)
            .name(id.book.as_str())
            .name(id.path.as_str())
            .finish()
    }

    /// `account(id) seq:u64be index:u32be`: an account's postings in commit order.
    pub fn posting(id: &AccountId, seq: u64, index: u32) -> Vec<u8> {
        KeyBuf::default()
            .raw(&account(id))
            .u64(seq)
            .u32(index)
            .finish()
    }

    /// `book NUL seq:u64be`.
    pub fn event(book: &Book, seq: u64) -> Vec<u8> {
        KeyBuf::default().name(book.as_str()).u64(seq).finish()
    }

    /// `book NUL`: prefix of every event of a book.
    pub fn book_prefix(book: &Book) -> Vec<u8> {
        KeyBuf::default().name(book.as_str()).finish()
    }

    /// `book NUL key`.
    pub fn idempotency(book: &Book, key: &str) -> Vec<u8> {
        KeyBuf::default()
            .name(book.as_str())
            .raw(key.as_bytes())
            .finish()
    }

    /// `book NUL asset NUL`.
    pub fn totals(book: &Book, asset: &AssetId) -> Vec<u8> {
        KeyBuf::default()
            .name(book.as_str())
            .name(asset.as_str())
            .finish()
    }

    /// The transaction id's 16 bytes.
    pub fn transaction(txid: &TxId) -> [u8; 16] {
        txid.0.into_bytes()
    }
}

/// The group-commit queue of a ledger: drafts in, receipts out.
pub type CommitQueue =
    crate::group_commit::GroupCommit<Transaction, Result<Committed, LedgerError>>;

/// Commits `tx` through `queue`: concurrent callers are grouped and their drafts run by
/// one `commit_batch` call (one durable write). A storage failure of the shared write is
/// reported to every member of the group.
pub fn commit_grouped(
    queue: &CommitQueue,
    tx: &Transaction,
    commit_batch: impl FnOnce(
        &[Transaction],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError>,
) -> Result<Committed, LedgerError> {
    queue.submit(tx.clone(), |txs| match commit_batch(&txs) {
        Ok(results) => results,
        Err(error) => {
            let mut results: Vec<Result<Committed, LedgerError>> =
                (1..txs.len()).map(|_| Err(share_error(&error))).collect();
            results.insert(0, Err(error));
            results
        }
    })
}
