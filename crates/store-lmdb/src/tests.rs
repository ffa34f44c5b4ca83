//! Focused tests of this backend's own mechanics: LMDB's limits, map growth, damaged files
//! and reopen round-trips. The conformance suite covers the contract itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use store_api::limits::LMDB_MAX_KEY_LEN;
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, Durability,
    LedgerStore, OpenError, OpenOptions, SegmentId, SegmentLogStore, SessionId, StateStore,
    StoreEngine, Transaction,
};

use super::*;
use crate::tables::{DATA_FILE, INITIAL_MAP_SIZE, LOCK_FILE};

fn open(dir: &Path) -> LmdbBackend {
    LmdbBackend::open(dir, OpenOptions::default()).unwrap()
}

fn open_relaxed(dir: &Path) -> LmdbBackend {
    LmdbBackend::open(dir, OpenOptions::default().durability(Durability::Relaxed)).unwrap()
}

#[test]
fn lmdb_key_limit_covers_the_common_limit() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    assert!(backend.db.max_key_size() >= LMDB_MAX_KEY_LEN);
    // The longest state key, with its partition prefix, fits as well.
    let mut state = backend.state_store("p").unwrap();
    state.put(&[0xFF; store_api::MAX_KEY_LEN], b"v").unwrap();
    state.flush().unwrap();
}

#[test]
fn engine_sequence_survives_pruning_everything_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let backend = open(dir.path());
        let engine = backend.engine();
        assert_eq!(engine.put_batch(&[(b"a", b"1"), (b"b", b"")]).unwrap(), 1);
        assert_eq!(engine.delete_batch(&[b"a"]).unwrap(), 2);
        assert_eq!(engine.prune_batch_log(3).unwrap(), 2);
        assert_eq!(engine.oldest_retained_batch().unwrap(), None);
    }
    let backend = open(dir.path());
    let engine = backend.engine();
    assert_eq!(engine.current_sequence(), 2);
    assert_eq!(engine.get(b"a").unwrap(), None);
    assert_eq!(engine.get(b"b").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(engine.put_batch(&[(b"c", b"3")]).unwrap(), 3);
    assert_eq!(engine.oldest_retained_batch().unwrap(), Some(3));
}

#[test]
fn the_map_grows_when_a_write_fills_it() {
    let dir = tempfile::tempdir().unwrap();
    let value = vec![0xA5; store_api::MAX_VALUE_LEN];
    let count = INITIAL_MAP_SIZE / store_api::MAX_VALUE_LEN + 2;
    {
        let backend = open_relaxed(dir.path());
        let engine = backend.engine();
        let reader = {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    engine.get(b"key-0").unwrap();
                }
            })
        };
        for i in 0..count {
            let key = format!("key-{i}");
            engine.put_batch(&[(key.as_bytes(), &value)]).unwrap();
        }
        reader.join().unwrap();
    }
    let backend = open(dir.path());
    let engine = backend.engine();
    assert_eq!(engine.current_sequence(), count as u64);
    for i in 0..count {
        let key = format!("key-{i}");
        assert_eq!(
            engine.get(key.as_bytes()).unwrap().unwrap().len(),
            value.len()
        );
    }
}

#[test]
fn a_second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _backend = open(dir.path());
    let again = LmdbBackend::open(dir.path(), OpenOptions::default());
    assert!(matches!(again, Err(OpenError::Locked { .. })), "{again:?}");
}

fn write_some(dir: &Path) {
    let backend = open(dir);
    let engine = backend.engine();
    for i in 0..2000u32 {
        engine
            .put_batch(&[(&i.to_be_bytes(), &[7u8; 100])])
            .unwrap();
    }
}

fn assert_corrupted_and_untouched(dir: &Path) {
    let data_before = std::fs::read(dir.join(DATA_FILE)).unwrap();
    let lock_before = std::fs::read(dir.join(LOCK_FILE)).ok();
    let result = LmdbBackend::open(dir, OpenOptions::default());
    assert!(
        matches!(result, Err(OpenError::Corrupted { .. })),
        "{result:?}"
    );
    assert_eq!(std::fs::read(dir.join(DATA_FILE)).unwrap(), data_before);
    assert_eq!(std::fs::read(dir.join(LOCK_FILE)).ok(), lock_before);
}

#[test]
fn a_truncated_data_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_some(dir.path());
    let data = dir.path().join(DATA_FILE);
    let len = std::fs::metadata(&data).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    assert_corrupted_and_untouched(dir.path());
}

#[test]
fn an_emptied_data_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_some(dir.path());
    std::fs::write(dir.path().join(DATA_FILE), b"").unwrap();
    assert_corrupted_and_untouched(dir.path());
}

#[test]
fn a_damaged_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_some(dir.path());
    let data = dir.path().join(DATA_FILE);
    let mut bytes = std::fs::read(&data).unwrap();
    for b in bytes.iter_mut().take(64) {
        *b = 0xEE;
    }
    std::fs::write(&data, &bytes).unwrap();
    assert_corrupted_and_untouched(dir.path());
    // A file that is not a database at all.
    std::fs::write(&data, b"definitely not an LMDB file").unwrap();
    assert_corrupted_and_untouched(dir.path());
}

#[test]
fn state_partitions_round_trip_and_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let backend = open_relaxed(dir.path());
        let mut a = backend.state_store("a").unwrap();
        let mut b = backend.state_store("b").unwrap();
        a.put(b"k", b"from a").unwrap();
        b.put(b"k", b"from b").unwrap();
        b.put(b"only-b", b"").unwrap();
        a.flush().unwrap();
        b.flush().unwrap();
        // Not flushed: lost at reopen.
        a.put(b"unflushed", b"x").unwrap();
        // An opened, never flushed partition leaves no trace.
        drop(backend.state_store("ghost").unwrap());
    }
    let backend = open(dir.path());
    let mut a = backend.state_store("a").unwrap();
    let b = backend.state_store("b").unwrap();
    assert_eq!(a.get(b"k").unwrap().as_deref(), Some(&b"from a"[..]));
    assert_eq!(a.get(b"unflushed").unwrap(), None);
    assert_eq!(b.len(), 2);
    assert!(backend.state_store("ghost").unwrap().is_empty());
    a.clear().unwrap();
    a.put(b"fresh", b"1").unwrap();
    a.flush().unwrap();
    drop(a);
    let a = backend.state_store("a").unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"from b"[..]));
}

#[test]
fn ledger_and_segments_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let usd = AssetId::new("USD").unwrap();
    let cash = AccountId::new("main", "cash").unwrap();
    let equity = AccountId::new("main", "equity").unwrap();
    let session = SessionId::from_u128(1);
    let segment = SegmentId::from_u128(2);
    let committed = {
        let backend = open(dir.path());
        let ledger = backend.ledger();
        ledger
            .register_asset(&AssetDef {
                id: usd.clone(),
                precision: 2,
                name: "US dollar".into(),
            })
            .unwrap();
        for (id, kind) in [(&cash, AccountKind::Asset), (&equity, AccountKind::Equity)] {
            let def = AccountDef {
                id: id.clone(),
                asset: usd.clone(),
                kind,
            };
            ledger
                .open_account(&def, &AccountCfg::for_kind(kind))
                .unwrap();
        }
        let tx = Transaction::new(Book::new("main").unwrap())
            .debit(&cash, &usd, 500)
            .credit(&equity, &usd, 500)
            .with_idempotency_key("first");
        let segments = backend.segment_log();
        segments.append(session, segment, b"one\n").unwrap();
        segments.append(session, segment, b"").unwrap();
        ledger.commit(&tx).unwrap()
    };
    let backend = open(dir.path());
    let ledger = backend.ledger();
    assert_eq!(ledger.balance(&cash, None).unwrap().amount, 500);
    assert_eq!(ledger.balance(&equity, None).unwrap().amount, 500);
    let stored = ledger.transaction(&committed.txid).unwrap().unwrap();
    assert_eq!(stored.committed(), committed);
    let book = Book::new("main").unwrap();
    assert_eq!(ledger.read_events(&book, None, 10).unwrap().len(), 3);
    let rows = ledger.trial_balance(&book, None).unwrap();
    assert_eq!((rows[0].debits, rows[0].credits), (500, 500));
    assert_eq!(
        ledger.trial_balance(&book, Some(committed.at)).unwrap(),
        rows
    );
    let segments = backend.segment_log();
    assert_eq!(
        segments.read_all(session, segment).unwrap(),
        vec![bytes::Bytes::from_static(b"one\n"), bytes::Bytes::new()]
    );
    assert_eq!(segments.list_sessions().unwrap(), vec![session]);
}

#[test]
fn a_damaged_sequence_counter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let backend = open(dir.path());
        backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
        backend
            .db
            .write("damaging the counter", |txn, t| {
                t.engine_meta
                    .put(txn, store_kit::engine::SEQUENCE_KEY, b"bad")?;
                Ok::<_, tables::Abort<StorageError>>(())
            })
            .unwrap();
    }
    assert_corrupted_and_untouched(dir.path());
}

/// Checksums (format 2): damage inside a stored value is a `Corrupted` error naming the
/// table and key; format-1 environments open, upgrade and read back the same.
mod checksums {
    use conformance::damage::{
        Record, assert_damage_found, assert_records_read_back, write_records,
    };
    use heed::types::Bytes as Raw;
    use store_kit::checksum::open_value;
    use store_kv::{LEDGER_TABLES, SEGMENT_TABLES, SIDE_EFFECT_TABLES};

    use super::*;
    use crate::tables::{Abort, FORMAT_KEY, META_DB, Table, Tables};

    fn table_of(record: Record) -> &'static str {
        match record {
            Record::EngineData => tables::ENGINE_DATA,
            Record::EngineLog => tables::ENGINE_LOG,
            Record::StateEntries => tables::STATE.entries,
            Record::LedgerAccounts => LEDGER_TABLES.accounts,
            Record::LedgerEvents => LEDGER_TABLES.events,
            Record::SideEffectOutputs => SIDE_EFFECT_TABLES.outputs,
            Record::SegmentEntries => SEGMENT_TABLES.entries,
        }
    }

    /// Every record of `table` in `txn`, copied out.
    fn rows(table: &Table<'_>, txn: &heed::RoTxn<'_>) -> Rows {
        table
            .iter(txn)
            .unwrap()
            .map(|row| row.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<heed::Result<_>>()
            .unwrap()
    }

    /// Flips the lowest bit of the first byte of every stored value of the database
    /// `name`, as damage on disk would, bypassing the checksum.
    fn flip_stored_values(backend: &LmdbBackend, name: &str) {
        backend
            .db
            .write("damaging records", |txn, t| {
                let (_, table) = t.all().into_iter().find(|(n, _)| *n == name).unwrap();
                let stored = rows(&table, txn);
                assert!(!stored.is_empty(), "{name} holds no record");
                for (key, mut value) in stored {
                    value[0] ^= 1;
                    table.put(txn, &key, &value)?;
                }
                Ok::<_, Abort<StorageError>>(())
            })
            .unwrap();
    }

    #[test]
    fn a_flipped_bit_in_a_stored_value_is_corrupted_naming_table_and_key() {
        for record in Record::ALL {
            let dir = tempfile::tempdir().unwrap();
            {
                let backend = open(dir.path());
                write_records(&backend);
                flip_stored_values(&backend, table_of(record));
            }
            let backend = open(dir.path());
            assert_damage_found(&backend, record, table_of(record));
            // Read-only opens verify too.
            drop(backend);
            let backend =
                LmdbBackend::open(dir.path(), OpenOptions::default().read_only(true)).unwrap();
            assert_damage_found(&backend, record, table_of(record));
        }
    }

    #[test]
    fn a_damaged_sequence_counter_record_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let backend = open(dir.path());
            backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
            flip_stored_values(&backend, tables::ENGINE_META);
        }
        let opened = LmdbBackend::open(dir.path(), OpenOptions::default());
        match opened {
            Err(OpenError::Corrupted { source, .. }) => {
                assert!(source.to_string().contains("engine.meta"), "{source}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// Runs `f` in one write transaction on the closed environment of `dir`, opened with
    /// heed directly, with every database of the stores and the `meta` database.
    fn with_raw_env(dir: &Path, f: impl FnOnce(&mut heed::RwTxn<'_>, &Tables<'_>, Table<'_>)) {
        // SAFETY: the backend of `dir` is closed and nothing else opens it meanwhile.
        #[allow(unsafe_code)]
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .max_dbs(32)
                .map_size(1 << 30)
                .open(dir)
                .unwrap()
        };
        let wtxn = env.write_txn().unwrap();
        env.create_databases_and_commit(wtxn, |opener, wtxn| {
            let tables =
                Tables::from_names(|name| opener.create_database::<Raw, Raw>(wtxn, Some(name)))?;
            let meta = opener.create_database::<Raw, Raw>(wtxn, Some(META_DB))?;
            f(wtxn, &tables, meta);
            Ok::<_, heed::Error>(heed::CommitOrAbort::<(), ()>::Commit(()))
        })
        .unwrap();
        env.prepare_for_closing().wait();
    }

    /// Rewrites the closed format-2 environment of `dir` as format 1 stored it: every value
    /// as given, without its checksum, and no `meta` database.
    fn downgrade_to_format_1(dir: &Path) {
        with_raw_env(dir, |txn, tables, meta| {
            for (name, table) in tables.all() {
                for (key, stored) in rows(&table, txn) {
                    let value = open_value(BACKEND_NAME, name, &key, &stored).unwrap();
                    table.put(txn, &key, value).unwrap();
                }
            }
            // SAFETY: no other handle on the `meta` database is used after this.
            #[allow(unsafe_code)]
            unsafe { meta.remove(txn) }.unwrap();
        });
    }

    /// The stored records (key, value) of one database.
    type Rows = Vec<(Vec<u8>, Vec<u8>)>;

    /// The stored bytes of every record of the closed environment of `dir`, by database.
    fn stored_records(dir: &Path) -> Vec<(&'static str, Rows)> {
        let mut out = Vec::new();
        with_raw_env(dir, |txn, tables, _| {
            for (name, table) in tables.all() {
                out.push((name, rows(&table, txn)));
            }
        });
        out
    }

    #[test]
    fn a_format_1_environment_reads_unverified_read_only_and_upgrades_read_write() {
        let dir = tempfile::tempdir().unwrap();
        {
            let backend = open(dir.path());
            write_records(&backend);
            backend.close().unwrap();
        }
        let format_2 = stored_records(dir.path());
        downgrade_to_format_1(dir.path());
        let format_1 = stored_records(dir.path());
        assert_ne!(format_1, format_2);

        // Read-only: read as stored, nothing written.
        {
            let backend =
                LmdbBackend::open(dir.path(), OpenOptions::default().read_only(true)).unwrap();
            assert_records_read_back(&backend);
        }
        assert_eq!(stored_records(dir.path()), format_1);

        // Read-write: upgraded at open, to exactly the records format 2 writes.
        {
            let backend = open(dir.path());
            assert_records_read_back(&backend);
            backend.close().unwrap();
        }
        assert_eq!(stored_records(dir.path()), format_2);
        // The upgrade wrote the format record: later opens read and write format 2.
        {
            let backend = open(dir.path());
            backend
                .engine()
                .put_batch(&[(b"after", b"upgrade")])
                .unwrap();
        }
        let backend = open(dir.path());
        assert_records_read_back(&backend);
        assert_eq!(
            backend.engine().get(b"after").unwrap().as_deref(),
            Some(&b"upgrade"[..])
        );
    }

    #[test]
    fn an_unknown_format_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        {
            let backend = open(dir.path());
            write_records(&backend);
            backend.close().unwrap();
        }
        with_raw_env(dir.path(), |txn, _, meta| {
            meta.put(txn, FORMAT_KEY, b"store-lmdb/3").unwrap();
        });
        let before = stored_records(dir.path());
        for read_only in [false, true] {
            let opened = LmdbBackend::open(dir.path(), OpenOptions::default().read_only(read_only));
            match opened {
                Err(OpenError::ForeignData { detail, .. }) => {
                    assert!(detail.contains("newer"), "{detail}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(stored_records(dir.path()), before);
    }
}
