//! The server going away and coming back, on this test binary's own throwaway server: the
//! server drops every connection of the store and refuses new ones (`ALLOW_CONNECTIONS
//! false`), then accepts them again. Every call answers a typed error within the
//! location's `connect_timeout`, nothing panics, and the same backend works again once the
//! server is back. (Its own binary: refusing connections stops the whole server's
//! database, which other tests would meet.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use postgres::NoTls;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, LedgerStore,
    OpenError, OpenOptions, SegmentId, SegmentLogStore, SessionId, StateStore, StorageErrorKind,
    StoreEngine, StoreError,
};
use store_postgres::{PostgresBackend, PostgresLocation, scratch};

/// How long a call may take while the server refuses connections: the 1 s
/// `connect_timeout` of the location, and slack for a loaded machine.
const BOUND: Duration = Duration::from_secs(8);

/// Asserts `result` failed with `StorageErrorKind::Unavailable`, within [`BOUND`].
fn assert_unavailable<T: std::fmt::Debug, E: StoreError>(
    what: &str,
    call: impl FnOnce() -> Result<T, E>,
) {
    let started = Instant::now();
    let result = call();
    let took = started.elapsed();
    match result {
        Err(e) => assert_eq!(
            e.storage_kind(),
            Some(StorageErrorKind::Unavailable),
            "{what}: {}",
            store_api::error_chain(&e)
        ),
        Ok(v) => panic!("{what} succeeded without a server: {v:?}"),
    }
    assert!(took < BOUND, "{what} took {took:?}");
}

#[test]
fn calls_fail_typed_while_the_server_is_gone_and_work_once_it_is_back() {
    let scratch = scratch::fresh_location().unwrap();
    let location: PostgresLocation = format!("{scratch}&connect_timeout=1").parse().unwrap();
    let backend = PostgresBackend::open(&location, OpenOptions::default()).unwrap();
    let engine = backend.engine();
    let ledger = backend.ledger();
    let segments = backend.segment_log();
    assert_eq!(engine.put_batch(&[(b"a", b"1")]).unwrap(), 1);
    let usd = AssetId::new("USD").unwrap();
    ledger
        .register_asset(&AssetDef {
            id: usd.clone(),
            precision: 2,
            name: "USD".into(),
        })
        .unwrap();
    let cash = AccountId::new("main", "cash").unwrap();
    let mut state = backend.state_store("p").unwrap();
    state.put(b"k", b"v").unwrap();
    state.flush().unwrap();
    // A wait that times out leaves its listening connection idle for the next waiter: the
    // server drops that one too, and the wait after the server is back replaces it.
    assert_eq!(
        engine
            .wait_for_sequence(1, Duration::from_millis(50))
            .unwrap(),
        1
    );
    let waiter = {
        let engine = backend.engine();
        std::thread::spawn(move || {
            let started = Instant::now();
            (
                engine.wait_for_sequence(1, Duration::from_secs(60)),
                started.elapsed(),
            )
        })
    };
    // Gives the waiter time to listen; should it not listen yet, it meets the server gone
    // wherever it is, and must fail all the same.
    std::thread::sleep(Duration::from_millis(200));

    // From another database: PostgreSQL refuses to close the one a session is in.
    let mut admin = location
        .config()
        .clone()
        .dbname("template1")
        .connect(NoTls)
        .unwrap();
    admin
        .batch_execute("ALTER DATABASE postgres ALLOW_CONNECTIONS false")
        .unwrap();
    admin
        .query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND application_name = $1",
            &[&format!("store-postgres/{}", location.schema())],
        )
        .unwrap();

    let (waited, took) = waiter.join().unwrap();
    assert_unavailable("a wait whose connection the server dropped", || waited);
    assert!(took < BOUND, "the dropped wait took {took:?}");
    assert_unavailable("get", || engine.get(b"a"));
    assert_unavailable("wait_for_sequence", || {
        engine.wait_for_sequence(1, Duration::from_secs(60))
    });
    assert_unavailable("list_books", || ledger.list_books(None, 10));
    assert_unavailable("list_partitions", || backend.list_partitions(None, 10));
    assert_unavailable("put_batch", || engine.put_batch(&[(b"b", b"2")]));
    assert_unavailable("open_account", || {
        ledger.open_account(
            &AccountDef {
                id: cash.clone(),
                asset: usd.clone(),
                kind: AccountKind::Asset,
            },
            &AccountCfg::for_kind(AccountKind::Asset),
        )
    });
    assert_unavailable("append", || {
        segments.append(SessionId::from_u128(1), SegmentId::from_u128(2), b"e")
    });
    state.put(b"k", b"w").unwrap();
    assert_unavailable("flush", || state.flush());
    assert_eq!(state.get(b"k").unwrap().as_deref(), Some(&b"w"[..]));
    assert_eq!(engine.current_sequence(), 1, "the last number seen");
    assert_unavailable("state_store", || backend.state_store("q").map(|s| s.len()));
    let started = Instant::now();
    match PostgresBackend::open(&location, OpenOptions::default()) {
        Err(OpenError::Unreachable { .. }) => {}
        other => panic!("opening without a server answered {other:?}"),
    }
    assert!(started.elapsed() < BOUND);

    admin
        .batch_execute("ALTER DATABASE postgres ALLOW_CONNECTIONS true")
        .unwrap();
    assert_eq!(engine.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    let waiter = {
        let engine = backend.engine();
        std::thread::spawn(move || engine.wait_for_sequence(1, Duration::from_secs(60)))
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(engine.put_batch(&[(b"b", b"2")]).unwrap(), 2);
    assert_eq!(waiter.join().unwrap().unwrap(), 2);
    ledger
        .open_account(
            &AccountDef {
                id: cash.clone(),
                asset: usd,
                kind: AccountKind::Asset,
            },
            &AccountCfg::for_kind(AccountKind::Asset),
        )
        .unwrap();
    assert!(ledger.account(&cash).unwrap().is_some());
    assert_eq!(
        segments
            .append(SessionId::from_u128(1), SegmentId::from_u128(2), b"e")
            .unwrap(),
        0
    );
    // The old partition handle lost its connection (and its lock): dropping it is quiet,
    // and the partition opens again with what was flushed.
    drop(state);
    let state = backend.state_store("p").unwrap();
    assert_eq!(state.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}
