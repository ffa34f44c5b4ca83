//! How an example chooses its backend: the URL argument, else `STORE_BACKEND`, else a
//! persistent backend in a fresh temporary directory (else `mem:`).

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use tempfile::TempDir;

use super::DemoError;
use swapstore::{BackendConfig, BackendKind, STORE_BACKEND_VAR, Stores, StoresError};

/// The stores an example runs on, and the temporary directory holding them when the
/// example chose one itself (removed when this is dropped, after the stores are closed).
#[derive(Debug)]
pub struct ExampleStores {
    stores: Stores,
    config: BackendConfig,
    // Declared after `stores`, so the backend is closed before its directory is removed.
    _temp: Option<TempDir>,
}

impl ExampleStores {
    /// The open stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The config they were opened from.
    pub fn config(&self) -> &BackendConfig {
        &self.config
    }

    /// Whether the example chose a temporary directory itself (and removes it on drop).
    pub fn is_temporary(&self) -> bool {
        self._temp.is_some()
    }
}

/// Opens the backend an example runs on: `url` when given, else the one `STORE_BACKEND`
/// names, else the [default persistent backend](BackendKind::default_persistent) in a new
/// temporary directory, else `mem:`.
pub fn open_for_example(url: Option<&str>) -> Result<ExampleStores, DemoError> {
    let chosen = match url {
        Some(url) => Some(url.parse().map_err(StoresError::from)?),
        None => BackendConfig::from_env().map_err(StoresError::from)?,
    };
    let (config, temp) = match chosen {
        Some(config) => (config, None),
        None => match BackendKind::default_persistent() {
            Some(kind) => {
                let temp = tempfile::Builder::new()
                    .prefix(&format!("store-example-{kind}-"))
                    .tempdir()
                    .map_err(DemoError::TempDir)?;
                (BackendConfig::new(kind, temp.path().join("db")), Some(temp))
            }
            None => (BackendConfig::mem(), None),
        },
    };
    let stores = Stores::open(&config)?;
    Ok(ExampleStores {
        stores,
        config,
        _temp: temp,
    })
}

/// The whole `main` of an example: reads the optional URL argument, opens the backend with
/// [`open_for_example`], runs `demo` and prints its report. Exits with 2 on a usage error
/// and 1 when opening or the demo fails, printing the error and its causes.
pub fn run_example<R, F>(name: &str, demo: F) -> ExitCode
where
    R: Display,
    F: FnOnce(&Stores) -> Result<R, DemoError>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = match args.as_slice() {
        [] => None,
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{}", usage(name));
            return ExitCode::SUCCESS;
        }
        [url] => Some(url.as_str()),
        _ => {
            eprintln!("{}", usage(name));
            return ExitCode::from(2);
        }
    };
    let opened = match open_for_example(url) {
        Ok(opened) => opened,
        Err(err) => return fail(&err),
    };
    let temporary = if opened.is_temporary() {
        " (a temporary directory, removed on exit)"
    } else {
        ""
    };
    let report = match demo(opened.stores()) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("backend: {}{temporary}", opened.config());
            return fail(&err);
        }
    };
    // Written, not `println!`ed: a closed stdout (`| head`) ends the example quietly
    // instead of panicking.
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "backend: {}{temporary}", opened.config())
        .and_then(|()| writeln!(out, "{}", report.to_string().trim_end()));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn usage(name: &str) -> String {
    format!(
        "usage: cargo run -p swapstore --example {name} --features all -- [URL]\n\
         URL: mem: | redb:<dir> | lmdb:<dir> | sled:<dir> | sqlite:<dir> \
         | postgres://user@host/db?schema=NAME, options ?durability=relaxed&cache=N\n\
         without URL: ${STORE_BACKEND_VAR}, else a persistent backend in a temporary directory"
    )
}

fn fail(err: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {}", swapstore::error_chain(err));
    ExitCode::FAILURE
}
