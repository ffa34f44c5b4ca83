//! [`PostgresLocation`]: where a store lives on a PostgreSQL server, parsed from a URL.
//!
//! ```text
//! postgres://user[:password]@host[:port]/dbname?schema=orders&pool=16
//! postgresql://user@/dbname?host=/run/postgresql&schema=orders
//! ```
//!
//! The URL is libpq's connection URI (the `postgres` crate parses it: `host`, `port`,
//! `user`, `password`, `dbname`, `connect_timeout`, `keepalives_idle`,
//! `tcp_user_timeout`, `application_name`, `sslmode`, ... as query parameters too; a
//! `host` that starts with `/` is the directory of a Unix socket), plus two parameters of
//! this backend:
//!
//! - `schema` (default `store`): the PostgreSQL schema that holds the store's tables, one
//!   store per schema. Lowercase ASCII letters, digits and `_`, starting with a letter or
//!   `_`, at most 63 bytes, not starting with `pg_`: a name a DBA can type unquoted. It is
//!   still always quoted as an identifier in SQL.
//! - `pool` (default 10): the most connections the backend keeps open to the server, 1 to
//!   1000 (an open state partition holds one more connection of its own).
//!
//! `durability` is an open option ([`OpenOptions::durability`](store_api::OpenOptions));
//! the `store` facade's URL accepts it beside these.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use store_api::{OpenError, StoreLocation};

/// The schema a location without `schema=` names.
pub const DEFAULT_SCHEMA: &str = "store";

/// The pool size of a location without `pool=`.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// The largest `pool=` accepted.
pub const MAX_POOL_SIZE: u32 = 1000;

/// How long connecting to the server may take when the URL sets no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long sent data may stay unacknowledged by a server host before the connection
/// counts as dead (`TCP_USER_TIMEOUT`), when the URL sets no `tcp_user_timeout`.
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may be idle before TCP keepalive probes start, when the URL sets
/// no `keepalives_idle`.
pub const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(30);

/// Where a store lives on a PostgreSQL server: the connection settings, the schema that
/// holds the store's tables, and the size of the backend's connection pool.
///
/// Parses from the URL form in the [module docs](self); `Display` and `Debug` never show
/// the password.
#[derive(Clone)]
pub struct PostgresLocation {
    config: postgres::Config,
    schema: String,
    pool_size: u32,
    /// Whether `application_name` is this backend's default, which names the schema.
    default_application_name: bool,
}

/// The `application_name` of a store's connections when the URL sets none: it names the
/// schema, so `pg_stat_activity` shows which store a connection serves.
fn application_name(schema: &str) -> String {
    format!("store-postgres/{schema}")
}

impl PostgresLocation {
    /// The connection settings (with this backend's defaults for timeouts the URL did not
    /// set).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The schema that holds the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The most connections the backend keeps open.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// How long a call waits for a pooled connection (all busy, or the server
    /// unreachable) before it fails with
    /// [`StorageErrorKind::Unavailable`](store_api::StorageErrorKind::Unavailable): the
    /// URL's `connect_timeout` (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn pool_timeout(&self) -> Duration {
        self.config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// The same location in another schema (checked like `schema=`).
    pub fn with_schema(mut self, schema: &str) -> Result<Self, OpenError> {
        check_schema(schema).map_err(|detail| OpenError::InvalidLocation {
            location: self.to_string(),
            detail,
        })?;
        self.schema = schema.to_owned();
        if self.default_application_name {
            self.config.application_name(&application_name(schema));
        }
        Ok(self)
    }

    /// The same location with a pool of `size` connections (at least 1).
    pub fn with_pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.clamp(1, MAX_POOL_SIZE);
        self
    }

    /// The schema name quoted as an SQL identifier (`"orders"`).
    pub(crate) fn quoted_schema(&self) -> String {
        quote_ident(&self.schema)
    }
}

/// `name` quoted as an SQL identifier: in double quotes, a double quote doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks a schema name; says what is wrong.
fn check_schema(schema: &str) -> Result<(), String> {
    let valid_start = schema
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let valid_chars = schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if schema.is_empty() || schema.len() > 63 || !valid_start || !valid_chars {
        return Err(format!(
            "schema {schema:?} is not a valid schema name: use 1 to 63 lowercase ASCII \
             letters, digits and '_', starting with a letter or '_'"
        ));
    }
    if schema.starts_with("pg_") {
        return Err(format!(
            "schema {schema:?} starts with \"pg_\", which PostgreSQL reserves"
        ));
    }
    Ok(())
}

impl FromStr for PostgresLocation {
    type Err = OpenError;

    fn from_str(url: &str) -> Result<Self, OpenError> {
        let invalid = |detail: String| OpenError::InvalidLocation {
            location: redact(url),
            detail,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "a PostgreSQL location is a URL starting with postgres:// or postgresql://"
                    .to_owned(),
            ));
        }
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut schema = None;
        let mut pool = None;
        let mut passed = Vec::new();
        let mut given = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            match name {
                "schema" | "pool" => {
                    let slot = if name == "schema" {
                        &mut schema
                    } else {
                        &mut pool
                    };
                    if slot.replace(value).is_some() {
                        return Err(invalid(format!("option {name:?} is given more than once")));
                    }
                }
                "durability" | "cache" => {
                    return Err(invalid(format!(
                        "{name} is an open option, not part of the location: set it in \
                         OpenOptions (the store facade's URL accepts it)"
                    )));
                }
                _ => {
                    given.push(name);
                    passed.push(param);
                }
            }
        }
        let conn_url = if passed.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        let mut config = postgres::Config::from_str(&conn_url)
            .map_err(|e| invalid(format!("not a PostgreSQL connection URL: {e}")))?;
        if config.get_hosts().is_empty() {
            return Err(invalid(
                "no server named: give a host (postgres://user@host/db) or a socket \
                 directory (?host=/run/postgresql)"
                    .to_owned(),
            ));
        }
        if !given.contains(&"connect_timeout") {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if !given.contains(&"tcp_user_timeout") {
            config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
        }
        if !given.contains(&"keepalives_idle") {
            config.keepalives_idle(DEFAULT_KEEPALIVES_IDLE);
        }
        let schema = schema.unwrap_or(DEFAULT_SCHEMA);
        check_schema(schema).map_err(invalid)?;
        let default_application_name = !given.contains(&"application_name");
        if default_application_name {
            config.application_name(&application_name(schema));
        }
        let pool_size = match pool {
            None => DEFAULT_POOL_SIZE,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_POOL_SIZE).contains(&n) => n,
                _ => {
                    return Err(invalid(format!(
                        "pool={text:?} is not valid: expected a number of connections from 1 \
                         to {MAX_POOL_SIZE}"
                    )));
                }
            },
        };
        Ok(PostgresLocation {
            config,
            schema: schema.to_owned(),
            pool_size,
            default_application_name,
        })
    }
}

/// `url` with the password of its authority (`user:password@`) left out.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = tail
        .split('&')
        .map(|part| match part.find("password=") {
            Some(at) if at == 0 || part[..at].ends_with('?') => {
                format!("{}password=***", &part[..at])
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// `bytes` percent-encoded for a URL query value: every byte but the unreserved ones
/// (letters, digits, `-`, `.`, `_`, `~`) as `%XX`, so any password (any bytes) parses back
/// unchanged.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl PostgresLocation {
    /// Writes the URL form: with `password` (already percent-encoded) as a query
    /// parameter, or without any password.
    fn write_url(&self, f: &mut impl fmt::Write, password: Option<&str>) -> fmt::Result {
        write!(f, "postgres://")?;
        if let Some(user) = self.config.get_user() {
            write!(f, "{user}@")?;
        }
        let mut sockets = Vec::new();
        let mut tcp = Vec::new();
        let ports = self.config.get_ports();
        for (i, host) in self.config.get_hosts().iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => tcp.push(format!("{name}:{port}")),
                Host::Unix(dir) => sockets.push(dir.display().to_string()),
            }
        }
        write!(f, "{}", tcp.join(","))?;
        write!(f, "/{}", self.config.get_dbname().unwrap_or(""))?;
        write!(f, "?schema={}&pool={}", self.schema, self.pool_size)?;
        for dir in sockets {
            write!(f, "&host={dir}")?;
        }
        if let Some(password) = password {
            write!(f, "&password={password}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PostgresLocation {
    /// `postgres://user@host:port/dbname?schema=...&pool=...`, without the password; a
    /// Unix socket directory is shown as `?host=/dir`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_url(f, None)
    }
}

impl fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresLocation({self})")
    }
}

impl StoreLocation for PostgresLocation {
    /// `None`: a store on a server is not kept in a directory.
    fn dir(&self) -> Option<&Path> {
        None
    }

    /// `None`: a directory is no PostgreSQL location.
    fn from_dir(_dir: &Path) -> Option<PostgresLocation> {
        None
    }

    /// The URL form ([`Display`](fmt::Display)) plus, when the location has a password,
    /// `&password=` with it percent-encoded: it parses back to the same server, database,
    /// schema, pool size and credentials, so a child process given the text reaches the
    /// same server. Unlike `Display` and `Debug` it carries the secret: hand it only to
    /// whom may connect.
    fn to_text(&self) -> Option<String> {
        let password = self.config.get_password().map(percent_encode);
        let mut text = String::new();
        self.write_url(&mut text, password.as_deref()).ok()?;
        Some(text)
    }

    /// The location a URL names ([`FromStr`]).
    fn from_text(text: &str) -> Result<PostgresLocation, OpenError> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The Unix socket directories a location names.
    fn socket_dirs(config: &postgres::Config) -> Vec<PathBuf> {
        config
            .get_hosts()
            .iter()
            .filter_map(|h| match h {
                Host::Unix(dir) => Some(dir.clone()),
                Host::Tcp(_) => None,
            })
            .collect()
    }

    fn parse(url: &str) -> Result<PostgresLocation, OpenError> {
        url.parse()
    }

    #[test]
    fn parses_tcp_and_socket_urls_with_schema_and_pool() {
        let tcp = parse("postgres://app@db.example:5433/main?schema=orders&pool=16").unwrap();
        assert_eq!(tcp.schema(), "orders");
        assert_eq!(tcp.pool_size(), 16);
        assert_eq!(tcp.config().get_user(), Some("app"));
        assert_eq!(tcp.config().get_dbname(), Some("main"));
        assert_eq!(tcp.config().get_ports(), &[5433]);
        assert_eq!(
            tcp.config().get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        assert_eq!(
            tcp.to_string(),
            "postgres://app@db.example:5433/main?schema=orders&pool=16"
        );

        let socket =
            parse("postgresql://postgres@/postgres?host=/tmp/pg&connect_timeout=3").unwrap();
        assert_eq!(socket.schema(), DEFAULT_SCHEMA);
        assert_eq!(socket.pool_size(), DEFAULT_POOL_SIZE);
        assert_eq!(socket_dirs(socket.config()), vec![PathBuf::from("/tmp/pg")]);
        assert_eq!(
            socket.config().get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert!(socket.to_string().contains("&host=/tmp/pg"), "{socket}");
        assert_eq!(socket.dir(), None);
        assert!(PostgresLocation::from_dir(Path::new("/tmp")).is_none());
    }

    #[test]
    fn never_shows_the_password() {
        let loc = parse("postgres://app:s3cret@db/main?schema=a").unwrap();
        assert!(!loc.to_string().contains("s3cret"));
        assert!(!format!("{loc:?}").contains("s3cret"));
        match parse("postgres://app:s3cret@db/main?schema=Bad") {
            Err(OpenError::InvalidLocation { location, .. }) => {
                assert!(!location.contains("s3cret"), "{location}");
                assert!(location.contains("app:***@db"), "{location}");
            }
            other => panic!("expected InvalidLocation, got {other:?}"),
        }
        assert_eq!(
            redact("postgres://db/main?user=a&password=s3cret&schema=x"),
            "postgres://db/main?user=a&password=***&schema=x"
        );
    }

    #[test]
    fn text_form_carries_the_password_that_display_hides() {
        for url in [
            "postgres://app:s3cret@db:5433/main?schema=a&pool=3",
            "postgres://app@db/main?password=p%40ss%20w%2Frd%26%3D%25%3F&schema=a",
            "postgres://app@/main?host=/run/pg&password=%C3%A9t%C3%A9",
        ] {
            let loc = parse(url).unwrap();
            let password = loc.config().get_password().unwrap().to_vec();
            let text = loc.to_text().unwrap();
            let back = PostgresLocation::from_text(&text).unwrap();
            assert_eq!(back.config().get_password(), Some(&password[..]), "{text}");
            assert_eq!(back.to_string(), loc.to_string());
            assert_eq!(back.config().get_hosts(), loc.config().get_hosts());
            assert_eq!(back.pool_size(), loc.pool_size());
            let shown = String::from_utf8_lossy(&password).into_owned();
            assert!(!loc.to_string().contains(&shown), "{loc}");
            assert!(!format!("{loc:?}").contains(&shown), "{loc:?}");
            assert!(!format!("{back:?}").contains(&shown), "{back:?}");
        }
        let none = parse("postgres://app@db/main").unwrap();
        assert_eq!(none.to_text().unwrap(), none.to_string());
        assert_eq!(percent_encode(b"a-Z_0.~ %&="), "a-Z_0.~%20%25%26%3D");
    }

    #[test]
    fn rejects_bad_schemas_pools_and_urls() {
        for url in [
            "postgres://h/db?schema=",
            "postgres://h/db?schema=Orders",
            "postgres://h/db?schema=1abc",
            "postgres://h/db?schema=a-b",
            "postgres://h/db?schema=x%22;drop",
            "postgres://h/db?schema=pg_catalog",
            "postgres://h/db?schema=a&schema=b",
            "postgres://h/db?pool=0",
            "postgres://h/db?pool=1001",
            "postgres://h/db?pool=many",
            "postgres://h/db?durability=relaxed",
            "postgres://h/db?nonsense=1",
            "mysql://h/db",
            "postgres://h:notaport/db",
        ] {
            match parse(url) {
                Err(OpenError::InvalidLocation { detail, .. }) => assert!(!detail.is_empty()),
                other => panic!("{url}: expected InvalidLocation, got {other:?}"),
            }
        }
        let long = "s".repeat(64);
        assert!(parse(&format!("postgres://h/db?schema={long}")).is_err());
        assert!(parse(&format!("postgres://h/db?schema={}", &long[..63])).is_ok());
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        let loc = parse("postgres://h/db")
            .unwrap()
            .with_schema("x_1")
            .unwrap();
        assert_eq!(loc.quoted_schema(), "\"x_1\"");
        assert_eq!(
            loc.config().get_application_name(),
            Some("store-postgres/x_1")
        );
        let named = parse("postgres://h/db?application_name=app").unwrap();
        let named = named.with_schema("y").unwrap();
        assert_eq!(named.config().get_application_name(), Some("app"));
        assert!(loc.clone().with_schema("X").is_err());
        assert_eq!(loc.with_pool_size(0).pool_size(), 1);
    }
}
