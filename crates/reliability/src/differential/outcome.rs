//! Outcomes made comparable across backends: `Ok` values by their `Debug` form, errors by
//! variant and fields. Engine failures (`StorageError`) keep only their kind, because
//! their messages name the engine.

use std::fmt::Debug;

use store_api::{EngineError, LedgerError, OpenError, SegmentError, SideEffectError, StateError};

/// The comparable form of one call's result.
pub type Outcome = String;

/// `Ok(value)` as `Ok(<Debug>)`, an error as `Err(<shape>)`.
pub fn outcome<T: Debug, E>(result: &Result<T, E>, shape: impl Fn(&E) -> String) -> Outcome {
    match result {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({})", shape(e)),
    }
}

/// The shape of an engine error.
pub fn engine(e: &EngineError) -> String {
    match e {
        EngineError::Storage(s) => format!("Storage({:?})", s.kind()),
        other => format!("{other:?}"),
    }
}

/// The shape of a state error.
pub fn state(e: &StateError) -> String {
    match e {
        StateError::Storage(s) => format!("Storage({:?})", s.kind()),
        other => format!("{other:?}"),
    }
}

/// The shape of a ledger error.
pub fn ledger(e: &LedgerError) -> String {
    match e {
        LedgerError::Storage(s) => format!("Storage({:?})", s.kind()),
        other => format!("{other:?}"),
    }
}

/// The shape of a segment error.
pub fn segment(e: &SegmentError) -> String {
    match e {
        SegmentError::Storage(s) => format!("Storage({:?})", s.kind()),
        SegmentError::Codec { op, .. } => format!("Codec({op})"),
        other => format!("{other:?}"),
    }
}

/// The shape of a side-effect error.
pub fn side_effect(e: &SideEffectError) -> String {
    match e {
        SideEffectError::Storage(s) => format!("Storage({:?})", s.kind()),
        other => format!("{other:?}"),
    }
}

/// The shape of an open error: its variant only (paths and engine messages differ).
pub fn open(e: &OpenError) -> String {
    match e {
        OpenError::Locked { .. } => "Locked".into(),
        OpenError::NotADirectory { .. } => "NotADirectory".into(),
        OpenError::ForeignData { .. } => "ForeignData".into(),
        OpenError::Corrupted { .. } => "Corrupted".into(),
        OpenError::PermissionDenied { .. } => "PermissionDenied".into(),
        OpenError::Io { source, .. } => format!("Io({:?})", source.kind()),
        OpenError::Storage(s) => format!("Storage({:?})", s.kind()),
        other => format!("Other({other})"),
    }
}
