//! The facade crate (being written).
