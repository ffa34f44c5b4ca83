//! The `tracing` events a user turns on to see what the stores do: a backend opened (with
//! its time), each backend's own step of opening (integrity check, recovery, schema check,
//! with its time), a durable state flush (with its size and time), a group-commit batch
//! (with its size and time), an error naming its store. Captured with a subscriber of this
//! thread only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use parking_lot::Mutex;
use store_redb::RedbBackend;
use swapstore::AccountKind::{Asset, Liability};
use swapstore::{
    AccountCfg, AccountDef, AccountId, AssetDef, AssetId, Book, OpenOptions, Stores, Transaction,
};

/// What the subscriber writes, kept for the assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One test at a time: tracing caches each callsite's interest, and a callsite first hit
/// on a thread with no subscriber (another test opening the same backend) while a scoped
/// subscriber is being set up here can stay unseen by it (a CI run lost redb's open step
/// so).
static ONE_CAPTURE_AT_A_TIME: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Runs `f` with every `debug` event of this thread written to the returned text.
fn captured(f: impl FnOnce()) -> String {
    let _alone = ONE_CAPTURE_AT_A_TIME.lock();
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8_lossy(&out.0.lock()).into_owned()
}

#[test]
fn opening_flushing_and_group_commits_are_debug_events() {
    let dir = tempfile::tempdir().unwrap();
    let text = captured(|| {
        // Opening by URL (the default features hold `mem` only) ...
        drop(Stores::open_url("mem:").unwrap());
        // ... and a persistent backend with group commit, whatever the features.
        let stores =
            swapstore::open_as::<RedbBackend>(&dir.path().join("db"), OpenOptions::default())
                .unwrap();
        let mut state = stores.state_store("counts").unwrap();
        state.put(b"a", b"1").unwrap();
        state.put(b"b", b"2").unwrap();
        state.flush().unwrap();

        let ledger = stores.ledger();
        let usd = AssetId::new("USD").unwrap();
        let book = Book::new("bank").unwrap();
        ledger
            .register_asset(&AssetDef {
                id: usd.clone(),
                precision: 2,
                name: "US dollar".into(),
            })
            .unwrap();
        let cash = AccountId::new("bank", "cash").unwrap();
        let alice = AccountId::new("bank", "alice").unwrap();
        for (id, kind) in [(&cash, Asset), (&alice, Liability)] {
            let def = AccountDef {
                id: id.clone(),
                asset: usd.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        let deposit = Transaction::new(book)
            .debit(&cash, &usd, 100)
            .credit(&alice, &usd, 100);
        ledger.commit(&deposit).unwrap();
    });
    assert!(
        text.contains("backend opened") && text.contains("backend=mem"),
        "no open event:\n{text}"
    );
    assert!(
        text.contains("state partition flushed durably") && text.contains("changes=2"),
        "no flush event with its size:\n{text}"
    );
    assert!(
        text.contains("group commit: one batch written") && text.contains("batch=1"),
        "no group-commit event with its size:\n{text}"
    );
}

/// The `store_kit::open` event of `step` of `backend`, or a panic showing what was there.
fn assert_open_step(text: &str, backend: &str, step: &str) {
    let found = text.lines().any(|line| {
        line.contains("open step done")
            && line.contains(&format!("backend=\"{backend}\""))
            && line.contains(&format!("step=\"{step}\""))
            && line.contains("ok=true")
            && line.contains("elapsed_us=")
    });
    assert!(found, "no timed {step:?} step of {backend}:\n{text}");
}

#[test]
fn each_backend_times_its_own_step_of_opening() {
    let dir = tempfile::tempdir().unwrap();
    let text = captured(|| {
        let redb = dir.path().join("redb");
        drop(swapstore::open_as::<RedbBackend>(&redb, OpenOptions::default()).unwrap());
        let lmdb = dir.path().join("lmdb");
        drop(swapstore::open_as::<store_lmdb::LmdbBackend>(&lmdb, OpenOptions::default()).unwrap());
        let sqlite = dir.path().join("sqlite");
        drop(
            swapstore::open_as::<store_sqlite::SqliteBackend>(&sqlite, OpenOptions::default())
                .unwrap(),
        );
        // sled checks the seal its clean close left at the next open.
        let sled = dir.path().join("sled");
        for _ in 0..2 {
            let stores =
                swapstore::open_as::<store_sled::SledBackend>(&sled, OpenOptions::default())
                    .unwrap();
            stores.close().unwrap();
        }
    });
    assert_open_step(&text, "redb", "integrity check and recovery");
    assert_open_step(&text, "lmdb", "environment open");
    assert_open_step(&text, "sqlite", "schema check");
    assert_open_step(&text, "sled", "seal check");
    assert_open_step(&text, "sled", "sled open and log recovery");
    assert!(
        text.contains("no seal of a clean close"),
        "the first sled open found no seal and says so:\n{text}"
    );
}

#[test]
fn postgres_times_its_schema_check() {
    let location = store_postgres::scratch::fresh_location().unwrap();
    let text = captured(|| {
        drop(
            swapstore::open_as::<store_postgres::PostgresBackend>(
                &location,
                OpenOptions::default(),
            )
            .unwrap(),
        );
    });
    assert_open_step(&text, "postgres", "schema check");
}

#[test]
fn an_error_of_an_open_store_names_where_it_lives() {
    // It opens redb with no subscriber: not while another test captures redb's events.
    let _alone = ONE_CAPTURE_AT_A_TIME.lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let stores = swapstore::open_as::<RedbBackend>(&path, OpenOptions::default()).unwrap();
    let engine = stores.engine();
    stores.close().unwrap();
    let error = engine.get(b"k").unwrap_err();
    let text = swapstore::error_chain(&error);
    assert!(
        text.starts_with(&format!("redb store at {}: ", path.display())),
        "{text}"
    );
}
