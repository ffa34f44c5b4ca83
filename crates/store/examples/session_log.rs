//! A session log: an agent session as append-only segments with a separate trace, a
//! truncated interrupted turn and a summary segment written whole.
//!
//! `cargo run -p swapstore --example session_log --features all -- [URL]`; without a URL it
//! uses `$STORE_BACKEND`, else a persistent backend in a temporary directory. The code is
//! `demo::session_log_demo` (in `examples/demo`), which the tests also run on every backend.

mod demo;

fn main() -> std::process::ExitCode {
    demo::run_example("session_log", demo::session_log_demo)
}
