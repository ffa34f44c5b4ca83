//! The conformance suite on the SQLite backend.

conformance::suite!(sqlite, store_sqlite::SqliteBackend, persistent = true);
