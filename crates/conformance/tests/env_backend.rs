//! The whole suite on the backend `STORE_BACKEND` names (`mem` when unset), through
//! `store::EnvBackend`: every store behind a trait object, chosen at run time.
//!
//! ```sh
//! cargo test -p conformance                                  # mem, through dyn
//! STORE_BACKEND=sqlite: cargo test -p conformance           # SQLite
//! STORE_BACKEND=redb: cargo test -p conformance -- engine   # one store on redb
//! ```
//!
//! Each backend crate also runs the suite on its own type (`cargo test -p swapstore-redb`);
//! this file is how a deployment checks the backend it selects by name, and how every
//! trait is exercised through `dyn` in `cargo test --workspace`.

#[cfg(all(store_backend_persistent, not(store_backend_no_read_only)))]
conformance::suite!(env, store::EnvBackend, persistent = true);

#[cfg(store_backend_no_read_only)]
conformance::suite!(
    env,
    store::EnvBackend,
    persistent = true,
    exclusive_open = true,
    shared = false,
    read_only = false
);

#[cfg(not(store_backend_persistent))]
conformance::suite!(env, store::EnvBackend, persistent = false);
