//! How `store-migrate` opens its source (contract §1.3): read-only wherever the backend can,
//! so a migration, a dry run and a verification leave every data file of the source
//! byte-identical; read-write (never creating it) on sled, which cannot open read-only; and
//! read-write for a redb source left by a crash, whose read-only open refuses it with
//! `OpenError::NeedsRecovery`. Every other refusal of the read-only open is the error.
//!
//! Sources are named by URL, so this needs every persistent backend compiled in:
//! `cargo test -p swapstore --features all --test migrate_source` (`cargo test --workspace`
//! turns them all on).
#![cfg(all(
    feature = "cli",
    feature = "redb",
    feature = "lmdb",
    feature = "sled",
    feature = "fjall",
    feature = "sqlite"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;
#[macro_use]
mod common;

use cli_support::{shown, store_migrate};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use swapstore::migrate::{self, MigrateError, NoProgress, Options, Plan, SourceAccess};
use swapstore::{
    BackendConfig, BackendKind, Durability, OpenError, OpenOptions, Stores, StoresError, open_as,
};
use tempfile::TempDir;

/// Set (to a directory) in the child process [`crashed_source`] starts: the child writes
/// the data set there and aborts without closing.
const CRASH_DIR_VAR: &str = "STORE_MIGRATE_TEST_CRASH_DIR";
/// The backend the child writes, by name.
const CRASH_BACKEND_VAR: &str = "STORE_MIGRATE_TEST_CRASH_BACKEND";

fn config(kind: BackendKind, dir: &Path) -> BackendConfig {
    BackendConfig::new(kind, dir)
}

/// A source of `kind` in `dir` holding `common::populate`'s data set, closed cleanly.
fn populated(kind: BackendKind, dir: &Path) {
    let config = config(kind, dir).with_durability(Durability::Relaxed);
    let stores = Stores::open(&config).unwrap();
    common::populate(&stores);
    stores.close().unwrap();
}

/// The SHA-256 of every data file under `dir`: every file but those a read-only open may
/// touch (LMDB's `lock.mdb`, SQLite's `-shm` and `-wal`; see the conformance test
/// `read_only_reads_everything_and_refuses_every_write`, whose filter this is).
fn data_file_digests(dir: &Path) -> Vec<(PathBuf, String)> {
    conformance::harness::data_files(dir)
        .into_iter()
        .map(|(path, bytes)| {
            let digest: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (path, digest)
        })
        .collect()
}

/// Migrating, dry-running and verifying from a read-only source leave its data files
/// byte-identical, and each report says the source was opened read-only.
fn read_only_source_is_left_byte_identical(from: BackendKind, to: BackendKind) {
    let root = TempDir::new().unwrap();
    let (source, destination) = (root.path().join("source"), root.path().join("destination"));
    populated(from, &source);
    let before = data_file_digests(&source);
    assert!(
        before.len() >= 2,
        "expected the marker and the database files, found {before:?}"
    );
    let (from, to) = (config(from, &source), config(to, &destination));
    let (plan, options) = (Plan::default(), Options::default());

    let dry = migrate::dry_run(&from, &to, &plan, options, &NoProgress).unwrap();
    assert_eq!(dry.source, SourceAccess::ReadOnly);
    let report = migrate::migrate(&from, &to, &plan, options, &NoProgress).unwrap();
    assert!(report.is_exact(), "{report}");
    assert_eq!(report.source, SourceAccess::ReadOnly);
    assert!(
        report
            .to_string()
            .contains("the source was opened read-only: its files are left as they were"),
        "{report}"
    );
    let verified = migrate::verify_only(&from, &to, &plan, &NoProgress).unwrap();
    assert!(verified.is_exact(), "{verified}");
    assert_eq!(verified.source, SourceAccess::ReadOnly);

    let after = data_file_digests(&source);
    assert_eq!(
        before, after,
        "the migration changed the source's data files"
    );
}

#[test]
fn a_redb_source_is_left_byte_identical() {
    read_only_source_is_left_byte_identical(BackendKind::Redb, BackendKind::Lmdb);
}

#[test]
fn an_lmdb_source_is_left_byte_identical() {
    read_only_source_is_left_byte_identical(BackendKind::Lmdb, BackendKind::Sqlite);
}

#[test]
fn a_sqlite_source_is_left_byte_identical() {
    read_only_source_is_left_byte_identical(BackendKind::Sqlite, BackendKind::Redb);
}

#[test]
fn every_persistent_backend_that_opens_read_only_is_covered_above() {
    let covered = [BackendKind::Redb, BackendKind::Lmdb, BackendKind::Sqlite];
    for kind in BackendKind::ALL {
        let caps = capabilities(kind);
        // PostgreSQL keeps its store on a server, not in files of a directory.
        let in_a_directory = caps.persistent && !caps.shared;
        assert_eq!(
            in_a_directory && caps.read_only_open,
            covered.contains(&kind),
            "{kind}"
        );
    }
}

fn capabilities(kind: BackendKind) -> swapstore::Capabilities {
    use swapstore::Backend;
    match kind {
        BackendKind::Mem => swapstore::mem::MemBackend::capabilities(),
        BackendKind::Redb => swapstore::redb::RedbBackend::capabilities(),
        BackendKind::Lmdb => swapstore::lmdb::LmdbBackend::capabilities(),
        BackendKind::Sled => swapstore::sled::SledBackend::capabilities(),
        BackendKind::Fjall => swapstore::fjall::FjallBackend::capabilities(),
        BackendKind::Sqlite => swapstore::sqlite::SqliteBackend::capabilities(),
        BackendKind::Postgres => swapstore::postgres::PostgresBackend::capabilities(),
    }
}

/// Runs `store-migrate FROM TO`, which must verify and say in its text report, in one
/// sentence, that the source was opened with `access`.
fn migrate_text(from: &str, to: &str, access: SourceAccess) {
    let out = store_migrate(&[from, to]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("\n  {}\n", access.sentence())),
        "{}",
        shown(&out)
    );
}

/// Runs `store-migrate FROM TO --json`, which must verify and say in its JSON report how
/// the source was opened.
fn migrate_json(from: &str, to: &str, access: SourceAccess) {
    let out = store_migrate(&[from, to, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "verified");
    assert_eq!(report["report"]["source"]["access"], access.name());
    assert_eq!(report["report"]["source"]["note"], access.sentence());
}

fn url(kind: BackendKind, dir: &Path) -> String {
    config(kind, dir).to_string()
}

/// fjall cannot open read-only either: its source is opened read-write, and the report
/// says so; the copy is still exact.
#[test]
fn a_fjall_source_is_opened_read_write_and_the_report_says_so() {
    let root = TempDir::new().unwrap();
    let fjall = root.path().join("fjall");
    populated(BackendKind::Fjall, &fjall);
    let from = url(BackendKind::Fjall, &fjall);
    let access = SourceAccess::ReadWriteNoReadOnlyOpen;
    migrate_text(
        &from,
        &url(BackendKind::Redb, &root.path().join("a")),
        access,
    );
    migrate_json(
        &from,
        &url(BackendKind::Sqlite, &root.path().join("b")),
        access,
    );
}

/// sled cannot open read-only: the source is opened read-write, never created, and the
/// report says so; the copy is still exact. A read-only source says so too.
#[test]
fn a_sled_source_is_opened_read_write_and_the_report_says_so() {
    let root = TempDir::new().unwrap();
    let sled = root.path().join("sled");
    populated(BackendKind::Sled, &sled);
    let from = url(BackendKind::Sled, &sled);
    let access = SourceAccess::ReadWriteNoReadOnlyOpen;
    migrate_text(
        &from,
        &url(BackendKind::Redb, &root.path().join("a")),
        access,
    );
    migrate_json(
        &from,
        &url(BackendKind::Lmdb, &root.path().join("b")),
        access,
    );

    let redb = root.path().join("redb");
    populated(BackendKind::Redb, &redb);
    let from = url(BackendKind::Redb, &redb);
    let access = SourceAccess::ReadOnly;
    migrate_text(
        &from,
        &url(BackendKind::Sqlite, &root.path().join("c")),
        access,
    );
    migrate_json(
        &from,
        &url(BackendKind::Sled, &root.path().join("d")),
        access,
    );
}

/// Writes the data set into a `kind` store in `dir` from a child process that aborts
/// without closing it: what a crash or a killed process leaves.
fn crashed_source(kind: BackendKind, dir: &Path) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--test-threads=1"])
        .env(CRASH_DIR_VAR, dir)
        .env(CRASH_BACKEND_VAR, kind.name())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the child did not crash: {}",
        shown(&out)
    );
    assert!(dir.join("STORE").exists(), "the child wrote no store");
}

/// The child of [`crashed_source`]; does nothing in a normal test run.
#[test]
fn crash_child() {
    let (Some(dir), Ok(kind)) = (
        std::env::var_os(CRASH_DIR_VAR),
        std::env::var(CRASH_BACKEND_VAR),
    ) else {
        return;
    };
    let kind = BackendKind::from_name(&kind).unwrap();
    let stores = Stores::open(&config(kind, Path::new(&dir))).unwrap();
    common::populate(&stores);
    std::process::abort();
}

/// A redb source left by a crash needs recovery, which its read-only open refuses to run
/// (`OpenError::NeedsRecovery`): the migration opens it read-write, which recovers it,
/// says so, and copies it exactly. Once recovered, the next migration opens it read-only.
#[test]
fn a_crashed_redb_source_is_recovered_read_write_and_the_report_says_so() {
    let root = TempDir::new().unwrap();
    let (first, second) = (root.path().join("first"), root.path().join("second"));
    crashed_source(BackendKind::Redb, &first);
    crashed_source(BackendKind::Redb, &second);
    let read_only = OpenOptions::default().read_only(true);
    for source in [&first, &second] {
        let refused = open_as::<swapstore::redb::RedbBackend>(source, read_only.clone());
        assert!(
            matches!(refused, Err(OpenError::NeedsRecovery { .. })),
            "{refused:?}"
        );
    }
    let access = SourceAccess::ReadWriteToRecover;
    migrate_text(
        &url(BackendKind::Redb, &first),
        &url(BackendKind::Sqlite, &root.path().join("a")),
        access,
    );
    migrate_json(
        &url(BackendKind::Redb, &second),
        &url(BackendKind::Lmdb, &root.path().join("b")),
        access,
    );
    migrate_json(
        &url(BackendKind::Redb, &first),
        &url(BackendKind::Sled, &root.path().join("c")),
        SourceAccess::ReadOnly,
    );
}

/// LMDB and SQLite read a store left by a crash without writing first: such a source is
/// opened read-only like any other.
#[test]
fn crashed_lmdb_and_sqlite_sources_are_opened_read_only() {
    let root = TempDir::new().unwrap();
    for (kind, to) in [
        (BackendKind::Lmdb, BackendKind::Redb),
        (BackendKind::Sqlite, BackendKind::Lmdb),
    ] {
        let source = root.path().join(kind.name());
        crashed_source(kind, &source);
        let destination = root.path().join(format!("{kind}-copy"));
        migrate_json(
            &url(kind, &source),
            &url(to, &destination),
            SourceAccess::ReadOnly,
        );
    }
}

/// Any other refusal of the read-only open is the migration's error, with nothing written:
/// a damaged redb file is not "recovered" read-write, a locked source is not reopened.
#[test]
fn any_other_read_only_refusal_is_the_error() {
    let root = TempDir::new().unwrap();
    let source = root.path().join("damaged");
    populated(BackendKind::Redb, &source);
    let file = source.join("store.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..16].copy_from_slice(b"not a redb file!");
    std::fs::write(&file, &bytes).unwrap();
    let before = data_file_digests(&source);
    let to = config(BackendKind::Lmdb, &root.path().join("to"));
    let (plan, options) = (Plan::default(), Options::default());
    let refused = migrate::migrate(
        &config(BackendKind::Redb, &source),
        &to,
        &plan,
        options,
        &NoProgress,
    );
    assert!(
        matches!(
            refused,
            Err(MigrateError::OpenSource {
                source: StoresError::Open {
                    source: OpenError::Corrupted { .. },
                    ..
                },
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(data_file_digests(&source), before);

    let live = root.path().join("live");
    populated(BackendKind::Lmdb, &live);
    let holder = Stores::open(&config(BackendKind::Lmdb, &live)).unwrap();
    let refused = migrate::migrate(
        &config(BackendKind::Lmdb, &live),
        &to,
        &plan,
        options,
        &NoProgress,
    );
    assert!(
        matches!(
            refused,
            Err(MigrateError::OpenSource {
                source: StoresError::Open {
                    source: OpenError::Locked { .. },
                    ..
                },
                ..
            })
        ),
        "{refused:?}"
    );
    drop(holder);
}
