//! The conformance suite (`docs/contract.md`) run against the in-memory backend.

conformance::suite!(mem, store_mem::MemBackend, persistent = false);
