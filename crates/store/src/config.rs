//! Which backend to open, where, and how: [`BackendKind`], [`BackendConfig`] and the short
//! URL form they parse from (`redb:/var/lib/app?durability=relaxed`,
//! `postgres://app@db/main?schema=orders`).
//!
//! # URL grammar
//! ```text
//! url     = backend ":" [ "//" ] [ dir ] [ "?" option *( "&" option ) ]
//!         | server-url
//! backend = "mem" | "redb" | "lmdb" | "sled" | "fjall" | "sqlite"
//! option  = "durability=" ( "immediate" | "relaxed" ) | "cache=" <entries>
//! server-url = ( "postgres" | "postgresql" ) "://" <libpq connection URI>
//! ```
//! `mem:` takes no directory; every embedded backend needs one. A leading `//` after the
//! colon is dropped, so `redb:///srv/db` names `/srv/db`. The directory ends at the first
//! `?`: a directory whose name holds `?` can only be given through [`BackendConfig::new`].
//! `cache` is the side-effect read cache size in entries
//! ([`OpenOptions::side_effect_cache_size`]).
//!
//! A server backend (PostgreSQL) is named by its connection URL
//! (`postgres://user@host:5432/db?schema=orders&pool=16`, `host=/dir` for a Unix socket):
//! `durability` and `cache` are taken out of its query, every other parameter is the
//! backend's own (see `store_postgres::location`), checked when it is opened. Parsing
//! checks the grammar only; whether the backend is compiled in is checked when it is
//! opened.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use store_api::{Durability, OpenOptions};

/// The environment variable that names the backend for [`BackendConfig::from_env`] and
/// [`Stores::from_env`](crate::Stores::from_env), in URL form.
pub const STORE_BACKEND_VAR: &str = "STORE_BACKEND";

/// One of the backends, whether or not this build compiled it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendKind {
    /// The in-memory reference backend (`store-mem`); not persistent.
    Mem,
    /// redb (`store-redb`).
    Redb,
    /// LMDB through heed (`store-lmdb`).
    Lmdb,
    /// sled 0.34 (`store-sled`).
    Sled,
    /// fjall 3, an LSM tree (`store-fjall`).
    Fjall,
    /// SQLite through rusqlite, bundled (`store-sqlite`).
    Sqlite,
    /// A PostgreSQL server (`store-postgres`): the shared backend.
    Postgres,
}

impl BackendKind {
    /// Every backend, in the order the documentation lists them.
    pub const ALL: [BackendKind; 7] = [
        BackendKind::Mem,
        BackendKind::Redb,
        BackendKind::Lmdb,
        BackendKind::Sled,
        BackendKind::Fjall,
        BackendKind::Sqlite,
        BackendKind::Postgres,
    ];

    /// The backend's short name, which is also its URL scheme and its `Backend::NAME`.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::Mem => "mem",
            BackendKind::Redb => "redb",
            BackendKind::Lmdb => "lmdb",
            BackendKind::Sled => "sled",
            BackendKind::Fjall => "fjall",
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }

    /// The Cargo feature of this crate that compiles the backend in (the same word as the
    /// name).
    pub const fn feature(self) -> &'static str {
        self.name()
    }

    /// Whether this build was compiled with the backend's feature.
    pub const fn is_enabled(self) -> bool {
        match self {
            BackendKind::Mem => cfg!(feature = "mem"),
            BackendKind::Redb => cfg!(feature = "redb"),
            BackendKind::Lmdb => cfg!(feature = "lmdb"),
            BackendKind::Sled => cfg!(feature = "sled"),
            BackendKind::Fjall => cfg!(feature = "fjall"),
            BackendKind::Sqlite => cfg!(feature = "sqlite"),
            BackendKind::Postgres => cfg!(feature = "postgres"),
        }
    }

    /// Whether the backend keeps its data across a reopen (every backend but `mem`). An
    /// embedded persistent backend needs a directory in its URL, a server backend a
    /// server.
    pub const fn is_persistent(self) -> bool {
        !matches!(self, BackendKind::Mem)
    }

    /// Whether the backend lives on a database server (named by a connection URL, shared
    /// by any number of instances) rather than in a directory.
    pub const fn is_server(self) -> bool {
        matches!(self, BackendKind::Postgres)
    }

    /// The backend called `name` (its name or, for PostgreSQL, also `postgresql`, the
    /// other scheme libpq accepts), if any.
    pub fn from_name(name: &str) -> Option<BackendKind> {
        if name == "postgresql" {
            return Some(BackendKind::Postgres);
        }
        BackendKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The backend a URL names (its scheme, before the first `:`), and the rest of it.
    pub fn split_url(url: &str) -> Result<(BackendKind, &str), UrlError> {
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(UrlError::MissingColon {
                url: url.to_owned(),
            });
        };
        let kind = BackendKind::from_name(scheme).ok_or_else(|| UrlError::UnknownBackend {
            backend: scheme.to_owned(),
        })?;
        Ok((kind, rest))
    }

    /// The backends compiled into this build, in [`ALL`](Self::ALL) order.
    pub fn enabled() -> impl Iterator<Item = BackendKind> {
        BackendKind::ALL.into_iter().filter(|k| k.is_enabled())
    }

    /// The persistent backend examples default to: the first compiled in of redb, lmdb,
    /// sqlite, sled (redb first: pure Rust, no native build, crash-safe by design); `None`
    /// in a build with only `mem`.
    pub fn default_persistent() -> Option<BackendKind> {
        [
            BackendKind::Redb,
            BackendKind::Lmdb,
            BackendKind::Sqlite,
            BackendKind::Sled,
        ]
        .into_iter()
        .find(|k| k.is_enabled())
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a backend URL was rejected. Each variant says what was wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// There is no `:` after the backend name.
    #[error(
        "backend URL {url:?} has no ':': write <backend>:<dir>, for example redb:/var/lib/app, or mem:"
    )]
    MissingColon {
        /// The URL as given.
        url: String,
    },
    /// The part before the `:` names no backend.
    #[error(
        "unknown backend {backend:?}: expected one of mem, redb, lmdb, sled, fjall, sqlite, postgres"
    )]
    UnknownBackend {
        /// The name given.
        backend: String,
    },
    /// A persistent backend was given no directory.
    #[error("the {backend} backend needs a directory: write {backend}:<dir>")]
    MissingDir {
        /// The backend.
        backend: BackendKind,
    },
    /// A server backend was given no server.
    #[error(
        "the {backend} backend needs a server: write {backend}://user@host:5432/dbname?schema=name"
    )]
    MissingServer {
        /// The backend.
        backend: BackendKind,
    },
    /// `mem:` was given a directory; it keeps nothing on disk.
    #[error(
        "the mem backend keeps nothing on disk and takes no directory (got {dir:?}): write mem:"
    )]
    UnexpectedDir {
        /// The directory given.
        dir: String,
    },
    /// An option is not `name=value`.
    #[error("option {option:?} is not name=value")]
    MalformedOption {
        /// The option as given.
        option: String,
    },
    /// An option name is not known.
    #[error("unknown option {name:?}: expected durability or cache")]
    UnknownOption {
        /// The option name.
        name: String,
    },
    /// An option was given twice.
    #[error("option {name:?} is given more than once")]
    DuplicateOption {
        /// The option name.
        name: String,
    },
    /// An option's value is not accepted.
    #[error("option {name}={value:?} is not valid: expected {expected}")]
    InvalidValue {
        /// The option name.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The environment variable holds something that is not Unicode.
    #[error("environment variable {var} is not valid Unicode")]
    NotUnicode {
        /// The variable's name.
        var: &'static str,
    },
}

/// A backend, where it lives (its directory, or its server URL) and its options:
/// everything needed to open a [`Stores`](crate::Stores).
///
/// Parses from and prints as the URL form described in the [module docs](self); printing
/// then parsing gives the same config back (for directories that are valid UTF-8 and hold
/// no `?`).
#[derive(Clone, PartialEq, Eq)]
pub struct BackendConfig {
    kind: BackendKind,
    place: Place,
    durability: Durability,
    side_effect_cache_size: Option<usize>,
}

/// Where a configured backend lives.
#[derive(Clone, PartialEq, Eq)]
enum Place {
    /// Nowhere (`mem`).
    Nowhere,
    /// A directory (an embedded persistent backend).
    Dir(PathBuf),
    /// A connection URL, without `durability` and `cache` (a server backend).
    Server(String),
}

impl fmt::Debug for BackendConfig {
    /// The config, with a password in a server URL left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("kind", &self.kind)
            .field("dir", &self.dir())
            .field("server", &self.server_url().map(redact_password))
            .field("durability", &self.durability)
            .field("side_effect_cache_size", &self.side_effect_cache_size)
            .finish()
    }
}

/// `url` with the password of its authority (`user:password@`) replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[end..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl BackendConfig {
    /// The in-memory backend with default options.
    pub fn mem() -> Self {
        BackendConfig {
            kind: BackendKind::Mem,
            place: Place::Nowhere,
            durability: Durability::Immediate,
            side_effect_cache_size: None,
        }
    }

    /// `kind` in `dir` with default options (durability `Immediate`, default cache). The
    /// directory is ignored for `mem`; for a server backend, `dir` is read as its server
    /// URL (prefer [`server`](Self::server)).
    pub fn new(kind: BackendKind, dir: impl Into<PathBuf>) -> Self {
        if kind.is_server() {
            return Self::server(kind, dir.into().to_string_lossy());
        }
        BackendConfig {
            kind,
            place: if kind.is_persistent() {
                Place::Dir(dir.into())
            } else {
                Place::Nowhere
            },
            durability: Durability::Immediate,
            side_effect_cache_size: None,
        }
    }

    /// Server backend `kind` at `url` (`postgres://user@host/db?schema=orders`; any
    /// `durability` and `cache` in it are taken by [`FromStr`] only, so give them through
    /// [`with_durability`](Self::with_durability) here) with default options. For an
    /// embedded backend, `url` is read as its directory.
    pub fn server(kind: BackendKind, url: impl Into<String>) -> Self {
        let url = url.into();
        if !kind.is_server() {
            return Self::new(kind, url);
        }
        BackendConfig {
            kind,
            place: Place::Server(url),
            durability: Durability::Immediate,
            side_effect_cache_size: None,
        }
    }

    /// The same config with `durability`.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The same config with a side-effect read cache of `entries` slots.
    pub fn with_side_effect_cache_size(mut self, entries: usize) -> Self {
        self.side_effect_cache_size = Some(entries);
        self
    }

    /// The same config in another directory (ignored for `mem` and server backends).
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        if self.kind.is_persistent() && !self.kind.is_server() {
            self.place = Place::Dir(dir.into());
        }
        self
    }

    /// The backend.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The directory; `None` for `mem` and server backends, always `Some` for an embedded
    /// persistent backend.
    pub fn dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Dir(dir) => Some(dir),
            Place::Nowhere | Place::Server(_) => None,
        }
    }

    /// The server URL (without `durability` and `cache`); `Some` exactly for a server
    /// backend.
    pub fn server_url(&self) -> Option<&str> {
        match &self.place {
            Place::Server(url) => Some(url),
            Place::Nowhere | Place::Dir(_) => None,
        }
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The side-effect cache size, when one was set (else the backend default,
    /// [`OpenOptions::DEFAULT_SIDE_EFFECT_CACHE_SIZE`]).
    pub fn side_effect_cache_size(&self) -> Option<usize> {
        self.side_effect_cache_size
    }

    /// The open options this config asks for, with the system clock.
    pub fn open_options(&self) -> OpenOptions {
        let options = OpenOptions::default().durability(self.durability);
        match self.side_effect_cache_size {
            Some(entries) => options.side_effect_cache_size(entries),
            None => options,
        }
    }

    /// The config named by [`STORE_BACKEND_VAR`], or `None` when the variable is unset or
    /// empty.
    pub fn from_env() -> Result<Option<BackendConfig>, UrlError> {
        env_url()?.map(|url| url.parse()).transpose()
    }

    /// Applies `durability=` or `cache=`; `Ok(false)` for another option (which only a
    /// server URL may hold).
    fn apply_option(
        &mut self,
        option: &str,
        seen: &mut Vec<&'static str>,
    ) -> Result<bool, UrlError> {
        let Some((name, value)) = option.split_once('=') else {
            return Err(UrlError::MalformedOption {
                option: option.to_owned(),
            });
        };
        let name: &'static str = match name {
            "durability" => "durability",
            "cache" => "cache",
            _ => return Ok(false),
        };
        if seen.contains(&name) {
            return Err(UrlError::DuplicateOption {
                name: name.to_owned(),
            });
        }
        seen.push(name);
        if name == "durability" {
            self.durability = match value {
                "immediate" => Durability::Immediate,
                "relaxed" => Durability::Relaxed,
                _ => {
                    return Err(UrlError::InvalidValue {
                        name,
                        value: value.to_owned(),
                        expected: "immediate or relaxed",
                    });
                }
            };
        } else {
            let entries = value.parse().map_err(|_| UrlError::InvalidValue {
                name,
                value: value.to_owned(),
                expected: "a number of entries (0 disables the cache)",
            })?;
            self.side_effect_cache_size = Some(entries);
        }
        Ok(true)
    }

    /// A server backend's config from its URL: `durability` and `cache` taken out of the
    /// query, the rest kept as the server URL.
    fn parse_server(kind: BackendKind, url: &str) -> Result<Self, UrlError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let host_part = base.split_once("://").map_or("", |(_, rest)| rest);
        let names_socket = query.split('&').any(|p| p.starts_with("host="));
        if !base.contains("://") || (host_part.is_empty() && !names_socket) {
            return Err(UrlError::MissingServer { backend: kind });
        }
        let mut config = BackendConfig::server(kind, base);
        let mut seen = Vec::new();
        let mut kept = Vec::new();
        for option in query.split('&').filter(|o| !o.is_empty()) {
            if !config.apply_option(option, &mut seen)? {
                kept.push(option);
            }
        }
        if !kept.is_empty() {
            config.place = Place::Server(format!("{base}?{}", kept.join("&")));
        }
        Ok(config)
    }
}

/// The URL in [`STORE_BACKEND_VAR`], trimmed; `None` when the variable is unset or empty.
pub(crate) fn env_url() -> Result<Option<String>, UrlError> {
    match std::env::var(STORE_BACKEND_VAR) {
        Ok(url) if url.trim().is_empty() => Ok(None),
        Ok(url) => Ok(Some(url.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(UrlError::NotUnicode {
            var: STORE_BACKEND_VAR,
        }),
    }
}

impl FromStr for BackendConfig {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        let (kind, rest) = BackendKind::split_url(url)?;
        if kind.is_server() {
            return Self::parse_server(kind, url);
        }
        let (dir, query) = match rest.split_once('?') {
            Some((dir, query)) => (dir, Some(query)),
            None => (rest, None),
        };
        let dir = dir.strip_prefix("//").unwrap_or(dir);
        let mut config = match (kind.is_persistent(), dir.is_empty()) {
            (true, true) => return Err(UrlError::MissingDir { backend: kind }),
            (true, false) => BackendConfig::new(kind, dir),
            (false, true) => BackendConfig::mem(),
            (false, false) => {
                return Err(UrlError::UnexpectedDir {
                    dir: dir.to_owned(),
                });
            }
        };
        let mut seen = Vec::new();
        for option in query.into_iter().flat_map(|q| q.split('&')) {
            if !option.is_empty() && !config.apply_option(option, &mut seen)? {
                let name = option.split_once('=').map_or(option, |(name, _)| name);
                return Err(UrlError::UnknownOption {
                    name: name.to_owned(),
                });
            }
        }
        Ok(config)
    }
}

impl fmt::Display for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = '?';
        match &self.place {
            Place::Server(url) => {
                f.write_str(url)?;
                if url.contains('?') {
                    sep = '&';
                }
            }
            Place::Dir(dir) => write!(f, "{}:{}", self.kind, dir.display())?,
            Place::Nowhere => write!(f, "{}:", self.kind)?,
        }
        if self.durability == Durability::Relaxed {
            write!(f, "{sep}durability=relaxed")?;
            sep = '&';
        }
        if let Some(entries) = self.side_effect_cache_size {
            write!(f, "{sep}cache={entries}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<BackendConfig, UrlError> {
        url.parse()
    }

    #[test]
    fn parses_every_backend_and_round_trips() {
        let mem = parse("mem:").unwrap();
        assert_eq!(mem, BackendConfig::mem());
        assert_eq!(mem.dir(), None);
        for kind in BackendKind::ALL
            .into_iter()
            .filter(|k| k.is_persistent() && !k.is_server())
        {
            let url = format!("{kind}:/srv/db");
            let config = parse(&url).unwrap();
            assert_eq!(config.kind(), kind);
            assert_eq!(config.dir(), Some(Path::new("/srv/db")));
            assert_eq!(config.durability(), Durability::Immediate);
            assert_eq!(config.side_effect_cache_size(), None);
            assert_eq!(config.to_string(), url);
        }
        let full = parse("sqlite:rel/dir?durability=relaxed&cache=16").unwrap();
        assert_eq!(full.durability(), Durability::Relaxed);
        assert_eq!(full.side_effect_cache_size(), Some(16));
        assert_eq!(
            full.to_string(),
            "sqlite:rel/dir?durability=relaxed&cache=16"
        );
        assert_eq!(parse(&full.to_string()).unwrap(), full);
        let options = full.open_options();
        assert_eq!(options.durability, Durability::Relaxed);
        assert_eq!(options.side_effect_cache_size, 16);
    }

    #[test]
    fn accepts_double_slash_and_options_on_mem() {
        assert_eq!(
            parse("redb:///srv/db").unwrap().dir(),
            Some(Path::new("/srv/db"))
        );
        let fjall = parse("fjall:///srv/lsm?durability=relaxed").unwrap();
        assert_eq!(fjall.kind(), BackendKind::Fjall);
        assert_eq!(fjall.dir(), Some(Path::new("/srv/lsm")));
        assert_eq!(fjall.durability(), Durability::Relaxed);
        let mem = parse("mem:?cache=0&durability=immediate").unwrap();
        assert_eq!(mem.side_effect_cache_size(), Some(0));
        assert_eq!(mem.to_string(), "mem:?cache=0");
    }

    #[test]
    fn rejects_what_is_wrong_and_says_what() {
        let cases: &[(&str, UrlError)] = &[
            ("redb", UrlError::MissingColon { url: "redb".into() }),
            (
                "rocks:/x",
                UrlError::UnknownBackend {
                    backend: "rocks".into(),
                },
            ),
            (
                "lmdb:",
                UrlError::MissingDir {
                    backend: BackendKind::Lmdb,
                },
            ),
            (
                "sled:?durability=relaxed",
                UrlError::MissingDir {
                    backend: BackendKind::Sled,
                },
            ),
            (
                "mem:/tmp/x",
                UrlError::UnexpectedDir {
                    dir: "/tmp/x".into(),
                },
            ),
            (
                "redb:/x?durability",
                UrlError::MalformedOption {
                    option: "durability".into(),
                },
            ),
            (
                "redb:/x?sync=1",
                UrlError::UnknownOption {
                    name: "sync".into(),
                },
            ),
            (
                "redb:/x?cache=1&cache=2",
                UrlError::DuplicateOption {
                    name: "cache".into(),
                },
            ),
            (
                "redb:/x?durability=fast",
                UrlError::InvalidValue {
                    name: "durability",
                    value: "fast".into(),
                    expected: "immediate or relaxed",
                },
            ),
            (
                "redb:/x?cache=-1",
                UrlError::InvalidValue {
                    name: "cache",
                    value: "-1".into(),
                    expected: "a number of entries (0 disables the cache)",
                },
            ),
        ];
        for (url, expected) in cases {
            let err = parse(url).unwrap_err();
            assert_eq!(&err, expected, "{url}");
            assert!(!err.to_string().is_empty());
        }
        assert!(
            parse("rocks:/x")
                .unwrap_err()
                .to_string()
                .contains("mem, redb, lmdb, sled, fjall, sqlite")
        );
    }

    #[test]
    fn server_urls_keep_their_own_options_and_give_up_ours() {
        let config = parse(
            "postgres://app:pw@db:5433/main?schema=orders&durability=relaxed&pool=16&cache=8",
        )
        .unwrap();
        assert_eq!(config.kind(), BackendKind::Postgres);
        assert!(config.kind().is_server() && config.kind().is_persistent());
        assert_eq!(config.dir(), None);
        assert_eq!(
            config.server_url(),
            Some("postgres://app:pw@db:5433/main?schema=orders&pool=16")
        );
        assert_eq!(config.durability(), Durability::Relaxed);
        assert_eq!(config.side_effect_cache_size(), Some(8));
        assert_eq!(parse(&config.to_string()).unwrap(), config);
        assert!(!format!("{config:?}").contains("pw"), "{config:?}");

        let socket = parse("postgresql://postgres@/postgres?host=/run/pg").unwrap();
        assert_eq!(socket.kind(), BackendKind::Postgres);
        assert_eq!(
            socket.to_string(),
            "postgresql://postgres@/postgres?host=/run/pg"
        );
        let plain = parse("postgres://db/main").unwrap();
        assert_eq!(plain.to_string(), "postgres://db/main");
        assert_eq!(
            plain
                .clone()
                .with_durability(Durability::Relaxed)
                .to_string(),
            "postgres://db/main?durability=relaxed"
        );
        assert_eq!(plain.clone().with_dir("/elsewhere"), plain);
        assert_eq!(
            BackendConfig::new(BackendKind::Postgres, "postgres://db/main"),
            plain
        );

        for url in [
            "postgres:",
            "postgres:/srv/db",
            "postgresql://",
            "postgres://?schema=x",
        ] {
            assert_eq!(
                parse(url).unwrap_err(),
                UrlError::MissingServer {
                    backend: BackendKind::Postgres
                },
                "{url}"
            );
        }
        assert_eq!(
            parse("postgres://db/main?durability=fast").unwrap_err(),
            UrlError::InvalidValue {
                name: "durability",
                value: "fast".into(),
                expected: "immediate or relaxed",
            }
        );
    }

    #[test]
    fn kinds_know_their_names_and_features() {
        for kind in BackendKind::ALL {
            assert_eq!(BackendKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.feature(), kind.name());
        }
        assert_eq!(BackendKind::from_name("rocks"), None);
        assert_eq!(
            BackendKind::from_name("postgresql"),
            Some(BackendKind::Postgres)
        );
        assert_eq!(BackendKind::Mem.is_enabled(), cfg!(feature = "mem"));
        assert!(BackendKind::enabled().all(|k| k.is_enabled()));
        if let Some(kind) = BackendKind::default_persistent() {
            assert!(kind.is_persistent() && kind.is_enabled());
        }
    }
}
