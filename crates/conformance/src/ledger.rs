//! [`LedgerStore`] rules: `docs/contract.md` section 2 (book names) and section 6.

use std::collections::BTreeSet;
use std::sync::Arc;

use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AccountPath, AssetDef, AssetId, Backend,
    BalanceSnapshot, Book, Committed, Direction, InputError, LedgerError, LedgerEvent, LedgerStore,
    ManualClock, NameRule, PostingRecord, Sequenced, StoredTransaction, Timestamp, Transaction,
    TrialBalanceRow, TxId,
};

use crate::harness::{Instance, invalid_names, manual_clock, unusual_valid_names};

/// The time the fixture's clock starts at, in microseconds.
pub const T0: u64 = 1_000_000;

/// An asset id (panics on an invalid one).
pub fn asset_id(id: &str) -> AssetId {
    AssetId::new(id).expect("valid asset id")
}

/// A book (panics on an invalid name).
pub fn book(name: &str) -> Book {
    Book::new(name).expect("valid book name")
}

/// An account id (panics on an invalid one).
pub fn account(book: &str, path: &str) -> AccountId {
    AccountId::new(book, path).expect("valid account id")
}

/// An asset definition with precision 2.
pub fn asset_def(id: &str) -> AssetDef {
    AssetDef {
        id: asset_id(id),
        precision: 2,
        name: format!("{id} test asset"),
    }
}

/// An account definition.
pub fn account_def(id: &AccountId, asset: &AssetId, kind: AccountKind) -> AccountDef {
    AccountDef {
        id: id.clone(),
        asset: asset.clone(),
        kind,
    }
}

/// Registers `id` (idempotently).
pub fn register<L: LedgerStore + ?Sized>(ledger: &L, id: &str) -> AssetId {
    ledger
        .register_asset(&asset_def(id))
        .expect("register_asset");
    asset_id(id)
}

/// Opens `book/path` holding `asset` with the kind's default configuration.
pub fn open<L: LedgerStore + ?Sized>(
    ledger: &L,
    book: &str,
    path: &str,
    asset: &AssetId,
    kind: AccountKind,
) -> AccountId {
    open_with(ledger, book, path, asset, kind, AccountCfg::for_kind(kind))
}

/// Opens `book/path` with an explicit configuration.
pub fn open_with<L: LedgerStore + ?Sized>(
    ledger: &L,
    book: &str,
    path: &str,
    asset: &AssetId,
    kind: AccountKind,
    cfg: AccountCfg,
) -> AccountId {
    let id = account(book, path);
    ledger
        .open_account(&account_def(&id, asset, kind), &cfg)
        .unwrap_or_else(|e| panic!("open_account {id}: {e}"));
    id
}

/// Every event of `book`.
pub fn events<L: LedgerStore + ?Sized>(ledger: &L, book: &Book) -> Vec<Sequenced<LedgerEvent>> {
    ledger
        .read_events(book, None, usize::MAX)
        .expect("read_events")
}

fn balance<L: LedgerStore + ?Sized>(ledger: &L, id: &AccountId) -> i64 {
    ledger.balance(id, None).expect("balance").amount
}

/// A ledger with two assets and six accounts in book `main`, on a manual clock.
struct Fx<B: Backend> {
    _inst: Instance<B>,
    clock: Arc<ManualClock>,
    l: Arc<B::Ledger>,
    book: Book,
    usd: AssetId,
    eur: AssetId,
    /// Asset, USD, debit normal, no floor.
    cash: AccountId,
    /// Income, USD, credit normal, no floor.
    revenue: AccountId,
    /// Asset, EUR.
    eur_cash: AccountId,
    /// Income, EUR.
    eur_revenue: AccountId,
    /// Asset, USD, floor 0.
    wallet: AccountId,
    /// Liability, USD, floor 0 (on its credit normal side).
    deposits: AccountId,
}

/// The book sequence number of the fixture's last account opening.
const FX_OPENINGS: u64 = 6;

fn fixture<B: Backend>() -> Fx<B> {
    let clock = manual_clock(T0);
    let inst = Instance::<B>::with_clock(&clock);
    let l = inst.backend.ledger();
    let usd = register(&*l, "USD");
    let eur = register(&*l, "EUR");
    let floor = |kind: AccountKind| AccountCfg::for_kind(kind).with_min_balance(0);
    let cash = open(&*l, "main", "assets:cash", &usd, AccountKind::Asset);
    let revenue = open(&*l, "main", "income:sales", &usd, AccountKind::Income);
    let eur_cash = open(&*l, "main", "assets:eur", &eur, AccountKind::Asset);
    let eur_revenue = open(&*l, "main", "income:eur", &eur, AccountKind::Income);
    let wallet = open_with(
        &*l,
        "main",
        "assets:wallet",
        &usd,
        AccountKind::Asset,
        floor(AccountKind::Asset),
    );
    let deposits = open_with(
        &*l,
        "main",
        "liabilities:deposits",
        &usd,
        AccountKind::Liability,
        floor(AccountKind::Liability),
    );
    Fx {
        _inst: inst,
        clock,
        l,
        book: book("main"),
        usd,
        eur,
        cash,
        revenue,
        eur_cash,
        eur_revenue,
        wallet,
        deposits,
    }
}

/// Everything a rejected commit must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    events: Vec<Sequenced<LedgerEvent>>,
    system_events: Vec<Sequenced<LedgerEvent>>,
    balances: Vec<BalanceSnapshot>,
    trial: Vec<TrialBalanceRow>,
}

impl<B: Backend> Fx<B> {
    fn tx(&self) -> Transaction {
        Transaction::new(self.book.clone())
    }

    /// Debit `debit`, credit `credit`, `amount` of USD.
    fn usd(&self, debit: &AccountId, credit: &AccountId, amount: u64) -> Transaction {
        self.tx()
            .debit(debit, &self.usd, amount)
            .credit(credit, &self.usd, amount)
    }

    fn commit(&self, tx: &Transaction) -> Committed {
        self.l
            .commit(tx)
            .unwrap_or_else(|e| panic!("commit failed: {e}"))
    }

    fn accounts(&self) -> [&AccountId; 6] {
        [
            &self.cash,
            &self.revenue,
            &self.eur_cash,
            &self.eur_revenue,
            &self.wallet,
            &self.deposits,
        ]
    }

    fn observe(&self) -> Observed {
        Observed {
            events: events(&*self.l, &self.book),
            system_events: events(&*self.l, &Book::system()),
            balances: self
                .accounts()
                .iter()
                .map(|a| self.l.balance(a, None).unwrap())
                .collect(),
            trial: self.l.trial_balance(&self.book, None).unwrap(),
        }
    }

    /// Asserts `tx` is rejected with an error matching `check`, that nothing changed, and
    /// that the next commit still gets the next sequence number.
    fn assert_rejected(&self, tx: &Transaction, check: impl FnOnce(&LedgerError) -> bool) {
        let before = self.observe();
        match self.l.commit(tx) {
            Ok(c) => panic!("commit was accepted ({c:?}): {tx:?}"),
            Err(err) => assert!(check(&err), "unexpected error: {err:?}"),
        }
        assert_eq!(
            self.observe(),
            before,
            "a rejected commit changed the ledger"
        );
        assert_eq!(self.l.transaction(&tx.id).unwrap(), None);
    }

    fn last_seq(&self) -> u64 {
        events(&*self.l, &self.book).last().map_or(0, |e| e.seq)
    }

    /// The `balance_after` of each posting of `account` in the committed transaction `c`,
    /// in posting order.
    fn balances_after(&self, account: &AccountId, c: &Committed) -> Vec<i64> {
        self.l
            .account_history(account, c.seq - 1, 1)
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p.txid, c.txid, "history of {account} at seq {}", c.seq);
                p.balance_after
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Section 2: book names
// ---------------------------------------------------------------------------------------

/// §2.2: invalid book names (`.`, `..`, `/`, `\`, NUL, control characters, empty, 256
/// bytes) are `InputError::InvalidName` of kind `book` with the rule they break, and an
/// account id cannot be built in such a book.
pub fn invalid_book_names_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let l = inst.backend.ledger();
    for (name, rule) in invalid_names() {
        let expected = InputError::InvalidName {
            kind: "book",
            name: name.clone(),
            rule,
        };
        assert_eq!(Book::new(name.as_str()), Err(expected.clone()), "{name:?}");
        assert_eq!(AccountId::new(&name, "path"), Err(expected), "{name:?}");
    }
    assert_matches!(
        AccountPath::new("a/b"),
        Err(InputError::InvalidName {
            kind: "account path",
            ..
        })
    );
    assert_eq!(l.trial_balance(&book("main"), None).unwrap(), vec![]);
}

/// §2.2: unusual but valid book names (SQL quotes like `x'; DROP TABLE t; --`, dots,
/// non-ASCII, 255 bytes) hold accounts, transactions and events, and books stay apart even
/// when their names are prefixes of one another.
pub fn unusual_book_names_round_trip<B: Backend>() {
    let inst = Instance::<B>::relaxed();
    let l = inst.backend.ledger();
    let usd = register(&*l, "USD");
    let mut names = unusual_valid_names();
    names.extend(["a".to_owned(), "ab".to_owned(), "x".to_owned()]);
    let mut amounts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path_a = if name == "a" { "bc" } else { "assets:cash" };
        let path_b = if name == "ab" { "c" } else { "income" };
        let cash = open(&*l, name, path_a, &usd, AccountKind::Asset);
        let income = open(&*l, name, path_b, &usd, AccountKind::Income);
        let amount = 100 + i as u64;
        let tx = Transaction::new(book(name))
            .debit(&cash, &usd, amount)
            .credit(&income, &usd, amount);
        let c = l
            .commit(&tx)
            .unwrap_or_else(|e| panic!("book {name:?}: {e}"));
        assert_eq!(c.seq, 3, "book {name:?}");
        amounts.push((name.clone(), cash, income, amount, tx.id));
    }
    for (name, cash, income, amount, txid) in amounts {
        let b = book(&name);
        assert_eq!(balance(&*l, &cash), amount as i64, "book {name:?}");
        assert_eq!(balance(&*l, &income), amount as i64, "book {name:?}");
        let evs = events(&*l, &b);
        assert_eq!(evs.len(), 3, "book {name:?}");
        assert_matches!(&evs[2].event, LedgerEvent::TransactionPosted(t) if t.id == txid);
        assert_eq!(
            l.trial_balance(&b, None).unwrap(),
            vec![TrialBalanceRow {
                asset: usd.clone(),
                debits: u128::from(amount),
                credits: u128::from(amount),
            }],
            "book {name:?}"
        );
        assert_eq!(l.transaction(&txid).unwrap().map(|t| t.book), Some(b));
    }
}

/// §6.1: a reserved book (`_x`, `_system`) cannot hold accounts or transactions:
/// `InvalidBook` with `NameRule::Reserved`, and nothing is written; `_system` stays
/// readable.
pub fn reserved_book_rejected<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let l = inst.backend.ledger();
    let usd = register(&*l, "USD");
    for name in ["_x", Book::SYSTEM] {
        let id = account(name, "cash");
        let def = account_def(&id, &usd, AccountKind::Asset);
        assert_matches!(
            l.open_account(&def, &AccountCfg::for_kind(AccountKind::Asset)),
            Err(LedgerError::InvalidBook { ref book, rule: NameRule::Reserved })
                if book.as_str() == name
        );
        assert_eq!(l.account(&id).unwrap(), None);
        let tx = Transaction::new(book(name))
            .debit(&id, &usd, 1)
            .credit(&id, &usd, 1);
        assert_matches!(
            l.commit(&tx),
            Err(LedgerError::InvalidBook { ref book, rule: NameRule::Reserved })
                if book.as_str() == name
        );
        assert_eq!(l.transaction(&tx.id).unwrap(), None);
    }
    assert_eq!(events(&*l, &book("_x")), vec![]);
    assert_eq!(events(&*l, &Book::system()).len(), 1);
}

// ---------------------------------------------------------------------------------------
// Section 6: assets and accounts
// ---------------------------------------------------------------------------------------

/// §6.2: `register_asset` appends `AssetRegistered` to `_system`; an identical repeat
/// writes nothing (no event, no sequence number); a different definition is
/// `AlreadyExists` and the first definition stays.
pub fn register_asset_idempotent<B: Backend>() {
    let clock = manual_clock(T0);
    let inst = Instance::<B>::with_clock(&clock);
    let l = inst.backend.ledger();
    let usd = asset_def("USD");
    l.register_asset(&usd).unwrap();
    clock.advance(10);
    l.register_asset(&usd).unwrap();
    let eur = asset_def("EUR");
    l.register_asset(&eur).unwrap();
    let mut changed = usd.clone();
    changed.precision = 6;
    assert_matches!(
        l.register_asset(&changed),
        Err(LedgerError::AlreadyExists { entity: "asset", ref id }) if id == "USD"
    );
    let mut renamed = usd.clone();
    renamed.name = "other name".into();
    assert_matches!(
        l.register_asset(&renamed),
        Err(LedgerError::AlreadyExists {
            entity: "asset",
            ..
        })
    );
    assert_eq!(l.asset(&asset_id("USD")).unwrap(), Some(usd.clone()));
    assert_eq!(
        events(&*l, &Book::system()),
        vec![
            Sequenced {
                seq: 1,
                at: Timestamp::from_micros(T0),
                event: LedgerEvent::AssetRegistered(usd),
            },
            Sequenced {
                seq: 2,
                at: Timestamp::from_micros(T0 + 10),
                event: LedgerEvent::AssetRegistered(eur),
            },
        ]
    );
}

/// §2.2, §6.2: an asset definition breaking the field limits (precision over 18, display name
/// over 4096 bytes) is an `Input` error and registers nothing.
pub fn register_asset_validates_fields<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let l = inst.backend.ledger();
    let mut precise = asset_def("USD");
    precise.precision = AssetDef::MAX_PRECISION + 1;
    assert_matches!(
        l.register_asset(&precise),
        Err(LedgerError::Input(InputError::FieldTooLong { .. }))
    );
    let mut wordy = asset_def("EUR");
    wordy.name = "n".repeat(store_api::limits::MAX_TEXT_LEN + 1);
    assert_matches!(
        l.register_asset(&wordy),
        Err(LedgerError::Input(InputError::FieldTooLong { .. }))
    );
    assert_eq!(l.asset(&asset_id("USD")).unwrap(), None);
    assert_eq!(l.asset(&asset_id("EUR")).unwrap(), None);
    assert_eq!(events(&*l, &Book::system()), vec![]);
}

/// §6.2: `open_account` needs a registered asset (`UnknownAsset`), and the rejected call
/// writes nothing.
pub fn open_account_requires_registered_asset<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let l = inst.backend.ledger();
    let id = account("main", "cash");
    let gold = asset_id("GOLD");
    assert_matches!(
        l.open_account(
            &account_def(&id, &gold, AccountKind::Asset),
            &AccountCfg::for_kind(AccountKind::Asset)
        ),
        Err(LedgerError::UnknownAsset { ref asset }) if *asset == gold
    );
    assert_eq!(l.account(&id).unwrap(), None);
    assert_eq!(events(&*l, &book("main")), vec![]);
    register(&*l, "GOLD");
    open(&*l, "main", "cash", &gold, AccountKind::Asset);
    assert_eq!(events(&*l, &book("main"))[0].seq, 1);
}

/// §6.2: `open_account` appends `AccountOpened { def, cfg }` to the account's book and
/// `account` returns them; an identical repeat writes nothing; a different definition or
/// configuration is `AlreadyExists` and the first one stays.
pub fn open_account_idempotent<B: Backend>() {
    let clock = manual_clock(T0);
    let inst = Instance::<B>::with_clock(&clock);
    let l = inst.backend.ledger();
    let usd = register(&*l, "USD");
    let eur = register(&*l, "EUR");
    let id = account("main", "cash");
    let def = account_def(&id, &usd, AccountKind::Asset);
    let cfg = AccountCfg::for_kind(AccountKind::Asset).with_min_balance(-5);
    l.open_account(&def, &cfg).unwrap();
    clock.advance(1);
    l.open_account(&def, &cfg).unwrap();
    let variants = [
        (account_def(&id, &eur, AccountKind::Asset), cfg),
        (account_def(&id, &usd, AccountKind::Expense), cfg),
        (def.clone(), AccountCfg::for_kind(AccountKind::Asset)),
        (
            def.clone(),
            AccountCfg {
                normal_side: Direction::Credit,
                min_balance: Some(-5),
            },
        ),
    ];
    for (d, c) in variants {
        assert_matches!(
            l.open_account(&d, &c),
            Err(LedgerError::AlreadyExists {
                entity: "account",
                ..
            })
        );
    }
    assert_eq!(l.account(&id).unwrap(), Some((def.clone(), cfg)));
    assert_eq!(l.account(&account("main", "other")).unwrap(), None);
    assert_eq!(
        events(&*l, &book("main")),
        vec![Sequenced {
            seq: 1,
            at: Timestamp::from_micros(T0),
            event: LedgerEvent::AccountOpened { def, cfg },
        }]
    );
    assert_eq!(events(&*l, &Book::system()).len(), 2);
}

// ---------------------------------------------------------------------------------------
// Section 6: commit checks, one per error
// ---------------------------------------------------------------------------------------

/// §2.2, §6.3: an idempotency key or metadata over its length limit is an `Input` error
/// (`FieldTooLong`), and nothing changes.
pub fn commit_rejects_oversized_fields<B: Backend>() {
    let fx = fixture::<B>();
    let key = "k".repeat(store_api::limits::MAX_IDEMPOTENCY_KEY_LEN + 1);
    let tx = fx.usd(&fx.cash, &fx.revenue, 1).with_idempotency_key(key);
    fx.assert_rejected(&tx, |e| {
        matches!(
            e,
            LedgerError::Input(InputError::FieldTooLong {
                field: "idempotency key",
                ..
            })
        )
    });
    let long = "v".repeat(store_api::limits::MAX_TEXT_LEN + 1);
    let tx = fx.usd(&fx.cash, &fx.revenue, 1).with_metadata("note", long);
    fx.assert_rejected(&tx, |e| {
        matches!(e, LedgerError::Input(InputError::FieldTooLong { .. }))
    });
}

/// §6.3: a transaction without postings is `EmptyTransaction`, and nothing changes.
pub fn commit_rejects_empty_transaction<B: Backend>() {
    let fx = fixture::<B>();
    fx.assert_rejected(&fx.tx(), |e| matches!(e, LedgerError::EmptyTransaction));
}

/// §6.3: a posting of amount 0 is `InvalidAmount` naming its index, and nothing changes.
pub fn commit_rejects_zero_amount<B: Backend>() {
    let fx = fixture::<B>();
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 5)
        .credit(&fx.revenue, &fx.usd, 0)
        .credit(&fx.revenue, &fx.usd, 5);
    fx.assert_rejected(&tx, |e| {
        matches!(e, LedgerError::InvalidAmount { index: 1 })
    });
}

/// §6.3: a posting to an account of another book is `AccountOutsideBook` naming the
/// posting, the account and the book, and nothing changes.
pub fn commit_rejects_account_outside_book<B: Backend>() {
    let fx = fixture::<B>();
    let elsewhere = open(&*fx.l, "other", "assets:cash", &fx.usd, AccountKind::Asset);
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 5)
        .credit(&elsewhere, &fx.usd, 5);
    fx.assert_rejected(&tx, |e| {
        matches!(e, LedgerError::AccountOutsideBook { index: 1, account, book }
            if *account == elsewhere && *book == fx.book)
    });
    assert_eq!(
        fx.l.balance(&elsewhere, None).unwrap(),
        BalanceSnapshot::default()
    );
}

/// §6.3: a posting to an account never opened is `UnknownAccount`, and nothing changes
/// (nor is the account created).
pub fn commit_rejects_unknown_account<B: Backend>() {
    let fx = fixture::<B>();
    let ghost = account("main", "ghost");
    let tx = fx.usd(&fx.cash, &ghost, 5);
    fx.assert_rejected(
        &tx,
        |e| matches!(e, LedgerError::UnknownAccount { account } if *account == ghost),
    );
    assert_eq!(fx.l.account(&ghost).unwrap(), None);
}

/// §6.3: a posting whose asset is not its account's is `AssetMismatch` naming account,
/// expected and found assets, and nothing changes.
pub fn commit_rejects_asset_mismatch<B: Backend>() {
    let fx = fixture::<B>();
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.eur, 5)
        .credit(&fx.eur_revenue, &fx.eur, 5);
    fx.assert_rejected(&tx, |e| {
        matches!(e, LedgerError::AssetMismatch { account, expected, found }
            if *account == fx.cash && *expected == fx.usd && *found == fx.eur)
    });
}

/// §6.3: debits different from credits is `Unbalanced` with the asset's sums, and
/// nothing changes.
pub fn commit_rejects_unbalanced<B: Backend>() {
    let fx = fixture::<B>();
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 10)
        .credit(&fx.revenue, &fx.usd, 7)
        .credit(&fx.revenue, &fx.usd, 2);
    fx.assert_rejected(&tx, |e| {
        matches!(e, LedgerError::Unbalanced { asset, debits: 10, credits: 9 } if *asset == fx.usd)
    });
}

/// §6.3: balance is checked **per asset**: two assets each balanced commit; equal totals
/// netted across assets are `Unbalanced`.
pub fn commit_balances_per_asset<B: Backend>() {
    let fx = fixture::<B>();
    let both = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 10)
        .debit(&fx.eur_cash, &fx.eur, 3)
        .credit(&fx.revenue, &fx.usd, 10)
        .credit(&fx.eur_revenue, &fx.eur, 3);
    fx.commit(&both);
    let netted = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 10)
        .credit(&fx.eur_revenue, &fx.eur, 10);
    fx.assert_rejected(&netted, |e| match e {
        LedgerError::Unbalanced {
            asset,
            debits,
            credits,
        } => {
            (*asset == fx.usd && (*debits, *credits) == (10, 0))
                || (*asset == fx.eur && (*debits, *credits) == (0, 10))
        }
        _ => false,
    });
    assert_eq!(balance(&*fx.l, &fx.cash), 10);
    assert_eq!(balance(&*fx.l, &fx.eur_cash), 3);
}

/// §6.3: an account falling below its `min_balance` after the whole transaction, on its
/// normal side, is `ConstraintViolation { account, min_balance, would_be }` and nothing
/// changes; going below inside the transaction but ending at or above the floor is fine.
pub fn commit_rejects_below_min_balance<B: Backend>() {
    let fx = fixture::<B>();
    fx.commit(&fx.usd(&fx.wallet, &fx.revenue, 100));
    let overdraw = fx.usd(&fx.cash, &fx.wallet, 150);
    fx.assert_rejected(&overdraw, |e| {
        matches!(e, LedgerError::ConstraintViolation { account, min_balance: 0, would_be: -50 }
            if *account == fx.wallet)
    });
    let liability = fx.usd(&fx.deposits, &fx.revenue, 10);
    fx.assert_rejected(&liability, |e| {
        matches!(e, LedgerError::ConstraintViolation { account, min_balance: 0, would_be: -10 }
            if *account == fx.deposits)
    });
    let dip_and_back = fx
        .tx()
        .credit(&fx.wallet, &fx.usd, 150)
        .debit(&fx.wallet, &fx.usd, 60)
        .debit(&fx.cash, &fx.usd, 90);
    fx.commit(&dip_and_back);
    assert_eq!(balance(&*fx.l, &fx.wallet), 10);
    fx.commit(&fx.usd(&fx.cash, &fx.wallet, 10));
    assert_eq!(balance(&*fx.l, &fx.wallet), 0);
    fx.commit(&fx.usd(&fx.cash, &fx.deposits, 25));
    assert_eq!(balance(&*fx.l, &fx.deposits), 25);
}

/// §6.8: a balance leaving the `i64` range is `Overflow` naming the account, and nothing
/// changes.
pub fn commit_rejects_overflow<B: Backend>() {
    let fx = fixture::<B>();
    let max = i64::MAX as u64;
    fx.commit(&fx.usd(&fx.cash, &fx.revenue, max));
    assert_eq!(balance(&*fx.l, &fx.cash), i64::MAX);
    let one_more = fx.usd(&fx.cash, &fx.revenue, 1);
    fx.assert_rejected(&one_more, |e| {
        matches!(e, LedgerError::Overflow { account } if *account == fx.cash || *account == fx.revenue)
    });
    let huge =
        fx.tx()
            .debit(&fx.eur_cash, &fx.eur, u64::MAX)
            .credit(&fx.eur_revenue, &fx.eur, u64::MAX);
    fx.assert_rejected(&huge, |e| {
        matches!(e, LedgerError::Overflow { account }
            if *account == fx.eur_cash || *account == fx.eur_revenue)
    });
    fx.commit(&fx.usd(&fx.revenue, &fx.cash, max));
    assert_eq!(balance(&*fx.l, &fx.cash), 0);
}

/// §6.8: lifetime debit and credit sums are 128-bit: transactions whose totals exceed
/// `u64` are never refused, and the trial balance reports the exact sums.
pub fn lifetime_sums_never_overflow<B: Backend>() {
    let fx = fixture::<B>();
    let max = i64::MAX as u64;
    for _ in 0..3 {
        fx.commit(&fx.usd(&fx.cash, &fx.revenue, max));
        fx.commit(&fx.usd(&fx.revenue, &fx.cash, max));
    }
    let total = 6 * u128::from(max);
    assert!(total > u128::from(u64::MAX));
    assert_eq!(
        fx.l.trial_balance(&fx.book, None).unwrap(),
        vec![TrialBalanceRow {
            asset: fx.usd.clone(),
            debits: total,
            credits: total,
        }]
    );
    assert_eq!(balance(&*fx.l, &fx.cash), 0);
}

/// §6.8: the floor and overflow checks do not depend on the order of a transaction's
/// postings: an account at `i64::MAX`, at `i64::MIN` or at its floor takes a pair of
/// opposite postings in either order. The last posting of each account carries the exact
/// final balance, and a midway posting past `i64` records the bound it passed.
pub fn floor_and_overflow_ignore_posting_order<B: Backend>() {
    let fx = fixture::<B>();
    let max = i64::MAX as u64;
    let pair = |account: &AccountId, first: Direction| {
        let tx = fx.tx();
        match first {
            Direction::Debit => tx.debit(account, &fx.usd, 1).credit(account, &fx.usd, 1),
            Direction::Credit => tx.credit(account, &fx.usd, 1).debit(account, &fx.usd, 1),
        }
    };

    // Cash (debit-normal) and revenue (credit-normal) at i64::MAX.
    fx.commit(&fx.usd(&fx.cash, &fx.revenue, max));
    let up = fx.commit(&pair(&fx.cash, Direction::Debit));
    assert_eq!(fx.balances_after(&fx.cash, &up), [i64::MAX, i64::MAX]);
    let down = fx.commit(&pair(&fx.cash, Direction::Credit));
    assert_eq!(fx.balances_after(&fx.cash, &down), [i64::MAX - 1, i64::MAX]);
    let up = fx.commit(&pair(&fx.revenue, Direction::Credit));
    assert_eq!(fx.balances_after(&fx.revenue, &up), [i64::MAX, i64::MAX]);
    fx.commit(&pair(&fx.revenue, Direction::Debit));
    assert_eq!(balance(&*fx.l, &fx.cash), i64::MAX);
    assert_eq!(balance(&*fx.l, &fx.revenue), i64::MAX);

    // Cash at i64::MIN (no floor).
    fx.commit(&fx.usd(&fx.revenue, &fx.cash, max));
    fx.commit(&fx.usd(&fx.revenue, &fx.cash, max));
    fx.commit(&fx.usd(&fx.revenue, &fx.cash, 1));
    assert_eq!(balance(&*fx.l, &fx.cash), i64::MIN);
    let below = fx.commit(&pair(&fx.cash, Direction::Credit));
    assert_eq!(fx.balances_after(&fx.cash, &below), [i64::MIN, i64::MIN]);
    let above = fx.commit(&pair(&fx.cash, Direction::Debit));
    assert_eq!(
        fx.balances_after(&fx.cash, &above),
        [i64::MIN + 1, i64::MIN]
    );
    assert_eq!(balance(&*fx.l, &fx.cash), i64::MIN);

    // The wallet (debit-normal) and deposits (credit-normal) at their floor of 0.
    let dip = fx.commit(&pair(&fx.wallet, Direction::Credit));
    assert_eq!(fx.balances_after(&fx.wallet, &dip), [-1, 0]);
    fx.commit(&pair(&fx.wallet, Direction::Debit));
    let dip = fx.commit(&pair(&fx.deposits, Direction::Debit));
    assert_eq!(fx.balances_after(&fx.deposits, &dip), [-1, 0]);
    fx.commit(&pair(&fx.deposits, Direction::Credit));
    assert_eq!(balance(&*fx.l, &fx.wallet), 0);
    assert_eq!(balance(&*fx.l, &fx.deposits), 0);
}

/// §6.3, §6.8: several postings to one floored account that take it below its floor
/// midway but end at or above it commit, with each posting's running balance; ending below
/// is `ConstraintViolation` naming the final would-be balance (not the lowest midway one),
/// and nothing changes.
pub fn floor_checks_the_balance_after_all_postings<B: Backend>() {
    let fx = fixture::<B>();
    fx.commit(&fx.usd(&fx.wallet, &fx.revenue, 10));
    let zigzag = fx
        .tx()
        .credit(&fx.wallet, &fx.usd, 30)
        .debit(&fx.wallet, &fx.usd, 15)
        .credit(&fx.wallet, &fx.usd, 5)
        .debit(&fx.wallet, &fx.usd, 25)
        .credit(&fx.cash, &fx.usd, 5);
    let c = fx.commit(&zigzag);
    assert_eq!(fx.balances_after(&fx.wallet, &c), [-20, -5, -10, 15]);
    assert_eq!(balance(&*fx.l, &fx.wallet), 15);

    let ends_below = fx
        .tx()
        .credit(&fx.wallet, &fx.usd, 50)
        .debit(&fx.wallet, &fx.usd, 30)
        .debit(&fx.cash, &fx.usd, 20);
    fx.assert_rejected(&ends_below, |e| {
        matches!(e, LedgerError::ConstraintViolation { account, min_balance: 0, would_be: -5 }
            if *account == fx.wallet)
    });
    // Deposits (credit-normal) 0 -> 4 -> -5 -> -6 -> -3.
    let deposits_below = fx
        .tx()
        .credit(&fx.deposits, &fx.usd, 4)
        .debit(&fx.deposits, &fx.usd, 9)
        .debit(&fx.deposits, &fx.usd, 1)
        .credit(&fx.deposits, &fx.usd, 3)
        .credit(&fx.revenue, &fx.usd, 3);
    fx.assert_rejected(&deposits_below, |e| {
        matches!(e, LedgerError::ConstraintViolation { account, min_balance: 0, would_be: -3 }
            if *account == fx.deposits)
    });
    assert_eq!(balance(&*fx.l, &fx.wallet), 15);
}

/// §6.3, §6.8: an account's postings are summed without overflow and only its balance
/// after the transaction must fit `i64`: an account driven far past `i64::MAX` midway
/// that ends in range commits; one that ends out of range is `Overflow` naming that account
/// (not another that only passed the bound midway), and nothing changes.
pub fn overflow_checks_the_balance_after_all_postings<B: Backend>() {
    let fx = fixture::<B>();
    let max = i64::MAX as u64;
    let round_trip = fx
        .tx()
        .debit(&fx.cash, &fx.usd, u64::MAX)
        .debit(&fx.cash, &fx.usd, u64::MAX)
        .credit(&fx.cash, &fx.usd, u64::MAX)
        .credit(&fx.cash, &fx.usd, u64::MAX - 7)
        .credit(&fx.revenue, &fx.usd, 7);
    let c = fx.commit(&round_trip);
    assert_eq!(
        fx.balances_after(&fx.cash, &c),
        [i64::MAX, i64::MAX, i64::MAX, 7]
    );
    assert_eq!(balance(&*fx.l, &fx.cash), 7);
    assert_eq!(balance(&*fx.l, &fx.revenue), 7);

    fx.commit(&fx.usd(&fx.cash, &fx.revenue, max - 7));
    let revenue_ends_out = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 1)
        .credit(&fx.cash, &fx.usd, 1)
        .credit(&fx.revenue, &fx.usd, 1)
        .debit(&fx.wallet, &fx.usd, 1);
    fx.assert_rejected(
        &revenue_ends_out,
        |e| matches!(e, LedgerError::Overflow { account } if *account == fx.revenue),
    );
    // Cash MAX -> MIN -> MIN - 1 -> MAX - 1 -> MAX + 1.
    let cash_ends_out = fx
        .tx()
        .credit(&fx.cash, &fx.usd, u64::MAX)
        .credit(&fx.cash, &fx.usd, 1)
        .debit(&fx.cash, &fx.usd, u64::MAX)
        .debit(&fx.cash, &fx.usd, 2)
        .credit(&fx.deposits, &fx.usd, 1);
    fx.assert_rejected(
        &cash_ends_out,
        |e| matches!(e, LedgerError::Overflow { account } if *account == fx.cash),
    );
    assert_eq!(balance(&*fx.l, &fx.cash), i64::MAX);
}

/// §6.6, §6.8: in `commit_batch`, each draft is checked on its accounts' balances after
/// the whole draft, starting from the balances the earlier drafts of the batch left.
pub fn commit_batch_checks_balances_after_each_draft<B: Backend>() {
    let fx = fixture::<B>();
    let max = i64::MAX as u64;
    fx.commit(&fx.usd(&fx.wallet, &fx.revenue, 10));
    fx.commit(
        &fx.tx()
            .debit(&fx.eur_cash, &fx.eur, max)
            .credit(&fx.eur_revenue, &fx.eur, max),
    );
    let eur = |postings: &[(&AccountId, Direction, u64)]| {
        postings.iter().fold(
            fx.tx(),
            |tx, &(account, direction, amount)| match direction {
                Direction::Debit => tx.debit(account, &fx.eur, amount),
                Direction::Credit => tx.credit(account, &fx.eur, amount),
            },
        )
    };
    let drafts = vec![
        // Wallet 10 -> -20 -> 5: commits.
        fx.tx()
            .credit(&fx.wallet, &fx.usd, 30)
            .debit(&fx.wallet, &fx.usd, 25)
            .debit(&fx.cash, &fx.usd, 5),
        // Wallet 5 -> -5 -> -1: rejected with the final -1.
        fx.tx()
            .credit(&fx.wallet, &fx.usd, 10)
            .debit(&fx.wallet, &fx.usd, 4)
            .debit(&fx.cash, &fx.usd, 6),
        // EUR cash MAX -> MAX + 1 -> MAX: commits.
        eur(&[
            (&fx.eur_cash, Direction::Debit, 1),
            (&fx.eur_cash, Direction::Credit, 1),
        ]),
        // EUR cash MAX -> MAX + 2: overflow.
        eur(&[
            (&fx.eur_cash, Direction::Debit, 2),
            (&fx.eur_revenue, Direction::Credit, 2),
        ]),
        // EUR cash MAX -> MAX - 3 -> MAX - 2, revenue MAX - 2: commits.
        eur(&[
            (&fx.eur_cash, Direction::Credit, 3),
            (&fx.eur_cash, Direction::Debit, 1),
            (&fx.eur_revenue, Direction::Debit, 2),
        ]),
        // EUR cash MAX - 2 -> MAX + 1 -> MAX, revenue MAX: commits only after the draft above.
        eur(&[
            (&fx.eur_cash, Direction::Debit, 3),
            (&fx.eur_cash, Direction::Credit, 1),
            (&fx.eur_revenue, Direction::Credit, 2),
        ]),
        // Wallet 5 -> -3 -> 0: commits, ending at the floor.
        fx.tx()
            .credit(&fx.wallet, &fx.usd, 8)
            .debit(&fx.wallet, &fx.usd, 3)
            .debit(&fx.cash, &fx.usd, 5),
    ];
    let results = fx.l.commit_batch(&drafts).unwrap();
    assert_eq!(results.len(), drafts.len());
    assert_matches!(
        results[1],
        Err(LedgerError::ConstraintViolation { ref account, min_balance: 0, would_be: -1 })
            if *account == fx.wallet
    );
    assert_matches!(
        results[3],
        Err(LedgerError::Overflow { ref account }) if *account == fx.eur_cash
    );
    let committed: Vec<Committed> = [0, 2, 4, 5, 6]
        .into_iter()
        .map(|i| {
            *results[i]
                .as_ref()
                .unwrap_or_else(|e| panic!("draft {i} rejected: {e}"))
        })
        .collect();
    let base = FX_OPENINGS + 2;
    let seqs: Vec<u64> = committed.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (base + 1..=base + 5).collect::<Vec<_>>());
    assert_eq!(fx.balances_after(&fx.wallet, &committed[0]), [-20, 5]);
    assert_eq!(
        fx.balances_after(&fx.eur_cash, &committed[1]),
        [i64::MAX, i64::MAX]
    );
    assert_eq!(
        fx.balances_after(&fx.eur_cash, &committed[3]),
        [i64::MAX, i64::MAX]
    );
    assert_eq!(fx.balances_after(&fx.wallet, &committed[4]), [-3, 0]);
    assert_eq!(balance(&*fx.l, &fx.wallet), 0);
    assert_eq!(balance(&*fx.l, &fx.eur_cash), i64::MAX);
    assert_eq!(balance(&*fx.l, &fx.eur_revenue), i64::MAX);
    assert_eq!(balance(&*fx.l, &fx.cash), 5 + 5);
    assert_eq!(fx.last_seq(), base + 5);
}

/// §6.3: a new transaction reusing a committed transaction's id (without an idempotency
/// key) is `DuplicateTransaction`, and nothing changes.
pub fn commit_rejects_duplicate_transaction_id<B: Backend>() {
    let fx = fixture::<B>();
    let first = fx.usd(&fx.cash, &fx.revenue, 5);
    fx.commit(&first);
    let mut again = fx.usd(&fx.cash, &fx.revenue, 7);
    again.id = first.id;
    let before = fx.observe();
    assert_matches!(
        fx.l.commit(&again),
        Err(LedgerError::DuplicateTransaction { txid }) if txid == first.id
    );
    assert_eq!(fx.observe(), before);
    assert_matches!(
        fx.l.commit(&first),
        Err(LedgerError::DuplicateTransaction { .. })
    );
    assert_eq!(balance(&*fx.l, &fx.cash), 5);
}

/// §6.3 (order of checks, as listed on `LedgerStore::commit`): when several checks fail,
/// the earliest one in the documented order is reported, whatever the posting order.
pub fn commit_check_order<B: Backend>() {
    let fx = fixture::<B>();
    let elsewhere = open(&*fx.l, "other", "assets:cash", &fx.usd, AccountKind::Asset);
    let ghost = account("main", "ghost");
    let long_key = "k".repeat(store_api::limits::MAX_IDEMPOTENCY_KEY_LEN + 1);
    let first = fx
        .usd(&fx.cash, &fx.revenue, 1)
        .with_idempotency_key("used");
    let first_committed = fx.commit(&first);

    // Reserved book before field limits and empty postings.
    let mut tx = Transaction::new(book("_x")).with_idempotency_key(long_key.clone());
    tx.postings.clear();
    assert_matches!(fx.l.commit(&tx), Err(LedgerError::InvalidBook { .. }));
    // Field limits before empty postings.
    let tx = fx.tx().with_idempotency_key(long_key);
    assert_matches!(fx.l.commit(&tx), Err(LedgerError::Input(_)));
    // Positive amounts (posting 1) before book membership (posting 0).
    let tx = fx
        .tx()
        .debit(&elsewhere, &fx.usd, 5)
        .credit(&fx.revenue, &fx.usd, 0);
    assert_matches!(
        fx.l.commit(&tx),
        Err(LedgerError::InvalidAmount { index: 1 })
    );
    // Book membership (posting 1) before unknown accounts (posting 0).
    let tx = fx
        .tx()
        .debit(&ghost, &fx.usd, 5)
        .credit(&elsewhere, &fx.usd, 5);
    assert_matches!(
        fx.l.commit(&tx),
        Err(LedgerError::AccountOutsideBook { index: 1, .. })
    );
    // Amounts before the idempotency key.
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 0)
        .credit(&fx.revenue, &fx.usd, 0)
        .with_idempotency_key("used");
    assert_matches!(
        fx.l.commit(&tx),
        Err(LedgerError::InvalidAmount { index: 0 })
    );
    // The idempotency key before the id and the accounts: the first receipt comes back.
    let mut tx = fx.usd(&ghost, &fx.revenue, 3).with_idempotency_key("used");
    tx.id = first.id;
    assert_eq!(fx.l.commit(&tx).unwrap(), first_committed);
    // A reused id before unknown accounts.
    let mut tx = fx.usd(&ghost, &fx.revenue, 3);
    tx.id = first.id;
    assert_matches!(
        fx.l.commit(&tx),
        Err(LedgerError::DuplicateTransaction { .. })
    );
    // Unknown account (posting 1) before an asset mismatch (posting 0).
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.eur, 5)
        .credit(&ghost, &fx.eur, 5);
    assert_matches!(fx.l.commit(&tx), Err(LedgerError::UnknownAccount { .. }));
    // Asset mismatch before balance.
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.eur, 5)
        .credit(&fx.eur_revenue, &fx.eur, 4);
    assert_matches!(fx.l.commit(&tx), Err(LedgerError::AssetMismatch { .. }));
    // Balance before floors.
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 5)
        .credit(&fx.wallet, &fx.usd, 4);
    assert_matches!(fx.l.commit(&tx), Err(LedgerError::Unbalanced { .. }));
    // Floors before overflow.
    fx.commit(&fx.usd(&fx.cash, &fx.revenue, i64::MAX as u64 - 1));
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 5)
        .credit(&fx.wallet, &fx.usd, 5);
    assert_matches!(
        fx.l.commit(&tx),
        Err(LedgerError::ConstraintViolation { ref account, .. }) if *account == fx.wallet
    );
    assert_eq!(fx.last_seq(), FX_OPENINGS + 2);
}

// ---------------------------------------------------------------------------------------
// Section 6: idempotency and sequences
// ---------------------------------------------------------------------------------------

/// §6.4: a second commit with an idempotency key already used in the book (a retry of
/// the same draft, or a different draft) returns the first `Committed` unchanged and writes
/// nothing.
pub fn idempotency_key_returns_first_commit<B: Backend>() {
    let fx = fixture::<B>();
    let first = fx
        .usd(&fx.cash, &fx.revenue, 10)
        .with_idempotency_key("order-1");
    let committed = fx.commit(&first);
    let before = fx.observe();
    fx.clock.advance(1_000);
    assert_eq!(fx.commit(&first), committed);
    let different = fx
        .usd(&fx.cash, &fx.revenue, 99)
        .with_idempotency_key("order-1")
        .with_metadata("attempt", "2");
    assert_eq!(fx.commit(&different), committed);
    assert_eq!(
        fx.observe(),
        before,
        "a deduplicated commit wrote something"
    );
    assert_eq!(fx.l.transaction(&different.id).unwrap(), None);
    assert_eq!(balance(&*fx.l, &fx.cash), 10);
    let next = fx.commit(
        &fx.usd(&fx.cash, &fx.revenue, 1)
            .with_idempotency_key("order-2"),
    );
    assert_eq!(next.seq, committed.seq + 1);
}

/// §6.4: idempotency keys are scoped per book: the same key in another book commits
/// separately.
pub fn idempotency_key_scoped_per_book<B: Backend>() {
    let fx = fixture::<B>();
    let other_cash = open(&*fx.l, "other", "cash", &fx.usd, AccountKind::Asset);
    let other_income = open(&*fx.l, "other", "income", &fx.usd, AccountKind::Income);
    let a = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 10).with_idempotency_key("k"));
    let tx = Transaction::new(book("other"))
        .debit(&other_cash, &fx.usd, 20)
        .credit(&other_income, &fx.usd, 20)
        .with_idempotency_key("k");
    let b = fx.commit(&tx);
    assert_ne!(a.txid, b.txid);
    assert_eq!(b.txid, tx.id);
    assert_eq!(b.seq, 3);
    assert_eq!(balance(&*fx.l, &other_cash), 20);
    assert_eq!(balance(&*fx.l, &fx.cash), 10);
}

/// §6.5: sequence numbers are per book, start at 1 and are gapless; account openings and
/// transactions share them; rejected commits and idempotent repeats take none; each
/// receipt's seq is its event's seq.
pub fn sequences_per_book_gapless<B: Backend>() {
    let fx = fixture::<B>();
    let c1 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 1).with_idempotency_key("a"));
    assert_eq!(c1.seq, FX_OPENINGS + 1);
    assert!(fx.l.commit(&fx.tx()).is_err());
    fx.commit(&fx.usd(&fx.cash, &fx.revenue, 1).with_idempotency_key("a"));
    let other = open(&*fx.l, "second", "cash", &fx.usd, AccountKind::Asset);
    let other_income = open(&*fx.l, "second", "income", &fx.usd, AccountKind::Income);
    let c2 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 2));
    let o1 = fx.commit(
        &Transaction::new(book("second"))
            .debit(&other, &fx.usd, 1)
            .credit(&other_income, &fx.usd, 1),
    );
    let late = open(&*fx.l, "main", "late", &fx.usd, AccountKind::Expense);
    let c3 = fx.commit(&fx.usd(&late, &fx.revenue, 3));
    assert_eq!((c2.seq, c3.seq), (FX_OPENINGS + 2, FX_OPENINGS + 4));
    assert_eq!(o1.seq, 3);
    for b in [fx.book.clone(), book("second"), Book::system()] {
        let seqs: Vec<u64> = events(&*fx.l, &b).iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "book {b}"
        );
    }
    let evs = events(&*fx.l, &fx.book);
    assert_matches!(&evs[FX_OPENINGS as usize + 2].event, LedgerEvent::AccountOpened { def, .. } if def.id == late);
    for c in [c1, c2, c3] {
        let ev = &evs[c.seq as usize - 1];
        assert_eq!((ev.seq, ev.at), (c.seq, c.at));
        assert_matches!(&ev.event, LedgerEvent::TransactionPosted(t) if t.committed() == c);
    }
}

/// §6.5: `at` comes from the injected clock and never decreases with `seq` within a
/// book, even when the clock goes backwards.
pub fn at_non_decreasing_when_clock_goes_back<B: Backend>() {
    let fx = fixture::<B>();
    fx.clock.set(Timestamp::from_micros(2 * T0));
    let c1 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 1));
    assert_eq!(c1.at, Timestamp::from_micros(2 * T0));
    fx.clock.set(Timestamp::from_micros(T0 + 5));
    let c2 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 1));
    assert!(c2.at >= c1.at, "at went backwards: {c1:?} then {c2:?}");
    let late = open(&*fx.l, "main", "late", &fx.usd, AccountKind::Expense);
    let c3 = fx.l.commit_batch(&[fx.usd(&late, &fx.revenue, 1)]).unwrap();
    let c3 = c3[0].as_ref().unwrap();
    assert!(c3.at >= c2.at);
    fx.clock.set(Timestamp::from_micros(3 * T0));
    let c4 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 1));
    assert_eq!(c4.at, Timestamp::from_micros(3 * T0));
    let evs = events(&*fx.l, &fx.book);
    assert!(
        evs.windows(2).all(|w| w[0].at <= w[1].at),
        "event times decrease: {:?}",
        evs.iter().map(|e| (e.seq, e.at)).collect::<Vec<_>>()
    );
    let stored = fx.l.transaction(&c2.txid).unwrap().unwrap();
    assert_eq!(stored.at, c2.at);
    let history = fx.l.account_history(&fx.cash, c1.seq, 1).unwrap();
    assert_eq!(history[0].at, c2.at);
}

/// §6.7: commits append `TransactionPosted` with the full stored transaction to their
/// book, after the `AccountOpened` events; registrations stay in `_system`.
pub fn events_record_every_write<B: Backend>() {
    let fx = fixture::<B>();
    let tx = fx
        .usd(&fx.cash, &fx.revenue, 42)
        .with_idempotency_key("evt")
        .with_metadata("memo", "x'; DROP TABLE t; --");
    let c = fx.commit(&tx);
    let evs = events(&*fx.l, &fx.book);
    assert_eq!(evs.len() as u64, FX_OPENINGS + 1);
    for (i, ev) in evs.iter().take(FX_OPENINGS as usize).enumerate() {
        assert_matches!(&ev.event, LedgerEvent::AccountOpened { def, .. } if def.id == *fx.accounts()[i]);
    }
    let expected = StoredTransaction {
        id: tx.id,
        book: tx.book.clone(),
        postings: tx.postings.clone(),
        idempotency_key: tx.idempotency_key.clone(),
        metadata: tx.metadata.clone(),
        seq: c.seq,
        at: c.at,
    };
    assert_eq!(
        evs.last().unwrap(),
        &Sequenced {
            seq: c.seq,
            at: c.at,
            event: LedgerEvent::TransactionPosted(expected),
        }
    );
    let system = events(&*fx.l, &Book::system());
    assert_eq!(system.len(), 2);
    assert!(
        system
            .iter()
            .all(|e| matches!(e.event, LedgerEvent::AssetRegistered(_)))
    );
}

// ---------------------------------------------------------------------------------------
// Section 6: commit_batch
// ---------------------------------------------------------------------------------------

/// §6.6: `commit_batch` results are positional, each draft succeeds or fails alone, and
/// sequence numbers stay gapless across rejected drafts.
pub fn commit_batch_results_are_positional<B: Backend>() {
    let fx = fixture::<B>();
    let drafts = vec![
        fx.usd(&fx.cash, &fx.revenue, 1),
        fx.tx(),
        fx.usd(&fx.cash, &fx.revenue, 2),
        fx.usd(&fx.cash, &account("main", "ghost"), 3),
        fx.usd(&fx.cash, &fx.revenue, 4),
    ];
    let results = fx.l.commit_batch(&drafts).unwrap();
    assert_eq!(results.len(), 5);
    let seqs: Vec<Option<u64>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|c| c.seq))
        .collect();
    let base = FX_OPENINGS;
    assert_eq!(
        seqs,
        vec![Some(base + 1), None, Some(base + 2), None, Some(base + 3)]
    );
    assert_matches!(results[1], Err(LedgerError::EmptyTransaction));
    assert_matches!(results[3], Err(LedgerError::UnknownAccount { .. }));
    for (draft, result) in drafts.iter().zip(&results) {
        match result {
            Ok(c) => assert_eq!(c.txid, draft.id),
            Err(_) => assert_eq!(fx.l.transaction(&draft.id).unwrap(), None),
        }
    }
    assert_eq!(balance(&*fx.l, &fx.cash), 7);
    assert_eq!(fx.last_seq(), base + 3);
    assert_eq!(fx.l.commit_batch(&[]).unwrap().len(), 0);
    assert_eq!(fx.last_seq(), base + 3);
    assert_eq!(fx.commit(&fx.usd(&fx.cash, &fx.revenue, 1)).seq, base + 4);
}

/// §6.6: a later draft of a batch sees the earlier ones: a repeated idempotency key
/// returns the first draft's `Committed`, and floors are checked in order.
pub fn commit_batch_later_drafts_see_earlier_ones<B: Backend>() {
    let fx = fixture::<B>();
    fx.commit(&fx.usd(&fx.wallet, &fx.revenue, 100));
    let drafts = vec![
        fx.usd(&fx.cash, &fx.revenue, 5).with_idempotency_key("dup"),
        fx.usd(&fx.cash, &fx.wallet, 80),
        fx.usd(&fx.cash, &fx.wallet, 30),
        fx.usd(&fx.cash, &fx.revenue, 6).with_idempotency_key("dup"),
        fx.usd(&fx.wallet, &fx.revenue, 50),
        fx.usd(&fx.cash, &fx.wallet, 30),
    ];
    let results = fx.l.commit_batch(&drafts).unwrap();
    let first = *results[0].as_ref().unwrap();
    assert!(results[1].is_ok());
    assert_matches!(
        results[2],
        Err(LedgerError::ConstraintViolation { ref account, min_balance: 0, would_be: -10 })
            if *account == fx.wallet
    );
    assert_eq!(*results[3].as_ref().unwrap(), first);
    assert!(results[4].is_ok());
    assert!(results[5].is_ok());
    assert_eq!(balance(&*fx.l, &fx.wallet), 40);
    assert_eq!(balance(&*fx.l, &fx.cash), 5 + 80 + 30);
    let seqs: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.seq))
        .collect();
    let base = FX_OPENINGS + 1;
    assert_eq!(seqs, vec![base + 1, base + 2, base + 1, base + 3, base + 4]);
    assert_eq!(fx.last_seq(), base + 4);
}

/// §6.6: a large `commit_batch` (more drafts than an engine writes in one statement, page
/// or run of appends), over two books and two assets, with idempotency keys, metadata, a
/// rejected draft and a repeated key, reads back exactly: every transaction, every event in
/// order, each account's history, balance and the trial balances.
pub fn commit_batch_of_many_drafts_reads_back_whole<B: Backend>() {
    let fx = fixture::<B>();
    // A book that sorts before `main`, so its new keys fall below `main`'s.
    let side = book("a-side");
    let side_cash = open(&*fx.l, "a-side", "cash", &fx.usd, AccountKind::Asset);
    let side_income = open(&*fx.l, "a-side", "income", &fx.usd, AccountKind::Income);
    let mut drafts: Vec<Transaction> = (0..150u64)
        .map(|i| {
            let tx = match i % 3 {
                0 => Transaction::new(side.clone())
                    .debit(&side_cash, &fx.usd, i + 1)
                    .credit(&side_income, &fx.usd, i + 1),
                1 => fx.usd(&fx.cash, &fx.revenue, i + 1),
                _ => fx
                    .tx()
                    .debit(&fx.eur_cash, &fx.eur, 2)
                    .credit(&fx.eur_revenue, &fx.eur, 2)
                    .debit(&fx.revenue, &fx.usd, 1)
                    .credit(&fx.cash, &fx.usd, 1),
            };
            let tx = if i % 7 == 0 {
                tx.with_metadata("i", i.to_string())
                    .with_metadata("memo", "batch")
            } else {
                tx
            };
            if i % 10 == 1 {
                tx.with_idempotency_key(format!("k{i}"))
            } else {
                tx
            }
        })
        .collect();
    drafts[77] = fx.usd(&fx.cash, &account("main", "ghost"), 3);
    drafts[100] = fx.usd(&fx.cash, &fx.revenue, 5).with_idempotency_key("k31");
    let results = fx.l.commit_batch(&drafts).unwrap();
    assert_eq!(results.len(), drafts.len());
    assert_matches!(results[77], Err(LedgerError::UnknownAccount { .. }));
    assert_eq!(
        results[100].as_ref().unwrap(),
        results[31].as_ref().unwrap()
    );

    let mut next = [(fx.book.clone(), FX_OPENINGS + 1), (side.clone(), 3)];
    let mut posted: Vec<(Book, StoredTransaction)> = Vec::new();
    for (i, (draft, result)) in drafts.iter().zip(&results).enumerate() {
        if i == 77 || i == 100 {
            continue;
        }
        let c = result.as_ref().unwrap();
        let slot = next.iter_mut().find(|(b, _)| *b == draft.book).unwrap();
        assert_eq!((c.txid, c.seq), (draft.id, slot.1), "draft {i}");
        slot.1 += 1;
        let stored = StoredTransaction {
            id: draft.id,
            book: draft.book.clone(),
            postings: draft.postings.clone(),
            idempotency_key: draft.idempotency_key.clone(),
            metadata: draft.metadata.clone(),
            seq: c.seq,
            at: c.at,
        };
        assert_eq!(fx.l.transaction(&draft.id).unwrap().as_ref(), Some(&stored));
        posted.push((draft.book.clone(), stored));
    }
    assert_eq!(fx.l.transaction(&drafts[77].id).unwrap(), None);
    assert_eq!(fx.l.transaction(&drafts[100].id).unwrap(), None);
    for (b, skip) in [(&fx.book, FX_OPENINGS), (&side, 2)] {
        let evs = events(&*fx.l, b);
        let seqs: Vec<u64> = evs.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "book {b}"
        );
        let mine: Vec<&StoredTransaction> = posted
            .iter()
            .filter(|(pb, _)| pb == b)
            .map(|(_, t)| t)
            .collect();
        assert_eq!(evs.len(), skip as usize + mine.len(), "book {b}");
        for (ev, tx) in evs[skip as usize..].iter().zip(&mine) {
            assert_matches!(&ev.event, LedgerEvent::TransactionPosted(t) if t == *tx);
            assert_eq!((ev.seq, ev.at), (tx.seq, tx.at));
        }
        for row in fx.l.trial_balance(b, None).unwrap() {
            assert_eq!(row.debits, row.credits, "book {b}, {}", row.asset);
        }
    }
    for id in [
        &fx.cash,
        &fx.revenue,
        &fx.eur_cash,
        &side_cash,
        &side_income,
    ] {
        let history = fx.l.account_history(id, 0, usize::MAX).unwrap();
        let expected: Vec<(u64, u32)> = posted
            .iter()
            .flat_map(|(_, t)| {
                t.postings
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.account == *id)
                    .map(|(index, _)| (t.seq, index as u32))
            })
            .collect();
        let got: Vec<(u64, u32)> = history.iter().map(|p| (p.seq, p.index)).collect();
        assert_eq!(got, expected, "history of {id}");
        let last = history.last().unwrap();
        let now = fx.l.balance(id, None).unwrap();
        assert_eq!(
            (now.amount, now.updated_seq),
            (last.balance_after, last.seq),
            "{id}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Section 6: concurrency
// ---------------------------------------------------------------------------------------

/// §6.6: 16 threads × 20 concurrent commits all succeed with distinct, gapless sequence
/// numbers (increasing per thread), and the final balances and trial balance add up.
pub fn concurrent_commits_gapless<B: Backend>() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 20;
    let fx = fixture::<B>();
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    for _ in 0..PER_THREAD {
                        let c = fx.l.commit(&fx.usd(&fx.cash, &fx.revenue, 3)).unwrap();
                        mine.push(c.seq);
                    }
                    assert!(mine.windows(2).all(|w| w[0] < w[1]));
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    seqs.sort_unstable();
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(
        seqs,
        (FX_OPENINGS + 1..=FX_OPENINGS + total).collect::<Vec<_>>()
    );
    let cash = fx.l.balance(&fx.cash, None).unwrap();
    assert_eq!(cash.amount, 3 * total as i64);
    assert_eq!(cash.updated_seq, FX_OPENINGS + total);
    assert_eq!(balance(&*fx.l, &fx.revenue), 3 * total as i64);
    assert_eq!(
        fx.l.trial_balance(&fx.book, None).unwrap(),
        vec![TrialBalanceRow {
            asset: fx.usd.clone(),
            debits: 3 * u128::from(total),
            credits: 3 * u128::from(total),
        }]
    );
    let evs = events(&*fx.l, &fx.book);
    assert_eq!(evs.len() as u64, FX_OPENINGS + total);
    assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
}

/// §6.4: the same idempotency keys retried from many threads at once commit once each;
/// every retry gets the first receipt.
pub fn concurrent_idempotent_retries_commit_once<B: Backend>() {
    const THREADS: usize = 8;
    const KEYS: u64 = 10;
    let fx = fixture::<B>();
    let receipts: Vec<Vec<Committed>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let fx = &fx;
                s.spawn(move || {
                    (0..KEYS)
                        .map(|k| {
                            let key = (k + t as u64) % KEYS;
                            let tx = fx
                                .usd(&fx.cash, &fx.revenue, 10 + key)
                                .with_idempotency_key(format!("retry-{key}"));
                            (key, fx.l.commit(&tx).unwrap())
                        })
                        .fold(vec![None; KEYS as usize], |mut acc, (key, c)| {
                            acc[key as usize] = Some(c);
                            acc
                        })
                        .into_iter()
                        .map(Option::unwrap)
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for thread in &receipts[1..] {
        assert_eq!(thread, &receipts[0], "retries got different receipts");
    }
    let seqs: BTreeSet<u64> = receipts[0].iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (FX_OPENINGS + 1..=FX_OPENINGS + KEYS).collect::<BTreeSet<_>>()
    );
    let expected: u64 = (0..KEYS).map(|k| 10 + k).sum();
    assert_eq!(balance(&*fx.l, &fx.cash), expected as i64);
    assert_eq!(fx.last_seq(), FX_OPENINGS + KEYS);
}

// ---------------------------------------------------------------------------------------
// Section 6: reads
// ---------------------------------------------------------------------------------------

/// §6.7: `balance` is the normal-side amount and the seq of the last transaction that
/// touched the account (0 when none); `as_of` counts only transactions with `at <= as_of`.
pub fn balance_as_of_and_updated_seq<B: Backend>() {
    let fx = fixture::<B>();
    assert_eq!(
        fx.l.balance(&fx.cash, None).unwrap(),
        BalanceSnapshot {
            amount: 0,
            updated_seq: 0
        }
    );
    fx.clock.set(Timestamp::from_micros(2 * T0));
    let c1 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 100));
    fx.clock.set(Timestamp::from_micros(3 * T0));
    let c2 = fx.commit(&fx.usd(&fx.revenue, &fx.cash, 30));
    fx.clock.set(Timestamp::from_micros(4 * T0));
    fx.commit(&fx.usd(&fx.wallet, &fx.revenue, 1));
    let at = |micros: u64| Some(Timestamp::from_micros(micros));
    assert_eq!(
        fx.l.balance(&fx.cash, None).unwrap(),
        BalanceSnapshot {
            amount: 70,
            updated_seq: c2.seq
        }
    );
    assert_eq!(
        fx.l.balance(&fx.revenue, None).unwrap().amount,
        71,
        "income is credit-normal"
    );
    assert_eq!(
        fx.l.balance(&fx.cash, at(2 * T0)).unwrap(),
        BalanceSnapshot {
            amount: 100,
            updated_seq: c1.seq
        }
    );
    assert_eq!(
        fx.l.balance(&fx.cash, at(3 * T0 - 1)).unwrap(),
        BalanceSnapshot {
            amount: 100,
            updated_seq: c1.seq
        }
    );
    assert_eq!(
        fx.l.balance(&fx.cash, at(2 * T0 - 1)).unwrap(),
        BalanceSnapshot::default()
    );
    assert_eq!(
        fx.l.balance(&fx.cash, at(u64::MAX)).unwrap(),
        fx.l.balance(&fx.cash, None).unwrap()
    );
    assert_eq!(
        fx.l.balance(&fx.eur_cash, None).unwrap(),
        BalanceSnapshot::default()
    );
}

/// §6.7: a balance is reported on the account's configured normal side, which may differ
/// from its kind's usual side.
pub fn balance_uses_configured_normal_side<B: Backend>() {
    let fx = fixture::<B>();
    let contra = open_with(
        &*fx.l,
        "main",
        "assets:contra",
        &fx.usd,
        AccountKind::Asset,
        AccountCfg {
            normal_side: Direction::Credit,
            min_balance: None,
        },
    );
    fx.commit(&fx.usd(&contra, &fx.revenue, 10));
    assert_eq!(balance(&*fx.l, &contra), -10);
    fx.commit(&fx.usd(&fx.cash, &contra, 25));
    assert_eq!(balance(&*fx.l, &contra), 15);
}

/// §6.7: reads of unknown things fail or answer empty, and never create anything:
/// `balance` and `account_history` of an unknown account are `UnknownAccount`, unknown
/// assets, accounts and transactions are `Ok(None)`, an unknown book has no events and an
/// empty trial balance.
pub fn reads_never_create<B: Backend>() {
    let fx = fixture::<B>();
    let ghost = account("main", "ghost");
    let nowhere = account("nowhere", "ghost");
    let before = fx.observe();
    for id in [&ghost, &nowhere] {
        assert_matches!(
            fx.l.balance(id, None),
            Err(LedgerError::UnknownAccount { ref account }) if account == id
        );
        assert_matches!(
            fx.l.account_history(id, 0, 10),
            Err(LedgerError::UnknownAccount { .. })
        );
        assert_eq!(fx.l.account(id).unwrap(), None);
    }
    assert_eq!(fx.l.asset(&asset_id("GOLD")).unwrap(), None);
    assert_eq!(fx.l.transaction(&TxId::new_v7()).unwrap(), None);
    assert_eq!(fx.l.trial_balance(&book("nowhere"), None).unwrap(), vec![]);
    assert_eq!(
        fx.l.read_events(&book("nowhere"), None, 10).unwrap(),
        vec![]
    );
    assert_eq!(fx.observe(), before);
    assert_eq!(fx.l.account(&ghost).unwrap(), None);
    let ghost = open(&*fx.l, "main", "ghost", &fx.usd, AccountKind::Asset);
    assert_eq!(fx.last_seq(), FX_OPENINGS + 1);
    assert_eq!(balance(&*fx.l, &ghost), 0);
}

/// §6.7: `asset` and `transaction` return `Ok(None)` when unknown and the full stored
/// record when known.
pub fn asset_and_transaction_lookup<B: Backend>() {
    let fx = fixture::<B>();
    assert_eq!(fx.l.asset(&fx.usd).unwrap(), Some(asset_def("USD")));
    assert_eq!(fx.l.asset(&asset_id("usd")).unwrap(), None);
    let tx = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 7)
        .debit(&fx.eur_cash, &fx.eur, 2)
        .credit(&fx.revenue, &fx.usd, 7)
        .credit(&fx.eur_revenue, &fx.eur, 2)
        .with_idempotency_key("lookup")
        .with_metadata("a", "1")
        .with_metadata("b", "");
    let c = fx.commit(&tx);
    let stored =
        fx.l.transaction(&tx.id)
            .unwrap()
            .expect("stored transaction");
    assert_eq!(
        stored,
        StoredTransaction {
            id: tx.id,
            book: fx.book.clone(),
            postings: tx.postings.clone(),
            idempotency_key: Some("lookup".into()),
            metadata: tx.metadata.clone(),
            seq: c.seq,
            at: c.at,
        }
    );
    assert_eq!(stored.committed(), c);
    assert_eq!(fx.l.transaction(&TxId::new_v7()).unwrap(), None);
}

/// §6.7: `account_history` is ascending, `after_seq` exclusive, `limit` counts
/// transactions, and a transaction posting twice to the account is never split; each
/// record carries the running balance.
pub fn account_history_pages_by_transaction<B: Backend>() {
    let fx = fixture::<B>();
    let t1 = fx
        .tx()
        .debit(&fx.cash, &fx.usd, 10)
        .debit(&fx.cash, &fx.usd, 5)
        .credit(&fx.revenue, &fx.usd, 15);
    let c1 = fx.commit(&t1);
    let c2 = fx.commit(&fx.usd(&fx.cash, &fx.revenue, 7));
    fx.commit(
        &fx.tx()
            .debit(&fx.eur_cash, &fx.eur, 1)
            .credit(&fx.eur_revenue, &fx.eur, 1),
    );
    let t4 = fx.usd(&fx.revenue, &fx.cash, 2);
    let c4 = fx.commit(&t4);
    let record = |c: &Committed, index: u32, amount: u64, direction, balance_after| PostingRecord {
        txid: c.txid,
        seq: c.seq,
        at: c.at,
        index,
        account: fx.cash.clone(),
        asset: fx.usd.clone(),
        amount,
        direction,
        balance_after,
    };
    let full = vec![
        record(&c1, 0, 10, Direction::Debit, 10),
        record(&c1, 1, 5, Direction::Debit, 15),
        record(&c2, 0, 7, Direction::Debit, 22),
        record(&c4, 1, 2, Direction::Credit, 20),
    ];
    let h = |after, limit| fx.l.account_history(&fx.cash, after, limit).unwrap();
    assert_eq!(h(0, 100), full);
    assert_eq!(h(0, 1), full[..2].to_vec());
    assert_eq!(h(c1.seq - 1, 1), full[..2].to_vec());
    assert_eq!(h(c1.seq, 1), full[2..3].to_vec());
    assert_eq!(h(c1.seq, 2), full[2..].to_vec());
    assert_eq!(h(c2.seq, 100), full[3..].to_vec());
    assert_eq!(h(c4.seq, 100), vec![]);
    assert_eq!(h(0, 0), vec![]);
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = h(after, 1);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, full);
    assert_eq!(
        fx.l.account_history(&fx.wallet, 0, 10).unwrap(),
        vec![],
        "an untouched account has no history"
    );
}

/// §6.7: `trial_balance` has one row per asset with postings, sorted by asset id, with
/// debits equal to credits; `as_of` counts only transactions with `at <= as_of`; an
/// unknown book (or one without transactions) gives an empty list.
pub fn trial_balance_sorted_and_balanced<B: Backend>() {
    let fx = fixture::<B>();
    assert_eq!(fx.l.trial_balance(&fx.book, None).unwrap(), vec![]);
    let btc = register(&*fx.l, "BTC");
    let vault = open(&*fx.l, "main", "assets:btc", &btc, AccountKind::Asset);
    let equity = open(&*fx.l, "main", "equity:btc", &btc, AccountKind::Equity);
    fx.clock.set(Timestamp::from_micros(2 * T0));
    fx.commit(
        &fx.tx()
            .debit(&fx.cash, &fx.usd, 10)
            .credit(&fx.revenue, &fx.usd, 10)
            .debit(&fx.eur_cash, &fx.eur, 20)
            .credit(&fx.eur_revenue, &fx.eur, 20)
            .debit(&vault, &btc, 30)
            .credit(&equity, &btc, 30),
    );
    fx.clock.set(Timestamp::from_micros(3 * T0));
    fx.commit(&fx.usd(&fx.revenue, &fx.cash, 4));
    fx.commit(&fx.tx().debit(&equity, &btc, 1).credit(&vault, &btc, 1));
    let row = |asset: &AssetId, sum: u128| TrialBalanceRow {
        asset: asset.clone(),
        debits: sum,
        credits: sum,
    };
    assert_eq!(
        fx.l.trial_balance(&fx.book, None).unwrap(),
        vec![row(&btc, 31), row(&fx.eur, 20), row(&fx.usd, 14)]
    );
    assert_eq!(
        fx.l.trial_balance(&fx.book, Some(Timestamp::from_micros(3 * T0 - 1)))
            .unwrap(),
        vec![row(&btc, 30), row(&fx.eur, 20), row(&fx.usd, 10)]
    );
    assert_eq!(
        fx.l.trial_balance(&fx.book, Some(Timestamp::from_micros(2 * T0 - 1)))
            .unwrap(),
        vec![]
    );
    assert_eq!(fx.l.trial_balance(&book("unknown"), None).unwrap(), vec![]);
    assert_eq!(fx.l.trial_balance(&Book::system(), None).unwrap(), vec![]);
}

/// §6.7: `read_events(book, after, limit)` returns events with `seq > after` (exclusive;
/// `None` from the first event), ascending, at most `limit`; paging with the last `seq` as
/// the next cursor reads every event once.
pub fn read_events_after_exclusive_with_limit<B: Backend>() {
    let fx = fixture::<B>();
    let all = events(&*fx.l, &fx.book);
    assert_eq!(all.len() as u64, FX_OPENINGS);
    let seqs = |after: Option<u64>, limit: usize| -> Vec<u64> {
        fx.l.read_events(&fx.book, after, limit)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(None, 2), vec![1, 2]);
    assert_eq!(seqs(Some(0), 2), vec![1, 2]);
    assert_eq!(seqs(Some(2), 2), vec![3, 4]);
    assert_eq!(seqs(None, 100), (1..=FX_OPENINGS).collect::<Vec<_>>());
    assert_eq!(seqs(Some(FX_OPENINGS - 1), 100), vec![FX_OPENINGS]);
    assert_eq!(seqs(Some(FX_OPENINGS), 100), Vec::<u64>::new());
    assert_eq!(seqs(Some(u64::MAX), 100), Vec::<u64>::new());
    assert_eq!(seqs(Some(i64::MAX as u64), 100), Vec::<u64>::new());
    assert_eq!(seqs(None, 0), Vec::<u64>::new());
    assert_eq!(
        fx.l.read_events(&fx.book, Some(2), 2).unwrap(),
        all[2..4].to_vec()
    );
    assert_eq!(
        fx.l.read_events(&Book::system(), Some(1), 10).unwrap(),
        events(&*fx.l, &Book::system())[1..].to_vec()
    );
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = fx.l.read_events(&fx.book, after, 3).unwrap();
        after = page.last().map(|event| event.seq);
        let last_page = page.len() < 3;
        paged.extend(page);
        if last_page {
            break;
        }
    }
    assert_eq!(paged, all);
}

/// §0.2: the ledger works through `Arc<dyn LedgerStore>`, shared across threads.
pub fn usable_as_dyn<B: Backend>() {
    let inst = Instance::<B>::fresh();
    let l: Arc<dyn LedgerStore> = inst.backend.ledger();
    let usd = register(&*l, "USD");
    let cash = open(&*l, "dyn", "cash", &usd, AccountKind::Asset);
    let income = open(&*l, "dyn", "income", &usd, AccountKind::Income);
    let tx = Transaction::new(book("dyn"))
        .debit(&cash, &usd, 5)
        .credit(&income, &usd, 5);
    let c = l.commit(&tx).unwrap();
    let batch = l
        .commit_batch(&[Transaction::new(book("dyn"))
            .debit(&cash, &usd, 1)
            .credit(&income, &usd, 1)])
        .unwrap();
    assert_eq!(batch[0].as_ref().unwrap().seq, c.seq + 1);
    let reader = Arc::clone(&l);
    let cash2 = cash.clone();
    let amount = std::thread::spawn(move || reader.balance(&cash2, None).unwrap().amount)
        .join()
        .unwrap();
    assert_eq!(amount, 6);
    assert_eq!(l.account_history(&cash, 0, 10).unwrap().len(), 2);
    assert_eq!(l.trial_balance(&book("dyn"), None).unwrap().len(), 1);
    assert_eq!(l.read_events(&book("dyn"), None, 10).unwrap().len(), 4);
    assert_eq!(l.transaction(&tx.id).unwrap().map(|t| t.seq), Some(c.seq));
    assert!(l.account(&cash).unwrap().is_some());
    assert!(l.asset(&usd).unwrap().is_some());
}
