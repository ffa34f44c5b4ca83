//! `store-migrate FROM TO`: copies every store from one backend to another, reopens the
//! destination and verifies it store by store; `store-migrate --follow FROM TO` keeps TO
//! following FROM's batch log. `store-migrate --help` shows every option, examples and the
//! exit codes: 0 copied and verified (or followed until stopped), 1 verification failed, 2
//! bad arguments, 3 source or destination error, 4 the follower needs a resync.

mod cli;
mod progress;

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use swapstore::migrate::{self, MigrateError};
use swapstore::replicate::{self, Ended, FollowError, StopHandle};

use cli::Cli;
use progress::Reporter;

/// Exit code: copied and verified.
const VERIFIED: u8 = 0;
/// Exit code: verification found differences (or an unfinished destination).
const DIFFERS: u8 = 1;
/// Exit code: bad arguments (clap uses it for usage errors too).
const BAD_ARGUMENTS: u8 = 2;
/// Exit code: the source or the destination failed.
const STORE_ERROR: u8 = 3;
/// Exit code: `--follow` cannot go on from what the follower holds (resync it).
const RESYNC: u8 = 4;
/// Exit status of a second SIGINT or SIGTERM while a follower stops.
const SIGNALLED: i32 = 130;

/// The JSON object `--json` prints.
#[derive(Serialize)]
struct JsonOutput<'r, R: Serialize> {
    /// `verified`, `differs`, `dry-run` or `error`.
    status: &'static str,
    /// The process's exit code.
    exit_code: u8,
    /// The report, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'r R>,
    /// The error with its causes, when the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Prints `report` (text or JSON) and returns `exit_code`.
fn finish<R: Serialize + std::fmt::Display>(
    json: bool,
    status: &'static str,
    exit_code: u8,
    report: &R,
) -> ExitCode {
    if json {
        print_json(&JsonOutput {
            status,
            exit_code,
            report: Some(report),
            error: None,
        });
    } else {
        println!("{report}");
    }
    ExitCode::from(exit_code)
}

fn print_json<R: Serialize>(output: &JsonOutput<'_, R>) {
    match serde_json::to_string_pretty(output) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("store-migrate: cannot write the JSON report: {e}"),
    }
}

fn fail(json: bool, err: &MigrateError) -> ExitCode {
    let exit_code = if err.is_bad_argument() {
        BAD_ARGUMENTS
    } else {
        STORE_ERROR
    };
    fail_with(json, exit_code, swapstore::error_chain(err))
}

fn fail_with(json: bool, exit_code: u8, text: String) -> ExitCode {
    if json {
        print_json::<()>(&JsonOutput {
            status: "error",
            exit_code,
            report: None,
            error: Some(text),
        });
    } else {
        eprintln!("store-migrate: error: {text}");
    }
    ExitCode::from(exit_code)
}

/// A stop handle set by the first SIGINT or SIGTERM; a second one exits at once.
fn stop_on_signals() -> std::io::Result<StopHandle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = StopHandle::new();
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(signal, SIGNALLED, stop.flag())?;
        signal_hook::flag::register(signal, stop.flag())?;
    }
    Ok(stop)
}

/// Log lines for the `tracing` events of the library on stderr, at the level `-v` asks for:
/// warnings without it, `info` with -v, `debug` with -vv, everything with -vvv. A follower
/// without -v logs `info` when stderr is not a terminal (a service's log) and only warnings
/// on a terminal, where the progress line shows the rest.
fn log_to_stderr(verbose: u8, following: bool) {
    use std::io::IsTerminal;
    use tracing::Level;
    let level = match verbose {
        0 if following && !std::io::stderr().is_terminal() => Level::INFO,
        0 => Level::WARN,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    // Fails only when a subscriber is already set, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

/// `--follow FROM TO`.
fn follow(cli: &Cli, progress: &Reporter) -> ExitCode {
    let stop = match stop_on_signals() {
        Ok(stop) => stop,
        Err(e) => {
            let text = format!("cannot handle SIGINT and SIGTERM: {e}");
            return fail_with(cli.json, STORE_ERROR, text);
        }
    };
    match replicate::follow(&cli.from, &cli.to, &cli.follow_options(), &stop, progress) {
        Ok(report) => {
            progress.finish_following();
            let status = match report.tail.ended {
                Ended::Stopped => "stopped",
                Ended::CaughtUp => "caught-up",
            };
            finish(cli.json, status, VERIFIED, &report)
        }
        Err(err) => {
            progress.finish_following();
            fail_with(
                cli.json,
                follow_exit_code(&err),
                swapstore::error_chain(&err),
            )
        }
    }
}

fn follow_exit_code(err: &FollowError) -> u8 {
    if err.needs_resync() {
        RESYNC
    } else if err.is_bad_argument() {
        BAD_ARGUMENTS
    } else {
        STORE_ERROR
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr(cli.verbose, cli.follow);
    let (plan, options) = (cli.plan(), cli.options());
    let progress = Reporter::for_stderr();
    if cli.follow {
        return follow(&cli, &progress);
    }
    if cli.dry_run {
        return match migrate::dry_run(&cli.from, &cli.to, &plan, options, &progress) {
            Ok(report) => finish(cli.json, "dry-run", VERIFIED, &report),
            Err(err) => fail(cli.json, &err),
        };
    }
    let result = if cli.verify_only {
        migrate::verify_only(&cli.from, &cli.to, &plan, &progress)
    } else {
        migrate::migrate(&cli.from, &cli.to, &plan, options, &progress)
    };
    match result {
        Ok(report) if report.is_exact() => finish(cli.json, "verified", VERIFIED, &report),
        Ok(report) => finish(cli.json, "differs", DIFFERS, &report),
        Err(err) => fail(cli.json, &err),
    }
}
