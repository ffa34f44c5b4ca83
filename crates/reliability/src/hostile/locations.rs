//! Bad server locations, PostgreSQL's counterpart of [`dirs`](super::dirs): URLs whose
//! schema, database or session parameters try SQL injection (quotes, `;`, `--`), system
//! schemas, and stores that do not exist where the options forbid creating one.
//!
//! A store is seeded first. Each location must give its typed [`OpenError`] (or, for text
//! that is only ever passed as a parameter, open the store it names and nothing else),
//! never a panic; afterwards the database must hold exactly the schemas and relations it
//! held before ([`pg::catalog`]), and the seeded store the same rows
//! ([`pg::fingerprint`]) and the same answers to the probes of
//! [`inputs::probes`](super::inputs::probes).

use std::fmt;

use store_api::{Backend, Durability, OpenError, OpenOptions, StoreEngine};
use store_postgres::{PostgresBackend, PostgresLocation};

use super::HostileReport;
use super::inputs::{probes, seed_ops};
use crate::differential::subject::{AnySubject, Subject};
use crate::failure::OrFail;
use crate::{Failure, ensure, pg};

/// What a location must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refused before any connection: [`OpenError::InvalidLocation`], from parsing the URL
    /// or from the open.
    Invalid,
    /// [`OpenError::ForeignSchema`]: a schema holding tables of something else.
    Foreign,
    /// [`OpenError::Unreachable`]: the server refuses the connection (no such database).
    Unreachable,
    /// [`OpenError::NotFound`]: no store there, and the options forbid creating one.
    NotFound,
    /// The text is passed to the server as a value, never spliced into SQL: the store
    /// opens in the schema the URL names, and takes a write.
    Opens,
}

/// One bad location.
#[derive(Debug, Clone)]
pub struct BadLocation {
    /// What it tries.
    pub name: String,
    /// The URL.
    pub url: String,
    /// The options it is opened with.
    pub read_only: bool,
    /// Whether the options allow creating the store.
    pub create_if_missing: bool,
    /// What it must give.
    pub expect: Expect,
}

/// Schema names that try SQL injection or name something that is not the store's:
/// every one must be refused as [`Expect::Invalid`] before anything is sent.
pub fn hostile_schemas() -> Vec<String> {
    vec![
        "x\"; DROP SCHEMA public CASCADE; --".into(),
        "x';DROP TABLE engine_kv;--".into(),
        "\"quoted\"".into(),
        "a;b".into(),
        "a--b".into(),
        "a b".into(),
        "x%22%3B%20DROP%20SCHEMA%20public%3B--".into(),
        "nul\0byte".into(),
        "Upper".into(),
        "pg_catalog".into(),
        "pg_temp".into(),
        "ünïcode".into(),
        "s".repeat(64),
        String::new(),
    ]
}

/// `url` (a location's URL form, `…/db?schema=…&…`) with `schema=` replaced by `schema`.
fn with_schema(url: &str, schema: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let params: Vec<String> = query
        .split('&')
        .map(|p| {
            if p.starts_with("schema=") {
                format!("schema={schema}")
            } else {
                p.to_owned()
            }
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let server = head.rsplit_once('/').map_or(head, |(server, _)| server);
    format!("{server}/{db}?{query}")
}

/// Every bad location on the server of `base`; `fresh` gives an unused scratch schema's
/// URL each time it is called (for the stores that must not exist, or that may be
/// created).
pub fn cases(
    base: &PostgresLocation,
    fresh: &mut dyn FnMut() -> Result<String, Failure>,
) -> Result<Vec<BadLocation>, Failure> {
    let url = base.to_string();
    let case = |name: String, url: String, expect| BadLocation {
        name,
        url,
        read_only: false,
        create_if_missing: true,
        expect,
    };
    let mut out: Vec<BadLocation> = hostile_schemas()
        .into_iter()
        .map(|schema| {
            case(
                format!("schema {schema:?}"),
                with_schema(&url, &schema),
                Expect::Invalid,
            )
        })
        .collect();
    out.push(case(
        "schema given twice, the second an injection".into(),
        format!("{url}&schema=x%22%3Bdrop"),
        Expect::Invalid,
    ));
    out.push(case(
        "durability smuggled into the URL".into(),
        format!("{url}&durability=relaxed';--"),
        Expect::Invalid,
    ));
    out.push(case(
        "the system schema information_schema".into(),
        with_schema(&url, "information_schema"),
        Expect::Foreign,
    ));
    out.push(case(
        "a database name that tries injection".into(),
        with_database(&url, "postgres%22%3B%20DROP%20SCHEMA%20public%3B--"),
        Expect::Unreachable,
    ));
    out.push(case(
        "a search_path smuggled in the session options".into(),
        format!("{}&options=-csearch_path%3Dpublic", fresh()?),
        Expect::Opens,
    ));
    out.push(case(
        "an application_name that tries injection".into(),
        format!(
            "{}&application_name=x%27%29%3B%20DROP%20TABLE%20engine_kv%3B%20--",
            fresh()?
        ),
        Expect::Opens,
    ));
    out.push(BadLocation {
        read_only: true,
        ..case(
            "a read-only open of a schema that does not exist".into(),
            fresh()?,
            Expect::NotFound,
        )
    });
    out.push(BadLocation {
        create_if_missing: false,
        ..case(
            "create_if_missing off on a schema that does not exist".into(),
            fresh()?,
            Expect::NotFound,
        )
    });
    Ok(out)
}

/// The shape of an open's result, for a report.
struct Shape<'a>(&'a Result<PostgresBackend, OpenError>);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(_) => f.write_str("Ok"),
            Err(e) => write!(f, "Err({})", store_api::error_chain(e)),
        }
    }
}

/// Parses and opens `case`, catching panics; `None` for a panic.
fn open(case: &BadLocation) -> Option<Result<PostgresBackend, OpenError>> {
    std::panic::catch_unwind(|| {
        let location = case.url.parse::<PostgresLocation>()?;
        let options = OpenOptions::default()
            .durability(Durability::Immediate)
            .read_only(case.read_only)
            .create_if_missing(case.create_if_missing);
        PostgresBackend::open(&location, options)
    })
    .ok()
}

/// Seeds a store at `base` and tries every location of [`cases`]; `fresh` gives an unused
/// scratch schema's URL per call.
pub fn run(
    base: &PostgresLocation,
    fresh: &mut dyn FnMut() -> Result<String, Failure>,
) -> Result<HostileReport, Failure> {
    let mut seeded = Subject::<PostgresBackend>::open_with(base, Durability::Immediate)?;
    for op in seed_ops() {
        let got = seeded.apply(&op);
        ensure!(!got.starts_with("Err"), "seeding: {op:?} gave {got}");
    }
    let probes = probes();
    let read = |subject: &mut Subject<PostgresBackend>| -> Vec<String> {
        probes.iter().map(|op| subject.apply(op)).collect()
    };
    let visible = read(&mut seeded);
    let catalog = pg::catalog(base)?;
    let rows = pg::fingerprint(base)?;
    let mut tried = 0;
    for case in cases(base, fresh)? {
        let what = |detail: String| Failure(format!("{}: {detail}", case.name));
        let Some(result) = open(&case) else {
            return Err(what("the open panicked".into()));
        };
        let as_expected = matches!(
            (&result, case.expect),
            (Err(OpenError::InvalidLocation { .. }), Expect::Invalid)
                | (Err(OpenError::ForeignSchema { .. }), Expect::Foreign)
                | (Err(OpenError::Unreachable { .. }), Expect::Unreachable)
                | (Err(OpenError::NotFound { .. }), Expect::NotFound)
                | (Ok(_), Expect::Opens)
        );
        ensure!(
            as_expected,
            "{}: expected {:?}, got {}",
            case.name,
            case.expect,
            Shape(&result)
        );
        if let Ok(backend) = result {
            let location = backend.location().clone();
            let seq = backend
                .engine()
                .put_batch(&[(b"k", b"v")])
                .or_fail(format!("{}: a write", case.name))?;
            ensure!(seq == 1, "{}: the first batch got number {seq}", case.name);
            drop(backend);
            let tables = pg::fingerprint(&location)?;
            let engine = tables.0.get(std::path::Path::new("engine_kv (r)"));
            ensure!(
                matches!(engine, Some(Some((1, _)))),
                "{}: the write is not in the schema the URL names ({}): engine_kv is {engine:?}",
                case.name,
                location.schema()
            );
        }
        if case.expect == Expect::NotFound {
            let location: PostgresLocation = case.url.parse().or_fail(&case.name)?;
            let made = pg::catalog(&location)?
                .into_iter()
                .any(|(schema, _, _)| schema == location.schema());
            ensure!(
                !made,
                "{}: refused as NotFound, yet schema {} was created",
                case.name,
                location.schema()
            );
        }
        let now = pg::catalog(base)?;
        ensure!(
            now == catalog,
            "{}: the database changed: before {catalog:?}, after {now:?}",
            case.name
        );
        let changes = rows.diff(&pg::fingerprint(base)?);
        ensure!(
            changes.is_empty(),
            "{}: the seeded store changed: {changes:?}",
            case.name
        );
        ensure!(
            read(&mut seeded) == visible,
            "{}: the seeded store answers differently",
            case.name
        );
        tried += 1;
    }
    Ok(HostileReport { inputs: tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_schema_or_the_database() {
        let url = "postgres://u@h:5432/db?schema=s&pool=4&host=/tmp/x";
        assert_eq!(
            with_schema(url, "t;--"),
            "postgres://u@h:5432/db?schema=t;--&pool=4&host=/tmp/x"
        );
        assert_eq!(
            with_database(url, "other"),
            "postgres://u@h:5432/other?schema=s&pool=4&host=/tmp/x"
        );
    }
}
