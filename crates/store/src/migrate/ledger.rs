//! Ledger migration: every book the source lists (or those the plan names, and always
//! `_system`, which registers the assets), replayed event by event in per-book sequence
//! order with the destination's clock set to each event's time, so sequence numbers,
//! timestamps, transaction ids, idempotency keys and balances match.

use std::fmt;

use serde::Serialize;
use store_api::{
    AccountCfg, AccountDef, AccountPath, AssetDef, AssetId, BalanceSnapshot, Book, LedgerEvent,
    LedgerStore, ManualClock, Sequenced, StoredTransaction, Transaction, TrialBalanceRow,
};

use super::compare::Sink;
use super::error::MigrateError;
use super::progress::{Phase, Progress, Step};
use super::report::{CopySummary, Counts, StoreKind};
use super::{Plan, paged};
use crate::stores::Stores;

/// What the walk and the copy count, in report order.
const COUNTED: [&str; 6] = [
    "books",
    "assets",
    "accounts",
    "transactions",
    "idempotency keys",
    "events",
];

/// Drafts per `commit_batch` while replaying.
const REPLAY_BATCH: usize = 1000;
/// Books named in an error's hint.
const HINT_NAMES: usize = 10;

/// The books of `stores` that `plan` selects (`_system` always), ascending by name.
fn books<'a>(
    ledger: &'a dyn LedgerStore,
    plan: &'a Plan,
) -> impl Iterator<Item = Result<Book, MigrateError>> + 'a {
    paged(
        move |after: Option<&Book>, limit| ledger.list_books(after, limit).map_err(Into::into),
        Book::clone,
    )
    .filter(move |book| match book {
        Ok(book) => {
            plan.books.is_empty() || book.as_str() == Book::SYSTEM || plan.books.contains(book)
        }
        Err(_) => true,
    })
}

/// Every event of `book`, ascending, read a page at a time.
fn events<'a>(
    ledger: &'a dyn LedgerStore,
    book: &'a Book,
) -> impl Iterator<Item = Result<Sequenced<LedgerEvent>, MigrateError>> + 'a {
    paged(
        move |after: Option<&u64>, limit| {
            ledger
                .read_events(book, after.copied(), limit)
                .map_err(Into::into)
        },
        |event: &Sequenced<LedgerEvent>| event.seq,
    )
}

/// What the ledger holds, when it holds anything: a destination must not.
pub(super) fn holds(stores: &Stores) -> Result<Option<String>, MigrateError> {
    let first = stores.ledger().list_books(None, 1)?;
    Ok(first
        .first()
        .map(|book| format!("ledger book {book} and maybe more")))
}

/// Refuses a book named in the plan that the source does not hold.
pub(super) fn check_named(from: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    let ledger = from.ledger();
    for book in &plan.books {
        if ledger.read_events(book, None, 1)?.is_empty() {
            let listed: Vec<String> = ledger
                .list_books(None, HINT_NAMES)?
                .iter()
                .map(Book::to_string)
                .collect();
            return Err(MigrateError::NotInSource {
                what: "book",
                name: book.to_string(),
                hint: format!("it has no event; the source's books begin with {listed:?}"),
            });
        }
    }
    Ok(())
}

/// Transactions of one book waiting to be committed together: consecutive in sequence and
/// stamped with the same time (as one source `commit_batch` is).
struct Pending<'a> {
    dst: &'a dyn LedgerStore,
    clock: &'a ManualClock,
    book: &'a Book,
    txs: Vec<StoredTransaction>,
}

impl Pending<'_> {
    fn push(&mut self, tx: StoredTransaction) -> Result<(), MigrateError> {
        let joins = self
            .txs
            .last()
            .is_none_or(|last| last.at == tx.at && self.txs.len() < REPLAY_BATCH);
        if !joins {
            self.flush()?;
        }
        self.txs.push(tx);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), MigrateError> {
        let Some(first) = self.txs.first() else {
            return Ok(());
        };
        self.clock.set(first.at);
        let drafts: Vec<Transaction> = self
            .txs
            .iter()
            .map(|tx| Transaction {
                id: tx.id,
                book: tx.book.clone(),
                postings: tx.postings.clone(),
                idempotency_key: tx.idempotency_key.clone(),
                metadata: tx.metadata.clone(),
            })
            .collect();
        let results = self.dst.commit_batch(&drafts)?;
        for (tx, result) in self.txs.iter().zip(results) {
            let committed = result.map_err(|source| MigrateError::LedgerReplay {
                book: self.book.clone(),
                seq: tx.seq,
                source: Box::new(source),
            })?;
            if committed.seq != tx.seq {
                return Err(MigrateError::LedgerSequence {
                    book: self.book.clone(),
                    expected: tx.seq,
                    got: committed.seq,
                });
            }
        }
        self.txs.clear();
        Ok(())
    }
}

/// What a ledger copy has replayed so far.
#[derive(Default)]
struct Replayed {
    books: u64,
    assets: u64,
    accounts: u64,
    transactions: u64,
    idempotency_keys: u64,
}

/// Replays every event of `book` into `dst`.
fn replay_book(
    src: &dyn LedgerStore,
    dst: &dyn LedgerStore,
    clock: &ManualClock,
    book: &Book,
    replayed: &mut Replayed,
    step: &Step<'_>,
) -> Result<(), MigrateError> {
    replayed.books += 1;
    let mut pending = Pending {
        dst,
        clock,
        book,
        txs: Vec::new(),
    };
    for event in events(src, book) {
        let Sequenced { seq, at, event } = event?;
        let replay_error = |source| MigrateError::LedgerReplay {
            book: book.clone(),
            seq,
            source: Box::new(source),
        };
        match event {
            LedgerEvent::TransactionPosted(tx) => {
                replayed.transactions += 1;
                replayed.idempotency_keys += u64::from(tx.idempotency_key.is_some());
                pending.push(tx)?;
            }
            LedgerEvent::AssetRegistered(def) => {
                replayed.assets += 1;
                pending.flush()?;
                clock.set(at);
                dst.register_asset(&def).map_err(replay_error)?;
            }
            LedgerEvent::AccountOpened { def, cfg } => {
                replayed.accounts += 1;
                pending.flush()?;
                clock.set(at);
                dst.open_account(&def, &cfg).map_err(replay_error)?;
            }
        }
        step.advance(1);
    }
    pending.flush()
}

/// Replays the selected books of `from` into `to`: `_system` first (it registers the assets
/// every account needs), then the others in name order.
pub(super) fn copy(
    from: &Stores,
    to: &Stores,
    clock: &ManualClock,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<CopySummary, MigrateError> {
    let step = Step::begin(progress, Phase::Copy, StoreKind::Ledger);
    let (src, dst) = (from.ledger(), to.ledger());
    let mut replayed = Replayed::default();
    let system = Book::system();
    if !src.read_events(&system, None, 1)?.is_empty() {
        replay_book(
            src.as_ref(),
            dst.as_ref(),
            clock,
            &system,
            &mut replayed,
            &step,
        )?;
    }
    for book in books(src.as_ref(), plan) {
        let book = book?;
        if book != system {
            replay_book(
                src.as_ref(),
                dst.as_ref(),
                clock,
                &book,
                &mut replayed,
                &step,
            )?;
        }
    }
    Ok(CopySummary {
        store: StoreKind::Ledger,
        counts: Counts(vec![
            ("books", replayed.books),
            ("assets", replayed.assets),
            ("accounts", replayed.accounts),
            ("transactions", replayed.transactions),
            ("idempotency keys", replayed.idempotency_keys),
        ]),
        handled: Vec::new(),
        not_migrated: Vec::new(),
    })
}

/// One item of the ledger, in the order [`walk`] gives them.
#[derive(PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) enum LedgerItem {
    /// A registered asset.
    Asset(AssetId),
    /// Something of a book.
    Book(Book, BookItem),
}

/// One item of a book.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) enum BookItem {
    /// An open account.
    Account(AccountPath),
    /// An event, by sequence number.
    Event(u64),
    /// The book's trial balance.
    TrialBalance,
}

impl fmt::Debug for LedgerItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerItem::Asset(id) => write!(f, "asset {id}"),
            LedgerItem::Book(book, BookItem::Account(path)) => {
                write!(f, "book {book} account {path}")
            }
            LedgerItem::Book(book, BookItem::Event(seq)) => write!(f, "book {book} event {seq}"),
            LedgerItem::Book(book, BookItem::TrialBalance) => {
                write!(f, "book {book} trial balance")
            }
        }
    }
}

/// What a [`LedgerItem`] holds.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub(super) enum LedgerValue {
    /// An asset's definition.
    Asset(AssetDef),
    /// An account's definition, configuration and balance.
    Account(AccountDef, AccountCfg, BalanceSnapshot),
    /// An event, with its time.
    Event(Sequenced<LedgerEvent>),
    /// A trial balance.
    TrialBalance(Vec<TrialBalanceRow>),
}

/// Every asset, then each selected book's accounts (with balances), events and trial
/// balance.
pub(super) fn walk(
    stores: &Stores,
    plan: &Plan,
    sink: &mut dyn Sink<LedgerItem, LedgerValue>,
) -> Result<Counts, MigrateError> {
    let ledger = stores.ledger();
    let ledger = ledger.as_ref();
    let mut counts = Counts::zero(&COUNTED);
    let assets = paged(
        |after: Option<&AssetId>, limit| ledger.list_assets(after, limit),
        |def: &AssetDef| def.id.clone(),
    );
    for def in assets {
        let def = def?;
        counts.add("assets", 1);
        sink.push(LedgerItem::Asset(def.id.clone()), LedgerValue::Asset(def));
    }
    for book in books(ledger, plan) {
        let book = book?;
        counts.add("books", 1);
        let accounts = paged(
            |after: Option<&AccountPath>, limit| ledger.list_accounts(&book, after, limit),
            |(def, _): &(AccountDef, AccountCfg)| def.id.path.clone(),
        );
        for account in accounts {
            let (def, cfg) = account?;
            counts.add("accounts", 1);
            let balance = ledger.balance(&def.id, None)?;
            sink.push(
                LedgerItem::Book(book.clone(), BookItem::Account(def.id.path.clone())),
                LedgerValue::Account(def, cfg, balance),
            );
        }
        for event in events(ledger, &book) {
            let event = event?;
            counts.add("events", 1);
            if let LedgerEvent::TransactionPosted(tx) = &event.event {
                counts.add("transactions", 1);
                counts.add("idempotency keys", u64::from(tx.idempotency_key.is_some()));
            }
            sink.push(
                LedgerItem::Book(book.clone(), BookItem::Event(event.seq)),
                LedgerValue::Event(event),
            );
        }
        let trial_balance = ledger.trial_balance(&book, None)?;
        sink.push(
            LedgerItem::Book(book, BookItem::TrialBalance),
            LedgerValue::TrialBalance(trial_balance),
        );
    }
    Ok(counts)
}
