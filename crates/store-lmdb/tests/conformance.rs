//! The conformance suite (`docs/contract.md`) run against the LMDB backend.

conformance::suite!(lmdb, store_lmdb::LmdbBackend, persistent = true);
