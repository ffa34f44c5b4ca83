//! The one error type of the benchmarks: what failed, and the store's error as its source.

use std::fmt;

/// A store or setup call failed while benchmarking. The source error is kept.
#[derive(Debug)]
pub struct BenchError {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BenchError {
    /// An error saying `context`, caused by `source`.
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BenchError {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An error saying `context`, with no underlying error.
    pub fn msg(context: impl Into<String>) -> Self {
        BenchError {
            context: context.into(),
            source: None,
        }
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Adds a context to a store's `Result`.
pub trait Context<T> {
    /// Turns the error into a [`BenchError`] saying `context`.
    fn context(self, context: &str) -> Result<T, BenchError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    #[inline]
    fn context(self, context: &str) -> Result<T, BenchError> {
        self.map_err(|e| BenchError::new(context, e))
    }
}

/// For the criterion bench binaries, which cannot return errors from their closures:
/// prints the error and its causes, then exits the process with status 1.
pub fn exit_on_error<T>(result: Result<T, BenchError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            std::process::exit(1)
        }
    }
}
