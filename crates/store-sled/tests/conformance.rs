//! The conformance suite (`docs/contract.md`) run against the sled backend.

conformance::suite!(
    sled,
    store_sled::SledBackend,
    persistent = true,
    exclusive_open = true,
    shared = false,
    read_only = false
);
