//! The `postgres` feature end to end: a PostgreSQL URL opens `Stores` on the server (a
//! fresh schema on the throwaway test server of `store_postgres::scratch`), with the
//! facade's options, and two `Stores` on one URL share one store.
//!
//! ```sh
//! cargo test -p swapstore --features postgres --test postgres_url
//! ```
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use swapstore::{BackendConfig, BackendKind, Bytes, Durability, StateError, Stores, StoresError};

/// A URL naming a fresh schema on the test server, with the facade's options.
fn fresh_url(options: &str) -> String {
    let location = swapstore::postgres::scratch::fresh_location().unwrap();
    format!("{location}&{options}")
}

#[test]
fn a_postgres_url_opens_shared_stores() {
    let url = fresh_url("durability=relaxed&cache=4");
    let config: BackendConfig = url.parse().unwrap();
    assert_eq!(config.kind(), BackendKind::Postgres);
    let first = Stores::open(&config).unwrap();
    assert_eq!(first.backend_name(), "postgres");
    assert_eq!(first.durability(), Durability::Relaxed);
    assert!(first.capabilities().shared && first.capabilities().persistent);
    assert_eq!(first.dir(), None);
    assert_eq!(first.engine().put_batch(&[(b"k", b"v")]).unwrap(), 1);

    let second = Stores::open_url(&url).unwrap();
    assert_eq!(
        second.engine().get(b"k").unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    assert_eq!(second.engine().put_batch(&[(b"k2", b"v2")]).unwrap(), 2);
    let held = first.state_store("p").unwrap();
    assert!(matches!(
        second.state_store("p"),
        Err(StateError::PartitionInUse { .. })
    ));
    drop(held);
    assert!(second.state_store("p").is_ok());
}

#[test]
fn a_bad_postgres_location_is_an_open_error() {
    let url = fresh_url("cache=1").replace("schema=scratch", "schema=Scratch");
    match Stores::open_url(&url) {
        Err(StoresError::Open {
            backend: BackendKind::Postgres,
            source: swapstore::OpenError::InvalidLocation { detail, .. },
        }) => assert!(detail.contains("\"Scratch"), "{detail}"),
        other => panic!("expected an InvalidLocation open error, got {other:?}"),
    }
}
