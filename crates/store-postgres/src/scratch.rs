//! Scratch stores for tests and benchmarks: [`fresh_location`] is a new, empty schema on a
//! server tests may use, which is what [`Backend::scratch_location`](store_api::Backend::scratch_location) of
//! [`PostgresBackend`](crate::PostgresBackend) answers (so the conformance suite, the
//! benchmarks and the stress tests run on PostgreSQL unchanged).
//!
//! The server is, in this order:
//! 1. the one the `STORE_TEST_POSTGRES_URL` variable names (a URL as in
//!    [`location`](crate::location); its `schema` is replaced by a fresh one per call);
//! 2. otherwise a throwaway server ([`ThrowawayServer`]), started once per process on first
//!    use: `initdb` into a new temporary directory, then `pg_ctl start` listening only on a
//!    Unix socket in that directory (no TCP port), with `fsync` off (a test server needs no
//!    crash safety; the durability settings of the backend are still what it sends), or on
//!    when [`FSYNC_VAR`] says `on` (benchmarks of durable commits). As root (PostgreSQL
//!    refuses to run as root), the directory is given to the `postgres` user and the
//!    server runs as that user through `runuser`.
//!
//! The throwaway server is stopped (`pg_ctl stop -m immediate`) and its directory removed
//! when the process ends, however it ends (tests passed, failed, panicked, or the process
//! was killed): a small watchdog shell started beside it waits for its standard input to
//! close, which the kernel does when this process exits.
//!
//! `initdb` and `pg_ctl` are looked up in the directory `STORE_TEST_POSTGRES_BIN` names,
//! then on `PATH`, then in Debian's `/usr/lib/postgresql/<version>/bin` (the newest
//! version) and `/usr/local/pgsql/bin`. Without them, every scratch location is an error
//! that says to install the `postgresql` package.
//!
//! A test that stops, kills and restarts a server starts a [`ThrowawayServer`] of its own
//! (whatever `STORE_TEST_POSTGRES_URL` says: it needs a server it may kill), so that the
//! other tests of its binary never see their server go.
//!
//! Schemas made on a server of `STORE_TEST_POSTGRES_URL` are left there for inspection;
//! they are named `scratch_<pid>_<n>_<time>` (`DROP SCHEMA ... CASCADE` removes one).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use store_api::OpenError;

use crate::location::PostgresLocation;

/// The variable naming an existing server for tests, as a URL.
pub const URL_VAR: &str = "STORE_TEST_POSTGRES_URL";

/// The variable naming the directory of `initdb` and `pg_ctl`.
pub const BIN_VAR: &str = "STORE_TEST_POSTGRES_BIN";

/// The variable that makes a throwaway server sync its log to the disk: `on` starts it with
/// `fsync` and `full_page_writes` on, as a production server runs, so that a durable
/// commit waits for the disk (the benchmarks' durable rows); unset or `off`, it starts with
/// both off (tests need no crash safety and run faster).
pub const FSYNC_VAR: &str = "STORE_TEST_POSTGRES_FSYNC";

/// Whether [`FSYNC_VAR`] asks for a throwaway server that syncs to the disk; any value but
/// `on` or `off` is an error naming the variable.
fn syncs_to_disk() -> Result<bool, String> {
    match std::env::var(FSYNC_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(value) if value == "off" => Ok(false),
        Ok(value) if value == "on" => Ok(true),
        Ok(value) => Err(format!("{FSYNC_VAR}={value:?}: expected `on` or `off`")),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("{FSYNC_VAR}={value:?}: expected `on` or `off`"))
        }
    }
}

/// The package that brings the server (Debian and Ubuntu name it so).
pub const PACKAGE: &str = "postgresql";

/// Connections each scratch backend's pool may keep (public so that benchmarks can say how
/// many their runs had).
pub const SCRATCH_POOL: u32 = 4;

/// The server of this process's scratch stores, started (or found) once.
static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// Scratch schemas made by this process so far.
static MADE: AtomicU64 = AtomicU64::new(0);

/// A server for scratch stores.
struct Server {
    /// The server's location (its schema is replaced per scratch store).
    base: PostgresLocation,
    /// The throwaway server, stopped when this process exits; `None` for a server of
    /// [`URL_VAR`].
    _throwaway: Option<ThrowawayServer>,
}

/// A new, empty schema on this process's test server (see the [module docs](self)).
pub fn fresh_location() -> Result<PostgresLocation, OpenError> {
    let server = SERVER
        .get_or_init(server)
        .as_ref()
        .map_err(|message| OpenError::Unreachable {
            location: "the PostgreSQL test server".to_owned(),
            source: message.clone().into(),
        })?;
    scratch_schema(&server.base)
}

/// `base` in a new scratch schema (`scratch_<pid>_<n>_<time>`), with the scratch pool size.
fn scratch_schema(base: &PostgresLocation) -> Result<PostgresLocation, OpenError> {
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("scratch_{}_{n}_{:x}", std::process::id(), nanos % (1 << 40));
    Ok(base
        .clone()
        .with_schema(&schema)?
        .with_pool_size(SCRATCH_POOL))
}

/// The server of [`URL_VAR`], or a throwaway one.
fn server() -> Result<Server, String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            let base = url
                .trim()
                .parse::<PostgresLocation>()
                .map_err(|e| format!("{URL_VAR}: {}", store_api::error_chain(&e)))?;
            Ok(Server {
                base,
                _throwaway: None,
            })
        }
        _ => {
            let throwaway = ThrowawayServer::start()?;
            Ok(Server {
                base: throwaway.base.clone(),
                _throwaway: Some(throwaway),
            })
        }
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin_dir() -> Result<PathBuf, String> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BIN_VAR) {
        let dir = PathBuf::from(dir);
        return if has_tools(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "{BIN_VAR}={} holds no initdb and pg_ctl",
                dir.display()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| std::fs::canonicalize(dir.join("initdb")).ok())
        .filter_map(|initdb| initdb.parent().map(Path::to_path_buf));
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((version, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    debian.sort();
    let candidates = on_path
        .chain(debian.into_iter().rev().map(|(_, dir)| dir))
        .chain([PathBuf::from("/usr/local/pgsql/bin")]);
    for dir in candidates {
        if has_tools(&dir) {
            return Ok(dir);
        }
    }
    Err(format!(
        "PostgreSQL is not installed (no initdb and pg_ctl on PATH, in \
         /usr/lib/postgresql/<version>/bin or /usr/local/pgsql/bin): install the \
         `{PACKAGE}` package (apt-get install {PACKAGE}), set {BIN_VAR} to the directory of \
         initdb and pg_ctl, or set {URL_VAR} to a server the tests may use"
    ))
}

/// `program args...`, run as the `postgres` user when this process is root.
fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `command` to completion; its output is the error when it fails.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The numeric id `id -u postgres` (or `-g`) prints.
fn postgres_id(flag: &str) -> Result<u32, String> {
    let output = Command::new("id")
        .args([flag, "postgres"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            format!(
                "running the throwaway PostgreSQL server as root needs the `postgres` user \
                 (the `{PACKAGE}` package creates it), and `id {flag} postgres` found none"
            )
        })
}

/// The end of the server log, for an error message.
fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or_default().to_owned()
}

/// `text` quoted for `sh`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A throwaway PostgreSQL server: `initdb` into a new temporary directory, listening only
/// on a Unix socket there, `fsync` off (see the [module docs](self)). The per-process
/// server of [`fresh_location`] is one; a test that stops, kills and restarts a server
/// starts one of its own, so that the other tests of its binary never see it go.
///
/// It is stopped (`pg_ctl stop -m immediate`) and its directory removed when it is
/// dropped, or when this process ends however it ends: a watchdog shell started beside it
/// waits for its standard input to close.
pub struct ThrowawayServer {
    /// The directory of `initdb` and `pg_ctl`.
    bin: PathBuf,
    /// Whether the server runs as the `postgres` user (this process is root).
    as_postgres: bool,
    /// The data directory.
    data: PathBuf,
    /// The server log.
    log: PathBuf,
    /// The server's options (`pg_ctl start -o`).
    options: String,
    /// The server's location in the default schema.
    base: PostgresLocation,
    /// The watchdog, whose standard input closes when this server is dropped or this
    /// process exits.
    watchdog: Mutex<Child>,
}

impl std::fmt::Debug for ThrowawayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrowawayServer")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl ThrowawayServer {
    /// `initdb`s and starts a new server, with the watchdog that stops it and removes its
    /// directory when it is dropped or this process exits. The error says why (PostgreSQL
    /// not installed: which package to install).
    pub fn start() -> Result<ThrowawayServer, String> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("store-pg-")
            .tempdir()
            .map_err(|e| format!("creating the test server's directory: {e}"))?
            .keep();
        let dir_text = dir
            .to_str()
            .ok_or_else(|| format!("the temporary directory {} is not UTF-8", dir.display()))?
            .to_owned();
        if as_postgres {
            let (uid, gid) = (postgres_id("-u")?, postgres_id("-g")?);
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("giving {dir_text} to the postgres user: {e}"))?;
        }
        let data = dir.join("data");
        let log = dir.join("server.log");
        let pg_ctl = bin.join("pg_ctl");

        // The watchdog first: from here on, whatever happens to this process, the server
        // and its directory go away with it.
        let stop = {
            let mut stop = String::new();
            if as_postgres {
                stop.push_str("runuser -u postgres -- ");
            }
            stop.push_str(&format!(
                "{} -D {} -m immediate -w stop",
                sh_quote(&pg_ctl.to_string_lossy()),
                sh_quote(&data.to_string_lossy())
            ));
            stop
        };
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "read _ignored; {stop} >/dev/null 2>&1; rm -rf {}",
                sh_quote(&dir_text)
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the test server's watchdog: {e}"))?;

        let mut initdb = command(as_postgres, &bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        let url = format!("postgres://postgres@/postgres?host={dir_text}");
        let base = url
            .parse::<PostgresLocation>()
            .map_err(|e| format!("the test server's URL {url}: {e}"))?;
        let server = ThrowawayServer {
            bin,
            as_postgres,
            data,
            log,
            options: format!(
                "-c listen_addresses='' -k {} {} -c max_connections=300 -c shared_buffers=32MB",
                sh_quote(&dir_text),
                if syncs_to_disk()? {
                    "-c fsync=on -c full_page_writes=on"
                } else {
                    "-c fsync=off -c full_page_writes=off"
                }
            ),
            base,
            watchdog: Mutex::new(watchdog),
        };
        run(initdb, "initdb")?;
        server.start_once()?;
        Ok(server)
    }

    /// The server's location, in the default schema (`store`).
    pub fn location(&self) -> &PostgresLocation {
        &self.base
    }

    /// A new, empty scratch schema on this server (named like [`fresh_location`]'s).
    pub fn fresh_location(&self) -> Result<PostgresLocation, OpenError> {
        scratch_schema(&self.base)
    }

    /// `pg_ctl start`, once.
    fn start_once(&self) -> Result<(), String> {
        let mut start = command(self.as_postgres, &self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "-o", &self.options, "start"]);
        run(start, "pg_ctl start").map_err(|e| format!("{e}\nserver log:\n{}", self.log_tail()))
    }

    /// Starts the stopped server again, retrying for up to `within` while the processes of
    /// a killed postmaster still hold its shared memory (they exit once they notice their
    /// postmaster is gone). Returns how long it took.
    pub fn start_again(&self, within: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            match self.start_once() {
                Ok(()) => return Ok(started.elapsed()),
                Err(e) if started.elapsed() >= within => {
                    return Err(format!(
                        "the server did not start again within {within:?}: {e}"
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `pg_ctl stop -m immediate`: every server process quits at once, without a
    /// checkpoint; the next start replays the WAL (crash recovery).
    pub fn stop_immediate(&self) -> Result<(), String> {
        let mut stop = command(self.as_postgres, &self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop -m immediate")
    }

    /// Kills the postmaster with `SIGKILL` (its backends go on until they notice, then
    /// exit); returns its process id.
    pub fn kill_postmaster(&self) -> Result<u32, String> {
        let pid_file = self.data.join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
        let pid: u32 = text
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| format!("{} holds no process id", pid_file.display()))?;
        let mut kill = Command::new("sh");
        kill.arg("-c").arg(format!("kill -KILL {pid}"));
        run(kill, "killing the postmaster")?;
        Ok(pid)
    }

    /// The end of the server's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for ThrowawayServer {
    /// Closes the watchdog's standard input, so that it stops the server and removes its
    /// directory, and waits for it.
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(watchdog.stdin.take());
        let _ = watchdog.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_text_whole() {
        assert_eq!(sh_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }
}
