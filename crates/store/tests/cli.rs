//! The `store-migrate` binary, run as a user runs it. Migrations between persistent
//! backends through URLs need those backends' features: `cargo test --workspace` turns them
//! all on (the conformance crate depends on the facade with `all`), and so does
//! `cargo test -p swapstore --features all`; the rest runs in every build with the binary.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;
#[macro_use]
mod common;

use cli_support::{json, shown, store_migrate, text};

#[test]
fn help_shows_examples_and_exit_codes_and_version_prints() {
    let help = store_migrate(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let stdout = text(&help.stdout);
    for expected in [
        "Usage: store-migrate [OPTIONS] <FROM> <TO>",
        "Examples:",
        "store-migrate --dry-run sled:/var/lib/app",
        "Exit codes:",
        "1  verification failed",
        "2  bad arguments",
        "3  source or destination error",
        "MIGRATING",
        "opens it read-only wherever its backend can",
        "--into-existing",
        "--verify-only",
        "--json",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in {stdout}");
    }
    let version = store_migrate(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(text(&version.stdout).starts_with("store-migrate 0."));
}

#[test]
fn bad_arguments_exit_2() {
    for bad in [
        &["mem:"][..],
        &["mem:", "mem:", "--frobnicate"],
        &["nope", "mem:"],
        &["mem:", "mem:", "--book", "a/b"],
        &["mem:", "mem:", "--dry-run", "--verify-only"],
    ] {
        let out = store_migrate(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", shown(&out));
        assert!(text(&out.stderr).starts_with("error: "), "{}", shown(&out));
    }
}

#[cfg(feature = "mem")]
#[test]
fn an_empty_mem_source_migrates_exactly_in_text_and_json() {
    let out = store_migrate(&["mem:", "mem:?cache=0"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        stdout.contains("result: the destination matches the source"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not migrated: segments holding only trace entries"),
        "{stdout}"
    );

    let out = store_migrate(&["mem:", "mem:", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let report = json(&out);
    assert_eq!(report["status"], "verified");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["report"]["checks"].as_array().unwrap().len(), 5);
}

#[test]
fn verbose_logs_opens_and_copies_on_stderr_and_quiet_logs_none() {
    let out = store_migrate(&["-v", "mem:", "mem:"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let log = text(&out.stderr);
    let info = |message: &str| {
        log.lines()
            .filter(|line| line.contains(" INFO ") && line.contains(message))
            .count()
    };
    assert!(info("backend opened") >= 2, "{}", shown(&out));
    // One line per store, with its counts and time.
    assert_eq!(info("store copied"), 5, "{}", shown(&out));
    assert!(log.contains("store=engine"), "{}", shown(&out));
    assert!(log.contains("seconds="), "{}", shown(&out));
    assert!(!log.contains("DEBUG"), "{}", shown(&out));
    // The report still goes to stdout, alone.
    assert!(text(&out.stdout).contains("result: the destination matches the source"));

    let out = store_migrate(&["mem:", "mem:"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(!text(&out.stderr).contains("INFO"), "{}", shown(&out));
}

#[test]
fn a_backend_not_compiled_in_names_its_feature() {
    let Some(kind) = swapstore::BackendKind::ALL
        .into_iter()
        .find(|k| !k.is_enabled())
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    // A directory marked as that backend's, so the source checks pass and the open fails.
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("STORE"),
        format!("store-workspace backend={kind} format=1\n"),
    )
    .unwrap();
    let url = format!("{kind}:{}", dir.display());
    let out = store_migrate(&[&url, "mem:"]);
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let stderr = text(&out.stderr);
    let line = format!(
        "swapstore = {{ version = \"{}\", features = [\"{}\"] }}",
        env!("CARGO_PKG_VERSION"),
        kind.feature()
    );
    assert!(stderr.contains(&line), "{stderr}");
}

/// Everything that needs every persistent backend in the binary.
#[cfg(all(
    feature = "mem",
    feature = "redb",
    feature = "lmdb",
    feature = "sled",
    feature = "sqlite"
))]
mod persistent {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use swapstore::migrate::MIGRATING_FILE;
    use swapstore::{BackendConfig, BackendKind, Book, Durability, Stores};
    use tempfile::TempDir;

    use super::{json, shown, store_migrate, text};
    use crate::common;

    /// A temporary root with a source and a destination path in it.
    struct Dirs {
        root: TempDir,
    }

    impl Dirs {
        fn new() -> Self {
            Dirs {
                root: tempfile::tempdir().unwrap(),
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.root.path().join(name)
        }
    }

    fn url(kind: BackendKind, dir: &Path) -> String {
        BackendConfig::new(kind, dir).to_string()
    }

    fn open(kind: BackendKind, dir: &Path) -> Stores {
        let config = BackendConfig::new(kind, dir).with_durability(Durability::Relaxed);
        Stores::open(&config).unwrap()
    }

    /// A source of `kind` in `dir` holding `common::populate`'s data set, closed.
    fn populated(kind: BackendKind, dir: &Path) {
        common::populate(&open(kind, dir));
    }

    fn book_names(stores: &Stores) -> Vec<String> {
        stores
            .ledger()
            .list_books(None, 100)
            .unwrap()
            .iter()
            .map(Book::to_string)
            .collect()
    }

    /// The first failure of the issue: a typo in the source path created an empty database
    /// there, copied nothing and exited 0 saying the copy matched.
    #[test]
    fn issue_1_a_missing_source_is_an_error_naming_it_and_nothing_is_created() {
        let dirs = Dirs::new();
        let (typo, to) = (dirs.path("tpyo"), dirs.path("to"));
        let out = store_migrate(&[
            &url(BackendKind::Redb, &typo),
            &url(BackendKind::Sqlite, &to),
        ]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&typo.display().to_string()), "{stderr}");
        assert!(stderr.contains("does not exist"), "{stderr}");
        assert!(!typo.exists(), "the source was created");
        assert!(!to.exists(), "the destination was created");

        // An existing directory that is not a database is refused the same way.
        std::fs::create_dir(&typo).unwrap();
        let out = store_migrate(&[
            &url(BackendKind::Redb, &typo),
            &url(BackendKind::Sqlite, &to),
        ]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        assert!(
            text(&out.stderr).contains("no STORE marker"),
            "{}",
            shown(&out)
        );
        assert_eq!(std::fs::read_dir(&typo).unwrap().count(), 0);
    }

    /// The second failure: without --book/--partition no book and no partition was copied.
    #[test]
    fn issue_2_every_book_and_partition_is_copied_without_naming_them() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("sled"), dirs.path("redb"));
        populated(BackendKind::Sled, &from);
        let out = store_migrate(&[&url(BackendKind::Sled, &from), &url(BackendKind::Redb, &to)]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let source = open(BackendKind::Sled, &from);
        let destination = open(BackendKind::Redb, &to);
        assert_eq!(
            destination.list_partitions(None, 10).unwrap(),
            ["alpha", "gamma"]
        );
        assert_eq!(destination.state_store("alpha").unwrap().len(), 601);
        assert_eq!(book_names(&destination), book_names(&source));
        assert_eq!(book_names(&destination).len(), 4);
        let effects = destination.side_effects();
        assert_eq!(effects.list_output_keys(None, 10).unwrap().len(), 4);
        assert_eq!(
            effects.list_inter_call_output_keys(None, 10).unwrap().len(),
            2
        );
    }

    /// A redb source of `batches` one-key batches (100 keys), its log pruned but for the last.
    fn pruned_source(dir: &Path, batches: u64) {
        let source = open(BackendKind::Redb, dir);
        let engine = source.engine();
        for i in 0..batches {
            engine
                .put_batch(&[(format!("key/{}", i % 100).as_bytes(), b"v")])
                .unwrap();
        }
        engine.prune_batch_log(batches).unwrap();
    }

    /// A copy killed (SIGKILL) while it writes leaves the destination marked, and it is
    /// refused afterwards: it never looks complete.
    #[test]
    fn a_killed_copy_leaves_its_marker_and_is_refused() {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;

        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        pruned_source(&from, 10_000);
        let (from_url, to_url) = (url(BackendKind::Redb, &from), url(BackendKind::Sqlite, &to));
        let mut child = std::process::Command::new(crate::cli_support::EXE)
            .args([&from_url, &to_url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let started = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line == "store-migrate: copying engine");
        assert!(started, "the copy never started");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "the copy finished before it was killed");
        assert!(
            to.join(MIGRATING_FILE).exists(),
            "no marker in the killed copy"
        );

        let again = store_migrate(&[&from_url, &to_url]);
        assert_eq!(again.status.code(), Some(3), "{}", shown(&again));
        assert!(text(&again.stderr).contains("holds an unfinished migration"));
    }

    /// The third failure: a source whose batch log was pruned took minutes with no output,
    /// one durable fsync per filler batch. The bound below is a guard far above the bulk
    /// copy (about a second here), not a performance target.
    #[test]
    fn issue_3_a_pruned_log_copies_at_bulk_speed_with_progress() {
        const BATCHES: u64 = 10_000;
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        pruned_source(&from, BATCHES);
        // The destination's URL asks for immediate durability, the default.
        let started = Instant::now();
        let out = store_migrate(&[&url(BackendKind::Redb, &from), &url(BackendKind::Redb, &to)]);
        let elapsed = started.elapsed();
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("store-migrate: copying engine"), "{stderr}");
        assert!(
            stderr.contains("store-migrate: verifying engine: done"),
            "{stderr}"
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("handled: batches 1..={} were pruned", BATCHES - 1)),
            "{stdout}"
        );
        assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
        let engine = open(BackendKind::Redb, &to).engine();
        assert_eq!(engine.current_sequence(), BATCHES);
        assert_eq!(engine.oldest_retained_batch().unwrap(), Some(BATCHES));
        assert_eq!(engine.range_scan(b"", b"", 1000, true).unwrap().len(), 100);
    }

    /// Every store copied by default from `from` into `to`, verified, the marker gone.
    fn every_store_by_default(from_kind: BackendKind, to_kind: BackendKind) {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(from_kind, &from);
        let to_url = match to_kind {
            BackendKind::Mem => "mem:".to_owned(),
            kind => url(kind, &to),
        };
        let out = store_migrate(&[&url(from_kind, &from), &to_url, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let report = json(&out);
        assert_eq!(report["status"], "verified", "{report:#}");
        let checks = report["report"]["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 5);
        for check in checks {
            assert_eq!(check["source"], check["destination"], "{check:#}");
        }
        let counts = |store: &str| {
            checks
                .iter()
                .find(|c| c["store"] == store)
                .map(|c| c["source"]["counts"].clone())
                .unwrap()
        };
        assert_eq!(counts("engine")["keys"], 702);
        assert_eq!(counts("engine")["current sequence"], 6);
        assert_eq!(counts("state")["partitions"], 2);
        assert_eq!(counts("ledger")["books"], 4);
        assert_eq!(counts("segments")["trace entries"], 1);
        assert_eq!(counts("side-effects")["output slots"], 4);
        assert_eq!(counts("side-effects")["inbound calls"], 602);
        if to_kind != BackendKind::Mem {
            assert!(!to.join(MIGRATING_FILE).exists());
            let destination = open(to_kind, &to);
            assert_eq!(destination.engine().current_sequence(), 6);
            assert_eq!(
                destination.engine().oldest_retained_batch().unwrap(),
                Some(3)
            );
        }
    }

    macro_rules! pairs {
        ($($name:ident: $from:ident -> $to:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    every_store_by_default(BackendKind::$from, BackendKind::$to);
                }
            )*
        };
    }

    pairs!(
        redb_to_lmdb: Redb -> Lmdb,
        redb_to_sled: Redb -> Sled,
        redb_to_sqlite: Redb -> Sqlite,
        redb_to_mem: Redb -> Mem,
        lmdb_to_redb: Lmdb -> Redb,
        lmdb_to_sled: Lmdb -> Sled,
        lmdb_to_sqlite: Lmdb -> Sqlite,
        lmdb_to_mem: Lmdb -> Mem,
        sled_to_redb: Sled -> Redb,
        sled_to_lmdb: Sled -> Lmdb,
        sled_to_sqlite: Sled -> Sqlite,
        sled_to_mem: Sled -> Mem,
        sqlite_to_redb: Sqlite -> Redb,
        sqlite_to_lmdb: Sqlite -> Lmdb,
        sqlite_to_sled: Sqlite -> Sled,
        sqlite_to_mem: Sqlite -> Mem,
    );

    #[test]
    fn a_non_empty_destination_is_refused_and_left_as_it_was() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(BackendKind::Redb, &from);
        {
            let destination = open(BackendKind::Sqlite, &to);
            destination.engine().put_batch(&[(b"mine", b"1")]).unwrap();
        }
        let args = [url(BackendKind::Redb, &from), url(BackendKind::Sqlite, &to)];
        let out = store_migrate(&[&args[0], &args[1]]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is not empty (engine: engine at sequence 1)"),
            "{stderr}"
        );
        assert!(stderr.contains("--into-existing"), "{stderr}");
        assert!(!to.join(MIGRATING_FILE).exists());
        let destination = open(BackendKind::Sqlite, &to);
        assert_eq!(destination.engine().current_sequence(), 1);
        assert!(book_names(&destination).is_empty());
    }

    #[test]
    fn into_existing_copies_only_into_stores_empty_there() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(BackendKind::Lmdb, &from);
        {
            let destination = open(BackendKind::Redb, &to);
            common::demo::ledger_demo(&destination).unwrap();
        }
        let (from_url, to_url) = (url(BackendKind::Lmdb, &from), url(BackendKind::Redb, &to));
        // The ledger is not empty there: refused even with --into-existing.
        let out = store_migrate(&[&from_url, &to_url, "--into-existing"]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        assert!(
            text(&out.stderr).contains("the destination's ledger is not empty"),
            "{}",
            shown(&out)
        );
        let out = store_migrate(&[&from_url, &to_url, "--store", "engine,segments"]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        let out = store_migrate(&[
            &from_url,
            &to_url,
            "--store",
            "engine,segments",
            "--into-existing",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("narrowed to stores engine, segments"),
            "{stdout}"
        );
        assert!(
            stdout.contains("destination was a database holding data"),
            "{stdout}"
        );
        let destination = open(BackendKind::Redb, &to);
        assert_eq!(destination.engine().current_sequence(), 6);
        assert_eq!(
            book_names(&destination),
            ["_system", common::demo::LEDGER_BOOK]
        );
    }

    #[test]
    fn an_interrupted_copy_is_refused_and_reported_unfinished() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(BackendKind::Sqlite, &from);
        let (from_url, to_url) = (url(BackendKind::Sqlite, &from), url(BackendKind::Lmdb, &to));
        let out = store_migrate(&[&from_url, &to_url]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        // What a copy killed before verification leaves: the marker, still there.
        let note =
            "store-migrate copy from sqlite:/x started at 1 by process 1 has not been verified";
        std::fs::write(to.join(MIGRATING_FILE), note).unwrap();

        let again = store_migrate(&[&from_url, &to_url]);
        assert_eq!(again.status.code(), Some(3), "{}", shown(&again));
        let stderr = text(&again.stderr);
        assert!(stderr.contains("holds an unfinished migration"), "{stderr}");
        assert!(stderr.contains(note), "{stderr}");
        assert!(stderr.contains("remove the directory"), "{stderr}");

        // --verify-only compares, and still says the destination is unfinished.
        let verified = store_migrate(&[&from_url, &to_url, "--verify-only"]);
        assert_eq!(verified.status.code(), Some(1), "{}", shown(&verified));
        let stdout = text(&verified.stdout);
        assert!(stdout.contains("engine       verified"), "{stdout}");
        assert!(stdout.contains("UNFINISHED"), "{stdout}");
        assert!(to.join(MIGRATING_FILE).exists());

        // Nor is an unfinished destination ever used as a source.
        let elsewhere = url(BackendKind::Redb, &dirs.path("elsewhere"));
        let out = store_migrate(&[&to_url, &elsewhere]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        assert!(
            text(&out.stderr).contains("unfinished migration"),
            "{}",
            shown(&out)
        );
    }

    #[test]
    fn dry_run_counts_what_would_be_copied_and_writes_nothing() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(BackendKind::Sled, &from);
        let (from_url, to_url) = (url(BackendKind::Sled, &from), url(BackendKind::Sqlite, &to));
        let out = store_migrate(&[&from_url, &to_url, "--dry-run"]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let stdout = text(&out.stdout);
        for expected in [
            "dry run:",
            "destination is absent",
            "engine       would copy keys 702, retained batches 4, current sequence 6",
            "handled: batches 1..=2 were pruned",
            "state        would copy partitions 2, keys 602",
            "side-effects would copy output slots 4, inter-call outputs 2, callees 3, inbound calls 602",
            "result: nothing written",
        ] {
            assert!(stdout.contains(expected), "{expected:?} in {stdout}");
        }
        assert!(!to.exists(), "a dry run created the destination");

        let out = store_migrate(&[&from_url, &to_url, "--dry-run", "--json", "--book", "other"]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let report = json(&out);
        assert_eq!(report["status"], "dry-run");
        let would_copy = report["report"]["would_copy"].as_array().unwrap();
        let ledger = would_copy.iter().find(|s| s["store"] == "ledger").unwrap();
        assert_eq!(ledger["counts"]["books"], 2, "{ledger:#}");
        assert_eq!(
            report["report"]["narrowed"][0],
            "ledger books _system, other"
        );
        assert!(!to.exists());
    }

    #[test]
    fn a_difference_exits_1_with_a_summary_per_store() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(BackendKind::Redb, &from);
        let (from_url, to_url) = (url(BackendKind::Redb, &from), url(BackendKind::Sled, &to));
        let out = store_migrate(&[&from_url, &to_url]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        {
            let destination = open(BackendKind::Sled, &to);
            destination
                .engine()
                .put_batch(&[(b"k/0000", b"changed")])
                .unwrap();
            let mut alpha = destination.state_store("alpha").unwrap();
            alpha.delete(b"s/1").unwrap();
            alpha.flush().unwrap();
        }
        let out = store_migrate(&[&from_url, &to_url, "--verify-only"]);
        assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
        let stdout = text(&out.stdout);
        for expected in [
            "engine       DIFFERS: source keys 702",
            "2 changed",
            "key b\"k/0000\": source Value",
            "only in the destination: batch 7",
            "state        DIFFERS",
            "missing from the destination: partition \"alpha\" key b\"s/1\"",
            "ledger       verified",
            "result: 2 of 5 stores differ",
        ] {
            assert!(stdout.contains(expected), "{expected:?} in {stdout}");
        }
        let out = store_migrate(&[&from_url, &to_url, "--verify-only", "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
        let report = json(&out);
        assert_eq!(report["status"], "differs");
        let checks = report["report"]["checks"].as_array().unwrap();
        let engine = &checks[0];
        // The key and the current sequence.
        assert_eq!(engine["changed"], 2);
        assert_eq!(engine["extra"], 1);
        assert_ne!(engine["source"]["digest"], engine["destination"]["digest"]);
    }

    #[test]
    fn a_name_the_source_lacks_exits_2_and_writes_nothing() {
        let dirs = Dirs::new();
        let (from, to) = (dirs.path("from"), dirs.path("to"));
        populated(BackendKind::Sqlite, &from);
        let from_url = url(BackendKind::Sqlite, &from);
        let to_url = url(BackendKind::Redb, &to);
        for (flag, value, what) in [
            ("--book", "othre", "book othre is not in the source"),
            (
                "--partition",
                "alpah",
                "partition alpah is not in the source",
            ),
            (
                "--lyquid",
                "0x0000000000000000000000000000000000000001",
                "Lyquid 0x",
            ),
        ] {
            let out = store_migrate(&[&from_url, &to_url, flag, value]);
            assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
            assert!(text(&out.stderr).contains(what), "{}", shown(&out));
            assert!(!to.exists());
        }
    }

    #[test]
    fn a_source_of_another_backend_is_named_as_such() {
        let dirs = Dirs::new();
        let from = dirs.path("from");
        populated(BackendKind::Sled, &from);
        let out = store_migrate(&[&url(BackendKind::Redb, &from), "mem:"]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        assert!(
            text(&out.stderr).contains("it holds a sled database: name it with a sled: URL"),
            "{}",
            shown(&out)
        );
    }

    #[test]
    fn an_error_prints_each_cause_once() {
        let dirs = Dirs::new();
        let from = dirs.path("from");
        populated(BackendKind::Redb, &from);
        let file = dirs.path("a-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let out = store_migrate(&[
            &url(BackendKind::Redb, &from),
            &url(BackendKind::Lmdb, &file),
        ]);
        assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("cannot open the destination"), "{stderr}");
        assert_eq!(stderr.matches("is not a directory").count(), 1, "{stderr}");
    }
}
