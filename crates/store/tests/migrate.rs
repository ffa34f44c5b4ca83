//! The migration library on every backend: mem into each backend, each backend into mem,
//! and between persistent backends (sled into redb among them), verified after the
//! destination is reopened; plus what verification catches and what cannot be migrated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use common::{Opened, populate, relaxed, replay_clock, unmigratable_side_effects};
use store::migrate::{self, MigrateError, StoreKind};
use store::{Backend, Stores};

per_backend!(mem_into, into_mem);

/// Copies the populated `source` into a fresh `D` opened with a replay clock, reopens it
/// and verifies; returns the reopened destination.
fn copy_and_verify<D: Backend>(source: &Stores, plan: &migrate::Plan) -> Opened<D> {
    let (clock, as_clock) = replay_clock();
    let destination = Opened::<D>::fresh(relaxed().clock(as_clock));
    let summaries = migrate::copy(source, &destination.stores, &clock, plan).unwrap();
    let stores: Vec<StoreKind> = summaries.iter().map(|s| s.store).collect();
    assert_eq!(
        stores,
        [
            StoreKind::Engine,
            StoreKind::State,
            StoreKind::Ledger,
            StoreKind::Segments,
            StoreKind::SideEffects
        ]
    );
    let destination = destination.reopen_with(relaxed());
    let differences = migrate::verify(source, &destination.stores, plan).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
    check_preserved(source, &destination.stores);
    destination
}

/// What verification compares, checked directly once more, and what the API cannot
/// migrate, pinned as not migrated.
fn check_preserved(source: &Stores, destination: &Stores) {
    let (a, b) = (source.engine(), destination.engine());
    assert_eq!(b.current_sequence(), 6);
    assert_eq!(b.oldest_retained_batch().unwrap(), Some(3));
    assert_eq!(b.get_batch(2).unwrap(), None);
    for seq in 3..=6 {
        assert_eq!(b.get_batch(seq).unwrap(), a.get_batch(seq).unwrap());
    }
    assert_eq!(
        b.range_scan(b"", b"", usize::MAX, true).unwrap(),
        a.range_scan(b"", b"", usize::MAX, true).unwrap()
    );
    assert_eq!(b.get(b"k/0001").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(b.get(b"c").unwrap().as_deref(), Some(&b""[..]));
    // The next batch continues the source's numbering.
    assert_eq!(b.put_batch(&[(b"next", b"1")]).unwrap(), 7);

    // Not migratable through the API: side-effect outputs, unnamed partitions and books.
    let (slot, output) = unmigratable_side_effects();
    let effects = destination.side_effects();
    assert_eq!(effects.read_outputs(&slot).unwrap(), None);
    assert_eq!(effects.read_inter_call_output(&output).unwrap(), None);
    assert!(destination.state_store("not-in-plan").unwrap().is_empty());
    let unnamed = store::Book::new("not-in-plan").unwrap();
    assert!(
        destination
            .ledger()
            .read_events(&unnamed, 1, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        destination
            .side_effects()
            .read_inbound_inter_calls(&common::OTHER_CALLEE, None, store::ChainPos(u128::MAX), 10)
            .unwrap(),
        []
    );
}

fn mem_into<D: Backend>() {
    let source = Opened::<store_mem::MemBackend>::fresh(relaxed());
    let plan = populate(&source.stores);
    let destination = copy_and_verify::<D>(&source.stores, &plan);

    // A second copy into the now non-empty destination is refused before writing.
    let (clock, _) = replay_clock();
    let before = destination.stores.engine().current_sequence();
    assert!(matches!(
        migrate::copy(&source.stores, &destination.stores, &clock, &plan),
        Err(MigrateError::DestinationNotEmpty {
            store: StoreKind::Engine,
            ..
        })
    ));
    assert_eq!(destination.stores.engine().current_sequence(), before);

    // Verification catches a difference in each store it compares.
    let stores = &destination.stores;
    let mut alpha = stores.state_store("alpha").unwrap();
    alpha.put(b"s/0", b"changed").unwrap();
    alpha.flush().unwrap();
    drop(alpha);
    let other = store::Book::new("other").unwrap();
    let a = store::AccountId::new("other", "assets:a").unwrap();
    let l = store::AccountId::new("other", "liabilities:l").unwrap();
    let usd = store::AssetId::new("USD").unwrap();
    stores
        .ledger()
        .commit(
            &store::Transaction::new(other)
                .debit(&a, &usd, 1)
                .credit(&l, &usd, 1),
        )
        .unwrap();
    stores
        .segment_log()
        .append(
            store::SessionId::new_v7(),
            store::SegmentId::new_v7(),
            b"extra",
        )
        .unwrap();
    stores
        .side_effects()
        .append_inbound_inter_calls(&[store::InboundInterCall {
            callee: common::CALLEE,
            order_key: store::CallOrderKey {
                pos: store::ChainPos::new(1000, 0),
                seq: 0,
            },
            call: store::InterCall {
                caller: store::LyquidId([2; 20]),
                pos: store::ChainPos::new(999, 0),
                payload: store::Bytes::from_static(b"late"),
            },
        }])
        .unwrap();
    let differences = migrate::verify(&source.stores, stores, &plan).unwrap();
    for kind in [
        StoreKind::Engine,
        StoreKind::State,
        StoreKind::Ledger,
        StoreKind::Segments,
        StoreKind::SideEffects,
    ] {
        assert!(
            differences.iter().any(|d| d.store == kind),
            "no {kind} difference in {differences:#?}"
        );
    }
}

fn into_mem<S: Backend>() {
    let source = Opened::<S>::fresh(relaxed());
    let plan = populate(&source.stores);
    // Read the source back from disk, as a migration of a real directory does.
    let source = source.reopen_with(relaxed());
    copy_and_verify::<store_mem::MemBackend>(&source.stores, &plan);
}

/// Copies a populated persistent `S` (reopened) into a persistent `D`.
fn between<S: Backend, D: Backend>() {
    let source = Opened::<S>::fresh(relaxed());
    let plan = populate(&source.stores);
    let source = source.reopen_with(relaxed());
    copy_and_verify::<D>(&source.stores, &plan);
}

#[test]
fn sled_into_redb() {
    between::<store_sled::SledBackend, store_redb::RedbBackend>();
}

#[test]
fn redb_into_sqlite() {
    between::<store_redb::RedbBackend, store_sqlite::SqliteBackend>();
}

#[test]
fn sqlite_into_lmdb() {
    between::<store_sqlite::SqliteBackend, store_lmdb::LmdbBackend>();
}

#[test]
fn lmdb_into_sled() {
    between::<store_lmdb::LmdbBackend, store_sled::SledBackend>();
}
