//! What is particular to the PostgreSQL backend: the schema checks at open, bad and
//! unreachable locations, partition ownership when the owner's connection dies, recovery
//! after the server drops every connection, a commit that waited for a book's lock, and the
//! README's queries for `psql`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use postgres::NoTls;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, LedgerStore,
    OpenError, OpenOptions, StateError, StateStore, StoreEngine, StoreLocation, Transaction,
};
use store_postgres::{PostgresBackend, PostgresLocation, SCHEMA_VERSION, scratch};

fn open(location: &PostgresLocation) -> PostgresBackend {
    PostgresBackend::open(location, OpenOptions::default())
        .unwrap_or_else(|e| panic!("opening {location}: {}", store_api::error_chain(&e)))
}

/// A connection of its own to the test server, in the store's schema.
fn admin(location: &PostgresLocation) -> postgres::Client {
    let mut client = location.config().connect(NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path TO \"{}\"", location.schema()))
        .unwrap();
    client
}

#[test]
fn a_schema_of_another_version_is_refused_and_left_as_it_is() {
    let location = scratch::fresh_location().unwrap();
    drop(open(&location));
    let mut admin = admin(&location);
    for version in [0, SCHEMA_VERSION + 1] {
        admin
            .execute(
                "UPDATE store_version SET version = $1",
                &[&i32::try_from(version).unwrap()],
            )
            .unwrap();
        match PostgresBackend::open(&location, OpenOptions::default()) {
            Err(OpenError::SchemaVersion {
                found, supported, ..
            }) => {
                assert_eq!(found, version);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("version {version}: expected SchemaVersion, got {other:?}"),
        }
        let stored: i32 = admin
            .query_one("SELECT version FROM store_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            i64::from(stored),
            version,
            "a refused open changed the schema"
        );
    }
    admin
        .execute("UPDATE store_version SET version = 1", &[])
        .unwrap();
    drop(open(&location));
}

#[test]
fn a_schema_of_something_else_is_refused_and_left_as_it_is() {
    let location = scratch::fresh_location().unwrap();
    let mut admin = location.config().connect(NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".customers (id int PRIMARY KEY);",
            location.schema()
        ))
        .unwrap();
    match PostgresBackend::open(&location, OpenOptions::default()) {
        Err(OpenError::ForeignSchema { detail, .. }) => {
            assert!(detail.contains("customers"), "{detail}")
        }
        other => panic!("expected ForeignSchema, got {other:?}"),
    }
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&location.schema()],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "a refused open created tables");

    // A store with a table dropped is refused too, naming it.
    let damaged = scratch::fresh_location().unwrap();
    drop(open(&damaged));
    admin
        .batch_execute(&format!(
            "DROP TABLE \"{}\".segment_traces",
            damaged.schema()
        ))
        .unwrap();
    match PostgresBackend::open(&damaged, OpenOptions::default()) {
        Err(OpenError::ForeignSchema { detail, .. }) => {
            assert!(detail.contains("segment_traces"), "{detail}")
        }
        other => panic!("expected ForeignSchema, got {other:?}"),
    }
}

#[test]
fn concurrent_first_opens_of_one_schema_all_succeed() {
    let location = scratch::fresh_location().unwrap();
    let backends: Vec<PostgresBackend> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| open(&location))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, backend) in backends.iter().enumerate() {
        let seq = backend
            .engine()
            .put_batch(&[(format!("k{i}").as_bytes(), b"v")])
            .unwrap();
        assert_eq!(seq, i as u64 + 1);
    }
}

#[test]
fn an_unreachable_server_is_a_typed_error_within_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://postgres@/postgres?host={}&connect_timeout=2&schema=nowhere",
        dir.path().display()
    );
    let location: PostgresLocation = url.parse().unwrap();
    let started = Instant::now();
    match PostgresBackend::open(&location, OpenOptions::default()) {
        Err(OpenError::Unreachable { location, .. }) => {
            assert!(location.contains("schema=nowhere"), "{location}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn names_and_values_are_bound_never_spliced() {
    let location = scratch::fresh_location().unwrap();
    let backend = open(&location);
    let nasty = "x'); DROP TABLE engine_kv; --";
    let mut state = backend.state_store(nasty).unwrap();
    state.put(nasty.as_bytes(), b"'\"\\").unwrap();
    state.flush().unwrap();
    drop(state);
    let state = backend.state_store(nasty).unwrap();
    assert_eq!(
        state.get(nasty.as_bytes()).unwrap().as_deref(),
        Some(&b"'\"\\"[..])
    );
    assert_eq!(backend.engine().put_batch(&[(b"k", b"v")]).unwrap(), 1);
}

/// The connections of the store at `location` (their `application_name` names its schema),
/// ended by the server; how many there were.
fn terminate_connections(admin: &mut postgres::Client, location: &PostgresLocation) -> i64 {
    admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND application_name = $1",
            &[&format!("store-postgres/{}", location.schema())],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_partition_whose_owner_connection_died_is_free_and_the_old_handle_fails_typed() {
    let location = scratch::fresh_location().unwrap();
    // The owner's URL holds a password (the test server trusts its users and ignores
    // it): its errors must name the store without it.
    let with_password: PostgresLocation =
        format!("{}&password=hunter2-secret", location.to_text().unwrap())
            .parse()
            .unwrap();
    let first = open(&with_password);
    let second = open(&location);
    let mut owner = first.state_store("orders").unwrap();
    owner.put(b"k", b"v").unwrap();
    owner.flush().unwrap();
    assert!(matches!(
        second.state_store("orders"),
        Err(StateError::PartitionInUse { .. })
    ));
    let mut admin = admin(&location);
    // Only the owner's own connection holds an advisory lock in this store.
    let owner_pid: i32 = admin
        .query_one(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
            &[&format!("store-postgres/{}", location.schema())],
        )
        .unwrap()
        .get(0);
    admin
        .execute("SELECT pg_terminate_backend($1, 5000)", &[&owner_pid])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let taken = loop {
        match second.state_store("orders") {
            Ok(taken) => break taken,
            Err(StateError::PartitionInUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("the dead owner's partition did not come free: {other:?}"),
        }
    };
    assert_eq!(taken.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    owner.put(b"k", b"late").unwrap();
    match owner.flush() {
        Err(StateError::Storage(e)) => {
            assert_eq!(e.kind(), store_api::StorageErrorKind::Unavailable, "{e}");
            // Named by its location, without the password, and the chain shows none.
            assert_eq!(e.location(), Some(location.to_string().as_str()), "{e}");
            let chain = store_api::error_chain(&e);
            assert!(!chain.contains("hunter2"), "{chain}");
            assert!(chain.contains(&location.to_string()), "{chain}");
        }
        other => panic!("a flush on a dead connection answered {other:?}"),
    }
    drop(owner);
    assert_eq!(taken.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_backend_keeps_working_after_the_server_dropped_its_connections() {
    let location = scratch::fresh_location().unwrap();
    let backend = open(&location);
    let engine = backend.engine();
    assert_eq!(engine.put_batch(&[(b"a", b"1")]).unwrap(), 1);
    assert_eq!(engine.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    let mut admin = admin(&location);
    assert!(terminate_connections(&mut admin, &location) >= 1);
    // The pooled connection is found closed and replaced, for a read and for a write.
    assert_eq!(engine.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    terminate_connections(&mut admin, &location);
    assert_eq!(engine.put_batch(&[(b"b", b"2")]).unwrap(), 2);
    assert_eq!(engine.current_sequence(), 2);
}

#[test]
fn the_readme_queries_agree_with_the_api() {
    let location = scratch::fresh_location().unwrap();
    let backend = open(&location);
    let ledger = backend.ledger();
    let book = Book::new("main").unwrap();
    let mut assets = Vec::new();
    for id in ["EUR", "USD"] {
        let def = AssetDef {
            id: AssetId::new(id).unwrap(),
            precision: 2,
            name: id.into(),
        };
        ledger.register_asset(&def).unwrap();
        assets.push(def.id);
    }
    let mut accounts = Vec::new();
    for (i, asset) in assets.iter().enumerate() {
        let cash = AccountId::new("main", &format!("assets:cash:{i}")).unwrap();
        let sales = AccountId::new("main", &format!("income:sales:{i}")).unwrap();
        for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
            let def = AccountDef {
                id: id.clone(),
                asset: asset.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        accounts.push((cash, sales, asset.clone()));
    }
    for n in 1..=5u64 {
        for (cash, sales, asset) in &accounts {
            let amount = if n == 5 { u64::MAX / 4 } else { n * 100 };
            ledger
                .commit(
                    &Transaction::new(book.clone())
                        .debit(cash, asset, amount)
                        .credit(sales, asset, amount),
                )
                .unwrap();
        }
    }
    let mut admin = admin(&location);
    let readme = include_str!("../README.md");
    let query = |marker: &str| -> String {
        let start = readme.find(marker).expect("query in README");
        let body = &readme[start..];
        let sql_start = body.find("```sql\n").unwrap() + 7;
        let sql_end = body[sql_start..].find("```").unwrap();
        body[sql_start..sql_start + sql_end].to_owned()
    };

    // The sums are numerics: read them as exact text.
    let trial = query("A trial balance per book and asset");
    let rows = admin
        .query(
            &format!(
                "SELECT asset, debits::text, credits::text FROM ({}) AS q",
                trial.trim().trim_end_matches(';')
            ),
            &[],
        )
        .unwrap();
    let sql_trial: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let api_trial: Vec<(String, String, String)> = ledger
        .trial_balance(&book, None)
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.asset.as_str().to_owned(),
                row.debits.to_string(),
                row.credits.to_string(),
            )
        })
        .collect();
    assert_eq!(sql_trial, api_trial);

    let history_sql = query("An account's history").replace(
        "book = 'main' AND path = 'assets:cash'",
        "book = 'main' AND path = 'assets:cash:1'",
    );
    let rows = admin.query(&history_sql, &[]).unwrap();
    let api = ledger.account_history(&accounts[1].0, 0, 100).unwrap();
    assert_eq!(rows.len(), api.len());
    for (row, record) in rows.iter().zip(&api) {
        assert_eq!(row.get::<_, i64>("seq") as u64, record.seq);
        assert_eq!(row.get::<_, uuid::Uuid>("txid"), record.txid.0);
        assert_eq!(row.get::<_, i64>("balance_after"), record.balance_after);
    }
}

/// A `MakeWriter` that keeps what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_commit_that_waited_for_its_book_is_a_lock_wait_event() {
    let location = scratch::fresh_location().unwrap();
    let backend = open(&location);
    let ledger = backend.ledger();
    let usd = AssetId::new("USD").unwrap();
    ledger
        .register_asset(&AssetDef {
            id: usd.clone(),
            precision: 2,
            name: "US dollar".into(),
        })
        .unwrap();
    let cash = AccountId::new("bank", "cash").unwrap();
    let alice = AccountId::new("bank", "alice").unwrap();
    for (id, kind) in [
        (&cash, AccountKind::Asset),
        (&alice, AccountKind::Liability),
    ] {
        let def = AccountDef {
            id: id.clone(),
            asset: usd.clone(),
            kind,
        };
        ledger
            .open_account(&def, &AccountCfg::for_kind(kind))
            .unwrap();
    }
    // Another session holds book `bank`'s lock (the key LOCK_BOOKS takes) for 300 ms.
    let (locked, is_locked) = std::sync::mpsc::channel();
    let holder_location = location.clone();
    let release = std::thread::spawn(move || {
        let mut holder = admin(&holder_location);
        let mut held = holder.transaction().unwrap();
        held.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(\
             'store-postgres ledger ' || $1 || '/' || 'bank', 0))",
            &[&holder_location.schema()],
        )
        .unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        held.commit().unwrap();
    });
    is_locked.recv().unwrap();
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let deposit = Transaction::new(Book::new("bank").unwrap())
            .debit(&cash, &usd, 100)
            .credit(&alice, &usd, 100);
        ledger.commit(&deposit).unwrap();
    });
    release.join().unwrap();
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    let line = text
        .lines()
        .find(|line| line.contains("waited for a lock") && line.contains("postgres ledger book"))
        .unwrap_or_else(|| panic!("no lock-wait event:\n{text}"));
    let waited_us: u64 = line
        .split("waited_us=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait time in {line}"));
    assert!(waited_us >= 100_000, "{line}");
}
