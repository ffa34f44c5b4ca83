//! The ledger example: register an asset, open accounts, commit (a batch, a single
//! commit, an idempotent retry, a refused overdraft), then print balances and the trial
//! balance.

use std::fmt;

use swapstore::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Book, Committed,
    LedgerError, Transaction, TrialBalanceRow,
};

use super::{DemoError, format_minor};
use swapstore::Stores;

/// The book the demo writes in.
pub const BOOK: &str = "demo-shop";

/// What [`ledger_demo`] did and found.
#[derive(Debug)]
pub struct LedgerDemo {
    /// The asset every account holds.
    pub asset: AssetDef,
    /// The book.
    pub book: Book,
    /// The receipts of the committed transactions, in commit order.
    pub committed: Vec<Committed>,
    /// Whether retrying a commit with the same idempotency key returned the first receipt.
    pub retry_returned_first_receipt: bool,
    /// The outcome of a payment larger than the cash account holds (whose floor is 0):
    /// refused with [`LedgerError::ConstraintViolation`] on every backend.
    pub overdraft: Result<Committed, LedgerError>,
    /// Each account's normal-side balance, in the order the accounts were opened.
    pub balances: Vec<(AccountId, i64)>,
    /// The book's trial balance: debits equal credits for every asset.
    pub trial_balance: Vec<TrialBalanceRow>,
}

impl fmt::Display for LedgerDemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = self.asset.precision;
        writeln!(f, "book {} ({}):", self.book, self.asset.name)?;
        for c in &self.committed {
            writeln!(f, "  committed seq {:>2}  tx {}", c.seq, c.txid)?;
        }
        writeln!(
            f,
            "  retry with the same idempotency key returned the first receipt: {}",
            self.retry_returned_first_receipt
        )?;
        match &self.overdraft {
            Ok(c) => writeln!(f, "  overdraft was committed at seq {}", c.seq)?,
            Err(e) => writeln!(f, "  overdraft refused: {e}")?,
        }
        writeln!(f, "balances:")?;
        for (account, amount) in &self.balances {
            let amount = format_minor(i128::from(*amount), precision);
            writeln!(
                f,
                "  {:<16} {amount:>10} {}",
                account.path.as_str(),
                self.asset.id
            )?;
        }
        writeln!(f, "trial balance:")?;
        for row in &self.trial_balance {
            let debits = format_minor(row.debits as i128, precision);
            let credits = format_minor(row.credits as i128, precision);
            let state = if row.debits == row.credits {
                "balanced"
            } else {
                "UNBALANCED"
            };
            writeln!(
                f,
                "  {:<6} debits {debits:>12}  credits {credits:>12}  {state}",
                row.asset.as_str()
            )?;
        }
        Ok(())
    }
}

/// Runs the ledger example on `stores`: registers `USD`, opens four accounts in
/// [`BOOK`] (cash with a floor of 0), commits an opening batch and a rent payment, retries
/// the payment, tries an overdraft, and reads balances and the trial balance.
///
/// Every write carries an idempotency key, so running it again on the same stores commits
/// nothing new and reports the same figures.
pub fn ledger_demo(stores: &Stores) -> Result<LedgerDemo, DemoError> {
    let ledger = stores.ledger();
    let usd = AssetDef {
        id: AssetId::new("USD")?,
        precision: 2,
        name: "US dollar".into(),
    };
    ledger.register_asset(&usd)?;

    let book = Book::new(BOOK)?;
    let cash = AccountId::new(BOOK, "assets:cash")?;
    let capital = AccountId::new(BOOK, "equity:owner")?;
    let sales = AccountId::new(BOOK, "income:sales")?;
    let rent = AccountId::new(BOOK, "expenses:rent")?;
    let accounts = [
        (&cash, AccountKind::Asset, Some(0)),
        (&capital, AccountKind::Equity, None),
        (&sales, AccountKind::Income, None),
        (&rent, AccountKind::Expense, None),
    ];
    for (id, kind, floor) in accounts {
        let def = AccountDef {
            id: id.clone(),
            asset: usd.id.clone(),
            kind,
        };
        let cfg = match floor {
            Some(min) => AccountCfg::for_kind(kind).with_min_balance(min),
            None => AccountCfg::for_kind(kind),
        };
        ledger.open_account(&def, &cfg)?;
    }

    let transfer = |from: &AccountId, to: &AccountId, amount: u64, key: &str| {
        Transaction::new(book.clone())
            .debit(to, &usd.id, amount)
            .credit(from, &usd.id, amount)
            .with_idempotency_key(key)
            .with_metadata("source", "store ledger example")
    };
    let opening = [
        transfer(&capital, &cash, 50_000, "capital-1"),
        transfer(&sales, &cash, 12_050, "sale-1"),
        transfer(&sales, &cash, 7_950, "sale-2"),
    ];
    let mut committed = Vec::new();
    for result in ledger.commit_batch(&opening)? {
        committed.push(result?);
    }
    let rent_jan = transfer(&cash, &rent, 30_000, "rent-jan");
    let first = ledger.commit(&rent_jan)?;
    committed.push(first);
    let retry_returned_first_receipt = ledger.commit(&rent_jan)? == first;
    let overdraft = ledger.commit(&transfer(&cash, &rent, 100_000, "rent-feb"));

    let mut balances = Vec::new();
    for (id, _, _) in accounts {
        balances.push((id.clone(), ledger.balance(id, None)?.amount));
    }
    let trial_balance = ledger.trial_balance(&book, None)?;
    Ok(LedgerDemo {
        asset: usd,
        book,
        committed,
        retry_returned_first_receipt,
        overdraft,
        balances,
        trial_balance,
    })
}
