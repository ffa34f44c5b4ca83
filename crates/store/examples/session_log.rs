//! A session log: an agent session as append-only segments with a separate trace, a
//! truncated interrupted turn and a summary segment written whole.
//!
//! `cargo run -p store --example session_log --features all -- [URL]`; without a URL it
//! uses `$STORE_BACKEND`, else a persistent backend in a temporary directory. The code is
//! [`store::demo::session_log_demo`], which the tests run on every backend.

fn main() -> std::process::ExitCode {
    store::demo::run_example("session_log", store::demo::session_log_demo)
}
