//! Shared workload generators (being written).
