//! Timestamps and the clock a backend is given.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::parse::{self, ParseError};

/// A point in time: microseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp `micros` microseconds after the epoch.
    ///
    /// ```
    /// # use store_api::Timestamp;
    /// let at = Timestamp::from_micros(1_700_000_000_000_000);
    /// assert_eq!(at.as_micros(), 1_700_000_000_000_000);
    /// assert_eq!(at.to_string(), "1700000000000000µs");
    /// assert_eq!("1700000000000000us".parse::<Timestamp>()?, at);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
}

/// Microseconds since the epoch with the unit, e.g. `1700000000000000µs`; `FromStr` reads
/// it back.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}µs", self.0)
    }
}

/// What a timestamp's text should look like.
const TIMESTAMP_EXPECTED: &str = "microseconds since the Unix epoch: decimal digits with an optional `µs` or `us` suffix, \
     such as 1700000000000000µs";

/// Reads what `Display` writes (`1700000000000000µs`), the same with an ASCII `us` suffix,
/// or the bare number of microseconds; anything else (a sign, spaces, another unit, a
/// number past `u64::MAX`) is a [`ParseError`].
impl FromStr for Timestamp {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let digits = s
            .strip_suffix("µs")
            .or_else(|| s.strip_suffix("us"))
            .unwrap_or(s);
        parse::decimal_u64("timestamp", s, digits, TIMESTAMP_EXPECTED).map(Timestamp)
    }
}

/// The timestamp `micros` microseconds after the epoch (as [`Timestamp::from_micros`]).
impl From<u64> for Timestamp {
    fn from(micros: u64) -> Self {
        Timestamp(micros)
    }
}

/// Microseconds since the epoch (as [`Timestamp::as_micros`]).
impl From<Timestamp> for u64 {
    fn from(at: Timestamp) -> Self {
        at.0
    }
}

/// Where a store gets the time it stamps records with.
///
/// Backends are given one in [`OpenOptions`](crate::OpenOptions); tests inject a
/// [`ManualClock`]. A store never assumes the clock is monotonic: the ledger keeps `at`
/// non-decreasing within a book by itself.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// A clock that only moves when told to: for tests and deterministic replays.
///
/// ```
/// use std::sync::Arc;
/// use store_api::*;
///
/// let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_000)));
/// let backend = store_mem::MemBackend::new(OpenOptions::default().clock(clock.clone()));
/// clock.advance(500);
/// let usd = AssetDef { id: AssetId::new("USD")?, precision: 2, name: "US dollar".into() };
/// backend.ledger().register_asset(&usd)?;
/// let events = backend.ledger().read_events(&Book::system(), None, 10)?;
/// assert_eq!(events[0].at, Timestamp::from_micros(1_500)); // the ledger stamps with the clock
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicU64::new(start.0))
    }

    /// Moves the clock to `to` (backwards too: stores must cope).
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `micros`.
    pub fn advance(&self, micros: u64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}
