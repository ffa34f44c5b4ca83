//! Running the `store-migrate` binary from the command-line tests (`cli.rs`,
//! `cli_follow.rs`, `migrate_source.rs`), which all need the `cli` feature that builds it.
//! Kept apart from `common`, which the tests without that feature include too.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The `store-migrate` binary cargo built for these tests.
pub const EXE: &str = env!("CARGO_BIN_EXE_store-migrate");

/// Runs `store-migrate` with `args` (and without the facade's backend variable, so that a
/// developer's environment cannot change what it opens) and returns what it did.
pub fn store_migrate(args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .env_remove(swapstore::STORE_BACKEND_VAR)
        .output()
        .unwrap()
}

/// `bytes` as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit code and both output streams, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The standard output as JSON, or a failure that shows what the tool printed.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", shown(out)))
}
