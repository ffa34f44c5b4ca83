//! Focused tests of what is specific to sled: reopening, the seal, damaged directories.
//! The behaviour every backend shares is pinned by the conformance suite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Book, ChainPos,
    EventOutputs, LedgerStore, LyquidId, Mutation, SegmentId, SegmentLogStore, SessionId,
    SideEffectError, SideEffectKey, SideEffectKind, SideEffectStore, StateStore, StoreEngine,
    Transaction,
};

use super::*;

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    (root, dir)
}

fn open(dir: &Path) -> SledBackend {
    SledBackend::open(dir, OpenOptions::default()).unwrap()
}

fn open_relaxed(dir: &Path) -> SledBackend {
    SledBackend::open(dir, OpenOptions::default().durability(Durability::Relaxed)).unwrap()
}

/// Every file under `dir` with its bytes, sorted by path.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn engine_sequence_survives_reopen_and_a_full_prune() {
    let (_root, dir) = fresh();
    {
        let backend = open(&dir);
        let engine = backend.engine();
        assert_eq!(engine.put_batch(&[(b"a", b"1"), (b"b", b"")]).unwrap(), 1);
        assert_eq!(engine.delete_batch(&[b"a", b"zz"]).unwrap(), 2);
        assert_eq!(engine.put_batch(&[(b"c", b"3"), (b"c", b"4")]).unwrap(), 3);
        assert_eq!(engine.prune_batch_log(4).unwrap(), 3);
        assert_eq!(engine.oldest_retained_batch().unwrap(), None);
    }
    let backend = open(&dir);
    let engine = backend.engine();
    assert_eq!(engine.current_sequence(), 3);
    assert_eq!(engine.get(b"a").unwrap(), None);
    assert_eq!(engine.get(b"b").unwrap(), Some(Bytes::new()));
    assert_eq!(engine.get(b"c").unwrap(), Some(Bytes::from_static(b"4")));
    assert_eq!(engine.put_batch(&[(b"d", b"5")]).unwrap(), 4);
    assert_eq!(engine.oldest_retained_batch().unwrap(), Some(4));
    assert_eq!(
        engine.get_batch(4).unwrap(),
        Some(vec![Mutation::Put {
            key: Bytes::from_static(b"d"),
            value: Bytes::from_static(b"5"),
        }])
    );
    let rows = engine.range_scan(b"b", b"", 2, false).unwrap();
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, [&b"d"[..], &b"c"[..]]);
}

#[test]
fn large_values_round_trip() {
    let (_root, dir) = fresh();
    let big = vec![0xABu8; 3 * COPY_LIMIT + 5];
    {
        let backend = open(&dir);
        backend.engine().put_batch(&[(b"big", &big)]).unwrap();
    }
    let backend = open(&dir);
    let engine = backend.engine();
    assert_eq!(engine.get(b"big").unwrap().as_deref(), Some(&big[..]));
    assert_eq!(
        engine.range_scan(b"", b"", 10, true).unwrap(),
        vec![(Bytes::from_static(b"big"), Bytes::from(big))]
    );
}

#[test]
fn state_partitions_keep_flushed_writes_apart() {
    let (_root, dir) = fresh();
    {
        let backend = open_relaxed(&dir);
        let mut a = backend.state_store("a").unwrap();
        let mut b = backend.state_store("b").unwrap();
        a.put(b"k", b"a1").unwrap();
        a.put(b"gone", b"x").unwrap();
        b.put(b"k", b"b1").unwrap();
        a.flush().unwrap();
        b.flush().unwrap();
        a.delete(b"gone").unwrap();
        a.put(b"k2", b"a2").unwrap();
        a.flush().unwrap();
        b.put(b"unflushed", b"lost").unwrap();
    }
    let backend = open_relaxed(&dir);
    let a = backend.state_store("a").unwrap();
    let mut b = backend.state_store("b").unwrap();
    assert_eq!(
        a.prefix_scan(b"").unwrap(),
        vec![
            (Bytes::from_static(b"k"), Bytes::from_static(b"a1")),
            (Bytes::from_static(b"k2"), Bytes::from_static(b"a2")),
        ]
    );
    assert_eq!(
        b.snapshot().unwrap().entries(),
        &[(Bytes::from_static(b"k"), Bytes::from_static(b"b1"))]
    );
    b.clear().unwrap();
    b.put(b"after-clear", b"1").unwrap();
    b.flush().unwrap();
    drop(b);
    let b = backend.state_store("b").unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b.get(b"k").unwrap(), None);
    assert_eq!(a.len(), 2);
}

#[test]
fn a_partition_never_flushed_writes_nothing() {
    let (_root, dir) = fresh();
    let backend = open(&dir);
    let names = backend.partitions_tree_len();
    let state = backend.state_store("quiet").unwrap();
    drop(state);
    assert_eq!(backend.partitions_tree_len(), names);
}

impl SledBackend {
    fn partitions_tree_len(&self) -> usize {
        self.shared
            .db
            .open_tree(crate::STATE.partitions)
            .unwrap()
            .len()
    }
}

fn usd() -> AssetId {
    AssetId::new("USD").unwrap()
}

fn account(path: &str) -> AccountId {
    AccountId::new("main", path).unwrap()
}

#[test]
fn ledger_survives_reopen() {
    let (_root, dir) = fresh();
    let cash = account("cash");
    let equity = account("equity");
    let committed = {
        let backend = open(&dir);
        let ledger = backend.ledger();
        ledger
            .register_asset(&AssetDef {
                id: usd(),
                precision: 2,
                name: "dollar".into(),
            })
            .unwrap();
        for (id, kind) in [(&cash, AccountKind::Asset), (&equity, AccountKind::Equity)] {
            let def = AccountDef {
                id: id.clone(),
                asset: usd(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        let tx = Transaction::new(Book::new("main").unwrap())
            .debit(&cash, &usd(), 500)
            .credit(&equity, &usd(), 500)
            .with_idempotency_key("first");
        ledger.commit(&tx).unwrap()
    };
    let backend = open(&dir);
    let ledger = backend.ledger();
    assert_eq!(committed.seq, 3);
    assert_eq!(ledger.balance(&cash, None).unwrap().amount, 500);
    assert_eq!(ledger.balance(&equity, None).unwrap().amount, 500);
    let stored = ledger.transaction(&committed.txid).unwrap().unwrap();
    assert_eq!(stored.committed(), committed);
    let replay = Transaction::new(Book::new("main").unwrap())
        .debit(&cash, &usd(), 1)
        .credit(&equity, &usd(), 1)
        .with_idempotency_key("first");
    assert_eq!(ledger.commit(&replay).unwrap(), committed);
    let rows = ledger
        .trial_balance(&Book::new("main").unwrap(), None)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].debits, rows[0].credits), (500, 500));
    assert_eq!(
        ledger
            .read_events(&Book::new("main").unwrap(), None, 10)
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn side_effects_survive_reopen_and_conflicts_write_nothing() {
    let (_root, dir) = fresh();
    let key = |block| SideEffectKey {
        lyquid: LyquidId([1; 20]),
        pos: ChainPos::new(block, 0),
        kind: SideEffectKind::Event,
    };
    let outputs = |payload: &'static [u8]| EventOutputs(vec![Bytes::from_static(payload)]);
    {
        let backend = open(&dir);
        let store = backend.side_effects();
        store
            .write_outputs(&BTreeMap::from([(key(1), outputs(b"one"))]))
            .unwrap();
        let conflict = BTreeMap::from([(key(1), outputs(b"other")), (key(2), outputs(b"two"))]);
        assert!(matches!(
            store.write_outputs(&conflict),
            Err(SideEffectError::ConflictingReplay { .. })
        ));
    }
    let backend = open(&dir);
    let store = backend.side_effects();
    assert_eq!(store.read_outputs(&key(1)).unwrap(), Some(outputs(b"one")));
    assert_eq!(store.read_outputs(&key(2)).unwrap(), None);
}

#[test]
fn segments_survive_reopen() {
    let (_root, dir) = fresh();
    let session = SessionId::from_u128(1);
    let segment = SegmentId::from_u128(2);
    {
        let backend = open(&dir);
        let log = backend.segment_log();
        for entry in [&b"a"[..], b"", b"line\nbreak", b"d"] {
            log.append(session, segment, entry).unwrap();
        }
        log.append_trace(session, segment, b"trace").unwrap();
        log.truncate(session, segment, 3).unwrap();
    }
    let backend = open(&dir);
    let log = backend.segment_log();
    assert_eq!(
        log.read_all(session, segment).unwrap(),
        vec![
            Bytes::from_static(b"a"),
            Bytes::new(),
            Bytes::from_static(b"line\nbreak")
        ]
    );
    assert_eq!(log.read_traces(session, segment).unwrap().len(), 1);
    assert_eq!(log.list_sessions().unwrap(), vec![session]);
    assert_eq!(log.list_segments(session).unwrap(), vec![segment]);
    assert_eq!(log.append(session, segment, b"e").unwrap(), 3);
}

#[test]
fn second_open_is_locked_and_reopen_after_drop_works() {
    let (_root, dir) = fresh();
    let backend = open(&dir);
    assert!(matches!(
        SledBackend::open(&dir, OpenOptions::default()),
        Err(OpenError::Locked { .. })
    ));
    drop(backend);
    for _ in 0..5 {
        drop(open(&dir));
    }
}

#[test]
fn bad_directories_are_refused() {
    let (root, dir) = fresh();
    std::fs::write(&dir, b"a file").unwrap();
    assert!(matches!(
        SledBackend::open(&dir, OpenOptions::default()),
        Err(OpenError::NotADirectory { .. })
    ));
    let foreign = root.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("data.mdb"), b"not ours").unwrap();
    assert!(matches!(
        SledBackend::open(&foreign, OpenOptions::default()),
        Err(OpenError::ForeignData { .. })
    ));
}

/// A closed database holding some data, and its files.
fn closed_database() -> (tempfile::TempDir, PathBuf) {
    let (root, dir) = fresh();
    let backend = open_relaxed(&dir);
    let engine = backend.engine();
    for i in 0..500u32 {
        engine
            .put_batch(&[(&i.to_be_bytes(), &[7u8; 200])])
            .unwrap();
    }
    drop(engine);
    drop(backend);
    (root, dir)
}

#[test]
fn a_damaged_database_is_refused_and_left_as_it_was() {
    let (_root, dir) = closed_database();
    let db_file = dir.join(SLED_SUBDIR).join("db");
    let original = std::fs::read(&db_file).unwrap();
    let damages: Vec<Vec<u8>> = vec![
        Vec::new(),
        original[..original.len() / 2].to_vec(),
        original[..original.len() - 1].to_vec(),
        {
            let mut flipped = original.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x10;
            flipped
        },
    ];
    for damaged in damages {
        std::fs::write(&db_file, &damaged).unwrap();
        let before = contents(&dir);
        let result = SledBackend::open(&dir, OpenOptions::default());
        assert!(
            matches!(result, Err(OpenError::Corrupted { .. })),
            "{result:?}"
        );
        assert_eq!(contents(&dir), before);
    }
    std::fs::write(&db_file, &original).unwrap();
    let backend = open(&dir);
    assert_eq!(backend.engine().current_sequence(), 500);
}

#[test]
fn damage_without_a_seal_never_panics() {
    let (_root, dir) = closed_database();
    let db_file = dir.join(SLED_SUBDIR).join("db");
    let original = std::fs::read(&db_file).unwrap();
    let damages: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0; 100_000],
        vec![0xFF; 100_000],
        original[..original.len() / 3].to_vec(),
        {
            let mut flipped = original.clone();
            for b in flipped.iter_mut().skip(20).take(64) {
                *b ^= 0xA5;
            }
            flipped
        },
    ];
    for damaged in damages {
        std::fs::write(&db_file, &damaged).unwrap();
        let _ = std::fs::remove_file(dir.join(seal::SEAL_FILE));
        // Either sled recovers what it can, or the open fails cleanly.
        if let Ok(backend) = SledBackend::open(&dir, OpenOptions::default()) {
            let _ = backend.engine().range_scan(b"", b"", 10, true);
        }
    }
}

#[test]
fn a_damaged_seal_or_sled_directory_is_corruption() {
    let (_root, dir) = closed_database();
    std::fs::write(dir.join(seal::SEAL_FILE), b"garbage").unwrap();
    assert!(matches!(
        SledBackend::open(&dir, OpenOptions::default()),
        Err(OpenError::Corrupted { .. })
    ));
    std::fs::remove_file(dir.join(seal::SEAL_FILE)).unwrap();
    let sled_dir = dir.join(SLED_SUBDIR);
    std::fs::remove_dir_all(&sled_dir).unwrap();
    std::fs::write(&sled_dir, b"not a directory").unwrap();
    assert!(matches!(
        SledBackend::open(&dir, OpenOptions::default()),
        Err(OpenError::Corrupted { .. })
    ));
}

/// A `sled.seal` written before the seal moved to `store_kit::seal` still verifies. The
/// fixture: four files of known bytes under `<dir>/sled`, and the seal the earlier
/// build's `seal::write` made of them (its text recorded when the seal moved, by running
/// that code on these files).
#[test]
fn a_seal_written_by_the_earlier_build_still_verifies() {
    const EARLIER_SEAL: &str = "store-sled seal v1\n\
                                56515e59e91d5a78 18 blobs/12345\n\
                                428f1975ca79640f 44 conf\n\
                                2d8ccc189a8687fa 1000 db\n\
                                f7e27bed97b0321e 0 snap.0000000000000400\n";
    let (_root, dir) = fresh();
    let sled_dir = dir.join(SLED_SUBDIR);
    std::fs::create_dir_all(sled_dir.join("blobs")).unwrap();
    std::fs::write(sled_dir.join("blobs/12345"), b"a blob of thirteen").unwrap();
    std::fs::write(
        sled_dir.join("conf"),
        b"segment_size: 524288\nuse_compression: false\n",
    )
    .unwrap();
    let log: Vec<u8> = (0..1000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    std::fs::write(sled_dir.join("db"), &log).unwrap();
    std::fs::write(sled_dir.join("snap.0000000000000400"), b"").unwrap();
    std::fs::write(dir.join(seal::SEAL_FILE), EARLIER_SEAL).unwrap();

    assert_eq!(
        seal::SEAL.verify(&dir).unwrap(),
        store_kit::seal::Checked::Sealed
    );
    // And the same seal still tells a changed log apart.
    let mut changed = log.clone();
    changed[500] ^= 1;
    std::fs::write(sled_dir.join("db"), &changed).unwrap();
    assert!(matches!(
        seal::SEAL.verify(&dir),
        Err(OpenError::Corrupted { .. })
    ));
    std::fs::write(sled_dir.join("db"), &log).unwrap();
    assert_eq!(
        seal::SEAL.verify_and_break(&dir).unwrap(),
        store_kit::seal::Checked::Sealed
    );
    assert!(!dir.join(seal::SEAL_FILE).exists());
}

/// A seal written now has the same shape: the header, then one line per file.
#[test]
fn a_clean_close_writes_the_seal_in_the_earlier_format() {
    let (_root, dir) = closed_database();
    let text = std::fs::read_to_string(dir.join(seal::SEAL_FILE)).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("store-sled seal v1"));
    let names: Vec<&str> = lines
        .map(|line| {
            let parts: Vec<&str> = line.splitn(3, ' ').collect();
            assert_eq!(parts.len(), 3, "{line}");
            assert_eq!(parts[0].len(), 16, "{line}");
            assert!(u64::from_str_radix(parts[0], 16).is_ok(), "{line}");
            assert!(parts[1].parse::<u64>().is_ok(), "{line}");
            parts[2]
        })
        .collect();
    assert!(
        names.contains(&"db") && names.contains(&"conf"),
        "{names:?}"
    );
}

#[test]
fn immediate_writes_sync_sleds_blob_files() {
    let (_root, dir) = fresh();
    let big = vec![0x42u8; 300 * 1024];
    {
        let backend = open(&dir);
        backend.engine().put_batch(&[(b"big", &big)]).unwrap();
        let blobs = std::fs::read_dir(dir.join(SLED_SUBDIR).join("blobs"))
            .unwrap()
            .count();
        assert!(blobs > 0, "sled kept a 300 KiB value inline");
        assert!(*backend.shared.blobs_synced.lock() > i64::MIN);
    }
    let backend = open(&dir);
    assert_eq!(
        backend.engine().get(b"big").unwrap().as_deref(),
        Some(&big[..])
    );
}

/// A process killed while sled writes a snapshot leaves `snap.<lsn>.generating` (empty or
/// part-written) beside the log; sled 0.34.7 alone then refuses the database as corrupted
/// ("Read corrupted data at file offset None", found by the reliability crash tests). The
/// backend removes such files before sled starts, and the database opens with its data.
#[test]
fn a_snapshot_left_unfinished_by_a_crash_does_not_block_the_open() {
    for partial in [&b""[..], &[0xA5u8; 40][..]] {
        let (_root, dir) = fresh();
        {
            let backend = open(&dir);
            backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
        }
        // No seal, as after a crash, and the snapshot a killed sled was writing.
        std::fs::remove_file(dir.join(seal::SEAL_FILE)).unwrap();
        let unfinished = dir
            .join(SLED_SUBDIR)
            .join("snap.7FFFFFFFFFFFFFFF.generating");
        std::fs::write(&unfinished, partial).unwrap();

        let backend = SledBackend::open(&dir, OpenOptions::default())
            .unwrap_or_else(|e| panic!("{} bytes of unfinished snapshot: {e}", partial.len()));
        assert_eq!(
            backend.engine().get(b"k").unwrap(),
            Some(Bytes::from_static(b"v"))
        );
        assert_eq!(backend.engine().current_sequence(), 1);
        assert!(!unfinished.exists());
    }
}

/// Checksums (format 2): damage inside a stored value is a `Corrupted` error naming the
/// tree and key; a format-1 database is upgraded at open and reads back the same.
mod checksums {
    use conformance::damage::{
        Record, assert_damage_found, assert_records_read_back, write_records,
    };
    use store_kit::checksum::open_value;

    use super::*;

    fn tree_of(record: Record) -> &'static str {
        match record {
            Record::EngineData => trees::ENGINE_DATA,
            Record::EngineLog => trees::ENGINE_LOG,
            Record::StateEntries => STATE.entries,
            Record::LedgerAccounts => LEDGER_TABLES.accounts,
            Record::LedgerEvents => LEDGER_TABLES.events,
            Record::SideEffectOutputs => SIDE_EFFECT_TABLES.outputs,
            Record::SegmentEntries => SEGMENT_TABLES.entries,
        }
    }

    /// The stored records (key, value) of one tree.
    type Rows = Vec<(IVec, IVec)>;

    fn rows(backend: &SledBackend, name: &'static str) -> Rows {
        let tree = backend.shared.tree(name).unwrap();
        tree.iter().collect::<sled::Result<_>>().unwrap()
    }

    /// Every stored record of every tree of the stores.
    fn stored_records(backend: &SledBackend) -> Vec<(&'static str, Rows)> {
        store_trees()
            .into_iter()
            .map(|name| (name, rows(backend, name)))
            .collect()
    }

    /// Flips the lowest bit of the first byte of every stored value of the tree `name`,
    /// as damage on disk would, bypassing the checksum.
    fn flip_stored_values(backend: &SledBackend, name: &'static str) {
        let stored = rows(backend, name);
        assert!(!stored.is_empty(), "{name} holds no record");
        let tree = backend.shared.tree(name).unwrap();
        for (key, value) in stored {
            let mut value = value.to_vec();
            value[0] ^= 1;
            tree.insert(key, value).unwrap();
        }
        backend.shared.flush_everything("test").unwrap();
    }

    #[test]
    fn a_flipped_bit_in_a_stored_value_is_corrupted_naming_tree_and_key() {
        for record in Record::ALL {
            let (_root, dir) = fresh();
            {
                let backend = open(&dir);
                write_records(&backend);
                flip_stored_values(&backend, tree_of(record));
            }
            let backend = open(&dir);
            assert_damage_found(&backend, record, tree_of(record));
        }
    }

    #[test]
    fn a_damaged_sequence_counter_record_is_refused_at_open() {
        let (_root, dir) = fresh();
        {
            let backend = open(&dir);
            backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
            flip_stored_values(&backend, trees::ENGINE_META);
        }
        match SledBackend::open(&dir, OpenOptions::default()) {
            Err(OpenError::Corrupted { source, .. }) => {
                assert!(source.to_string().contains("engine.meta"), "{source}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// Rewrites the records of the open `backend` as format 1 stored them: every value as
    /// given, without its checksum, and no format record. The backend is then closed.
    pub(super) fn downgrade_to_format_1(backend: SledBackend) {
        for name in store_trees() {
            let tree = backend.shared.tree(name).unwrap();
            for (key, stored) in rows(&backend, name) {
                let value = open_value(BACKEND_NAME, name, &key, &stored).unwrap();
                tree.insert(key.clone(), value).unwrap();
            }
        }
        let meta = backend.shared.tree(META_TREE).unwrap();
        assert!(meta.remove(FORMAT_KEY).unwrap().is_some());
        backend.shared.flush_everything("test").unwrap();
    }

    #[test]
    fn a_format_1_database_is_upgraded_at_open_and_reads_back_the_same() {
        let (_root, dir) = fresh();
        let format_2 = {
            let backend = open(&dir);
            write_records(&backend);
            let records = stored_records(&backend);
            downgrade_to_format_1(backend);
            records
        };
        {
            let backend = open(&dir);
            assert_records_read_back(&backend);
            assert_eq!(stored_records(&backend), format_2);
            let meta = backend.shared.tree(META_TREE).unwrap();
            assert_eq!(
                meta.get(FORMAT_KEY).unwrap().as_deref(),
                Some(&b"store-sled/2"[..])
            );
            backend
                .engine()
                .put_batch(&[(b"after", b"upgrade")])
                .unwrap();
        }
        let backend = open(&dir);
        assert_records_read_back(&backend);
        assert_eq!(
            backend.engine().get(b"after").unwrap().as_deref(),
            Some(&b"upgrade"[..])
        );
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let (_root, dir) = fresh();
        {
            let backend = open(&dir);
            write_records(&backend);
            let meta = backend.shared.tree(META_TREE).unwrap();
            meta.insert(FORMAT_KEY, &b"store-sled/3"[..]).unwrap();
            backend.shared.flush_everything("test").unwrap();
        }
        match SledBackend::open(&dir, OpenOptions::default()) {
            Err(OpenError::ForeignData { detail, .. }) => {
                assert!(detail.contains("newer"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A process killed while it upgrades a format-1 database leaves one that opens and reads
/// back every record: sled recovers the upgrade's one transaction whole or not at all.
mod upgrade_kill {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use conformance::damage::{assert_records_read_back, write_records};

    use super::*;

    /// Set in the child process: the directory it opens (and so upgrades).
    const CHILD_DIR: &str = "STORE_SLED_UPGRADE_CHILD_DIR";
    const KEYS: u32 = 10_000;

    fn key(i: u32) -> [u8; 4] {
        i.to_be_bytes()
    }

    /// The child: opens the directory (upgrading it) and closes it. Does nothing unless
    /// run by [`a_process_killed_during_the_upgrade_leaves_a_database_that_reads_back`].
    #[test]
    fn upgrade_child() {
        if let Some(dir) = std::env::var_os(CHILD_DIR) {
            let backend = open(Path::new(&dir));
            backend.close().unwrap();
        }
    }

    fn run_child(dir: &Path, kill_after: Option<Duration>) -> Duration {
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::upgrade_kill::upgrade_child",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(delay) = kill_after {
            std::thread::sleep(delay);
            // The child may have finished already: then there is nothing to kill.
            let _ = child.kill();
        }
        child.wait().unwrap();
        started.elapsed()
    }

    #[test]
    fn a_process_killed_during_the_upgrade_leaves_a_database_that_reads_back() {
        let (root, fixture) = fresh();
        {
            let backend = open_relaxed(&fixture);
            write_records(&backend);
            let value = [9u8; 64];
            for start in (0..KEYS).step_by(1000) {
                let keys: Vec<[u8; 4]> = (start..start + 1000).map(key).collect();
                let pairs: Vec<(&[u8], &[u8])> =
                    keys.iter().map(|k| (&k[..], &value[..])).collect();
                backend.engine().put_batch(&pairs).unwrap();
            }
            super::checksums::downgrade_to_format_1(backend);
        }
        // How long an uninterrupted upgrade takes in a child, to spread the kills over it.
        let timed = root.path().join("timed");
        copy_dir(&fixture, &timed);
        let full = run_child(&timed, None);
        let kills = 10u32;
        // What each kill left: still sealed (killed before the open got going, or after
        // the clean close), or recovered by sled as format 1 or format 2.
        let (mut sealed, mut format_1, mut format_2) = (0, 0, 0);
        for n in 0..kills {
            let copy = root.path().join(format!("killed-{n}"));
            copy_dir(&fixture, &copy);
            run_child(&copy, Some(full * (n + 1) / kills));
            if copy.join(seal::SEAL_FILE).exists() {
                sealed += 1;
            } else {
                let db = sled::open(copy.join(SLED_SUBDIR)).unwrap();
                match db.open_tree(META_TREE).unwrap().get(FORMAT_KEY).unwrap() {
                    Some(_) => format_2 += 1,
                    None => format_1 += 1,
                }
            }
            let backend = open(&copy);
            assert_records_read_back(&backend);
            let rows = backend
                .engine()
                .range_scan(&key(0), &key(KEYS - 1), usize::MAX, true)
                .unwrap();
            assert_eq!(rows.len(), KEYS as usize, "kill {n} after {full:?}");
            assert!(rows.iter().all(|(_, v)| v.as_ref() == [9u8; 64]));
            let meta = backend.shared.tree(META_TREE).unwrap();
            assert_eq!(
                meta.get(FORMAT_KEY).unwrap().as_deref(),
                Some(&b"store-sled/2"[..])
            );
        }
        eprintln!(
            "upgrade of {KEYS} records took {full:?} in a child; {kills} kills left \
             {sealed} sealed, {format_1} format 1 (upgraded again), {format_2} format 2"
        );
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
}
