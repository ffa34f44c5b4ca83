//! [`Failure`]: why a reliability check failed, as a value the tests report.

use std::fmt;

/// A failed reliability check: what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }

    /// The same failure with `context` in front: where it happened.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Failure(format!("{context}: {}", self.0))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Turns any error into a [`Failure`] saying what was being done.
pub trait OrFail<T> {
    /// `Ok` unchanged; an error becomes a [`Failure`] naming `what`, the error and each of
    /// its sources (so an engine's own error is not lost behind a store's).
    fn or_fail(self, what: impl fmt::Display) -> Result<T, Failure>;
}

impl<T, E: std::error::Error> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{what}: {}", store_api::error_chain(&e))))
    }
}

/// Returns a [`Failure`] from the enclosing function unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Failure(format!($($fmt)+)).into());
        }
    };
}
