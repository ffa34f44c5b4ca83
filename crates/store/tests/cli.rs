//! The `store-migrate` binary, run as a user runs it. Migrations between persistent
//! backends through URLs need those backends' features (`--features all`); the rest runs
//! in every build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::process::{Command, Output};

fn store_migrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_store-migrate"))
        .args(args)
        .env_remove(store::STORE_BACKEND_VAR)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_usage_errors() {
    let help = store_migrate(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("usage: store-migrate"));

    for bad in [
        &["mem:"][..],
        &["mem:", "mem:", "--frobnicate"],
        &["nope", "mem:"],
    ] {
        let out = store_migrate(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            text(&out.stderr).contains("usage: store-migrate"),
            "{bad:?}"
        );
    }
}

#[cfg(feature = "mem")]
#[test]
fn an_empty_mem_source_migrates_exactly() {
    let out = store_migrate(&["mem:", "mem:?cache=0", "--partition", "p", "--book", "b"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("result: the destination matches the source"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not migrated: event, call and timer outputs"),
        "{stdout}"
    );
}

#[test]
fn a_backend_not_compiled_in_names_its_feature() {
    let Some(kind) = store::BackendKind::ALL
        .into_iter()
        .find(|k| !k.is_enabled())
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{kind}:{}", dir.path().join("db").display());
    let out = store_migrate(&[&url, "mem:"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("feature \"{}\"", kind.feature())),
        "{stderr}"
    );
}

#[cfg(all(feature = "sled", feature = "redb"))]
#[test]
fn sled_to_redb_in_one_command() {
    use store::{Backend, BackendConfig, BackendKind};

    let root = tempfile::tempdir().unwrap();
    let (from, to) = (root.path().join("sled"), root.path().join("redb"));
    let plan = {
        let source = store::open_as::<store_sled::SledBackend>(&from, common::relaxed()).unwrap();
        common::populate(&source)
    };
    let from_url = BackendConfig::new(BackendKind::Sled, &from).to_string();
    let to_url = BackendConfig::new(BackendKind::Redb, &to)
        .with_durability(store::Durability::Relaxed)
        .to_string();
    let mut args = vec![from_url.clone(), to_url.clone()];
    for p in &plan.partitions {
        args.extend(["--partition".to_owned(), p.clone()]);
    }
    for b in &plan.books {
        args.push(format!("--book={b}"));
    }
    args.extend(["--callee".to_owned(), "07".repeat(20)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let out = store_migrate(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("result: the destination matches the source"),
        "{stdout}"
    );
    let redb =
        store::open_as::<store_redb::RedbBackend>(&to, store::OpenOptions::default()).unwrap();
    assert_eq!(redb.engine().current_sequence(), 6);
    assert_eq!(redb.state_store("alpha").unwrap().len(), 601);
    assert_eq!(redb.backend_name(), store_redb::RedbBackend::NAME);
    drop(redb);

    // Again into the same, now full, destination: refused, nothing written, exit 1.
    let again = store_migrate(&args);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("is not empty"),
        "{}",
        text(&again.stderr)
    );
}
