//! [`Error`]: any error of the stores and of opening them, so an application that uses
//! several stores can return one error type and use `?` across all of them.

use store_api::{
    EngineError, LedgerError, OpenError, SegmentError, SideEffectError, StateError, StorageError,
    StorageErrorKind, StoreError,
};

use crate::stores::StoresError;

/// Any error of the stores, or of opening them. Each variant keeps the store's own error
/// (`Display` and `source` are the store error's), so nothing is lost by converting with
/// `?`; [`storage_kind`](Self::storage_kind) says what kind of engine failure it was, if
/// any.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A backend could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A backend could not be opened from a config or URL.
    #[error(transparent)]
    Stores(#[from] StoresError),
    /// A `StoreEngine` call failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A `StateStore` call failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A `LedgerStore` call failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A `SegmentLogStore` call failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A `SideEffectStore` call failed.
    #[error(transparent)]
    SideEffect(#[from] SideEffectError),
    /// The engine underneath failed (`Backend::close`, for one).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Error {
    /// The kind of engine failure this error reports (a full disk, a closed backend, ...),
    /// or `None` when it is not an engine failure (bad input, a conflict, a bad URL).
    pub fn storage_kind(&self) -> Option<StorageErrorKind> {
        match self {
            Error::Open(OpenError::Storage(e)) | Error::Storage(e) => Some(e.kind()),
            Error::Open(_) | Error::Stores(_) => None,
            Error::Engine(e) => e.storage_kind(),
            Error::State(e) => e.storage_kind(),
            Error::Ledger(e) => e.storage_kind(),
            Error::Segment(e) => e.storage_kind(),
            Error::SideEffect(e) => e.storage_kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use store_api::{Backend, StateStore, StoreEngine};
    use store_mem::MemBackend;

    use super::*;

    /// One function, `?` across the engine, a state partition and `close`.
    fn across_stores(backend: &MemBackend) -> Result<Option<store_api::Bytes>, Error> {
        backend.engine().put_batch(&[(b"k", b"v")])?;
        let mut state = backend.state_store("p")?;
        state.put(b"k", b"v")?;
        state.flush()?;
        backend.close()?;
        Ok(backend.engine().get(b"k")?)
    }

    #[test]
    fn question_mark_works_across_stores_and_keeps_the_kind() {
        let backend = MemBackend::new(store_api::OpenOptions::default());
        let error = across_stores(&backend).unwrap_err();
        assert!(matches!(error, Error::Engine(_)), "{error:?}");
        assert_eq!(error.storage_kind(), Some(StorageErrorKind::Closed));
        assert!(error.to_string().contains("closed"), "{error}");
    }
}
