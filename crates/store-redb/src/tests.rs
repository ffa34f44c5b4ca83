//! Tests of what is particular to this backend: reopening, damaged files, the format
//! record, relaxed durability. The shared behaviour is the conformance suite's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, Durability,
    LedgerStore, OpenError, OpenOptions, SegmentId, SegmentLogStore, SessionId, StateStore,
    StoreEngine, Transaction,
};

use crate::{DB_FILE, RedbBackend};

fn open(dir: &Path) -> RedbBackend {
    RedbBackend::open(dir, OpenOptions::default()).unwrap()
}

/// Every file of `dir` with its bytes, sorted by name.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    out.sort();
    out
}

/// A database holding a recognisable 4 KiB value, closed cleanly.
fn database_with_marker_value(dir: &Path) -> Vec<u8> {
    let value: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let backend = open(dir);
    backend.engine().put_batch(&[(b"marker", &value)]).unwrap();
    drop(backend);
    value
}

#[test]
fn every_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let session = SessionId::from_u128(7);
    let segment = SegmentId::from_u128(9);
    let cash = AccountId::new("shop", "cash").unwrap();
    let sales = AccountId::new("shop", "sales").unwrap();
    let usd = AssetId::new("USD").unwrap();
    {
        let backend = open(dir.path());
        let engine = backend.engine();
        engine.put_batch(&[(b"a", b"1"), (b"b", b"")]).unwrap();
        engine.delete_batch(&[b"a"]).unwrap();
        assert_eq!(engine.prune_batch_log(3).unwrap(), 2);

        let mut state = backend.state_store("p").unwrap();
        state.put(b"k", b"v").unwrap();
        state.flush().unwrap();
        state.put(b"unflushed", b"x").unwrap();
        drop(state);

        let ledger = backend.ledger();
        ledger
            .register_asset(&AssetDef {
                id: usd.clone(),
                precision: 2,
                name: "dollar".into(),
            })
            .unwrap();
        for (id, kind) in [(&cash, AccountKind::Asset), (&sales, AccountKind::Income)] {
            let def = AccountDef {
                id: id.clone(),
                asset: usd.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        let tx = Transaction::new(Book::new("shop").unwrap())
            .debit(&cash, &usd, 500)
            .credit(&sales, &usd, 500);
        assert_eq!(ledger.commit(&tx).unwrap().seq, 3);

        backend
            .segment_log()
            .append(session, segment, b"entry\n")
            .unwrap();
    }
    let backend = open(dir.path());
    let engine = backend.engine();
    assert_eq!(engine.current_sequence(), 2);
    assert_eq!(engine.oldest_retained_batch().unwrap(), None);
    assert_eq!(engine.put_batch(&[(b"c", b"3")]).unwrap(), 3);
    assert_eq!(engine.get(b"a").unwrap(), None);
    assert_eq!(engine.get(b"b").unwrap().as_deref(), Some(&b""[..]));

    let state = backend.state_store("p").unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));

    let ledger = backend.ledger();
    assert_eq!(ledger.balance(&cash, None).unwrap().amount, 500);
    assert_eq!(ledger.balance(&sales, None).unwrap().updated_seq, 3);

    let log = backend.segment_log();
    assert_eq!(
        log.read_all(session, segment).unwrap(),
        vec![&b"entry\n"[..]]
    );
    assert_eq!(log.list_sessions().unwrap(), vec![session]);
}

#[test]
fn partitions_get_ids_only_when_flushed_and_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let backend = open(dir.path());
        // Opening and dropping a partition writes nothing.
        drop(backend.state_store("never-flushed").unwrap());
        let mut a = backend.state_store("a").unwrap();
        let mut b = backend.state_store("b").unwrap();
        a.put(b"k", b"from a").unwrap();
        b.put(b"k", b"from b").unwrap();
        b.put(&[0xFF; 3], b"ff").unwrap();
        a.flush().unwrap();
        b.flush().unwrap();
        b.clear().unwrap();
        b.put(b"after-clear", b"1").unwrap();
        b.flush().unwrap();
    }
    let backend = open(dir.path());
    let a = backend.state_store("a").unwrap();
    let b = backend.state_store("b").unwrap();
    assert_eq!(
        a.prefix_scan(b"").unwrap(),
        vec![(b"k"[..].into(), b"from a"[..].into())]
    );
    assert_eq!(
        b.prefix_scan(b"").unwrap(),
        vec![(b"after-clear"[..].into(), b"1"[..].into())]
    );
    assert!(backend.state_store("never-flushed").unwrap().is_empty());
}

#[test]
fn relaxed_writes_are_visible_at_once_and_durable_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions::default().durability(Durability::Relaxed);
    {
        let backend = RedbBackend::open(dir.path(), options.clone()).unwrap();
        assert_eq!(backend.durability(), Durability::Relaxed);
        let engine = backend.engine();
        for i in 0..100u32 {
            engine.put_batch(&[(&i.to_be_bytes(), b"v")]).unwrap();
        }
        assert_eq!(
            engine.get(&7u32.to_be_bytes()).unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
    let backend = RedbBackend::open(dir.path(), options).unwrap();
    assert_eq!(backend.engine().current_sequence(), 100);
}

#[test]
fn second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _backend = open(dir.path());
    assert!(matches!(
        RedbBackend::open(dir.path(), OpenOptions::default()),
        Err(OpenError::Locked { .. })
    ));
}

#[test]
fn truncated_file_is_corrupted_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    database_with_marker_value(dir.path());
    let file = dir.path().join(DB_FILE);
    let len = fs::metadata(&file).unwrap().len();
    for cut in [0, 5, 300, len / 2, len - 1] {
        let full = fs::read(&file).unwrap();
        fs::write(&file, &full[..cut as usize]).unwrap();
        let before = contents(dir.path());
        let result = RedbBackend::open(dir.path(), OpenOptions::default());
        assert!(
            matches!(result, Err(OpenError::Corrupted { .. })),
            "cut at {cut}: {result:?}"
        );
        assert_eq!(contents(dir.path()), before, "cut at {cut}");
        fs::write(&file, &full).unwrap();
    }
    // Restored, it opens again with its data.
    let backend = open(dir.path());
    assert!(backend.engine().get(b"marker").unwrap().is_some());
}

#[test]
fn flipped_data_byte_is_corrupted_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let value = database_with_marker_value(dir.path());
    let file = dir.path().join(DB_FILE);
    let mut bytes = fs::read(&file).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &value[..64])
        .expect("the value is stored verbatim");
    bytes[at + 10] ^= 0x01;
    fs::write(&file, &bytes).unwrap();
    let before = contents(dir.path());
    let result = RedbBackend::open(dir.path(), OpenOptions::default());
    assert!(
        matches!(result, Err(OpenError::Corrupted { .. })),
        "{result:?}"
    );
    assert_eq!(contents(dir.path()), before);
}

#[test]
fn damaged_files_never_panic_the_open() {
    let dir = tempfile::tempdir().unwrap();
    database_with_marker_value(dir.path());
    let file = dir.path().join(DB_FILE);
    let pristine = fs::read(&file).unwrap();
    // Flip bytes all over the header and commit slots, and one byte in every page: every
    // outcome but a panic is acceptable here (a byte of a free page is never read), and a
    // successful open must be usable.
    let header = (0..1024).step_by(16);
    let pages = (4096 + 100..pristine.len()).step_by(4096);
    for at in header.chain(pages) {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x55;
        fs::write(&file, &bytes).unwrap();
        if let Ok(backend) = RedbBackend::open(dir.path(), OpenOptions::default()) {
            let _ = backend.engine().get(b"marker");
        }
    }
}

#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let file = dir.path().join(DB_FILE);
    fs::write(&file, b"SQLite format 3\0 and then some more bytes").unwrap();
    assert!(matches!(
        RedbBackend::open(dir.path(), OpenOptions::default()),
        Err(OpenError::Corrupted { .. })
    ));

    // A valid redb database that is not ours.
    fs::remove_file(&file).unwrap();
    let other = redb::Database::create(&file).unwrap();
    drop(other);
    assert!(matches!(
        RedbBackend::open(dir.path(), OpenOptions::default()),
        Err(OpenError::ForeignData { .. })
    ));

    // A directory that is not a backend directory.
    let plain = tempfile::tempdir().unwrap();
    fs::write(plain.path().join("notes.txt"), b"hello").unwrap();
    assert!(matches!(
        RedbBackend::open(plain.path(), OpenOptions::default()),
        Err(OpenError::ForeignData { .. })
    ));
}

#[test]
fn a_half_made_database_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    fs::remove_file(dir.path().join(DB_FILE)).unwrap();
    // A crash while creating leaves the temporary file behind.
    fs::write(dir.path().join("store.redb.new"), b"partial").unwrap();
    let backend = open(dir.path());
    assert_eq!(backend.engine().current_sequence(), 0);
    assert!(!dir.path().join("store.redb.new").exists());
}

/// Copies what a process crash would leave of an open backend: the marker and the database
/// file as they are now.
fn crash_copy(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for name in [store_kit::dir::MARKER_FILE, DB_FILE] {
        fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn relaxed_crash_keeps_every_flush_and_a_prefix_of_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let options = OpenOptions::default().durability(Durability::Relaxed);
    let backend = RedbBackend::open(dir.path(), options.clone()).unwrap();
    let engine = backend.engine();
    engine.put_batch(&[(b"a", b"1")]).unwrap();
    let mut state = backend.state_store("p").unwrap();
    state.put(b"k", b"flushed").unwrap();
    state.flush().unwrap();
    engine.put_batch(&[(b"b", b"2")]).unwrap();
    engine.put_batch(&[(b"c", b"3")]).unwrap();
    crash_copy(dir.path(), crashed.path());

    let after = RedbBackend::open(crashed.path(), options).unwrap();
    // The flush is durable, and so is every commit before it.
    let state = after.state_store("p").unwrap();
    assert_eq!(state.get(b"k").unwrap().as_deref(), Some(&b"flushed"[..]));
    let e = after.engine();
    assert_eq!(e.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    // Later batches survive as a prefix: whole batches, in order, with their numbers.
    let seq = e.current_sequence();
    assert!((1..=3).contains(&seq), "{seq}");
    assert_eq!(e.get(b"b").unwrap().is_some(), seq >= 2);
    assert_eq!(e.get(b"c").unwrap().is_some(), seq >= 3);
    for s in 1..=seq {
        assert!(e.get_batch(s).unwrap().is_some());
    }
    assert_eq!(e.get_batch(seq + 1).unwrap(), None);
}

#[test]
fn immediate_crash_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let engine = backend.engine();
    for i in 0..20u8 {
        engine.put_batch(&[(&[i], &[i])]).unwrap();
    }
    crash_copy(dir.path(), crashed.path());
    let after = open(crashed.path());
    assert_eq!(after.engine().current_sequence(), 20);
    assert_eq!(
        after.engine().get(&[19]).unwrap().as_deref(),
        Some(&[19u8][..])
    );
}

#[test]
fn a_read_only_open_refuses_a_crashed_file_until_a_read_write_open_recovers_it() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
    crash_copy(dir.path(), crashed.path());
    let database = || fs::read(crashed.path().join(DB_FILE)).unwrap();
    let before = database();
    let read_only = OpenOptions::default().read_only(true);
    match RedbBackend::open(crashed.path(), read_only.clone()) {
        Err(OpenError::NeedsRecovery { path }) => assert_eq!(path, crashed.path().join(DB_FILE)),
        Err(other) => panic!("expected OpenError::NeedsRecovery, got {other:?}"),
        Ok(_) => panic!("a read-only open read a file that needs recovery"),
    }
    assert!(
        database() == before,
        "the refused open wrote to the database file"
    );
    let recovered = open(crashed.path());
    recovered.close().unwrap();
    drop(recovered);
    let after = RedbBackend::open(crashed.path(), read_only).unwrap();
    assert_eq!(
        after.engine().get(b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
