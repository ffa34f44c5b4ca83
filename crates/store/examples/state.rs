//! Stream-operator state: a word count checkpointed with a snapshot, rolled back after a
//! simulated failure, and restored from the portable snapshot bytes.
//!
//! `cargo run -p swapstore --example state --features all -- [URL]`; without a URL it uses
//! `$STORE_BACKEND`, else a persistent backend in a temporary directory. The code is
//! `demo::state_demo` (in `examples/demo`), which the tests also run on every backend.

mod demo;

fn main() -> std::process::ExitCode {
    demo::run_example("state", demo::state_demo)
}
