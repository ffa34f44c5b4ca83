//! The conformance suite (`docs/contract.md`) run against the redb backend.

conformance::suite!(redb, store_redb::RedbBackend, persistent = true);
