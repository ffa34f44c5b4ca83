//! Reliability harness (being written).
