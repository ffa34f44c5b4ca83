//! A look at a PostgreSQL store from outside the backend, on a connection of the test's
//! own: what a schema holds ([`fingerprint`]), what the whole database holds
//! ([`catalog`]), and which sessions of a store the server still runs ([`sessions`]).
//!
//! The tests use these where a directory backend's test hashes files: a rejected call
//! must leave every table as it was, and a hostile location must create nothing anywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use store_postgres::PostgresLocation;

use crate::Failure;
use crate::failure::OrFail;
use crate::fingerprint::Fingerprint;

/// The `application_name` of the inspecting connections, so that they never count as a
/// session of the store ([`sessions`]).
pub const INSPECTOR: &str = "reliability-inspector";

/// A connection to the server of `location` (not set up for its schema).
pub fn connect(location: &PostgresLocation) -> Result<Client, Failure> {
    location
        .config()
        .clone()
        .application_name(INSPECTOR)
        .connect(NoTls)
        .or_fail(format!("connecting to {location}"))
}

/// Idle inspecting connections, by server and database: a hostile-input run fingerprints
/// its schema twice per row, and a new connection costs a server process each time.
static IDLE: Mutex<Vec<(String, Client)>> = Mutex::new(Vec::new());

/// The server and database of `location` (the schema left out), as a key of [`IDLE`].
fn server_key(location: &PostgresLocation) -> String {
    let config = location.config();
    format!(
        "{:?} {:?} {:?} {:?}",
        config.get_hosts(),
        config.get_ports(),
        config.get_dbname(),
        config.get_user()
    )
}

/// Runs `f` on an idle inspecting connection to the server of `location` (or a new one),
/// which is kept for the next call unless it broke. A connection that the server closed
/// meanwhile (restarted) is replaced and `f` run once more.
fn with_client<T>(
    location: &PostgresLocation,
    mut f: impl FnMut(&mut Client) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let key = server_key(location);
    let idle = {
        let mut pool = IDLE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pool.iter()
            .position(|(k, _)| *k == key)
            .map(|i| pool.swap_remove(i).1)
    };
    let (mut client, reused) = match idle {
        Some(client) if !client.is_closed() => (client, true),
        _ => (connect(location)?, false),
    };
    let mut result = f(&mut client);
    if result.is_err() && reused && client.is_valid(Duration::from_secs(5)).is_err() {
        client = connect(location)?;
        result = f(&mut client);
    }
    if !client.is_closed() {
        IDLE.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((key, client));
    }
    result
}

/// `name` quoted as an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The first 16 hexadecimal digits of an `md5` as a number.
fn hash_of(md5: &str) -> u64 {
    u64::from_str_radix(md5.get(..16).unwrap_or("0"), 16).unwrap_or(0)
}

/// Every relation of the store's schema, as `<name> (<kind>)`: for a table its row count
/// and a hash of its rows (every row's text form, sorted), for a sequence its state
/// (`last_value`, `is_called`), for an index or view its existence. Read in one
/// repeatable-read transaction, so the tables are seen at one moment.
pub fn fingerprint(location: &PostgresLocation) -> Result<Fingerprint, Failure> {
    with_client(location, |client| fingerprint_on(client, location))
}

fn fingerprint_on(
    client: &mut Client,
    location: &PostgresLocation,
) -> Result<Fingerprint, Failure> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .or_fail("beginning a fingerprint")?;
    let relations = tx
        .query(
            "SELECT c.relname::text, c.relkind::text FROM pg_class AS c \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 ORDER BY c.relname",
            &[&location.schema()],
        )
        .or_fail("listing the schema's relations")?;
    let schema = quote(location.schema());
    let mut parts = Vec::new();
    let mut out = BTreeMap::new();
    for row in &relations {
        let name: String = row.try_get(0).or_fail("a relation's name")?;
        let kind: String = row.try_get(1).or_fail("a relation's kind")?;
        let key = PathBuf::from(format!("{name} ({kind})"));
        let table = format!("{schema}.{}", quote(&name));
        let literal = format!("'{}'", key.display().to_string().replace('\'', "''"));
        match kind.as_str() {
            "r" | "p" => parts.push(format!(
                "SELECT {literal}, count(*), coalesce(md5(string_agg(t::text, E'\\n' \
                 ORDER BY t::text)), '') FROM {table} AS t"
            )),
            "S" => parts.push(format!(
                "SELECT {literal}, last_value, md5(is_called::text) FROM {table}"
            )),
            _ => {
                out.insert(key, None);
            }
        }
    }
    if !parts.is_empty() {
        for row in tx
            .query(&parts.join(" UNION ALL "), &[])
            .or_fail("reading the schema's tables")?
        {
            let key: String = row.try_get(0).or_fail("a relation's name")?;
            let count: i64 = row.try_get(1).or_fail("a relation's row count")?;
            let md5: String = row.try_get(2).or_fail("a relation's hash")?;
            out.insert(
                PathBuf::from(key),
                Some((u64::try_from(count).unwrap_or(0), hash_of(&md5))),
            );
        }
    }
    tx.commit().or_fail("ending a fingerprint")?;
    Ok(Fingerprint(out))
}

/// Whether `schema` is a scratch schema of `store_postgres::scratch`
/// (`scratch_<pid>_<n>_<hex>`): other tests of the same process make them at any moment.
pub fn is_scratch_schema(schema: &str) -> bool {
    let Some(rest) = schema.strip_prefix("scratch_") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('_').collect();
    matches!(parts.as_slice(), [pid, n, time]
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
            && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            && !time.is_empty() && time.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every schema of the database of `location` with its relations and their kinds, as
/// `(schema, relation, kind)` (a schema without relations as `(schema, "", "")`), the
/// system's own schemas and other tests' scratch schemas ([`is_scratch_schema`]) left
/// out, the store's own schema kept.
pub fn catalog(location: &PostgresLocation) -> Result<Vec<(String, String, String)>, Failure> {
    let rows = with_client(location, |client| {
        client
        .query(
            "SELECT n.nspname::text, coalesce(c.relname::text, ''), coalesce(c.relkind::text, '') \
             FROM pg_namespace AS n LEFT JOIN pg_class AS c ON c.relnamespace = n.oid \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
             ORDER BY 1, 2",
            &[],
        )
        .or_fail("listing the database's schemas")
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let schema: String = row.try_get(0).or_fail("a schema's name")?;
        if is_scratch_schema(&schema) && schema != location.schema() {
            continue;
        }
        let relation: String = row.try_get(1).or_fail("a relation's name")?;
        let kind: String = row.try_get(2).or_fail("a relation's kind")?;
        out.push((schema, relation, kind));
    }
    Ok(out)
}

/// The sessions the server runs for the store of `location`: those whose
/// `application_name` is the one the location's connections send (by default
/// `store-postgres/<schema>`).
pub fn sessions(location: &PostgresLocation) -> Result<u64, Failure> {
    let name = location.config().get_application_name().unwrap_or_default();
    let row = with_client(location, |client| {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .or_fail("counting the store's sessions")
    })?;
    let count: i64 = row.try_get(0).or_fail("counting the store's sessions")?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Waits, at most `within`, until the server runs no session of the store of `location`
/// ([`sessions`]); returns how long that took.
pub fn wait_sessions_gone(
    location: &PostgresLocation,
    within: Duration,
) -> Result<Duration, Failure> {
    let started = Instant::now();
    loop {
        let left = sessions(location)?;
        if left == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(Failure(format!(
                "the server still runs {left} session(s) of {location} {within:?} after \
                 their processes died"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_scratch_schema_names_only() {
        assert!(is_scratch_schema("scratch_123_0_1a2b"));
        assert!(!is_scratch_schema("scratch_123_0"));
        assert!(!is_scratch_schema("scratch_x_0_1a"));
        assert!(!is_scratch_schema("scratch_1_2_zz"));
        assert!(!is_scratch_schema("orders"));
    }

    #[test]
    fn hashes_take_the_first_sixteen_digits() {
        assert_eq!(hash_of("00000000000000ff0123"), 0xff);
        assert_eq!(hash_of(""), 0);
    }
}
