//! Errors shared by every store: rejected input and engine failures.
//!
//! Each store has its own error enum (see the store modules); all of them embed
//! [`InputError`] for bad input and [`StorageError`] for failures of the engine
//! underneath, so a caller matches the same variant whatever the backend.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// Why a name (ledger book, state partition, asset id, account path) was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameRule {
    /// The name is empty.
    Empty,
    /// The name is longer than the limit for its kind.
    TooLong {
        /// Length of the rejected name, in bytes.
        len: usize,
        /// Limit for this kind of name, in bytes.
        max: usize,
    },
    /// The name is `.` or `..`.
    DotName,
    /// The name holds a character that is never allowed (`/`, `\`, NUL or a control character).
    ForbiddenChar(char),
    /// The name starts with `_`, which is reserved for the store's own books.
    Reserved,
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRule::Empty => f.write_str("names must not be empty"),
            NameRule::TooLong { len, max } => {
                write!(f, "{len} bytes is longer than the limit of {max} bytes")
            }
            NameRule::DotName => f.write_str("`.` and `..` are not names"),
            NameRule::ForbiddenChar(c) => {
                write!(f, "character {c:?} is not allowed in names")
            }
            NameRule::Reserved => f.write_str("names starting with `_` are reserved"),
        }
    }
}

/// Input a caller passed that breaks the limits of `docs/contract.md` section 2.
///
/// Every backend rejects the same input with the same variant, before touching storage:
/// a call that fails with an `InputError` has changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Keys are at least one byte long.
    #[error("empty key: keys are 1 to {max} bytes", max = crate::limits::MAX_KEY_LEN)]
    EmptyKey,
    /// The key is longer than [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN).
    #[error("key of {len} bytes is longer than the limit of {max} bytes")]
    KeyTooLong {
        /// Length of the rejected key.
        len: usize,
        /// The common key limit.
        max: usize,
    },
    /// The value is larger than [`MAX_VALUE_LEN`](crate::limits::MAX_VALUE_LEN).
    #[error("value of {len} bytes is larger than the limit of {max} bytes")]
    ValueTooLarge {
        /// Size of the rejected value.
        len: usize,
        /// The common value limit.
        max: usize,
    },
    /// A name (book, partition, asset, account path) breaks the naming rules.
    #[error("invalid {kind} name {name:?}: {rule}")]
    InvalidName {
        /// What the name was for: "book", "partition", "asset", "account path".
        kind: &'static str,
        /// The rejected name, as given.
        name: String,
        /// The rule it breaks.
        rule: NameRule,
    },
    /// A bounded text field (idempotency key, display name, metadata) is too long.
    #[error("{field} of {len} bytes is longer than the limit of {max} bytes")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// Its limit in bytes.
        max: usize,
    },
}

/// What kind of engine failure a [`StorageError`] reports, and so what a caller can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// The operating system failed an I/O call (a broken disk, a permission taken away).
    Io,
    /// The filesystem is full (or a quota is spent): the write was not made durable and is
    /// not acknowledged. Reads keep working. Free space, then retry; on backends whose
    /// engine cannot continue after a failed write the retry answers
    /// [`Poisoned`](Self::Poisoned) until the backend is reopened (each backend's docs say
    /// which).
    NoSpace,
    /// An earlier write's durability step failed (a full disk, an I/O error, a failed
    /// `fsync`), so data this backend showed may not be on disk. It refuses every write,
    /// through every store, until it is reopened; reads keep working. Reopen the backend:
    /// what it then holds is what was durable.
    Poisoned,
    /// The engine found data it cannot read: a damaged file or record.
    Corrupted,
    /// The engine refused or failed the operation for a reason of its own.
    Engine,
    /// A server backend cannot reach its database server, or lost the connection to it
    /// (the server stopped, restarted or is out of connections). Nothing is acknowledged;
    /// a write whose connection broke while it committed may or may not have been
    /// committed (an idempotency key makes the retry of a ledger commit safe). Retry once
    /// the server is back; each server backend documents how long it waits before
    /// answering this.
    Unavailable,
    /// The backend was closed ([`Backend::close`](crate::Backend::close)): every handle
    /// still held answers this, for reads and writes alike. Open the backend again.
    Closed,
    /// The backend was opened read-only ([`OpenOptions::read_only`](crate::OpenOptions)):
    /// reads work, every write through every store answers this and changes nothing.
    ReadOnly,
}

impl StorageErrorKind {
    /// The kind of an I/O error: [`NoSpace`](Self::NoSpace) for a full filesystem or a
    /// spent quota (`ENOSPC`, `EDQUOT`), [`Io`](Self::Io) for anything else.
    pub fn of_io(error: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        /// `ENOSPC` and `EDQUOT` on Linux, for errors built from a raw code by hand.
        const NO_SPACE_CODES: [i32; 2] = [28, 122];
        match error.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => StorageErrorKind::NoSpace,
            _ if error
                .raw_os_error()
                .is_some_and(|code| NO_SPACE_CODES.contains(&code)) =>
            {
                StorageErrorKind::NoSpace
            }
            _ => StorageErrorKind::Io,
        }
    }

    /// Words for this kind, as errors print it.
    pub fn describe(self) -> &'static str {
        match self {
            StorageErrorKind::Io => "I/O error",
            StorageErrorKind::NoSpace => "no space left on the device",
            StorageErrorKind::Poisoned => "writes refused after a failed durability step",
            StorageErrorKind::Corrupted => "corrupted data",
            StorageErrorKind::Engine => "engine error",
            StorageErrorKind::Unavailable => "database server unavailable",
            StorageErrorKind::Closed => "the backend is closed",
            StorageErrorKind::ReadOnly => "the backend is open read-only",
        }
    }
}

/// A failure of the engine underneath a store, with the engine's own error kept as
/// [`source`](std::error::Error::source).
///
/// `Display` says what failed (backend, where the store is, kind, what it was doing) and
/// leaves the engine's error to `source`, so printing the chain ([`error_chain`],
/// anyhow's `{:#}`) shows each cause once. Every error a persistent backend's stores
/// return names the store's [`location`](StorageError::location) (a directory, or a
/// server URL without its password), so a message from one of several open stores says
/// which one failed.
///
/// These are not caused by the caller's input; retrying may or may not help, depending on
/// [`kind`](StorageError::kind).
#[derive(Debug)]
pub struct StorageError {
    backend: &'static str,
    kind: StorageErrorKind,
    context: Cow<'static, str>,
    /// Where the store lives and the engine's error, in one box: both are read only when an
    /// error is shown, and keeping them out of line keeps every store error (and every
    /// `Result` of a store call, the hot paths' included) small.
    detail: Option<Box<Detail>>,
}

/// The out-of-line parts of a [`StorageError`].
#[derive(Debug, Default)]
struct Detail {
    /// Where the store lives, as people read it; shared by every error of one backend.
    location: Option<Arc<String>>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl StorageError {
    /// The detail box, made on first use.
    fn detail_mut(&mut self) -> &mut Detail {
        self.detail.get_or_insert_with(Box::default)
    }

    /// Names `location` unless the error already names one.
    fn locate_once(&mut self, location: &Arc<String>) {
        if self.location().is_none() {
            self.detail_mut().location = Some(Arc::clone(location));
        }
    }

    /// The engine's error, if there is one.
    fn source_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.detail.as_ref().and_then(|d| d.source.as_deref())
    }
}

impl StorageError {
    /// An engine failure of `kind` while doing `context`, caused by `source`.
    pub fn new(
        backend: &'static str,
        kind: StorageErrorKind,
        context: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        StorageError {
            backend,
            kind,
            context: context.into(),
            detail: Some(Box::new(Detail {
                location: None,
                source: Some(source.into()),
            })),
        }
    }

    /// An engine failure with no underlying error value (for example, a record that does
    /// not decode, found by the backend itself).
    pub fn without_source(
        backend: &'static str,
        kind: StorageErrorKind,
        context: impl Into<Cow<'static, str>>,
    ) -> Self {
        StorageError {
            backend,
            kind,
            context: context.into(),
            detail: None,
        }
    }

    /// Shorthand for a [`StorageErrorKind::Corrupted`] error without a source.
    pub fn corrupted(backend: &'static str, context: impl Into<Cow<'static, str>>) -> Self {
        Self::without_source(backend, StorageErrorKind::Corrupted, context)
    }

    /// The same error reported as `kind`: for a backend that learns more about a failure
    /// than its engine's error says (an `EIO` from a write on a full filesystem is
    /// [`StorageErrorKind::NoSpace`]).
    pub fn with_kind(mut self, kind: StorageErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same error, naming `location`: where the failing store lives, as people read it
    /// (a directory, or a server URL with its password left out). Backends attach it
    /// where their stores' errors leave them, so the code that builds an error need not
    /// know it.
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.detail_mut().location = Some(Arc::new(location.into()));
        self
    }

    /// Where the failing store lives (a directory, or a server URL without its password);
    /// `None` for a backend that has no location (the in-memory one).
    pub fn location(&self) -> Option<&str> {
        self.detail
            .as_ref()
            .and_then(|d| d.location.as_deref())
            .map(String::as_str)
    }

    /// The backend that failed (`"redb"`, `"sqlite"`, ...).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// What the backend was doing when it failed.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(location) => write!(f, "{} store at {location}: ", self.backend)?,
            None => write!(f, "{} backend: ", self.backend)?,
        }
        write!(f, "{} while {}", self.kind.describe(), self.context)
    }
}

/// Two storage errors are equal when they say the same: the same backend, location, kind
/// and context, and sources that print the same (the source itself is an engine's error value, which
/// cannot be compared). Tests and callers compare errors with `==` instead of their
/// `Debug` text.
impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        self.backend == other.backend
            && self.kind == other.kind
            && self.context == other.context
            && self.location() == other.location()
            && self.source_error().map(ToString::to_string)
                == other.source_error().map(ToString::to_string)
    }
}

impl Eq for StorageError {}

impl StdError for StorageError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source_error().map(|e| e as &(dyn StdError + 'static))
    }
}

/// The error of one store's calls: each embeds [`InputError`] for bad input and
/// [`StorageError`] for failures of the engine, so code generic over stores can ask what
/// kind of engine failure an error is (a full disk, a backend refusing writes).
pub trait StoreError: StdError + Send + Sync + 'static {
    /// The engine failure this error reports, if it is one.
    fn storage(&self) -> Option<&StorageError>;

    /// The engine failure this error reports, if it is one, to change: for the code that
    /// adds what the store that built it did not know ([`located`](Self::located)).
    fn storage_mut(&mut self) -> Option<&mut StorageError>;

    /// The same error, naming `location` when it is an engine failure that names no
    /// location yet (see [`StorageError::at`]); other errors are returned as they are.
    /// Backends call this where their stores' errors leave them.
    fn located(mut self, location: &Arc<String>) -> Self
    where
        Self: Sized,
    {
        if let Some(storage) = self.storage_mut() {
            storage.locate_once(location);
        }
        self
    }

    /// The [`StorageErrorKind`] of the engine failure this error reports, if it is one.
    fn storage_kind(&self) -> Option<StorageErrorKind> {
        self.storage().map(StorageError::kind)
    }
}

/// A [`StorageError`] on its own (what [`Backend::close`](crate::Backend::close) returns)
/// is an engine failure too.
impl StoreError for StorageError {
    fn storage(&self) -> Option<&StorageError> {
        Some(self)
    }

    fn storage_mut(&mut self) -> Option<&mut StorageError> {
        Some(self)
    }
}

/// `err` and its chain of sources, one per line (`caused by: ...`), for messages to people:
/// the stores' errors keep the engine's own error as their source, which `Display` alone
/// does not show. A cause whose text an earlier line already holds is left out (many
/// errors print their source inline).
pub fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str("\n  caused by: ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("outer: {0}")]
        Inline(#[source] std::io::Error),
        #[error("outer")]
        Apart(#[source] std::io::Error),
    }

    #[test]
    fn each_cause_appears_once() {
        let io = || std::io::Error::other("disk on fire");
        assert_eq!(error_chain(&Outer::Inline(io())), "outer: disk on fire");
        assert_eq!(
            error_chain(&Outer::Apart(io())),
            "outer\n  caused by: disk on fire"
        );
    }

    #[test]
    fn a_storage_error_leaves_its_cause_to_source() {
        let err = StorageError::new(
            "redb",
            StorageErrorKind::Io,
            "opening the database",
            std::io::Error::other("disk on fire"),
        );
        assert!(!err.to_string().contains("disk on fire"), "{err}");
        let chain = error_chain(&err);
        assert!(chain.ends_with("\n  caused by: disk on fire"), "{chain}");
        assert_eq!(chain.matches("disk on fire").count(), 1, "{chain}");
    }

    #[test]
    fn a_located_error_names_its_store_once() {
        let err = StorageError::without_source("redb", StorageErrorKind::Closed, "reading")
            .at("/data/ledger");
        assert_eq!(err.location(), Some("/data/ledger"));
        assert_eq!(
            err.to_string(),
            "redb store at /data/ledger: the backend is closed while reading"
        );
        let unplaced = StorageError::without_source("mem", StorageErrorKind::Closed, "reading");
        assert_eq!(
            unplaced.to_string(),
            "mem backend: the backend is closed while reading"
        );
        assert_ne!(err, unplaced);
    }
}
