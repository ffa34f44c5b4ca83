//! The conformance suite (SPEC.md) run against the in-memory backend.

conformance::suite!(mem, store_mem::MemBackend, persistent = false);
