//! The conformance suite (`docs/contract.md`) run against the fjall backend.

conformance::suite!(
    fjall,
    store_fjall::FjallBackend,
    persistent = true,
    exclusive_open = true,
    shared = false,
    read_only = false
);
