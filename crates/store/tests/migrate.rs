//! The migration library on every backend: mem into each backend, each backend into mem,
//! and between persistent backends, everything copied by default and verified after the
//! destination is reopened; what verification catches; what a plan narrows; what cannot
//! be migrated. The binary on top is tested in `cli.rs`. Contract §9.2: a migration copies
//! everything the listings show and verifies it after reopening the destination.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use common::{Opened, Unmigratable, populate, relaxed, replay_clock};
use swapstore::migrate::{self, MigrateError, NoProgress, Plan, StoreCheck, StoreKind};
use swapstore::{Backend, Book, ChainPos, Stores};

per_backend!(mem_into, into_mem, a_plan_narrows_each_store);

/// Copies the populated `source` into a fresh `D` opened with a replay clock, reopens it
/// and verifies; returns the reopened destination.
fn copy_and_verify<D: Backend>(source: &Stores, unmigratable: &Unmigratable) -> Opened<D> {
    let (clock, as_clock) = replay_clock();
    let destination = Opened::<D>::fresh(relaxed().clock(as_clock));
    let plan = Plan::default();
    let summaries = migrate::copy(source, &destination.stores, &clock, &plan, &NoProgress).unwrap();
    let stores: Vec<StoreKind> = summaries.iter().map(|s| s.store).collect();
    assert_eq!(stores, StoreKind::ALL);
    let engine = &summaries[0];
    assert_eq!(engine.counts.get("replayed batches"), Some(4));
    assert!(
        engine.handled[0].contains("batches 1..=2 were pruned"),
        "{engine:#?}"
    );
    // Every inbound call is readable, the one made at the last chain position too.
    assert!(summaries[4].not_migrated.is_empty(), "{:#?}", summaries[4]);
    let destination = destination.reopen_with(relaxed());
    let checks = migrate::verify(source, &destination.stores, &plan, &NoProgress).unwrap();
    assert!(checks.iter().all(StoreCheck::matches), "{checks:#?}");
    check_preserved(source, &destination.stores, &checks, unmigratable);
    destination
}

/// What verification compares, checked directly once more, and what the API cannot
/// migrate, pinned as not migrated.
fn check_preserved(
    source: &Stores,
    destination: &Stores,
    checks: &[StoreCheck],
    unmigratable: &Unmigratable,
) {
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
    // The next batch continues the source's numbering.
    assert_eq!(b.put_batch(&[(b"next", b"1")]).unwrap(), 7);

    // Every store's content was compared, with the counts of everything populate wrote.
    let counts = |store: StoreKind| {
        &checks
            .iter()
            .find(|c| c.store == store)
            .unwrap()
            .source
            .counts
    };
    assert_eq!(counts(StoreKind::State).get("partitions"), Some(2));
    assert_eq!(counts(StoreKind::State).get("keys"), Some(602));
    assert_eq!(counts(StoreKind::Ledger).get("books"), Some(4));
    assert_eq!(
        counts(StoreKind::Ledger)
            .get("idempotency keys")
            .map(|n| n >= 10),
        Some(true)
    );
    assert_eq!(counts(StoreKind::SideEffects).get("output slots"), Some(4));
    assert_eq!(
        counts(StoreKind::SideEffects).get("inter-call outputs"),
        Some(2)
    );
    assert_eq!(counts(StoreKind::SideEffects).get("callees"), Some(3));
    assert_eq!(
        counts(StoreKind::SideEffects).get("inbound calls"),
        Some(602)
    );
    for book in ["_system", "other", "third", common::demo::LEDGER_BOOK] {
        let book = Book::new(book).unwrap();
        assert_eq!(
            destination.ledger().read_events(&book, None, 1000).unwrap(),
            source.ledger().read_events(&book, None, 1000).unwrap()
        );
    }
    assert_eq!(destination.state_store("gamma").unwrap().len(), 1);

    // Not migratable through the API: a trace-only segment.
    let (session, segment) = unmigratable.trace_only;
    assert!(
        !destination
            .segment_log()
            .read_traces(session, segment)
            .is_ok_and(|traces| !traces.is_empty())
    );
    // A call made at the last chain position is copied like any other.
    let last = destination
        .side_effects()
        .read_inbound_inter_calls(&common::LAST_POSITION_CALLEE, None, None, 10)
        .unwrap();
    assert_eq!(last.len(), 1, "{last:?}");
}

fn mem_into<D: Backend>() {
    let source = Opened::<store_mem::MemBackend>::fresh(relaxed());
    let unmigratable = populate(&source.stores);
    let destination = copy_and_verify::<D>(&source.stores, &unmigratable);

    // A second copy into the now non-empty destination is refused before writing.
    let (clock, _) = replay_clock();
    let before = destination.stores.engine().current_sequence();
    assert!(matches!(
        migrate::copy(
            &source.stores,
            &destination.stores,
            &clock,
            &Plan::default(),
            &NoProgress
        ),
        Err(MigrateError::DestinationStoreNotEmpty {
            store: StoreKind::Engine,
            ..
        })
    ));
    assert_eq!(destination.stores.engine().current_sequence(), before);

    // Verification catches a difference in each store.
    let stores = &destination.stores;
    let mut alpha = stores.state_store("alpha").unwrap();
    alpha.put(b"s/0", b"changed").unwrap();
    alpha.flush().unwrap();
    drop(alpha);
    let other = Book::new("other").unwrap();
    let a = swapstore::AccountId::new("other", "assets:a").unwrap();
    let l = swapstore::AccountId::new("other", "liabilities:l").unwrap();
    let usd = swapstore::AssetId::new("USD").unwrap();
    stores
        .ledger()
        .commit(
            &swapstore::Transaction::new(other)
                .debit(&a, &usd, 1)
                .credit(&l, &usd, 1),
        )
        .unwrap();
    stores
        .segment_log()
        .append(
            swapstore::SessionId::new_v7(),
            swapstore::SegmentId::new_v7(),
            b"extra",
        )
        .unwrap();
    stores
        .side_effects()
        .upsert_inter_call_output(
            &swapstore::InterCallOutputKey {
                callee: common::CALLEE,
                pos: ChainPos::new(50, 0),
                inter_call_seq: 0,
            },
            &None,
        )
        .unwrap();
    let checks = migrate::verify(&source.stores, stores, &Plan::default(), &NoProgress).unwrap();
    for check in &checks {
        assert!(!check.matches(), "no difference in {check:#?}");
        assert_ne!(check.source.digest, check.destination.digest);
        assert!(!check.differences.is_empty());
    }
}

fn into_mem<S: Backend>() {
    let source = Opened::<S>::fresh(relaxed());
    let unmigratable = populate(&source.stores);
    // Read the source back from disk, as a migration of a real directory does.
    let source = source.reopen_with(relaxed());
    copy_and_verify::<store_mem::MemBackend>(&source.stores, &unmigratable);
}

/// Copies a populated persistent `S` (reopened) into a persistent `D`.
fn between<S: Backend, D: Backend>() {
    let source = Opened::<S>::fresh(relaxed());
    let unmigratable = populate(&source.stores);
    let source = source.reopen_with(relaxed());
    copy_and_verify::<D>(&source.stores, &unmigratable);
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

#[test]
fn sled_into_fjall() {
    between::<store_sled::SledBackend, store_fjall::FjallBackend>();
}

#[test]
fn fjall_into_lmdb() {
    between::<store_fjall::FjallBackend, store_lmdb::LmdbBackend>();
}

/// A plan copies only what it names, verifies only that, and refuses a name the source
/// does not hold before writing anything.
fn a_plan_narrows_each_store<D: Backend>() {
    let source = Opened::<store_mem::MemBackend>::fresh(relaxed());
    populate(&source.stores);
    let plan = Plan {
        stores: vec![StoreKind::State, StoreKind::Ledger, StoreKind::SideEffects],
        partitions: vec!["gamma".into()],
        books: vec![Book::new("other").unwrap()],
        sessions: Vec::new(),
        callees: vec![common::OTHER_CALLEE],
    };
    let (clock, as_clock) = replay_clock();
    let destination = Opened::<D>::fresh(relaxed().clock(as_clock));
    let summaries = migrate::copy(
        &source.stores,
        &destination.stores,
        &clock,
        &plan,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(summaries.len(), 3);
    let destination = destination.reopen_with(relaxed());
    let stores = &destination.stores;
    let checks = migrate::verify(&source.stores, stores, &plan, &NoProgress).unwrap();
    assert!(checks.iter().all(StoreCheck::matches), "{checks:#?}");
    assert_eq!(stores.engine().current_sequence(), 0);
    assert_eq!(stores.list_partitions(None, 10).unwrap(), ["gamma"]);
    let books: Vec<String> = stores
        .ledger()
        .list_books(None, 10)
        .unwrap()
        .iter()
        .map(Book::to_string)
        .collect();
    assert_eq!(books, ["_system", "other"]);
    assert!(stores.segment_log().list_sessions().unwrap().is_empty());
    assert_eq!(
        stores
            .side_effects()
            .list_inbound_callees(None, 10)
            .unwrap(),
        [common::OTHER_CALLEE]
    );
    assert_eq!(
        stores
            .side_effects()
            .list_output_keys(None, 10)
            .unwrap()
            .len(),
        1
    );

    // A name the source lacks is refused, and nothing is written.
    let typo = Plan {
        books: vec![Book::new("othre").unwrap()],
        ..Plan::default()
    };
    let (clock, as_clock) = replay_clock();
    let empty = Opened::<D>::fresh(relaxed().clock(as_clock));
    let refused = migrate::copy(&source.stores, &empty.stores, &clock, &typo, &NoProgress);
    assert!(
        matches!(refused, Err(MigrateError::NotInSource { what: "book", .. })),
        "{refused:?}"
    );
    assert!(migrate::holdings(&empty.stores).unwrap().is_empty());
}
