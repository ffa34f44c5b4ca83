//! A small ledger: register an asset, open accounts, commit, print balances and the trial
//! balance.
//!
//! `cargo run -p swapstore --example ledger --features all -- [URL]`; without a URL it uses
//! `$STORE_BACKEND`, else a persistent backend in a temporary directory. The code is
//! `demo::ledger_demo` (in `examples/demo`), which the tests also run on every backend.

mod demo;

fn main() -> std::process::ExitCode {
    demo::run_example("ledger", demo::ledger_demo)
}
