//! The ledger's engine-independent half: the records every backend stores, their keys for
//! ordered key-value engines, and the [`LedgerPlanner`] that checks drafts and computes
//! every write of a commit. A backend only reads records for the planner (through
//! [`LedgerRead`]) and writes the planner's [`LedgerWrites`] in one engine transaction;
//! the key-value backends write them through [`LedgerWrites::for_each_kv`].
//!
//! Ledger arithmetic, check order, idempotency and sequence assignment therefore exist
//! exactly once, here.
//!
//! A plan borrows the drafts and definitions it was given (`'t`) instead of copying them:
//! a planned transaction, posting or event is a reference to the caller's draft plus the
//! numbers the planner assigned, and it serializes to exactly the bytes of the record it
//! stands for ([`PostingRecord`], `Sequenced<LedgerEvent>`, [`TxLocation`]), so backends
//! encode each record once, straight from the draft.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize, Serializer};
use store_api::{
    AccountCfg, AccountDef, AccountId, AssetDef, AssetId, BalanceSnapshot, Book, Committed,
    Direction, LedgerError, LedgerEvent, NameRule, Posting, PostingRecord, Sequenced, StorageError,
    StorageErrorKind, StoredTransaction, Timestamp, Transaction, TrialBalanceRow, TxId,
};

/// Hash maps of the planner: its keys are the caller's names and ids, hashed many times per
/// batch, and the maps live for one batch only.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// The reserved book of asset registrations, borrowed by every plan that registers one.
static SYSTEM_BOOK: LazyLock<Book> = LazyLock::new(Book::system);

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

impl AccountRecord {
    /// The definition and configuration listed for an account stored as this record's
    /// `postcard` bytes in `backend`'s accounts table (what
    /// [`list_accounts`](store_api::LedgerStore::list_accounts) gives).
    pub fn listed(
        backend: &'static str,
        bytes: &[u8],
    ) -> Result<(AccountDef, AccountCfg), StorageError> {
        let record: AccountRecord = crate::codec::decode(backend, "account", bytes)?;
        Ok((record.def, record.cfg))
    }
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
    /// A bound no committed transaction id exceeds, as the 16 bytes of
    /// [`keys::transaction`] (`None`: no transaction is committed). The planner asks once
    /// per plan and then knows, without [`transaction_exists`](Self::transaction_exists),
    /// that every greater id is new: ids are time-ordered, so fresh drafts usually lie above
    /// every stored one. The default, the greatest possible id, tells nothing; a backend
    /// with ordered transaction ids answers with its last one.
    fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        Ok(Some([0xFF; 16]))
    }
    /// A book's lifetime totals for one asset.
    fn totals(&mut self, book: &Book, asset: &AssetId) -> Result<AssetTotals, StorageError>;
}

/// A committed draft as the plan writes it: the caller's draft and the sequence number and
/// time it was given. [`to_stored`](Self::to_stored) is the [`StoredTransaction`] it stands
/// for.
#[derive(Debug, Clone, Copy)]
pub struct PlannedTransaction<'t> {
    /// The draft.
    pub tx: &'t Transaction,
    /// Its sequence number in its book.
    pub seq: u64,
    /// Its commit time.
    pub at: Timestamp,
}

impl<'t> PlannedTransaction<'t> {
    /// The receipt of the commit.
    pub fn committed(&self) -> Committed {
        Committed {
            txid: self.tx.id,
            seq: self.seq,
            at: self.at,
        }
    }

    /// The transaction as stored (a copy of the draft).
    pub fn to_stored(&self) -> StoredTransaction {
        StoredTransaction {
            id: self.tx.id,
            book: self.tx.book.clone(),
            postings: self.tx.postings.clone(),
            idempotency_key: self.tx.idempotency_key.clone(),
            metadata: self.tx.metadata.clone(),
            seq: self.seq,
            at: self.at,
        }
    }

    fn stored_ref(&self) -> StoredTransactionRef<'t> {
        let tx = self.tx;
        StoredTransactionRef {
            id: &tx.id,
            book: &tx.book,
            postings: &tx.postings,
            idempotency_key: &tx.idempotency_key,
            metadata: &tx.metadata,
            seq: self.seq,
            at: self.at,
        }
    }
}

/// One posting as the plan writes it: the draft's posting, where it sits and the account's
/// balance right after it. It serializes exactly as the [`PostingRecord`] it stands for
/// ([`to_record`](Self::to_record)).
#[derive(Debug, Clone, Copy)]
pub struct PlannedPosting<'t> {
    /// The draft's posting.
    pub posting: &'t Posting,
    /// Its transaction.
    pub txid: TxId,
    /// The transaction's sequence number in its book.
    pub seq: u64,
    /// The transaction's commit time.
    pub at: Timestamp,
    /// Its index among the transaction's postings.
    pub index: u32,
    /// The account's normal-side balance after this posting, as documented on
    /// [`PostingRecord::balance_after`].
    pub balance_after: i64,
}

impl PlannedPosting<'_> {
    /// The posting as stored (a copy of its account and asset).
    pub fn to_record(&self) -> PostingRecord {
        PostingRecord {
            txid: self.txid,
            seq: self.seq,
            at: self.at,
            index: self.index,
            account: self.posting.account.clone(),
            asset: self.posting.asset.clone(),
            amount: self.posting.amount,
            direction: self.posting.direction,
            balance_after: self.balance_after,
        }
    }
}

impl Serialize for PlannedPosting<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PostingRecordRef {
            txid: &self.txid,
            seq: self.seq,
            at: self.at,
            index: self.index,
            account: &self.posting.account,
            asset: &self.posting.asset,
            amount: self.posting.amount,
            direction: self.posting.direction,
            balance_after: self.balance_after,
        }
        .serialize(serializer)
    }
}

/// What a planned event announces.
#[derive(Debug, Clone, Copy)]
pub enum PlannedEventBody<'t> {
    /// An asset registration.
    AssetRegistered(&'t AssetDef),
    /// An account opening.
    AccountOpened {
        /// Its definition.
        def: &'t AccountDef,
        /// Its configuration.
        cfg: AccountCfg,
    },
    /// A committed transaction (the draft; its seq and time are the event's).
    TransactionPosted(&'t Transaction),
}

/// One event as the plan writes it. It serializes exactly as the `Sequenced<LedgerEvent>`
/// it stands for ([`to_event`](Self::to_event)).
#[derive(Debug, Clone, Copy)]
pub struct PlannedEvent<'t> {
    /// The book it is in.
    pub book: &'t Book,
    /// Its sequence number in the book.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// What it announces.
    pub body: PlannedEventBody<'t>,
}

impl PlannedEvent<'_> {
    /// The event as stored (a copy of what it announces).
    pub fn to_event(&self) -> Sequenced<LedgerEvent> {
        let event = match self.body {
            PlannedEventBody::AssetRegistered(def) => LedgerEvent::AssetRegistered(def.clone()),
            PlannedEventBody::AccountOpened { def, cfg } => LedgerEvent::AccountOpened {
                def: def.clone(),
                cfg,
            },
            PlannedEventBody::TransactionPosted(tx) => {
                LedgerEvent::TransactionPosted(self.transaction(tx).to_stored())
            }
        };
        Sequenced {
            seq: self.seq,
            at: self.at,
            event,
        }
    }

    fn transaction<'a>(&self, tx: &'a Transaction) -> PlannedTransaction<'a> {
        PlannedTransaction {
            tx,
            seq: self.seq,
            at: self.at,
        }
    }
}

impl Serialize for PlannedEvent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = match self.body {
            PlannedEventBody::AssetRegistered(def) => LedgerEventRef::AssetRegistered(def),
            PlannedEventBody::AccountOpened { def, ref cfg } => {
                LedgerEventRef::AccountOpened { def, cfg }
            }
            PlannedEventBody::TransactionPosted(tx) => {
                LedgerEventRef::TransactionPosted(self.transaction(tx).stored_ref())
            }
        };
        SequencedRef {
            seq: self.seq,
            at: self.at,
            event,
        }
        .serialize(serializer)
    }
}

// Borrowed twins of the stored records: the same fields in the same order, so that they
// serialize to the same bytes (pinned by a test) without copying the caller's draft.

#[derive(Serialize)]
#[serde(rename = "PostingRecord")]
struct PostingRecordRef<'a> {
    txid: &'a TxId,
    seq: u64,
    at: Timestamp,
    index: u32,
    account: &'a AccountId,
    asset: &'a AssetId,
    amount: u64,
    direction: Direction,
    balance_after: i64,
}

#[derive(Serialize)]
#[serde(rename = "StoredTransaction")]
struct StoredTransactionRef<'a> {
    id: &'a TxId,
    book: &'a Book,
    postings: &'a [Posting],
    idempotency_key: &'a Option<String>,
    metadata: &'a BTreeMap<String, String>,
    seq: u64,
    at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename = "LedgerEvent")]
enum LedgerEventRef<'a> {
    AssetRegistered(&'a AssetDef),
    AccountOpened {
        def: &'a AccountDef,
        cfg: &'a AccountCfg,
    },
    TransactionPosted(StoredTransactionRef<'a>),
}

#[derive(Serialize)]
#[serde(rename = "Sequenced")]
struct SequencedRef<'a> {
    seq: u64,
    at: Timestamp,
    event: LedgerEventRef<'a>,
}

#[derive(Serialize)]
#[serde(rename = "TxLocation")]
struct TxLocationRef<'a> {
    book: &'a Book,
    seq: u64,
}

/// Everything one planned batch writes, borrowing the drafts and definitions it was
/// planned from. Every record is final (an account changed by several drafts appears once,
/// with its last state).
#[derive(Debug, Default, Clone)]
pub struct LedgerWrites<'t> {
    /// New assets, in registration order.
    pub assets: Vec<&'t AssetDef>,
    /// New or changed accounts, with their final state, ascending by id.
    pub accounts: Vec<AccountRecord>,
    /// New postings, ascending by (account, seq, index): per account in commit order.
    pub postings: Vec<PlannedPosting<'t>>,
    /// New transactions, in commit order.
    pub transactions: Vec<PlannedTransaction<'t>>,
    /// New events, in plan order (sequence order within each book).
    pub events: Vec<PlannedEvent<'t>>,
    /// New idempotency receipts (book, key, receipt), in commit order.
    pub idempotency: Vec<(&'t Book, &'t str, Committed)>,
    /// Changed book heads, ascending by book.
    pub heads: Vec<(&'t Book, BookHead)>,
    /// Changed lifetime totals, ascending by (book, asset).
    pub totals: Vec<(&'t Book, &'t AssetId, AssetTotals)>,
}

impl LedgerWrites<'_> {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

/// An account the planner has read or opened, its planned postings, and what the current
/// draft does to it.
#[derive(Debug)]
struct AccountSlot<'t> {
    record: AccountRecord,
    /// Changed by the plan: written by [`LedgerPlanner::into_writes`].
    dirty: bool,
    /// Its new postings, in commit order (which is `(seq, index)` order).
    postings: Vec<PlannedPosting<'t>>,
    /// The draft that last touched it, and its place in that draft's `touched` list.
    draft: u64,
    touched: usize,
}

/// An account of the draft being checked: its slot and its running balance (in `i128`, so
/// no intermediate sum can overflow).
#[derive(Debug, Clone, Copy)]
struct Touched {
    slot: usize,
    running: i128,
}

/// The per-asset sums of the draft being checked.
#[derive(Debug, Clone, Copy)]
struct AssetSums<'t> {
    asset: &'t AssetId,
    debits: u128,
    credits: u128,
    /// The account of the first posting of this asset (named when its totals overflow).
    account: &'t AccountId,
}

/// A cached value and whether the plan changed it.
#[derive(Debug, Clone, Copy, Default)]
struct Cached<T> {
    value: T,
    dirty: bool,
}

/// Checks ledger operations in order against a [`LedgerRead`] plus everything planned so
/// far, and accumulates the writes. A rejected operation leaves the plan unchanged, so one
/// planner serves a whole `commit_batch` (later drafts see earlier ones).
///
/// Every record is read from the engine at most once per planner and kept here; a draft
/// allocates nothing of its own beyond the plan's lists (its scratch space is reused).
pub struct LedgerPlanner<'t, 'r, R: LedgerRead + ?Sized> {
    reader: &'r mut R,
    now: Timestamp,
    assets: FastMap<&'t AssetId, Option<AssetDef>>,
    /// Account slots by id; `None` for an id known not to be open.
    account_index: FastMap<&'t AccountId, Option<usize>>,
    accounts: Vec<AccountSlot<'t>>,
    heads: FastMap<&'t Book, Cached<BookHead>>,
    idempotency: FastMap<(&'t Book, &'t str), Committed>,
    txids: FastSet<TxId>,
    /// [`LedgerRead::transaction_id_bound`], once asked (`Some(None)`: nothing stored).
    txid_bound: Option<Option<[u8; 16]>>,
    totals: FastMap<(&'t Book, &'t AssetId), Cached<AssetTotals>>,
    /// Drafts checked so far (marks the accounts the current one touches).
    drafts: u64,
    // Scratch space of the draft being checked.
    touched: Vec<Touched>,
    posting_touched: Vec<usize>,
    after: Vec<i128>,
    sums: Vec<AssetSums<'t>>,
    new_totals: Vec<((&'t Book, &'t AssetId), AssetTotals)>,
    writes: LedgerWrites<'t>,
}

/// `balance` brought into the `i64` range: itself when it fits, else the nearest bound.
///
/// A committed draft leaves every account it touches inside the range (checked), so only
/// the running balance after a posting in the middle of an account's postings in one draft
/// can be out of it; that posting's `balance_after` then records the bound it passed.
fn saturate(balance: i128) -> i64 {
    i64::try_from(balance).unwrap_or(if balance < 0 { i64::MIN } else { i64::MAX })
}

fn invalid_book(book: &Book) -> LedgerError {
    LedgerError::InvalidBook {
        book: book.clone(),
        rule: NameRule::Reserved,
    }
}

impl<'t, 'r, R: LedgerRead + ?Sized> LedgerPlanner<'t, 'r, R> {
    /// A planner over `reader`, stamping events at `now` (or later, to keep `at`
    /// non-decreasing within each book).
    pub fn new(reader: &'r mut R, now: Timestamp) -> Self {
        LedgerPlanner {
            reader,
            now,
            assets: FastMap::default(),
            account_index: FastMap::default(),
            accounts: Vec::new(),
            heads: FastMap::default(),
            idempotency: FastMap::default(),
            txids: FastSet::default(),
            txid_bound: None,
            totals: FastMap::default(),
            drafts: 0,
            touched: Vec::new(),
            posting_touched: Vec::new(),
            after: Vec::new(),
            sums: Vec::new(),
            new_totals: Vec::new(),
            writes: LedgerWrites::default(),
        }
    }

    /// Makes room for `txs` (a capacity hint; nothing is checked).
    fn reserve(&mut self, txs: &[Transaction]) {
        self.writes
            .postings
            .reserve(txs.iter().map(|tx| tx.postings.len()).sum());
        self.writes.transactions.reserve(txs.len());
        self.writes.events.reserve(txs.len());
        self.txids.reserve(txs.len());
    }

    fn asset(&mut self, id: &'t AssetId) -> Result<Option<&AssetDef>, LedgerError> {
        if !self.assets.contains_key(id) {
            let found = self.reader.asset(id)?;
            self.assets.insert(id, found);
        }
        Ok(self.assets.get(id).and_then(Option::as_ref))
    }

    /// The slot of an account, read once; `None` when it is not open.
    fn account_slot(&mut self, id: &'t AccountId) -> Result<Option<usize>, LedgerError> {
        if let Some(found) = self.account_index.get(id) {
            return Ok(*found);
        }
        let slot = self
            .reader
            .account(id)?
            .map(|record| self.add_account(record, false));
        self.account_index.insert(id, slot);
        Ok(slot)
    }

    fn add_account(&mut self, record: AccountRecord, dirty: bool) -> usize {
        self.accounts.push(AccountSlot {
            record,
            dirty,
            postings: Vec::new(),
            draft: 0,
            touched: 0,
        });
        self.accounts.len() - 1
    }

    /// Whether `txid` is committed in the engine: known to be new when it lies above the
    /// engine's bound, asked otherwise. A bound that cannot be read tells nothing, so every
    /// draft is then asked about (and fails alone, as without the bound).
    fn transaction_stored(&mut self, txid: &TxId) -> Result<bool, LedgerError> {
        let bound = match self.txid_bound {
            Some(bound) => bound,
            None => {
                let bound = self
                    .reader
                    .transaction_id_bound()
                    .unwrap_or(Some([0xFF; 16]));
                self.txid_bound = Some(bound);
                bound
            }
        };
        match bound {
            None => Ok(false),
            Some(bound) if keys::transaction(txid) > bound => Ok(false),
            Some(_) => Ok(self.reader.transaction_exists(txid)?),
        }
    }

    fn head(&mut self, book: &'t Book) -> Result<BookHead, LedgerError> {
        if let Some(head) = self.heads.get(book) {
            return Ok(head.value);
        }
        let value = self.reader.book_head(book)?;
        self.heads.insert(
            book,
            Cached {
                value,
                dirty: false,
            },
        );
        Ok(value)
    }

    fn totals(&mut self, book: &'t Book, asset: &'t AssetId) -> Result<AssetTotals, LedgerError> {
        if let Some(totals) = self.totals.get(&(book, asset)) {
            return Ok(totals.value);
        }
        let value = self.reader.totals(book, asset)?;
        self.totals.insert(
            (book, asset),
            Cached {
                value,
                dirty: false,
            },
        );
        Ok(value)
    }

    /// Takes the next sequence number and time of `book` (whose head was read) and records
    /// the event; returns the number and time.
    fn append_event(&mut self, book: &'t Book, body: PlannedEventBody<'t>) -> (u64, Timestamp) {
        let head = self.heads.entry(book).or_default();
        head.value = BookHead {
            seq: head.value.seq + 1,
            last_at: head.value.last_at.max(self.now),
        };
        head.dirty = true;
        let BookHead { seq, last_at: at } = head.value;
        self.writes.events.push(PlannedEvent {
            book,
            seq,
            at,
            body,
        });
        (seq, at)
    }

    /// Plans an asset registration (idempotent for an identical definition).
    pub fn register_asset(&mut self, def: &'t AssetDef) -> Result<(), LedgerError> {
        def.check()?;
        match self.asset(&def.id)? {
            Some(existing) if existing == def => return Ok(()),
            Some(_) => {
                return Err(LedgerError::AlreadyExists {
                    entity: "asset",
                    id: def.id.to_string(),
                });
            }
            None => {}
        }
        let book: &'t Book = &SYSTEM_BOOK;
        self.head(book)?;
        self.assets.insert(&def.id, Some(def.clone()));
        self.writes.assets.push(def);
        self.append_event(book, PlannedEventBody::AssetRegistered(def));
        Ok(())
    }

    /// Plans an account opening (idempotent for an identical definition and configuration).
    pub fn open_account(
        &mut self,
        def: &'t AccountDef,
        cfg: &AccountCfg,
    ) -> Result<(), LedgerError> {
        if def.id.book.is_reserved() {
            return Err(invalid_book(&def.id.book));
        }
        if let Some(slot) = self.account_slot(&def.id)? {
            let existing = &self.accounts[slot].record;
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
        let book = &def.id.book;
        self.head(book)?;
        let record = AccountRecord {
            def: def.clone(),
            cfg: *cfg,
            balance: 0,
            updated_seq: 0,
        };
        let slot = self.add_account(record, true);
        self.account_index.insert(&def.id, Some(slot));
        self.append_event(book, PlannedEventBody::AccountOpened { def, cfg: *cfg });
        Ok(())
    }

    /// Plans a commit, checking in the order documented on
    /// [`LedgerStore::commit`](store_api::LedgerStore::commit).
    pub fn commit(&mut self, tx: &'t Transaction) -> Result<Committed, LedgerError> {
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
            let slot = (book, key.as_str());
            if let Some(first) = self.idempotency.get(&slot) {
                return Ok(*first);
            }
            if let Some(first) = self.reader.idempotency(book, key)? {
                self.idempotency.insert(slot, first);
                return Ok(first);
            }
        }
        if self.txids.contains(&tx.id) || self.transaction_stored(&tx.id)? {
            return Err(LedgerError::DuplicateTransaction { txid: tx.id });
        }
        self.check_postings(tx)?;
        self.check_totals(tx)?;

        // Every check passed: apply to the plan.
        self.head(book)?;
        let (seq, at) = self.append_event(book, PlannedEventBody::TransactionPosted(tx));
        let committed = Committed {
            txid: tx.id,
            seq,
            at,
        };
        self.writes
            .transactions
            .push(PlannedTransaction { tx, seq, at });
        for (index, ((posting, balance), &touched)) in tx
            .postings
            .iter()
            .zip(&self.after)
            .zip(&self.posting_touched)
            .enumerate()
        {
            self.accounts[self.touched[touched].slot]
                .postings
                .push(PlannedPosting {
                    posting,
                    txid: tx.id,
                    seq,
                    at,
                    index: index as u32,
                    balance_after: saturate(*balance),
                });
        }
        for touched in &self.touched {
            let account = &mut self.accounts[touched.slot];
            account.record.balance = saturate(touched.running);
            account.record.updated_seq = seq;
            account.dirty = true;
        }
        for (key, value) in self.new_totals.drain(..) {
            self.totals.insert(key, Cached { value, dirty: true });
        }
        self.txids.insert(tx.id);
        if let Some(key) = &tx.idempotency_key {
            self.idempotency.insert((book, key), committed);
            self.writes.idempotency.push((book, key, committed));
        }
        Ok(committed)
    }

    /// Checks the postings of `tx` against its accounts (open, same asset, balanced, floors,
    /// no overflow), leaving each account's new balance in `touched` and each posting's
    /// running balance after it in `after`. Floors and overflow are checked on each
    /// account's balance after the whole draft, once per account, never per posting.
    fn check_postings(&mut self, tx: &'t Transaction) -> Result<(), LedgerError> {
        // Load every account once, in first-use order.
        self.drafts += 1;
        let draft = self.drafts;
        self.touched.clear();
        self.posting_touched.clear();
        for p in &tx.postings {
            let Some(slot) = self.account_slot(&p.account)? else {
                return Err(LedgerError::UnknownAccount {
                    account: p.account.clone(),
                });
            };
            let account = &mut self.accounts[slot];
            if account.draft != draft {
                account.draft = draft;
                account.touched = self.touched.len();
                self.touched.push(Touched {
                    slot,
                    running: i128::from(account.record.balance),
                });
            }
            self.posting_touched.push(account.touched);
        }
        for (p, &touched) in tx.postings.iter().zip(&self.posting_touched) {
            let expected = &self.accounts[self.touched[touched].slot].record.def.asset;
            if *expected != p.asset {
                return Err(LedgerError::AssetMismatch {
                    account: p.account.clone(),
                    expected: expected.clone(),
                    found: p.asset.clone(),
                });
            }
        }

        // Debits and credits per asset, in asset order.
        self.sums.clear();
        for p in &tx.postings {
            let amount = u128::from(p.amount);
            let (debits, credits) = match p.direction {
                Direction::Debit => (amount, 0),
                Direction::Credit => (0, amount),
            };
            self.sums.push(AssetSums {
                asset: &p.asset,
                debits,
                credits,
                account: &p.account,
            });
        }
        // Stable, so the first entry of each asset is its first posting (and usually every
        // posting moves one asset, which needs no sorting).
        if let Some(first) = self.sums.first().map(|s| s.asset)
            && !self.sums.iter().all(|s| s.asset == first)
        {
            self.sums.sort_by(|a, b| a.asset.cmp(b.asset));
        }
        self.sums.dedup_by(|next, kept| {
            let same = next.asset == kept.asset;
            if same {
                kept.debits += next.debits;
                kept.credits += next.credits;
            }
            same
        });
        if let Some(s) = self.sums.iter().find(|s| s.debits != s.credits) {
            return Err(LedgerError::Unbalanced {
                asset: s.asset.clone(),
                debits: s.debits,
                credits: s.credits,
            });
        }

        // Each account's postings are summed in posting order in `i128`, which no draft
        // can overflow (fewer than 2^63 postings of under 2^64 each); the floor and the
        // `i64` range are then checked once per account, on its balance after the whole
        // draft, so the order of the postings never matters.
        self.after.clear();
        for (p, &touched) in tx.postings.iter().zip(&self.posting_touched) {
            let touched = &mut self.touched[touched];
            let normal = self.accounts[touched.slot].record.cfg.normal_side;
            let delta = i128::from(p.amount);
            touched.running += if p.direction == normal { delta } else { -delta };
            self.after.push(touched.running);
        }
        for touched in &self.touched {
            let record = &self.accounts[touched.slot].record;
            if let Some(min_balance) = record.cfg.min_balance
                && touched.running < i128::from(min_balance)
            {
                return Err(LedgerError::ConstraintViolation {
                    account: record.def.id.clone(),
                    min_balance,
                    would_be: touched.running,
                });
            }
        }
        if let Some(touched) = self
            .touched
            .iter()
            .find(|t| i64::try_from(t.running).is_err())
        {
            return Err(LedgerError::Overflow {
                account: self.accounts[touched.slot].record.def.id.clone(),
            });
        }
        Ok(())
    }

    /// Computes the book's lifetime totals of each asset of `tx` after it, in asset order,
    /// into `new_totals`, or returns the overflow that refuses it.
    fn check_totals(&mut self, tx: &'t Transaction) -> Result<(), LedgerError> {
        let book = &tx.book;
        self.new_totals.clear();
        for i in 0..self.sums.len() {
            let s = self.sums[i];
            let old = self.totals(book, s.asset)?;
            let (Some(debits), Some(credits)) = (
                old.debits.checked_add(s.debits),
                old.credits.checked_add(s.credits),
            ) else {
                return Err(LedgerError::Overflow {
                    account: s.account.clone(),
                });
            };
            self.new_totals
                .push(((book, s.asset), AssetTotals { debits, credits }));
        }
        Ok(())
    }

    /// The writes planned so far.
    pub fn into_writes(self) -> LedgerWrites<'t> {
        let LedgerPlanner {
            mut accounts,
            heads,
            totals,
            mut writes,
            ..
        } = self;

        // Accounts in id order, each followed by its postings: postings in key order.
        accounts.retain(|a| a.dirty);
        accounts.sort_by(|a, b| a.record.def.id.cmp(&b.record.def.id));
        writes.accounts.reserve(accounts.len());
        for account in accounts {
            writes.postings.extend(account.postings);
            writes.accounts.push(account.record);
        }

        writes.heads = heads
            .into_iter()
            .filter(|(_, head)| head.dirty)
            .map(|(book, head)| (book, head.value))
            .collect();
        writes.heads.sort_by(|a, b| a.0.cmp(b.0));
        writes.totals = totals
            .into_iter()
            .filter(|(_, totals)| totals.dirty)
            .map(|((book, asset), totals)| (book, asset, totals.value))
            .collect();
        writes.totals.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        writes
    }
}

/// Plans and runs a batch of drafts: one planner over `reader`, one result per draft.
pub fn plan_batch<'t, R: LedgerRead + ?Sized>(
    reader: &mut R,
    now: Timestamp,
    txs: &'t [Transaction],
) -> (Vec<Result<Committed, LedgerError>>, LedgerWrites<'t>) {
    let mut planner = LedgerPlanner::new(reader, now);
    planner.reserve(txs);
    let results = txs.iter().map(|tx| planner.commit(tx)).collect();
    (results, planner.into_writes())
}

/// A table of the ordered key-value layout of [`keys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvTable {
    /// Asset id → [`AssetDef`].
    Assets,
    /// [`keys::account`] → [`AccountRecord`].
    Accounts,
    /// [`keys::posting`] → [`PostingRecord`].
    Postings,
    /// [`keys::transaction`] → [`TxLocation`].
    Transactions,
    /// [`keys::event`] → `Sequenced<LedgerEvent>`.
    Events,
    /// [`keys::idempotency`] → [`Committed`].
    Idempotency,
    /// Book name → [`BookHead`].
    Heads,
    /// [`keys::totals`] → [`AssetTotals`].
    Totals,
}

/// Builds each key and `postcard` value of a plan into two buffers reused for every pair.
struct KvEncoder {
    backend: &'static str,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl KvEncoder {
    /// Encodes one pair and hands it to `put`.
    fn put<T: Serialize + ?Sized, E: From<StorageError>>(
        &mut self,
        put: &mut impl FnMut(KvTable, &[u8], &[u8]) -> Result<(), E>,
        table: KvTable,
        key: impl FnOnce(&mut Vec<u8>),
        what: &'static str,
        value: &T,
    ) -> Result<(), E> {
        self.key.clear();
        key(&mut self.key);
        self.value.clear();
        postcard::serialize_with_flavor(value, Reused(&mut self.value)).map_err(|e| {
            StorageError::new(
                self.backend,
                StorageErrorKind::Engine,
                format!("encoding a {what} record"),
                e,
            )
        })?;
        put(table, &self.key, &self.value)
    }
}

/// A `postcard` output appending to a buffer the encoder keeps.
struct Reused<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Reused<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// `items` in the order of `cmp`, sorted only when they are not already.
fn in_order<T>(items: &[T], cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<&T> {
    let mut sorted: Vec<&T> = items.iter().collect();
    if !sorted.is_sorted_by(|a, b| cmp(a, b).is_le()) {
        sorted.sort_by(|a, b| cmp(a, b));
    }
    sorted
}

impl LedgerWrites<'_> {
    /// Every record of the plan as the key-value pairs of the [`keys`] layout: calls `put`
    /// once per pair, table by table in the order of [`KvTable`], with each table's keys
    /// strictly ascending (B-trees insert sorted keys fastest, and an engine may append
    /// keys above its last one). Each value is encoded once, straight from the drafts, into
    /// a buffer reused for every pair; `backend` names the backend in encoding errors.
    ///
    /// The first error of `put` stops the walk and is returned.
    pub fn for_each_kv<E: From<StorageError>>(
        &self,
        backend: &'static str,
        mut put: impl FnMut(KvTable, &[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut enc = KvEncoder {
            backend,
            key: Vec::with_capacity(128),
            value: Vec::with_capacity(256),
        };
        let put = &mut put;
        for def in in_order(&self.assets, |a, b| a.id.cmp(&b.id)) {
            let key = |k: &mut Vec<u8>| k.extend_from_slice(def.id.as_str().as_bytes());
            enc.put(put, KvTable::Assets, key, "asset", *def)?;
        }
        for record in &self.accounts {
            let key = |k: &mut Vec<u8>| keys::push_account(k, &record.def.id);
            enc.put(put, KvTable::Accounts, key, "account", record)?;
        }
        for p in &self.postings {
            let key = |k: &mut Vec<u8>| keys::push_posting(k, &p.posting.account, p.seq, p.index);
            enc.put(put, KvTable::Postings, key, "posting", p)?;
        }
        for t in in_order(&self.transactions, |a, b| a.tx.id.cmp(&b.tx.id)) {
            let key = |k: &mut Vec<u8>| k.extend_from_slice(&keys::transaction(&t.tx.id));
            let location = TxLocationRef {
                book: &t.tx.book,
                seq: t.seq,
            };
            enc.put(
                put,
                KvTable::Transactions,
                key,
                "transaction location",
                &location,
            )?;
        }
        for e in in_order(&self.events, |a, b| (a.book, a.seq).cmp(&(b.book, b.seq))) {
            let key = |k: &mut Vec<u8>| keys::push_event(k, e.book, e.seq);
            enc.put(put, KvTable::Events, key, "event", e)?;
        }
        for (book, idempotency_key, committed) in
            in_order(&self.idempotency, |a, b| (a.0, a.1).cmp(&(b.0, b.1)))
        {
            let key = |k: &mut Vec<u8>| keys::push_idempotency(k, book, idempotency_key);
            enc.put(
                put,
                KvTable::Idempotency,
                key,
                "idempotency receipt",
                committed,
            )?;
        }
        for (book, head) in &self.heads {
            let key = |k: &mut Vec<u8>| k.extend_from_slice(book.as_str().as_bytes());
            enc.put(put, KvTable::Heads, key, "book head", head)?;
        }
        for (book, asset, totals) in &self.totals {
            let key = |k: &mut Vec<u8>| keys::push_totals(k, book, asset);
            enc.put(put, KvTable::Totals, key, "asset totals", totals)?;
        }
        Ok(())
    }
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

/// The first sequence number a `read_events` page after `after` starts at (book sequence
/// numbers start at 1), or `None` when no event can follow (`after` is `u64::MAX`).
pub fn first_event_after(after: Option<u64>) -> Option<u64> {
    match after {
        None => Some(1),
        Some(seq) => seq.checked_add(1),
    }
}

/// The postings of one page of `account_history`: `postings` ascending with
/// `seq > after_seq`, cut after `limit` whole transactions.
pub fn history_page<E>(
    postings: impl IntoIterator<Item = Result<PostingRecord, E>>,
    limit: usize,
) -> Result<Vec<PostingRecord>, E> {
    let mut page = HistoryPage::new(limit);
    for posting in postings {
        if !page.push(posting?) {
            break;
        }
    }
    Ok(page.finish())
}

/// A page of `account_history` built from postings given one at a time, ascending with
/// `seq > after_seq` (for engines that visit rows rather than iterate them): the page
/// takes postings until `limit` whole transactions are in it.
#[derive(Debug)]
pub struct HistoryPage {
    page: Vec<PostingRecord>,
    transactions: usize,
    limit: usize,
}

impl HistoryPage {
    /// An empty page of at most `limit` transactions.
    pub fn new(limit: usize) -> Self {
        HistoryPage {
            page: Vec::new(),
            transactions: 0,
            limit,
        }
    }

    /// Adds the next posting; `false` when the page is full, `posting` is not in it and
    /// no later posting will be.
    pub fn push(&mut self, posting: PostingRecord) -> bool {
        if self.page.last().map(|last| last.seq) != Some(posting.seq) {
            if self.transactions == self.limit {
                return false;
            }
            self.transactions += 1;
        }
        self.page.push(posting);
        true
    }

    /// The page.
    pub fn finish(self) -> Vec<PostingRecord> {
        self.page
    }
}

/// The balance as of `as_of` from the account's postings read **newest first**: the
/// balance after the newest posting with `at <= as_of`, or zero when none.
pub fn balance_as_of<E>(
    postings_newest_first: impl IntoIterator<Item = Result<PostingRecord, E>>,
    as_of: Timestamp,
) -> Result<BalanceSnapshot, E> {
    for posting in postings_newest_first {
        if let Some(balance) = balance_after(&posting?, as_of) {
            return Ok(balance);
        }
    }
    Ok(BalanceSnapshot::default())
}

/// The balance `posting` leaves when it is the newest posting at `as_of` (`at <= as_of`):
/// reading newest first, the first posting that gives one decides the balance.
pub fn balance_after(posting: &PostingRecord, as_of: Timestamp) -> Option<BalanceSnapshot> {
    (posting.at <= as_of).then_some(BalanceSnapshot {
        amount: posting.balance_after,
        updated_seq: posting.seq,
    })
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

/// Trial-balance rows from a book's postings with `at <= as_of` (in any order), sorted by
/// asset: what a backend that keeps postings in their own table sums for
/// `trial_balance(book, Some(as_of))`. Stops at the first error of `postings`.
pub fn trial_balance_of_postings<E>(
    postings: impl IntoIterator<Item = Result<PostingRecord, E>>,
    as_of: Timestamp,
) -> Result<Vec<TrialBalanceRow>, E> {
    let mut sums: BTreeMap<AssetId, AssetTotals> = BTreeMap::new();
    for posting in postings {
        let p = posting?;
        if p.at > as_of {
            continue;
        }
        let s = sums.entry(p.asset).or_default();
        match p.direction {
            Direction::Debit => s.debits = s.debits.saturating_add(u128::from(p.amount)),
            Direction::Credit => s.credits = s.credits.saturating_add(u128::from(p.amount)),
        }
    }
    Ok(trial_rows(sums))
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
/// is its own engine table/tree/database; values are `postcard` records. Names end with a
/// NUL byte (names never hold one), so byte order is name order and no key of one name is
/// a prefix of another's.
///
/// | table | key | value |
/// | --- | --- | --- |
/// | assets | asset id | [`AssetDef`] |
/// | accounts | [`account`](keys::account) | [`AccountRecord`] |
/// | postings | [`posting`](keys::posting) | [`PostingRecord`] |
/// | events | [`event`](keys::event) | `Sequenced<LedgerEvent>` |
/// | heads | book name | [`BookHead`] |
/// | idempotency | [`idempotency`](keys::idempotency) | [`Committed`] |
/// | transactions | txid (16 bytes) | [`TxLocation`] |
/// | totals | [`totals`](keys::totals) | [`AssetTotals`] |
pub mod keys {
    use super::*;
    use crate::listing::KeyRange;
    use store_api::AccountPath;

    /// `book NUL path NUL`.
    pub fn account(id: &AccountId) -> Vec<u8> {
        let mut key = Vec::with_capacity(id.book.as_str().len() + id.path.as_str().len() + 2);
        push_account(&mut key, id);
        key
    }

    /// `account(id) seq:u64be index:u32be`: an account's postings in commit order.
    pub fn posting(id: &AccountId, seq: u64, index: u32) -> Vec<u8> {
        let mut key = Vec::with_capacity(id.book.as_str().len() + id.path.as_str().len() + 14);
        push_posting(&mut key, id, seq, index);
        key
    }

    /// `book NUL seq:u64be`.
    pub fn event(book: &Book, seq: u64) -> Vec<u8> {
        let mut key = Vec::with_capacity(book.as_str().len() + 9);
        push_event(&mut key, book, seq);
        key
    }

    /// `book NUL`: prefix of every event of a book.
    pub fn book_prefix(book: &Book) -> Vec<u8> {
        let mut key = Vec::with_capacity(book.as_str().len() + 1);
        push_name(&mut key, book.as_str());
        key
    }

    /// `book NUL key`.
    pub fn idempotency(book: &Book, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(book.as_str().len() + key.len() + 1);
        push_idempotency(&mut out, book, key);
        out
    }

    /// `book NUL asset NUL`.
    pub fn totals(book: &Book, asset: &AssetId) -> Vec<u8> {
        let mut key = Vec::with_capacity(book.as_str().len() + asset.as_str().len() + 2);
        push_totals(&mut key, book, asset);
        key
    }

    /// The key range of a [`list_books`](store_api::LedgerStore::list_books) page in the
    /// heads table (keyed by book name): the books after `after`.
    pub fn books_after(after: Option<&Book>) -> KeyRange {
        KeyRange::after(after.map(|book| book.as_str().as_bytes().to_vec()))
    }

    /// The book of a heads-table key (its name), read from `backend`'s table; bytes that
    /// are not a valid book name are a [`Corrupted`](StorageErrorKind::Corrupted) error.
    pub fn head_book(backend: &'static str, key: &[u8]) -> Result<Book, StorageError> {
        std::str::from_utf8(key)
            .ok()
            .and_then(|name| Book::new(name).ok())
            .ok_or_else(|| StorageError::corrupted(backend, "a book head key is not a book name"))
    }

    /// The key range of a [`list_assets`](store_api::LedgerStore::list_assets) page in the
    /// assets table (keyed by asset id): the assets after `after`.
    pub fn assets_after(after: Option<&AssetId>) -> KeyRange {
        KeyRange::after(after.map(|id| id.as_str().as_bytes().to_vec()))
    }

    /// The key range of a [`list_accounts`](store_api::LedgerStore::list_accounts) page in
    /// the accounts table: `book`'s accounts after the path `after`.
    pub fn accounts_after(book: &Book, after: Option<&AccountPath>) -> KeyRange {
        let cursor = after.map(|path| {
            let mut key = Vec::with_capacity(book.as_str().len() + path.as_str().len() + 2);
            push_name(&mut key, book.as_str());
            push_name(&mut key, path.as_str());
            key
        });
        KeyRange::after_in(&book_prefix(book), cursor)
    }

    /// The transaction id's 16 bytes.
    pub fn transaction(txid: &TxId) -> [u8; 16] {
        txid.0.into_bytes()
    }

    /// [`LedgerRead::transaction_id_bound`] from the greatest key of the transactions
    /// table: that key, `None` for an empty table, and the greatest possible id (which tells
    /// nothing) for a key that is not an id.
    pub fn transaction_bound(last: Option<&[u8]>) -> Option<[u8; 16]> {
        last.map(|key| key.try_into().unwrap_or([0xFF; 16]))
    }

    fn push_name(key: &mut Vec<u8>, name: &str) {
        key.extend_from_slice(name.as_bytes());
        key.push(0);
    }

    pub(super) fn push_account(key: &mut Vec<u8>, id: &AccountId) {
        push_name(key, id.book.as_str());
        push_name(key, id.path.as_str());
    }

    pub(super) fn push_posting(key: &mut Vec<u8>, id: &AccountId, seq: u64, index: u32) {
        push_account(key, id);
        key.extend_from_slice(&seq.to_be_bytes());
        key.extend_from_slice(&index.to_be_bytes());
    }

    pub(super) fn push_event(key: &mut Vec<u8>, book: &Book, seq: u64) {
        push_name(key, book.as_str());
        key.extend_from_slice(&seq.to_be_bytes());
    }

    pub(super) fn push_idempotency(key: &mut Vec<u8>, book: &Book, idempotency_key: &str) {
        push_name(key, book.as_str());
        key.extend_from_slice(idempotency_key.as_bytes());
    }

    pub(super) fn push_totals(key: &mut Vec<u8>, book: &Book, asset: &AssetId) {
        push_name(key, book.as_str());
        push_name(key, asset.as_str());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use store_api::AccountKind;

    /// An empty ledger.
    struct Empty;

    impl LedgerRead for Empty {
        fn asset(&mut self, _: &AssetId) -> Result<Option<AssetDef>, StorageError> {
            Ok(None)
        }
        fn account(&mut self, _: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
            Ok(None)
        }
        fn book_head(&mut self, _: &Book) -> Result<BookHead, StorageError> {
            Ok(BookHead::default())
        }
        fn idempotency(&mut self, _: &Book, _: &str) -> Result<Option<Committed>, StorageError> {
            Ok(None)
        }
        fn transaction_exists(&mut self, _: &TxId) -> Result<bool, StorageError> {
            Ok(false)
        }
        fn totals(&mut self, _: &Book, _: &AssetId) -> Result<AssetTotals, StorageError> {
            Ok(AssetTotals::default())
        }
    }

    struct Setup {
        assets: Vec<AssetDef>,
        accounts: Vec<(AccountDef, AccountCfg)>,
        drafts: Vec<Transaction>,
    }

    /// Two books of three accounts, two assets, and drafts that alternate between the books
    /// and touch the accounts out of id order, one with metadata and an idempotency key.
    fn setup() -> Setup {
        let asset = |id: &str| AssetDef {
            id: AssetId::new(id).unwrap(),
            precision: 2,
            name: format!("asset {id}"),
        };
        let assets = vec![asset("USD"), asset("EUR")];
        let mut accounts = Vec::new();
        for book in ["zeta", "alpha"] {
            for (path, asset) in [("c", "USD"), ("a", "USD"), ("b", "EUR"), ("d", "EUR")] {
                let def = AccountDef {
                    id: AccountId::new(book, path).unwrap(),
                    asset: AssetId::new(asset).unwrap(),
                    kind: AccountKind::Asset,
                };
                accounts.push((def, AccountCfg::for_kind(AccountKind::Asset)));
            }
        }
        let id = |i: usize| &accounts[i].0.id;
        let usd = &assets[0].id;
        let eur = &assets[1].id;
        let mut drafts = Vec::new();
        for round in 0..3u64 {
            for base in [0, 4] {
                drafts.push(
                    Transaction::new(accounts[base].0.id.book.clone())
                        .debit(id(base), usd, 10 + round)
                        .credit(id(base + 1), usd, 10 + round)
                        .debit(id(base + 3), eur, 7)
                        .credit(id(base + 2), eur, 7),
                );
            }
        }
        drafts.push(
            Transaction::new(accounts[0].0.id.book.clone())
                .credit(id(0), usd, 5)
                .debit(id(1), usd, 5)
                .with_idempotency_key("order-1")
                .with_metadata("note", "a refund")
                .with_metadata("by", "test"),
        );
        Setup {
            assets,
            accounts,
            drafts,
        }
    }

    fn plan(setup: &Setup) -> (Vec<Result<Committed, LedgerError>>, LedgerWrites<'_>) {
        let mut reader = Empty;
        let mut planner = LedgerPlanner::new(&mut reader, Timestamp(1_000));
        for def in &setup.assets {
            planner.register_asset(def).unwrap();
        }
        for (def, cfg) in &setup.accounts {
            planner.open_account(def, cfg).unwrap();
        }
        let results = setup.drafts.iter().map(|tx| planner.commit(tx)).collect();
        (results, planner.into_writes())
    }

    fn bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        postcard::to_stdvec(value).unwrap()
    }

    #[test]
    fn names_encode_as_their_text() {
        let book = Book::new("shop").unwrap();
        assert_eq!(bytes(&book), bytes("shop"));
        let back: Book = postcard::from_bytes(&bytes(&book)).unwrap();
        assert_eq!(back, book);
        assert!(postcard::from_bytes::<Book>(&bytes("a/b")).is_err());
    }

    #[test]
    fn planned_records_encode_as_the_records_they_stand_for() {
        let setup = setup();
        let (results, writes) = plan(&setup);
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(writes.events.len(), 2 + 8 + setup.drafts.len());
        for event in &writes.events {
            assert_eq!(bytes(event), bytes(&event.to_event()));
        }
        assert_eq!(writes.postings.len(), 4 * 6 + 2);
        for posting in &writes.postings {
            assert_eq!(bytes(posting), bytes(&posting.to_record()));
        }
        for planned in &writes.transactions {
            let location = TxLocation {
                book: planned.tx.book.clone(),
                seq: planned.seq,
            };
            let planned_location = TxLocationRef {
                book: &planned.tx.book,
                seq: planned.seq,
            };
            assert_eq!(bytes(&planned_location), bytes(&location));
            assert_eq!(planned.to_stored().committed(), planned.committed());
        }
    }

    #[test]
    fn the_plan_lists_records_in_key_order_with_final_states() {
        let setup = setup();
        let (_, writes) = plan(&setup);
        let ids: Vec<&AccountId> = writes.accounts.iter().map(|r| &r.def.id).collect();
        assert!(ids.is_sorted() && ids.len() == 8);
        let order: Vec<(&AccountId, u64, u32)> = writes
            .postings
            .iter()
            .map(|p| (&p.posting.account, p.seq, p.index))
            .collect();
        assert!(order.is_sorted());
        // Each account's last posting leaves its final balance.
        for record in &writes.accounts {
            let last = writes
                .postings
                .iter()
                .rfind(|p| p.posting.account == record.def.id)
                .unwrap();
            assert_eq!(last.balance_after, record.balance);
            assert_eq!(last.seq, record.updated_seq);
        }
        let books: Vec<&str> = writes.heads.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(books, ["_system", "alpha", "zeta"]);
        assert_eq!(writes.heads[2].1.seq, 4 + 4);
        assert_eq!(writes.totals.len(), 4);
        assert!(writes.totals.is_sorted_by(|a, b| (a.0, a.1) <= (b.0, b.1)));
    }

    fn decoded<T: DeserializeOwned>(value: &[u8]) -> T {
        postcard::from_bytes(value).unwrap()
    }

    #[test]
    fn key_value_pairs_come_table_by_table_in_ascending_key_order() {
        let setup = setup();
        let (_, writes) = plan(&setup);
        let mut pairs: Vec<(KvTable, Vec<u8>, Vec<u8>)> = Vec::new();
        writes
            .for_each_kv("test", |table, key, value| {
                pairs.push((table, key.to_vec(), value.to_vec()));
                Ok::<_, StorageError>(())
            })
            .unwrap();
        let tables: Vec<KvTable> = pairs.iter().map(|p| p.0).collect();
        let mut grouped = tables.clone();
        grouped.dedup();
        assert_eq!(grouped.len(), 8, "every table once, together: {grouped:?}");
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            assert!(run.windows(2).all(|w| w[0].1 < w[1].1), "{:?}", run[0].0);
        }
        for (table, key, value) in &pairs {
            match table {
                KvTable::Postings => {
                    let p: PostingRecord = decoded(value);
                    assert_eq!(*key, keys::posting(&p.account, p.seq, p.index));
                }
                KvTable::Events => {
                    let e: Sequenced<LedgerEvent> = decoded(value);
                    let book = match &e.event {
                        LedgerEvent::AssetRegistered(_) => Book::system(),
                        LedgerEvent::AccountOpened { def, .. } => def.id.book.clone(),
                        LedgerEvent::TransactionPosted(tx) => tx.book.clone(),
                    };
                    assert_eq!(*key, keys::event(&book, e.seq));
                }
                KvTable::Transactions => {
                    let location: TxLocation = decoded(value);
                    let planned = writes
                        .transactions
                        .iter()
                        .find(|t| keys::transaction(&t.tx.id)[..] == key[..])
                        .unwrap();
                    assert_eq!(
                        (&location.book, location.seq),
                        (&planned.tx.book, planned.seq)
                    );
                }
                KvTable::Accounts => {
                    let record: AccountRecord = decoded(value);
                    assert_eq!(*key, keys::account(&record.def.id));
                }
                KvTable::Assets => {
                    let def: AssetDef = decoded(value);
                    assert_eq!(key[..], *def.id.as_str().as_bytes());
                }
                KvTable::Idempotency => {
                    let committed: Committed = decoded(value);
                    assert_eq!(*key, keys::idempotency(&setup.drafts[6].book, "order-1"));
                    assert_eq!(committed.txid, setup.drafts[6].id);
                }
                KvTable::Heads => {
                    decoded::<BookHead>(value);
                }
                KvTable::Totals => {
                    decoded::<AssetTotals>(value);
                }
            }
        }
    }

    #[test]
    fn a_rejected_draft_leaves_no_trace_in_the_plan() {
        let setup = setup();
        let mut reader = Empty;
        let mut planner = LedgerPlanner::new(&mut reader, Timestamp(1));
        for def in &setup.assets {
            planner.register_asset(def).unwrap();
        }
        for (def, cfg) in &setup.accounts {
            planner.open_account(def, cfg).unwrap();
        }
        let unbalanced = Transaction::new(setup.accounts[0].0.id.book.clone())
            .debit(&setup.accounts[0].0.id, &setup.assets[0].id, 3)
            .credit(&setup.accounts[1].0.id, &setup.assets[0].id, 2);
        assert!(matches!(
            planner.commit(&unbalanced),
            Err(LedgerError::Unbalanced { .. })
        ));
        let committed = planner.commit(&setup.drafts[0]).unwrap();
        assert_eq!(committed.seq, 5);
        let writes = planner.into_writes();
        assert_eq!(writes.transactions.len(), 1);
        assert_eq!(writes.postings.len(), 4);
        assert!(writes.postings.iter().all(|p| p.txid == setup.drafts[0].id));
    }

    /// One stored transaction id and a bound, counting the existence checks.
    struct OneStored {
        stored: TxId,
        bound: Result<Option<[u8; 16]>, ()>,
        asked: usize,
        accounts: Vec<AccountRecord>,
    }

    impl LedgerRead for OneStored {
        fn asset(&mut self, _: &AssetId) -> Result<Option<AssetDef>, StorageError> {
            Ok(None)
        }
        fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, StorageError> {
            Ok(self.accounts.iter().find(|r| r.def.id == *id).cloned())
        }
        fn book_head(&mut self, _: &Book) -> Result<BookHead, StorageError> {
            Ok(BookHead::default())
        }
        fn idempotency(&mut self, _: &Book, _: &str) -> Result<Option<Committed>, StorageError> {
            Ok(None)
        }
        fn transaction_exists(&mut self, txid: &TxId) -> Result<bool, StorageError> {
            self.asked += 1;
            Ok(*txid == self.stored)
        }
        fn transaction_id_bound(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
            self.bound
                .map_err(|()| StorageError::corrupted("test", "no bound"))
        }
        fn totals(&mut self, _: &Book, _: &AssetId) -> Result<AssetTotals, StorageError> {
            Ok(AssetTotals::default())
        }
    }

    #[test]
    fn ids_above_the_bound_are_new_without_asking_and_others_are_asked() {
        let setup = setup();
        let accounts = setup
            .accounts
            .iter()
            .map(|(def, cfg)| AccountRecord {
                def: def.clone(),
                cfg: *cfg,
                balance: 0,
                updated_seq: 0,
            })
            .collect();
        let stored = setup.drafts[3].id;
        let at_or_below = setup.drafts[..6]
            .iter()
            .filter(|tx| tx.id <= stored)
            .count();
        let mut reader = OneStored {
            stored,
            bound: Ok(Some(keys::transaction(&stored))),
            asked: 0,
            accounts,
        };
        let (results, _) = plan_batch(&mut reader, Timestamp(1), &setup.drafts[..6]);
        assert!(matches!(
            results[3],
            Err(LedgerError::DuplicateTransaction { txid }) if txid == stored
        ));
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
        assert_eq!(
            reader.asked, at_or_below,
            "only ids at or below the bound are asked"
        );

        reader.bound = Ok(None);
        reader.asked = 0;
        let (results, _) = plan_batch(&mut reader, Timestamp(1), &setup.drafts[..6]);
        assert!(
            results.iter().all(Result::is_ok),
            "an empty table holds nothing"
        );
        assert_eq!(reader.asked, 0);

        reader.bound = Err(());
        let (results, _) = plan_batch(&mut reader, Timestamp(1), &setup.drafts[..6]);
        assert!(
            results[3].is_err() && reader.asked == 6,
            "no bound: every id is asked"
        );
        assert_eq!(keys::transaction_bound(Some(&[1, 2])), Some([0xFF; 16]));
        assert_eq!(keys::transaction_bound(None), None);
    }
}
