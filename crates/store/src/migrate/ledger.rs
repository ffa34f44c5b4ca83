//! Ledger migration: replay each book's events in sequence order with the destination's
//! clock set to each event's time, so sequence numbers, timestamps and balances match.

use std::collections::{BTreeSet, VecDeque};

use store_api::{
    AccountId, Book, LedgerError, LedgerEvent, LedgerStore, ManualClock, Sequenced,
    StoredTransaction, Transaction,
};

use super::{Difference, MigrateError, PAGE, Plan, StoreKind, record};
use crate::migrate::report::CopySummary;
use crate::stores::Stores;

/// Drafts per `commit_batch` while replaying.
const REPLAY_BATCH: usize = 1000;

/// The books to migrate: `_system` first (it registers the assets every account needs),
/// then the plan's books in order, each once.
pub(super) fn books(plan: &Plan) -> Vec<Book> {
    let mut books = vec![Book::system()];
    for book in &plan.books {
        if !books.contains(book) {
            books.push(book.clone());
        }
    }
    books
}

/// Every event of `book`, ascending, read a page at a time.
fn events<'a>(
    ledger: &'a dyn LedgerStore,
    book: &'a Book,
) -> impl Iterator<Item = Result<Sequenced<LedgerEvent>, MigrateError>> + 'a {
    let mut from = 1;
    let mut page = VecDeque::new();
    let mut done = false;
    std::iter::from_fn(move || {
        if page.is_empty() && !done {
            match ledger.read_events(book, from, PAGE) {
                Ok(read) => {
                    done = read.len() < PAGE;
                    if let Some(last) = read.last() {
                        from = last.seq + 1;
                    }
                    page.extend(read);
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e.into()));
                }
            }
        }
        page.pop_front().map(Ok)
    })
}

pub(super) fn check_empty(to: &Stores, books: &[Book]) -> Result<(), MigrateError> {
    let ledger = to.ledger();
    for book in books {
        if !ledger.read_events(book, 1, 1)?.is_empty() {
            return Err(MigrateError::DestinationNotEmpty {
                store: StoreKind::Ledger,
                detail: format!("book {book} has events"),
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

pub(super) fn copy(
    from: &Stores,
    to: &Stores,
    clock: &ManualClock,
    books: &[Book],
) -> Result<CopySummary, MigrateError> {
    let (src, dst) = (from.ledger(), to.ledger());
    let mut counts = [0u64; 3];
    for book in books {
        let mut pending = Pending {
            dst: dst.as_ref(),
            clock,
            book,
            txs: Vec::new(),
        };
        for event in events(src.as_ref(), book) {
            let Sequenced { seq, at, event } = event?;
            let replay_error = |source| MigrateError::LedgerReplay {
                book: book.clone(),
                seq,
                source: Box::new(source),
            };
            match event {
                LedgerEvent::TransactionPosted(tx) => {
                    counts[2] += 1;
                    pending.push(tx)?;
                }
                LedgerEvent::AssetRegistered(def) => {
                    counts[0] += 1;
                    pending.flush()?;
                    clock.set(at);
                    dst.register_asset(&def).map_err(replay_error)?;
                }
                LedgerEvent::AccountOpened { def, cfg } => {
                    counts[1] += 1;
                    pending.flush()?;
                    clock.set(at);
                    dst.open_account(&def, &cfg).map_err(replay_error)?;
                }
            }
        }
        pending.flush()?;
    }
    let [assets, accounts, transactions] = counts;
    Ok(CopySummary {
        store: StoreKind::Ledger,
        copied: format!(
            "books {} (_system and the named ones): assets {assets}, accounts {accounts}, \
             transactions {transactions}, replayed in per-book sequence order with their \
             sequence numbers, times, ids and idempotency keys",
            books.len()
        ),
        not_migrated: vec![
            "books not named with --book: the ledger cannot list its books, so they can be \
             neither copied nor detected"
                .to_owned(),
        ],
    })
}

pub(super) fn verify(
    from: &Stores,
    to: &Stores,
    books: &[Book],
    differences: &mut Vec<Difference>,
) -> Result<(), MigrateError> {
    let (src, dst) = (from.ledger(), to.ledger());
    let mut diff = |detail: String| record(differences, StoreKind::Ledger, detail);
    for book in books {
        let mut accounts: BTreeSet<AccountId> = BTreeSet::new();
        let mut theirs = events(dst.as_ref(), book);
        for ours in events(src.as_ref(), book) {
            let ours = ours?;
            if let LedgerEvent::AccountOpened { def, .. } = &ours.event {
                accounts.insert(def.id.clone());
            }
            let theirs = theirs.next().transpose()?;
            if theirs.as_ref() != Some(&ours) {
                let detail = format!(
                    "book {book} event {}: source {ours:?}, destination {theirs:?}",
                    ours.seq
                );
                if !diff(detail) {
                    return Ok(());
                }
            }
        }
        if let Some(extra) = theirs.next().transpose()? {
            let detail = format!("book {book}: destination has extra event {extra:?}");
            if !diff(detail) {
                return Ok(());
            }
        }
        let (a, b) = (
            src.trial_balance(book, None)?,
            dst.trial_balance(book, None)?,
        );
        if a != b
            && !diff(format!(
                "book {book} trial balance: source {a:?}, destination {b:?}"
            ))
        {
            return Ok(());
        }
        for account in &accounts {
            let a = src.balance(account, None)?;
            let b = match dst.balance(account, None) {
                Ok(balance) => Some(balance),
                Err(LedgerError::UnknownAccount { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            if b != Some(a)
                && !diff(format!(
                    "account {account} balance: source {a:?}, destination {b:?}"
                ))
            {
                return Ok(());
            }
        }
    }
    Ok(())
}
