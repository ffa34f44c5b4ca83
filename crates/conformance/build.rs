//! Reads `STORE_BACKEND` when the tests are built, so `tests/env_backend.rs` generates the
//! suite with the flags of the backend it names (`cfg(store_backend_persistent)` for every
//! backend but `mem`): tests the backend cannot run show as ignored, never as passed. Cargo
//! rebuilds the tests when the variable changes. A name that is no backend is left to
//! `store::EnvBackend::open`, which fails every test saying why.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(store_backend_persistent)");
    println!("cargo::rustc-check-cfg=cfg(store_backend_no_read_only)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=STORE_BACKEND");
    let value = std::env::var("STORE_BACKEND").unwrap_or_default();
    let value = value.trim();
    let scheme = value.split_once(':').map_or(value, |(scheme, _)| scheme);
    if !scheme.is_empty() && scheme != "mem" {
        println!("cargo::rustc-cfg=store_backend_persistent");
    }
    // sled and fjall open no store read-only (Capabilities::read_only_open).
    if matches!(scheme, "sled" | "fjall") {
        println!("cargo::rustc-cfg=store_backend_no_read_only");
    }
}
