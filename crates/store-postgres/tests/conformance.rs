//! The conformance suite (`docs/contract.md`) on the PostgreSQL backend. Each test gets a fresh
//! schema on a throwaway server this test binary starts once (or on the server
//! `STORE_TEST_POSTGRES_URL` names): see `store_postgres::scratch`.

conformance::suite!(
    postgres,
    store_postgres::PostgresBackend,
    persistent = true,
    exclusive_open = false,
    shared = true
);
