//! Stream-operator state: a word count checkpointed with a snapshot, rolled back after a
//! simulated failure, and restored from the portable snapshot bytes.
//!
//! `cargo run -p store --example state --features all -- [URL]`; without a URL it uses
//! `$STORE_BACKEND`, else a persistent backend in a temporary directory. The code is
//! [`store::demo::state_demo`], which the tests run on every backend.

fn main() -> std::process::ExitCode {
    store::demo::run_example("state", store::demo::state_demo)
}
