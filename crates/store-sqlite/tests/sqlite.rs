//! SQLite-specific tests: the README's queries against the API (contract §0.6: the stores
//! are tables a user reads with plain SQL), the schema and file checks at open, and round
//! trips of values at the edges of SQLite's 64-bit integers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};
use store_api::{
    AccountCfg, AccountDef, AccountId, AccountKind, AssetDef, AssetId, Backend, Book, Direction,
    Durability, LedgerStore, ManualClock, Mutation, OpenError, OpenOptions, StateStore,
    StoreEngine, Timestamp, Transaction,
};
use store_sqlite::{DB_FILE, SqliteBackend};

const README: &str = include_str!("../README.md");
const TRIAL_BALANCE: &str = include_str!("../queries/trial_balance.sql");
const LEDGER_TOTALS: &str = include_str!("../queries/ledger_totals.sql");
const ACCOUNT_HISTORY: &str = include_str!("../queries/account_history.sql");
const BATCH_LOG: &str = include_str!("../queries/batch_log.sql");

/// A row of `account_history.sql`.
type HistoryRow = (i64, i64, String, i64, String, String, i64, i64);
/// A row of `batch_log.sql`.
type LogRow = (i64, i64, String, Vec<u8>, Option<Vec<u8>>);

fn options() -> OpenOptions {
    OpenOptions::default().durability(Durability::Relaxed)
}

fn open(dir: &Path) -> SqliteBackend {
    SqliteBackend::open(dir, options()).unwrap()
}

/// A read-only connection of the kind a user opens with `sqlite3 -readonly`.
fn shell(dir: &Path) -> Connection {
    Connection::open_with_flags(dir.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn asset(id: &str) -> AssetDef {
    AssetDef {
        id: AssetId::new(id).unwrap(),
        precision: 2,
        name: format!("{id} money"),
    }
}

fn open_account(
    l: &dyn LedgerStore,
    book: &str,
    path: &str,
    asset: &str,
    kind: AccountKind,
) -> AccountId {
    let id = AccountId::new(book, path).unwrap();
    l.open_account(
        &AccountDef {
            id: id.clone(),
            asset: AssetId::new(asset).unwrap(),
            kind,
        },
        &AccountCfg::for_kind(kind),
    )
    .unwrap();
    id
}

fn transfer(
    book: &str,
    debit: &AccountId,
    credit: &AccountId,
    asset: &str,
    amount: u64,
) -> Transaction {
    let asset = AssetId::new(asset).unwrap();
    Transaction::new(Book::new(book).unwrap())
        .debit(debit, &asset, amount)
        .credit(credit, &asset, amount)
}

#[test]
fn readme_quotes_every_query() {
    for query in [TRIAL_BALANCE, LEDGER_TOTALS, ACCOUNT_HISTORY, BATCH_LOG] {
        assert!(
            README.contains(query.trim_end()),
            "README does not quote:\n{query}"
        );
    }
    assert!(README.contains("src/schema.sql"));
}

/// Two books, two assets, a few transactions: the trial balance, totals and history
/// queries give the API's answers.
#[test]
fn ledger_queries_match_the_api() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let backend = open(&dir);
    let l = backend.ledger();
    l.register_asset(&asset("EUR")).unwrap();
    l.register_asset(&asset("USD")).unwrap();
    let cash = open_account(&*l, "main", "assets:cash", "USD", AccountKind::Asset);
    let sales = open_account(&*l, "main", "income:sales", "USD", AccountKind::Income);
    let eur_cash = open_account(&*l, "main", "assets:eur", "EUR", AccountKind::Asset);
    let eur_debt = open_account(
        &*l,
        "main",
        "liabilities:eur",
        "EUR",
        AccountKind::Liability,
    );
    let other = open_account(&*l, "o'brien; --", "cash", "USD", AccountKind::Asset);
    let other_equity = open_account(&*l, "o'brien; --", "equity", "USD", AccountKind::Equity);
    for amount in [100, 250, 7] {
        l.commit(&transfer("main", &cash, &sales, "USD", amount))
            .unwrap();
    }
    l.commit(&transfer("main", &sales, &cash, "USD", 40))
        .unwrap();
    l.commit(&transfer("main", &eur_cash, &eur_debt, "EUR", 999))
        .unwrap();
    l.commit(&transfer("o'brien; --", &other, &other_equity, "USD", 5))
        .unwrap();

    let conn = shell(&dir);
    let mut stmt = conn.prepare(TRIAL_BALANCE).unwrap();
    let summed: Vec<(String, String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut stmt = conn.prepare(LEDGER_TOTALS).unwrap();
    let totals: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected = Vec::new();
    for book in ["main", "o'brien; --"] {
        for row in l.trial_balance(&Book::new(book).unwrap(), None).unwrap() {
            expected.push((
                book.to_owned(),
                row.asset.to_string(),
                row.debits,
                row.credits,
            ));
        }
    }
    assert_eq!(expected.len(), 3);
    let from_sums: Vec<_> = summed
        .iter()
        .map(|(b, a, d, c)| (b.clone(), a.clone(), *d as u128, *c as u128))
        .collect();
    let from_totals: Vec<_> = totals
        .iter()
        .map(|(b, a, d, c)| (b.clone(), a.clone(), d.parse().unwrap(), c.parse().unwrap()))
        .collect();
    assert_eq!(from_sums, expected);
    assert_eq!(from_totals, expected);

    let mut stmt = conn.prepare(ACCOUNT_HISTORY).unwrap();
    let rows: Vec<HistoryRow> = stmt
        .query_map(
            rusqlite::named_params! {":book": "main", ":path": "assets:cash"},
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let history = l.account_history(&cash, 0, usize::MAX).unwrap();
    assert_eq!(history.len(), 4);
    let api: Vec<_> = history
        .iter()
        .map(|p| {
            (
                p.seq as i64,
                p.at.0 as i64,
                p.txid.0.simple().to_string().to_uppercase(),
                i64::from(p.index),
                p.asset.to_string(),
                match p.direction {
                    Direction::Debit => "debit".to_owned(),
                    Direction::Credit => "credit".to_owned(),
                },
                p.amount as i64,
                p.balance_after,
            )
        })
        .collect();
    assert_eq!(rows, api);
    assert_eq!(rows.last().map(|r| r.7), Some(317));
}

#[test]
fn batch_log_query_matches_get_batch() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let backend = open(&dir);
    let e = backend.engine();
    e.put_batch(&[(b"a", b"1"), (b"b", b""), (b"a", b"2")])
        .unwrap();
    e.delete_batch(&[b"a", b"missing"]).unwrap();
    e.put_batch(&[(&[0xFF, 0x00], &[0x00, 0xFF])]).unwrap();
    e.prune_batch_log(2).unwrap();

    let conn = shell(&dir);
    let mut stmt = conn.prepare(BATCH_LOG).unwrap();
    let rows: Vec<LogRow> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut api = Vec::new();
    let oldest = e.oldest_retained_batch().unwrap().unwrap();
    assert_eq!(oldest, 2);
    for seq in oldest..=e.current_sequence() {
        for (idx, m) in e.get_batch(seq).unwrap().unwrap().into_iter().enumerate() {
            api.push(match m {
                Mutation::Put { key, value } => (
                    seq as i64,
                    idx as i64,
                    "put".to_owned(),
                    key.to_vec(),
                    Some(value.to_vec()),
                ),
                Mutation::Delete { key } => (
                    seq as i64,
                    idx as i64,
                    "delete".to_owned(),
                    key.to_vec(),
                    None,
                ),
            });
        }
    }
    assert_eq!(rows, api);
    assert_eq!(rows.len(), 3);
}

/// Amounts above `i64::MAX` (possible with negative balances) and timestamps above it
/// round-trip exactly, and the 128-bit totals stay exact.
#[test]
fn u64_amounts_and_timestamps_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let clock = Arc::new(ManualClock::new(Timestamp(u64::MAX - 10)));
    let opts = options().clock(clock.clone());
    let backend = SqliteBackend::open(&dir, opts.clone()).unwrap();
    let l = backend.ledger();
    l.register_asset(&asset("BIG")).unwrap();
    let a = open_account(&*l, "b", "a", "BIG", AccountKind::Asset);
    let z = open_account(&*l, "b", "z", "BIG", AccountKind::Liability);
    let down = i64::MAX as u64;
    let up = (1u64 << 63) + 5;
    let first = l.commit(&transfer("b", &z, &a, "BIG", down)).unwrap();
    let second = l.commit(&transfer("b", &a, &z, "BIG", up)).unwrap();
    assert_eq!(first.at, Timestamp(u64::MAX - 10));
    let check = |l: &dyn LedgerStore| {
        assert_eq!(l.balance(&a, None).unwrap().amount, 6);
        assert_eq!(l.balance(&z, None).unwrap().amount, 6);
        let tx = l.transaction(&second.txid).unwrap().unwrap();
        assert_eq!(tx.postings[0].amount, up);
        assert_eq!(tx.at, Timestamp(u64::MAX - 10));
        let history = l.account_history(&a, 0, 10).unwrap();
        assert_eq!(
            history.iter().map(|p| p.amount).collect::<Vec<_>>(),
            vec![down, up]
        );
        let total = u128::from(down) + u128::from(up);
        let rows = l.trial_balance(&Book::new("b").unwrap(), None).unwrap();
        assert_eq!((rows[0].debits, rows[0].credits), (total, total));
        let as_of = l
            .trial_balance(&Book::new("b").unwrap(), Some(Timestamp(u64::MAX)))
            .unwrap();
        assert_eq!(as_of, rows);
        assert_eq!(
            l.balance(&a, Some(Timestamp(u64::MAX))).unwrap(),
            l.balance(&a, None).unwrap()
        );
    };
    check(&*l);
    drop(l);
    drop(backend);
    let backend = SqliteBackend::open(&dir, opts).unwrap();
    check(&*backend.ledger());
}

#[test]
fn state_partition_round_trips_and_opening_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let backend = open(&dir);
    let mut p = backend.state_store("p").unwrap();
    drop(p);
    let count: i64 = shell(&dir)
        .query_row("SELECT COUNT(*) FROM state_partitions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0, "opening a partition wrote a row");
    p = backend.state_store("p").unwrap();
    p.put(b"empty", b"").unwrap();
    p.put(b"k", b"v").unwrap();
    p.flush().unwrap();
    p.delete(b"k").unwrap();
    p.put(&[0xFF; 480], b"max").unwrap();
    p.flush().unwrap();
    drop(p);
    drop(backend);
    let backend = open(&dir);
    let p = backend.state_store("p").unwrap();
    assert_eq!(p.get(b"empty").unwrap(), Some(Bytes::new()));
    assert_eq!(p.get(b"k").unwrap(), None);
    assert_eq!(
        p.get(&[0xFF; 480]).unwrap(),
        Some(Bytes::from_static(b"max"))
    );
    assert_eq!(p.len(), 2);
}

fn populated() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let backend = open(&dir);
    let e = backend.engine();
    let value = vec![7u8; 300];
    for batch in 0..40u32 {
        let keys: Vec<Vec<u8>> = (0..100u32)
            .map(|i| (batch * 100 + i).to_be_bytes().to_vec())
            .collect();
        let pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &value[..])).collect();
        e.put_batch(&pairs).unwrap();
    }
    (root, dir)
}

fn expect_open_error(dir: &Path) -> OpenError {
    match SqliteBackend::open(dir, options()) {
        Ok(_) => panic!("opened a damaged database"),
        Err(e) => e,
    }
}

#[test]
fn reopening_a_large_database_passes_the_file_checks() {
    let (_root, dir) = populated();
    for _ in 0..3 {
        let backend = open(&dir);
        let e = backend.engine();
        assert_eq!(
            e.get(&10u32.to_be_bytes()).unwrap().map(|v| v.len()),
            Some(300)
        );
        e.delete_batch(&[&5u32.to_be_bytes()]).unwrap();
    }
    assert_eq!(open(&dir).engine().current_sequence(), 43);
}

#[test]
fn truncated_or_empty_database_is_corrupted() {
    let (_root, dir) = populated();
    let file = dir.join(DB_FILE);
    let bytes = std::fs::read(&file).unwrap();
    let page = 4096;
    for len in [
        0,
        50,
        100,
        bytes.len() / 2 / page * page,
        bytes.len() - page,
        bytes.len() - 1,
    ] {
        std::fs::write(&file, &bytes[..len]).unwrap();
        assert!(
            matches!(expect_open_error(&dir), OpenError::Corrupted { .. }),
            "truncated to {len}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            &bytes[..len],
            "the refused open changed the file"
        );
    }
    let mut garbled = bytes.clone();
    garbled[..16].copy_from_slice(b"not sqlite at al");
    std::fs::write(&file, &garbled).unwrap();
    assert!(matches!(
        expect_open_error(&dir),
        OpenError::Corrupted { .. }
    ));
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(open(&dir).engine().current_sequence(), 40);
}

#[test]
fn foreign_or_newer_sqlite_database_is_foreign_data() {
    let (_root, dir) = populated();
    let file = dir.join(DB_FILE);
    let original = std::fs::read(&file).unwrap();

    let newer = Connection::open(&file).unwrap();
    newer
        .execute(
            "UPDATE schema_version SET version = ?1",
            [store_sqlite::SCHEMA_VERSION + 1],
        )
        .unwrap();
    newer.close().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(matches!(
        expect_open_error(&dir),
        OpenError::ForeignData { .. }
    ));
    assert_eq!(std::fs::read(&file).unwrap(), bytes);

    std::fs::remove_file(&file).unwrap();
    let other = Connection::open(&file).unwrap();
    other
        .execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
        .unwrap();
    other.close().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(matches!(
        expect_open_error(&dir),
        OpenError::ForeignData { .. }
    ));
    assert_eq!(std::fs::read(&file).unwrap(), bytes);

    std::fs::write(&file, &original).unwrap();
    assert_eq!(open(&dir).engine().current_sequence(), 40);
}

#[test]
fn database_path_that_is_a_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    drop(open(&dir));
    std::fs::remove_file(dir.join(DB_FILE)).unwrap();
    std::fs::create_dir(dir.join(DB_FILE)).unwrap();
    assert!(matches!(
        expect_open_error(&dir),
        OpenError::ForeignData { .. }
    ));
}

#[test]
fn missing_database_with_a_wal_is_corrupted() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let backend = open(&dir);
    backend.engine().put_batch(&[(b"k", b"v")]).unwrap();
    drop(backend);
    let wal = dir.join(format!("{DB_FILE}-wal"));
    assert!(!wal.exists(), "closing the backend left its WAL behind");
    std::fs::remove_file(dir.join(DB_FILE)).unwrap();
    std::fs::write(&wal, b"frames").unwrap();
    assert!(matches!(
        expect_open_error(&dir),
        OpenError::Corrupted { .. }
    ));
    assert!(!dir.join(DB_FILE).exists());
}

/// Damage inside pages the open checks cannot see is a `Corrupted` storage error from the
/// read that meets it (or from the open), never a panic or wrong data.
#[test]
fn damaged_pages_are_corrupted_errors() {
    let (_root, dir) = populated();
    let file = dir.join(DB_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    for p in pages / 2..pages {
        let start = p * page;
        for (i, b) in bytes[start..start + page].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31) ^ 0xA5;
        }
    }
    std::fs::write(&file, &bytes).unwrap();
    match SqliteBackend::open(&dir, options()) {
        Err(OpenError::Corrupted { .. }) => {}
        Err(other) => panic!("expected Corrupted, got {other:?}"),
        Ok(backend) => match backend.engine().range_scan(b"", b"", usize::MAX, true) {
            Err(store_api::EngineError::Storage(e)) => {
                assert_eq!(e.kind(), store_api::StorageErrorKind::Corrupted, "{e}");
            }
            other => panic!("expected a Corrupted storage error, got {other:?}"),
        },
    }
}

/// The schema of version 1 (before checksums), as it was released.
const SCHEMA_V1: &str = include_str!("schema_v1.sql");

/// The context of the `Corrupted` storage error of `result`, or a panic naming what came
/// instead.
fn corrupted_error<T: std::fmt::Debug, E: store_api::StoreError + std::fmt::Debug>(
    result: Result<T, E>,
) -> String {
    match result {
        Err(e) => match e.storage() {
            Some(s) if s.kind() == store_api::StorageErrorKind::Corrupted => s.context().to_owned(),
            _ => panic!("expected a Corrupted storage error, got {e:?}"),
        },
        Ok(v) => panic!("expected a Corrupted storage error, got {v:?}"),
    }
}

/// A version-1 database (written with the old schema, as the released crate wrote it) is
/// read unverified by a read-only open without being changed, upgraded to version 2 by a
/// read-write open, and reads back the same data; rows written after the upgrade carry
/// checksums.
#[test]
fn version_1_database_is_read_and_upgraded() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    open(&dir).close().unwrap();
    let file = dir.join(DB_FILE);
    std::fs::remove_file(&file).unwrap();
    let conn = Connection::open(&file).unwrap();
    conn.pragma_update(None, "application_id", 0x5354_4F52)
        .unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute_batch(
        "INSERT INTO schema_version (id, version, written_by) VALUES (1, 1, 'store-sqlite 0.1.0');
         INSERT INTO engine_kv (key, value) VALUES (x'6b31', x'7631'), (x'6b32', x'');
         INSERT INTO engine_batch_log (seq, idx, op, key, value)
             VALUES (1, 0, 'put', x'6b31', x'7631'), (1, 1, 'put', x'6b32', x'');
         UPDATE engine_meta SET value = 1 WHERE key = 'sequence';
         INSERT INTO state_partitions (id, name) VALUES (1, 'p');
         INSERT INTO state_entries (partition_id, key, value) VALUES (1, x'61', x'62');",
    )
    .unwrap();
    conn.close().unwrap();
    let v1_bytes = std::fs::read(&file).unwrap();

    let check = |backend: &SqliteBackend, sequence: u64| {
        let e = backend.engine();
        assert_eq!(e.current_sequence(), sequence);
        assert_eq!(e.get(b"k1").unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(e.get(b"k2").unwrap().as_deref(), Some(&b""[..]));
        assert!(e.range_scan(b"", b"", 10, true).unwrap().len() >= 2);
        assert_eq!(e.get_batch(1).unwrap().map(|b| b.len()), Some(2));
        let p = backend.state_store("p").unwrap();
        assert_eq!(p.get(b"a").unwrap().as_deref(), Some(&b"b"[..]));
    };
    let read_only = SqliteBackend::open(&dir, options().read_only(true)).unwrap();
    check(&read_only, 1);
    read_only.close().unwrap();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        v1_bytes,
        "a read-only open changed a version-1 database"
    );

    let backend = open(&dir);
    check(&backend, 1);
    backend.engine().put_batch(&[(b"k3", b"v3")]).unwrap();
    backend.close().unwrap();
    let conn = shell(&dir);
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, store_sqlite::SCHEMA_VERSION);
    let crcs: Vec<(Vec<u8>, Option<i64>)> = conn
        .prepare("SELECT key, crc FROM engine_kv ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        crcs[0],
        (b"k1".to_vec(), None),
        "an old row read unverified"
    );
    assert!(
        crcs[2].1.is_some(),
        "a row written after the upgrade has a checksum"
    );
    drop(conn);
    let backend = open(&dir);
    check(&backend, 2);
    assert_eq!(
        backend.engine().get(b"k3").unwrap().as_deref(),
        Some(&b"v3"[..])
    );
}

/// A record changed behind the store's back (its value no longer matching its checksum)
/// is a `Corrupted` error naming the table and the key, on every read path of the engine;
/// a `TEXT` column that is not UTF-8 is `Corrupted` too, not an engine error.
#[test]
fn damaged_records_are_corrupted_errors_naming_table_and_key() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let backend = open(&dir);
    backend
        .engine()
        .put_batch(&[(b"key", b"value"), (b"other", b"fine")])
        .unwrap();
    let l = backend.ledger();
    l.register_asset(&asset("USD")).unwrap();
    let cash = open_account(&*l, "main", "assets:cash", "USD", AccountKind::Asset);
    let sales = open_account(&*l, "main", "income:sales", "USD", AccountKind::Income);
    l.commit(&transfer("main", &cash, &sales, "USD", 5))
        .unwrap();
    backend.close().unwrap();

    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    conn.execute_batch(
        "UPDATE engine_kv SET value = x'76616c7565ff' WHERE key = x'6b6579';
         UPDATE engine_batch_log SET value = x'00' WHERE seq = 1 AND idx = 1;
         UPDATE ledger_postings SET amount = 6 WHERE idx = 0;
         PRAGMA foreign_keys = OFF;
         UPDATE ledger_accounts SET asset = CAST(x'55ff44' AS TEXT) WHERE path = 'income:sales';",
    )
    .unwrap();
    conn.close().unwrap();

    let backend = open(&dir);
    let e = backend.engine();
    for err in [
        corrupted_error(e.get(b"key")),
        corrupted_error(e.get_many(&[b"other", b"key"])),
        corrupted_error(e.range_scan(b"", b"", 10, true)),
    ] {
        assert!(err.contains("engine_kv"), "{err}");
        assert!(err.contains("6b6579"), "names the key: {err}");
    }
    assert_eq!(e.get(b"other").unwrap().as_deref(), Some(&b"fine"[..]));
    let err = corrupted_error(e.get_batch(1));
    assert!(err.contains("engine_batch_log"), "{err}");
    let l = backend.ledger();
    let err = corrupted_error(l.account_history(&cash, 0, 10));
    assert!(err.contains("ledger_postings"), "{err}");
    corrupted_error(l.account(&sales));
}
