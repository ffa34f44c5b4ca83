//! `store-migrate FROM TO`: copies every store from one backend to another, reopens the
//! destination and verifies it store by store. `store-migrate --help` shows every option,
//! examples and the exit codes: 0 copied and verified, 1 verification failed, 2 bad
//! arguments, 3 source or destination error.

mod cli;
mod progress;

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use store::migrate::{self, MigrateError};

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
    let text = store::error_chain(err);
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (plan, options) = (cli.plan(), cli.options());
    let progress = Reporter::for_stderr();
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
