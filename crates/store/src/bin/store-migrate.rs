//! `store-migrate <from-url> <to-url> [--partition NAME]... [--book NAME]... [--callee HEX]...`:
//! copies every store from one backend to another, reopens the destination and verifies it
//! store by store. Exits 0 when the copy matches, 1 on any difference or failure, 2 on a
//! usage error.

use std::process::ExitCode;

use store::migrate::{self, Command, USAGE};

fn main() -> ExitCode {
    match migrate::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Migrate { from, to, plan }) => match migrate::migrate(&from, &to, &plan) {
            Ok(report) => {
                println!("{report}");
                if report.is_exact() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(err) => {
                eprintln!("store-migrate: {}", store::error_chain(&err));
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("store-migrate: {err}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
