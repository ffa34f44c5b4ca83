//! A small ledger: register an asset, open accounts, commit, print balances and the trial
//! balance.
//!
//! `cargo run -p store --example ledger --features all -- [URL]`; without a URL it uses
//! `$STORE_BACKEND`, else a persistent backend in a temporary directory. The code is
//! [`store::demo::ledger_demo`], which the tests run on every backend.

fn main() -> std::process::ExitCode {
    store::demo::run_example("ledger", store::demo::ledger_demo)
}
