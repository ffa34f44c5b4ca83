//! `LedgerStore`: a double-entry ledger with idempotent, group-committed transactions
//! (`docs/contract.md` section 6).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{InputError, NameRule, StorageError};
use crate::limits::{
    MAX_ACCOUNT_PATH_LEN, MAX_ASSET_ID_LEN, MAX_IDEMPOTENCY_KEY_LEN, MAX_NAME_LEN, MAX_TEXT_LEN,
    check_name, check_text,
};
use crate::time::Timestamp;
use crate::uuid_id::uuid_id;

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $example:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        /// Serialized as its text, exactly like the `String` it is validated from (so
        /// decoding checks it again), without copying it first.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            /// Validates `name` against the naming rules.
            ///
            #[doc = concat!("```\n# use store_api::", stringify!($name), ";\n",
                "let name = ", stringify!($name), "::new(", stringify!($example), ")?;\n",
                "assert_eq!(name.as_str(), ", stringify!($example), ");\n",
                "assert!(", stringify!($name), "::new(\"\").is_err()); // names are not empty\n",
                "assert!(", stringify!($name), "::new(\"a/b\").is_err()); // nor hold `/`\n",
                "# Ok::<(), Box<dyn std::error::Error>>(())\n```")]
            pub fn new(name: impl Into<String>) -> Result<Self, InputError> {
                let name = name.into();
                check_name($kind, &name, $max)?;
                Ok($name(name))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InputError;
            fn try_from(name: String) -> Result<Self, InputError> {
                $name::new(name)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InputError;
            fn try_from(name: &str) -> Result<Self, InputError> {
                $name::new(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_name!(
    /// A ledger book: a validated name of 1 to 255 bytes. Books whose names start with `_`
    /// are reserved for the store ([`Book::SYSTEM`] holds asset registrations): they can be
    /// read, but accounts cannot be opened and transactions cannot be committed in them.
    Book,
    "book",
    MAX_NAME_LEN,
    "shop"
);
validated_name!(
    /// An asset id: a validated name of 1 to 32 bytes (`USD`, `BTC`, `points`).
    AssetId,
    "asset",
    MAX_ASSET_ID_LEN,
    "USD"
);
validated_name!(
    /// An account's path inside its book: a validated name of 1 to 200 bytes
    /// (`assets:bank:checking`; `/` is not allowed).
    AccountPath,
    "account path",
    MAX_ACCOUNT_PATH_LEN,
    "assets:bank:checking"
);

impl Book {
    /// The name of the reserved book that holds asset registrations.
    pub const SYSTEM: &'static str = "_system";

    /// The reserved `_system` book.
    ///
    /// ```
    /// # use store_api::*;
    /// let book = Book::system();
    /// assert_eq!(book.as_str(), Book::SYSTEM);
    /// assert!(book.is_reserved());
    /// assert!(!Book::new("shop")?.is_reserved());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn system() -> Book {
        Book(Self::SYSTEM.to_owned())
    }

    /// Whether the name is reserved (starts with `_`).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with('_')
    }
}

/// A registered asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetDef {
    /// The asset's id.
    pub id: AssetId,
    /// Number of decimal places of one minor unit (`2` for cents). At most 18.
    pub precision: u8,
    /// Display name, at most [`MAX_TEXT_LEN`] bytes.
    pub name: String,
}

impl AssetDef {
    /// The largest precision accepted.
    pub const MAX_PRECISION: u8 = 18;

    /// Checks the definition's fields.
    ///
    /// ```
    /// # use store_api::*;
    /// let mut def = AssetDef { id: AssetId::new("USD")?, precision: 2, name: "US dollar".into() };
    /// assert_eq!(def.check(), Ok(()));
    /// def.precision = 19; // above AssetDef::MAX_PRECISION
    /// assert!(def.check().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<(), InputError> {
        check_text("asset display name", &self.name, MAX_TEXT_LEN)?;
        if self.precision > Self::MAX_PRECISION {
            return Err(InputError::FieldTooLong {
                field: "asset precision",
                len: usize::from(self.precision),
                max: usize::from(Self::MAX_PRECISION),
            });
        }
        Ok(())
    }
}

/// A side of a posting, and the side on which an account's balance grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Left side.
    Debit,
    /// Right side.
    Credit,
}

/// The kind of an account, which gives its usual normal side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccountKind {
    /// What is owned: normal side debit.
    Asset,
    /// What is owed: normal side credit.
    Liability,
    /// Earnings: normal side credit.
    Income,
    /// Spending: normal side debit.
    Expense,
    /// Owners' stake: normal side credit.
    Equity,
    /// Transit between books or systems, expected to net to zero: normal side debit.
    Clearing,
}

impl AccountKind {
    /// The side on which this kind of account's balance grows.
    ///
    /// ```
    /// # use store_api::*;
    /// assert_eq!(AccountKind::Asset.normal_side(), Direction::Debit);
    /// assert_eq!(AccountKind::Income.normal_side(), Direction::Credit);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn normal_side(self) -> Direction {
        match self {
            AccountKind::Asset | AccountKind::Expense | AccountKind::Clearing => Direction::Debit,
            AccountKind::Liability | AccountKind::Income | AccountKind::Equity => Direction::Credit,
        }
    }
}

/// An account: its place, its asset and its kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId {
    /// The book the account lives in.
    pub book: Book,
    /// Its path inside the book.
    pub path: AccountPath,
}

impl AccountId {
    /// Validates both parts.
    ///
    /// ```
    /// # use store_api::*;
    /// let id = AccountId::new("shop", "assets:cash")?;
    /// assert_eq!(id.to_string(), "shop/assets:cash");
    /// assert!(AccountId::new("shop", "assets/cash").is_err()); // `/` is not allowed in a path
    /// assert!(AccountId::new("", "cash").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(book: &str, path: &str) -> Result<Self, InputError> {
        Ok(AccountId {
            book: Book::new(book)?,
            path: AccountPath::new(path)?,
        })
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.book, self.path)
    }
}

/// The definition of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDef {
    /// Where the account lives.
    pub id: AccountId,
    /// The only asset it holds.
    pub asset: AssetId,
    /// Its kind.
    pub kind: AccountKind,
}

/// How an account's balance is computed and constrained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCfg {
    /// Balances are reported on this side: postings on it add, the others subtract.
    pub normal_side: Direction,
    /// The lowest normal-side balance a transaction may leave; `None` for no floor.
    pub min_balance: Option<i64>,
}

impl AccountCfg {
    /// The kind's normal side and no floor.
    ///
    /// ```
    /// # use store_api::*;
    /// let cfg = AccountCfg::for_kind(AccountKind::Liability);
    /// assert_eq!(cfg, AccountCfg { normal_side: Direction::Credit, min_balance: None });
    /// assert_eq!(cfg.with_min_balance(0).min_balance, Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn for_kind(kind: AccountKind) -> Self {
        AccountCfg {
            normal_side: kind.normal_side(),
            min_balance: None,
        }
    }

    /// The same configuration with a floor of `min_balance`.
    pub const fn with_min_balance(mut self, min_balance: i64) -> Self {
        self.min_balance = Some(min_balance);
        self
    }
}

/// One line of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The account posted to; it must be in the transaction's book.
    pub account: AccountId,
    /// The asset moved; it must be the account's.
    pub asset: AssetId,
    /// Positive amount in minor units.
    pub amount: u64,
    /// Which side.
    pub direction: Direction,
}

uuid_id!(
    /// A transaction id: a time-ordered UUID (v7) chosen by the caller.
    TxId,
    "transaction id"
);

/// A transaction draft, as submitted to [`LedgerStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Its id; unique across the ledger.
    pub id: TxId,
    /// The book it posts in.
    pub book: Book,
    /// Its postings, in order.
    pub postings: Vec<Posting>,
    /// A key that makes retries safe: a second commit with a key already used in the book
    /// returns the first commit's result. At most [`MAX_IDEMPOTENCY_KEY_LEN`] bytes.
    pub idempotency_key: Option<String>,
    /// Free-form metadata (each key and value at most [`MAX_TEXT_LEN`] bytes).
    pub metadata: BTreeMap<String, String>,
}

impl Transaction {
    /// An empty draft in `book` with a fresh id.
    ///
    /// ```
    /// # use store_api::*;
    /// let (cash, sales) = (AccountId::new("shop", "cash")?, AccountId::new("shop", "sales")?);
    /// let usd = AssetId::new("USD")?;
    /// let tx = Transaction::new(Book::new("shop")?)
    ///     .debit(&cash, &usd, 500)
    ///     .credit(&sales, &usd, 500)
    ///     .with_idempotency_key("order-1")
    ///     .with_metadata("customer", "ada");
    /// assert_eq!(tx.postings.len(), 2);
    /// assert_eq!(tx.postings[1].direction, Direction::Credit);
    /// assert_eq!(tx.check_fields(), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(book: Book) -> Self {
        Transaction {
            id: TxId::new_v7(),
            book,
            postings: Vec::new(),
            idempotency_key: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Adds a posting.
    pub fn post(
        mut self,
        account: &AccountId,
        asset: &AssetId,
        amount: u64,
        direction: Direction,
    ) -> Self {
        self.postings.push(Posting {
            account: account.clone(),
            asset: asset.clone(),
            amount,
            direction,
        });
        self
    }

    /// Adds a debit posting.
    pub fn debit(self, account: &AccountId, asset: &AssetId, amount: u64) -> Self {
        self.post(account, asset, amount, Direction::Debit)
    }

    /// Adds a credit posting.
    pub fn credit(self, account: &AccountId, asset: &AssetId, amount: u64) -> Self {
        self.post(account, asset, amount, Direction::Credit)
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Checks the lengths of the idempotency key and the metadata.
    pub fn check_fields(&self) -> Result<(), InputError> {
        if let Some(key) = &self.idempotency_key {
            check_text("idempotency key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
        }
        for (k, v) in &self.metadata {
            check_text("metadata key", k, MAX_TEXT_LEN)?;
            check_text("metadata value", v, MAX_TEXT_LEN)?;
        }
        Ok(())
    }
}

/// The receipt of a committed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The transaction's id.
    pub txid: TxId,
    /// Its sequence number in its book.
    pub seq: u64,
    /// When it was committed.
    pub at: Timestamp,
}

/// An account's normal-side balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BalanceSnapshot {
    /// Normal-side adjusted amount in minor units.
    pub amount: i64,
    /// The book sequence number of the last transaction that touched the account (0 when
    /// none).
    pub updated_seq: u64,
}

/// One posting as stored, with the account's balance right after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingRecord {
    /// The transaction it belongs to.
    pub txid: TxId,
    /// The transaction's sequence number in its book.
    pub seq: u64,
    /// When the transaction was committed.
    pub at: Timestamp,
    /// Its index among the transaction's postings.
    pub index: u32,
    /// The account posted to.
    pub account: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// Positive amount in minor units.
    pub amount: u64,
    /// Which side.
    pub direction: Direction,
    /// The account's normal-side balance after this posting: its balance before the
    /// transaction plus its postings in the transaction up to this one, in posting order.
    ///
    /// When a transaction posts to the account several times, the account's last posting
    /// in it carries its balance after the whole transaction, exactly (what
    /// [`LedgerStore::balance`] reports). The checks apply to that balance only, so an
    /// earlier posting's running balance may lie outside `i64` (say `[debit 1, credit 1]`
    /// on an account at `i64::MAX`); such a posting records the bound it passed
    /// (`i64::MAX` or `i64::MIN`). Every other value is the exact running balance.
    pub balance_after: i64,
}

/// A committed transaction as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTransaction {
    /// Its id.
    pub id: TxId,
    /// Its book.
    pub book: Book,
    /// Its postings, in the order submitted.
    pub postings: Vec<Posting>,
    /// The idempotency key it was committed with.
    pub idempotency_key: Option<String>,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
    /// Its sequence number in its book.
    pub seq: u64,
    /// When it was committed.
    pub at: Timestamp,
}

impl StoredTransaction {
    /// The receipt this transaction was committed with.
    pub fn committed(&self) -> Committed {
        Committed {
            txid: self.id,
            seq: self.seq,
            at: self.at,
        }
    }
}

/// Debit and credit totals of one asset in one book. Sums are 128-bit and cannot overflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialBalanceRow {
    /// The asset.
    pub asset: AssetId,
    /// Sum of debit postings.
    pub debits: u128,
    /// Sum of credit postings.
    pub credits: u128,
}

/// What happened in a book, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    /// An asset was registered (in [`Book::SYSTEM`]).
    AssetRegistered(AssetDef),
    /// An account was opened.
    AccountOpened {
        /// Its definition.
        def: AccountDef,
        /// Its configuration.
        cfg: AccountCfg,
    },
    /// A transaction was committed.
    TransactionPosted(StoredTransaction),
}

/// An event with its book sequence number and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced<T> {
    /// Sequence number in the book, from 1, gapless.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub event: T,
}

/// Errors of [`LedgerStore`], in the order [`commit`](LedgerStore::commit) checks them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A name or field broke the common limits.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The book cannot be written to (it is reserved).
    #[error("book {book} cannot be written to: {rule}")]
    InvalidBook {
        /// The book.
        book: Book,
        /// Why.
        rule: NameRule,
    },
    /// A posting is to an account of another book than the transaction's.
    #[error("posting {index} is to account {account}, which is not in book {book}")]
    AccountOutsideBook {
        /// Index of the posting.
        index: usize,
        /// The account.
        account: AccountId,
        /// The transaction's book.
        book: Book,
    },
    /// The transaction has no posting.
    #[error("a transaction needs at least one posting")]
    EmptyTransaction,
    /// A posting's amount is zero.
    #[error("posting {index} has amount 0: amounts are positive minor units")]
    InvalidAmount {
        /// Index of the posting.
        index: usize,
    },
    /// The asset is not registered.
    #[error("asset {asset} is not registered")]
    UnknownAsset {
        /// The asset.
        asset: AssetId,
    },
    /// The account is not open.
    #[error("account {account} is not open")]
    UnknownAccount {
        /// The account.
        account: AccountId,
    },
    /// An asset or account already exists with a different definition.
    #[error("{entity} {id} already exists with a different definition")]
    AlreadyExists {
        /// "asset" or "account".
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// A posting's asset is not its account's asset.
    #[error("posting to {account} moves {found}, but the account holds {expected}")]
    AssetMismatch {
        /// The account.
        account: AccountId,
        /// The account's asset.
        expected: AssetId,
        /// The posting's asset.
        found: AssetId,
    },
    /// Debits and credits differ for an asset.
    #[error("unbalanced transaction: {asset} debits {debits} != credits {credits}")]
    Unbalanced {
        /// The asset.
        asset: AssetId,
        /// Sum of its debits.
        debits: u128,
        /// Sum of its credits.
        credits: u128,
    },
    /// The transaction would leave an account below its floor.
    #[error("account {account} would fall to {would_be}, below its minimum balance {min_balance}")]
    ConstraintViolation {
        /// The account.
        account: AccountId,
        /// Its floor.
        min_balance: i64,
        /// The balance the transaction would leave.
        would_be: i128,
    },
    /// An account's balance after the transaction would leave the `i64` range.
    #[error("account {account}'s balance would overflow")]
    Overflow {
        /// The account.
        account: AccountId,
    },
    /// A transaction with this id was already committed (under another idempotency key).
    #[error("transaction {txid} was already committed")]
    DuplicateTransaction {
        /// The id.
        txid: TxId,
    },
    /// The engine underneath failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl crate::error::StoreError for LedgerError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            LedgerError::Storage(e) => Some(e),
            _ => None,
        }
    }

    fn storage_mut(&mut self) -> Option<&mut StorageError> {
        match self {
            LedgerError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// A double-entry ledger with idempotent, group-committed transactions.
///
/// # Guarantees
/// - Every commit is atomic and happens exactly once; a rejected commit changes nothing.
/// - Sequence numbers are per book, start at 1 and are gapless: account openings and
///   transactions share them. `at` never decreases as `seq` grows within a book.
/// - [`commit_batch`](Self::commit_batch) is one durable write; concurrent
///   [`commit`](Self::commit)s are grouped into shared durable writes.
/// - Reads never create anything and never see a write that is not yet durable.
///
/// ```
/// use store_api::*;
///
/// let backend = store_mem::MemBackend::new(OpenOptions::default());
/// let ledger = backend.ledger();
/// let usd = AssetId::new("USD")?;
/// ledger.register_asset(&AssetDef { id: usd.clone(), precision: 2, name: "US dollar".into() })?;
/// let (cash, sales) = (AccountId::new("shop", "cash")?, AccountId::new("shop", "sales")?);
/// for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
///     let def = AccountDef { id: id.clone(), asset: usd.clone(), kind };
///     ledger.open_account(&def, &AccountCfg::for_kind(kind))?;
/// }
/// let shop = Book::new("shop")?;
/// let sale = Transaction::new(shop).debit(&cash, &usd, 500).credit(&sales, &usd, 500);
/// assert_eq!(ledger.commit(&sale)?.seq, 3); // the two account openings took 1 and 2
/// assert_eq!(ledger.balance(&cash, None)?.amount, 500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait LedgerStore: Send + Sync {
    /// Registers an asset in [`Book::SYSTEM`]. An identical repeat writes nothing;
    /// a different definition for the same id is [`LedgerError::AlreadyExists`]; a
    /// definition breaking its field limits ([`AssetDef::check`]) is [`LedgerError::Input`].
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # let usd_def = AssetDef { id: usd.clone(), precision: 2, name: "US dollar".into() };
    /// ledger.register_asset(&usd_def)?;
    /// ledger.register_asset(&usd_def)?; // an identical repeat writes nothing
    /// assert_eq!(ledger.asset(&usd)?, Some(usd_def.clone()));
    /// let other = AssetDef { precision: 4, ..usd_def };
    /// let exists = LedgerError::AlreadyExists { entity: "asset", id: "USD".into() };
    /// assert_eq!(ledger.register_asset(&other), Err(exists));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError>;

    /// Opens an account. An identical repeat writes nothing (no event, no sequence
    /// number); a different definition or configuration is [`LedgerError::AlreadyExists`].
    /// The asset must be registered ([`LedgerError::UnknownAsset`]) and the book must not
    /// be reserved ([`LedgerError::InvalidBook`]).
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # let usd_def = AssetDef { id: usd.clone(), precision: 2, name: "US dollar".into() };
    /// ledger.register_asset(&usd_def)?;
    /// let id = AccountId::new("shop", "cash")?;
    /// let cash = AccountDef { id, asset: usd.clone(), kind: AccountKind::Asset };
    /// let cfg = AccountCfg::for_kind(AccountKind::Asset).with_min_balance(0);
    /// ledger.open_account(&cash, &cfg)?;
    /// ledger.open_account(&cash, &cfg)?; // an identical repeat writes nothing
    /// let in_eur = AccountDef { asset: AssetId::new("EUR")?, ..cash }; // same id, other asset
    /// let err = LedgerError::AlreadyExists { entity: "account", id: "shop/cash".into() };
    /// assert_eq!(ledger.open_account(&in_eur, &cfg), Err(err));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError>;

    /// The definition and configuration of an account, or `None` when not open.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # let usd_def = AssetDef { id: usd.clone(), precision: 2, name: "US dollar".into() };
    /// ledger.register_asset(&usd_def)?;
    /// let id = AccountId::new("shop", "cash")?;
    /// let def = AccountDef { id, asset: usd.clone(), kind: AccountKind::Asset };
    /// let cfg = AccountCfg::for_kind(AccountKind::Asset);
    /// ledger.open_account(&def, &cfg)?;
    /// assert_eq!(ledger.account(&def.id)?, Some((def, cfg)));
    /// assert_eq!(ledger.account(&AccountId::new("shop", "bank")?)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError>;

    /// Commits one transaction, atomically and exactly once.
    ///
    /// Checks, in order: the book is writable; the idempotency key and metadata fit;
    /// postings are non-empty with positive amounts; every posting is to an account of the
    /// book; a repeated idempotency key returns the first [`Committed`] unchanged and writes
    /// nothing; the id is new; every account is open; each posting's asset is its
    /// account's; debits equal credits per asset; no account falls below its floor; no
    /// balance overflows `i64`.
    ///
    /// The last two checks apply to each account's balance after the whole transaction
    /// (its postings summed without overflow), so they never depend on the order of the
    /// postings: a transaction may take an account below its floor or past `i64::MAX`
    /// midway as long as it ends inside. A floor breach names the final would-be balance.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let tx = Transaction::new(shop.clone())
    ///     .debit(&cash, &usd, 500)
    ///     .credit(&sales, &usd, 500)
    ///     .with_idempotency_key("order-1");
    /// let committed = ledger.commit(&tx)?;
    /// assert_eq!(committed.seq, 3); // the two account openings took 1 and 2
    /// assert_eq!(ledger.commit(&tx)?, committed); // a retry returns the first receipt
    /// let lopsided = Transaction::new(shop).debit(&cash, &usd, 1);
    /// let unbalanced = LedgerError::Unbalanced { asset: usd, debits: 1, credits: 0 };
    /// assert_eq!(ledger.commit(&lopsided), Err(unbalanced));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn commit(&self, tx: &Transaction) -> Result<Committed, LedgerError>;

    /// Commits drafts in order, in one durable write. Results are positional: each draft
    /// succeeds or fails alone, sequence numbers stay gapless across rejected drafts, and a
    /// later draft sees the earlier ones (idempotency and floors are checked in order).
    /// The outer error is a storage failure, in which case nothing was written.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let sale = |n| Transaction::new(shop.clone()).debit(&cash, &usd, n).credit(&sales, &usd, n);
    /// let results = ledger.commit_batch(&[sale(100), sale(0), sale(200)])?;
    /// assert_eq!(results[0].as_ref().map(|c| c.seq), Ok(3));
    /// assert_eq!(results[1], Err(LedgerError::InvalidAmount { index: 0 })); // fails alone
    /// assert_eq!(results[2].as_ref().map(|c| c.seq), Ok(4)); // no gap
    /// assert_eq!(ledger.balance(&cash, None)?.amount, 300);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn commit_batch(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError>;

    /// The account's normal-side balance and the last seq that touched it, now
    /// (`as_of = None`) or counting only transactions with `at <= as_of`.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let tx = Transaction::new(shop).debit(&cash, &usd, 500).credit(&sales, &usd, 500);
    /// let committed = ledger.commit(&tx)?;
    /// let now = BalanceSnapshot { amount: 500, updated_seq: committed.seq };
    /// assert_eq!(ledger.balance(&cash, None)?, now);
    /// assert_eq!(ledger.balance(&sales, None)?.amount, 500); // income grows on the credit side
    /// let before = Timestamp::from_micros(committed.at.as_micros() - 1);
    /// assert_eq!(ledger.balance(&cash, Some(before))?.amount, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError>;

    /// A registered asset, or `None`.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (_shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// assert_eq!(ledger.asset(&usd)?.map(|def| def.precision), Some(2));
    /// assert_eq!(ledger.asset(&AssetId::new("EUR")?)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError>;

    /// A committed transaction, or `None`.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let tx = Transaction::new(shop).debit(&cash, &usd, 5).credit(&sales, &usd, 5);
    /// let tx = tx.with_metadata("order", "42");
    /// let committed = ledger.commit(&tx)?;
    /// let stored = ledger.transaction(&tx.id)?.unwrap();
    /// assert_eq!(stored.committed(), committed);
    /// assert_eq!((stored.postings, stored.metadata), (tx.postings, tx.metadata));
    /// assert_eq!(ledger.transaction(&TxId::new_v7())?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError>;

    /// The account's postings with `seq > after_seq` (**exclusive**), ascending; `limit`
    /// counts transactions, and a transaction's postings are never split across pages.
    /// An account never opened is [`LedgerError::UnknownAccount`], as for
    /// [`balance`](Self::balance).
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let sale = |n| Transaction::new(shop.clone()).debit(&cash, &usd, n).credit(&sales, &usd, n);
    /// ledger.commit(&sale(100))?;
    /// ledger.commit(&sale(200))?;
    /// let history = ledger.account_history(&cash, 0, 10)?;
    /// assert_eq!(history.iter().map(|p| p.balance_after).collect::<Vec<_>>(), [100, 300]);
    /// let after_first = ledger.account_history(&cash, history[0].seq, 10)?; // exclusive cursor
    /// assert_eq!(after_first, history[1..]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError>;

    /// Per-asset debit and credit sums of the book (all time, or `at <= as_of`), sorted by
    /// asset id. Only assets with at least one counted posting have a row, so an unknown
    /// book, or one with no transaction up to `as_of`, gives an empty list.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let sale = |n| Transaction::new(shop.clone()).debit(&cash, &usd, n).credit(&sales, &usd, n);
    /// ledger.commit(&sale(500))?;
    /// let rows = ledger.trial_balance(&shop, None)?;
    /// assert_eq!(rows, [TrialBalanceRow { asset: usd, debits: 500, credits: 500 }]);
    /// assert!(ledger.trial_balance(&Book::new("unknown")?, None)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError>;

    /// One page of `book`'s events, ascending by sequence number: those strictly after
    /// `after` (from the first event when `None`), at most `limit` (0 gives nothing). The
    /// cursor is the last `seq` of the previous page, like every listing's `after`; an
    /// unknown book, or a cursor at or past the book's last event, gives an empty page.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let sale = Transaction::new(shop.clone()).debit(&cash, &usd, 5).credit(&sales, &usd, 5);
    /// let committed = ledger.commit(&sale)?;
    /// let events = ledger.read_events(&shop, None, 10)?;
    /// assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    /// let (first, third) = (&events[0].event, &events[2].event);
    /// assert!(matches!(first, LedgerEvent::AccountOpened { def, .. } if def.id == cash));
    /// assert!(matches!(third, LedgerEvent::TransactionPosted(tx) if tx.id == committed.txid));
    /// assert_eq!(ledger.read_events(&shop, Some(2), 10)?, events[2..]); // after seq 2
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_events(
        &self,
        book: &Book,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError>;

    /// One page of the books that hold at least one event: ascending by name (the byte
    /// order of the UTF-8 names, which is [`Book`]'s `Ord`), strictly after `after` (from
    /// the first book when `None`; the cursor need not be a listed book), at most `limit`
    /// (0 gives nothing).
    ///
    /// A book exists from its first event: a book holding only account openings is listed,
    /// and so is the reserved [`Book::SYSTEM`] once an asset is registered (its events are
    /// the registrations). A rejected call creates no book. Replaying each listed book's
    /// [`read_events`](Self::read_events) reproduces the whole ledger.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// // The asset registration is the reserved book's event; the openings are the shop's.
    /// assert_eq!(ledger.list_books(None, 10)?, [Book::system(), shop.clone()]);
    /// assert_eq!(ledger.list_books(Some(&Book::system()), 10)?, [shop]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError>;

    /// One page of the registered assets with their definitions: ascending by id (the byte
    /// order of the UTF-8 ids, which is [`AssetId`]'s `Ord`), strictly after `after` (from
    /// the first asset when `None`; the cursor need not be registered), at most `limit`
    /// (0 gives nothing).
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (_shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let eur = AssetId::new("EUR")?;
    /// ledger.register_asset(&AssetDef { id: eur.clone(), precision: 2, name: "Euro".into() })?;
    /// let ids: Vec<_> = ledger.list_assets(None, 10)?.into_iter().map(|def| def.id).collect();
    /// assert_eq!(ids, [eur.clone(), usd.clone()]); // ascending by id
    /// assert_eq!(ledger.list_assets(Some(&eur), 10)?[0].id, usd);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError>;

    /// One page of the accounts open in `book`, each with the definition and configuration
    /// it was opened with (what [`open_account`](Self::open_account) needs to open it again
    /// identically): ascending by path (the byte order of the UTF-8 paths, which is
    /// [`AccountPath`]'s `Ord`), strictly after `after` (from the first account when
    /// `None`; the cursor need not be open), at most `limit` (0 gives nothing). Only
    /// `book`'s accounts are listed; a book with no account (unknown, or reserved) gives
    /// an empty list.
    ///
    /// ```
    /// # use store_api::*; let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let ledger = backend.ledger();
    /// # let usd = AssetId::new("USD")?;
    /// # ledger.register_asset(&AssetDef {
    /// # id: usd.clone(), precision: 2, name: "US dollar".into() })?;
    /// # let (shop, cash, sales) = (Book::new("shop")?, AccountId::new("shop", "cash")?,
    /// # AccountId::new("shop", "sales")?);
    /// # for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
    /// # ledger.open_account(&AccountDef {
    /// # id: id.clone(), asset: usd.clone(), kind }, &AccountCfg::for_kind(kind))?; }
    /// let page = ledger.list_accounts(&shop, None, 1)?;
    /// assert_eq!(page[0].0.id, cash); // "cash" sorts before "sales"
    /// assert_eq!(page[0].1, AccountCfg::for_kind(AccountKind::Asset));
    /// let next = ledger.list_accounts(&shop, Some(&cash.path), 1)?;
    /// assert_eq!(next[0].0.id, sales);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError>;
}

/// A shared ledger is a ledger: every call goes to the one it points to, so code generic
/// over `L: LedgerStore` also takes an `Arc<dyn LedgerStore>`.
impl<L: LedgerStore + ?Sized> LedgerStore for std::sync::Arc<L> {
    fn register_asset(&self, def: &AssetDef) -> Result<(), LedgerError> {
        (**self).register_asset(def)
    }

    fn open_account(&self, def: &AccountDef, cfg: &AccountCfg) -> Result<(), LedgerError> {
        (**self).open_account(def, cfg)
    }

    fn account(&self, id: &AccountId) -> Result<Option<(AccountDef, AccountCfg)>, LedgerError> {
        (**self).account(id)
    }

    fn commit(&self, tx: &Transaction) -> Result<Committed, LedgerError> {
        (**self).commit(tx)
    }

    fn commit_batch(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<Result<Committed, LedgerError>>, LedgerError> {
        (**self).commit_batch(txs)
    }

    fn balance(
        &self,
        account: &AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<BalanceSnapshot, LedgerError> {
        (**self).balance(account, as_of)
    }

    fn asset(&self, id: &AssetId) -> Result<Option<AssetDef>, LedgerError> {
        (**self).asset(id)
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<StoredTransaction>, LedgerError> {
        (**self).transaction(txid)
    }

    fn account_history(
        &self,
        account: &AccountId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<PostingRecord>, LedgerError> {
        (**self).account_history(account, after_seq, limit)
    }

    fn trial_balance(
        &self,
        book: &Book,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<TrialBalanceRow>, LedgerError> {
        (**self).trial_balance(book, as_of)
    }

    fn read_events(
        &self,
        book: &Book,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Sequenced<LedgerEvent>>, LedgerError> {
        (**self).read_events(book, after, limit)
    }

    fn list_books(&self, after: Option<&Book>, limit: usize) -> Result<Vec<Book>, LedgerError> {
        (**self).list_books(after, limit)
    }

    fn list_assets(
        &self,
        after: Option<&AssetId>,
        limit: usize,
    ) -> Result<Vec<AssetDef>, LedgerError> {
        (**self).list_assets(after, limit)
    }

    fn list_accounts(
        &self,
        book: &Book,
        after: Option<&AccountPath>,
        limit: usize,
    ) -> Result<Vec<(AccountDef, AccountCfg)>, LedgerError> {
        (**self).list_accounts(book, after, limit)
    }
}
