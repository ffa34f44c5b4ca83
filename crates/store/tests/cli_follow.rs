//! `store-migrate --follow`, run as a user runs it: a quiet embedded leader caught up and
//! resumed, a live embedded leader refused as locked, a pruned leader (exit 4), and a live
//! PostgreSQL leader followed by a separate process that SIGTERM stops cleanly. Needs the
//! `postgres`, `redb` and `sqlite` features: `cargo test --workspace` turns them on, as
//! does `cargo test -p swapstore --features all`.
#![cfg(all(
    feature = "cli",
    feature = "postgres",
    feature = "redb",
    feature = "sqlite"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{EXE, json, shown, store_migrate};
use swapstore::{BackendConfig, BackendKind, Durability, StoreEngine, Stores};

fn url(kind: BackendKind, dir: &Path) -> String {
    BackendConfig::new(kind, dir)
        .with_durability(Durability::Relaxed)
        .to_string()
}

fn write(engine: &dyn StoreEngine, batches: std::ops::Range<u32>) {
    for i in batches {
        let key = format!("k/{}", i % 50);
        engine
            .put_batch(&[(key.as_bytes(), &i.to_be_bytes())])
            .unwrap();
    }
}

fn same_engine(leader: &dyn StoreEngine, follower: &dyn StoreEngine) {
    assert_eq!(follower.current_sequence(), leader.current_sequence());
    assert_eq!(
        follower.range_scan(b"", b"", usize::MAX, true).unwrap(),
        leader.range_scan(b"", b"", usize::MAX, true).unwrap()
    );
}

#[test]
fn help_describes_following() {
    let out = store_migrate(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "--follow",
        "--catch-up",
        "Following (--follow FROM TO)",
        "4  --follow: the follower cannot go on",
        "shared leader (postgres://)",
        "one process per directory",
    ] {
        assert!(help.contains(expected), "{expected:?} in {help}");
    }
}

/// A leader nobody has open (redb) caught up into SQLite, then resumed twice: once with
/// nothing new, once after the leader wrote more.
#[test]
fn a_quiet_embedded_leader_is_caught_up_and_resumed() {
    let root = tempfile::tempdir().unwrap();
    let (from, to) = (
        url(BackendKind::Redb, &root.path().join("leader")),
        url(BackendKind::Sqlite, &root.path().join("follower")),
    );
    let leader = Stores::open_url(&from).unwrap();
    write(leader.engine().as_ref(), 0..120);
    drop(leader);

    let out = store_migrate(&["--follow", "--catch-up", "--json", &from, &to]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let report = json(&out);
    assert_eq!(report["status"], "caught-up", "{report:#}");
    assert_eq!(report["report"]["start"]["copied"]["at"], 120, "{report:#}");
    assert_eq!(report["report"]["tail"]["applied"], 0, "{report:#}");

    let out = store_migrate(&["--follow", "--catch-up", &from, &to]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("resumed after batch 120, nothing copied"),
        "{text}"
    );
    assert!(
        text.contains("caught up with the leader at batch 120"),
        "{text}"
    );

    let leader = Stores::open_url(&from).unwrap();
    write(leader.engine().as_ref(), 120..150);
    drop(leader);
    let out = store_migrate(&["--follow", "--catch-up", "--json", &from, &to]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let report = json(&out);
    assert_eq!(
        report["report"]["start"]["resumed"]["at"], 120,
        "{report:#}"
    );
    assert_eq!(report["report"]["tail"]["applied"], 30, "{report:#}");
    // Not a terminal: the follower's events are log lines on stderr.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("follower resumes"), "{log}");

    let (leader, follower) = (
        Stores::open_url(&from).unwrap(),
        Stores::open_url(&to).unwrap(),
    );
    same_engine(leader.engine().as_ref(), follower.engine().as_ref());
}

/// An embedded leader open in another process cannot be followed from this one: exit 3,
/// saying why and what to do instead.
#[test]
fn a_live_embedded_leader_is_refused_as_locked() {
    let root = tempfile::tempdir().unwrap();
    let from = url(BackendKind::Redb, &root.path().join("leader"));
    let to = url(BackendKind::Sqlite, &root.path().join("follower"));
    let leader = Stores::open_url(&from).unwrap();
    write(leader.engine().as_ref(), 0..3);
    let out = store_migrate(&["--follow", &from, &to]);
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("locked")
            && text.contains("swapstore::replicate")
            && text.contains("postgres"),
        "{text}"
    );
    assert!(!root.path().join("follower").exists());
}

/// A leader that pruned batches the follower still needs: exit 4, naming them.
#[test]
fn a_pruned_leader_exits_4() {
    let root = tempfile::tempdir().unwrap();
    let from = url(BackendKind::Redb, &root.path().join("leader"));
    let to = url(BackendKind::Sqlite, &root.path().join("follower"));
    let leader = Stores::open_url(&from).unwrap();
    write(leader.engine().as_ref(), 0..5);
    drop(leader);
    let out = store_migrate(&["--follow", "--catch-up", &from, &to]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    let leader = Stores::open_url(&from).unwrap();
    write(leader.engine().as_ref(), 5..12);
    leader.engine().prune_batch_log(9).unwrap();
    drop(leader);
    let out = store_migrate(&["--follow", "--catch-up", "--json", &from, &to]);
    assert_eq!(out.status.code(), Some(4), "{}", shown(&out));
    let report = json(&out);
    assert_eq!(report["status"], "error");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("pruned batches 6..=8") && error.contains("resync"),
        "{error}"
    );
}

/// A PostgreSQL leader written by this process while a separate `store-migrate --follow`
/// process follows it into SQLite; SIGTERM stops the follower cleanly (exit 0, report
/// `stopped`), and a later catch-up run resumes it to the leader's exact state.
#[test]
fn a_live_postgres_leader_is_followed_by_another_process() {
    let location = swapstore::postgres::scratch::fresh_location().unwrap();
    let from = format!("{location}&durability=relaxed");
    let root = tempfile::tempdir().unwrap();
    let to = url(BackendKind::Sqlite, &root.path().join("follower"));
    let leader = Stores::open_url(&from).unwrap();
    write(leader.engine().as_ref(), 0..20);

    let mut child = Command::new(EXE)
        .args(["--follow", "--json", &from, &to])
        .env_remove(swapstore::STORE_BACKEND_VAR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower logs once it tails; its signal handlers are set before it starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = Vec::new();
    while !log
        .iter()
        .any(|line: &String| line.contains("tailing the leader"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no tailing line ({e}): {log:#?}");
            }
        }
    }
    write(leader.engine().as_ref(), 20..80);
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let report = json(&out);
    assert_eq!(report["status"], "stopped", "{report:#}");
    assert_eq!(report["report"]["start"]["copied"]["at"], 20, "{report:#}");
    let at = report["report"]["tail"]["at"].as_u64().unwrap();
    assert!((20..=80).contains(&at), "{report:#}");

    let out = store_migrate(&["--follow", "--catch-up", &from, &to]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let follower = Stores::open_url(&to).unwrap();
    same_engine(leader.engine().as_ref(), follower.engine().as_ref());
}
