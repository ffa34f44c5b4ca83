//! Unit tests of the fjall glue: what the conformance suite cannot see from outside.

use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::Arc;

use store_api::{Backend, Durability, OpenOptions, StorageError, StoreEngine};
use store_kv::{Commit, Direction, KeyBounds, KvRead, KvStore, KvWrite, Visit};

use crate::db::{Db, OPEN_BACKUP_DIR};
use crate::kv::FjallTable;
use crate::{FJALL_SUBDIR, FjallBackend};

fn keys(
    txn: &impl KvRead<Table = FjallTable>,
    table: &FjallTable,
    range: KeyBounds<'_>,
    direction: Direction,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let mut out = Vec::new();
    txn.scan(table, range, direction, |key, _| {
        out.push(key.to_vec());
        Ok::<_, StorageError>(Visit::Continue(()))
    })?;
    Ok(out)
}

/// A write reads its own puts and deletes laid over the stored rows, in both directions,
/// and a range delete removes stored and new keys alike; a read afterwards sees the
/// committed result.
#[test]
fn a_write_scans_its_own_changes_over_the_stored_rows() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = FjallBackend::open(dir.path(), OpenOptions::default())?;
    let kv: Arc<Db> = Arc::clone(&backend.db);
    let table = kv.table("segment.entries")?;
    let all = (Unbounded, Unbounded);
    kv.write(Commit::Backend, "test", |txn| {
        for key in [b"a", b"c", b"e"] {
            txn.put(&table, key, b"stored")?;
        }
        Ok::<_, StorageError>(())
    })?;
    kv.write(Commit::Backend, "test", |txn| {
        txn.delete(&table, b"c")?;
        txn.put(&table, b"b", b"new")?;
        txn.put(&table, b"e", b"changed")?;
        txn.put(&table, b"f", b"new")?;
        assert_eq!(
            keys(txn, &table, all, Direction::Forward)?,
            [b"a", b"b", b"e", b"f"]
        );
        assert_eq!(
            keys(txn, &table, all, Direction::Backward)?,
            [b"f", b"e", b"b", b"a"]
        );
        let inner = (Excluded(&b"a"[..]), Included(&b"e"[..]));
        assert_eq!(keys(txn, &table, inner, Direction::Forward)?, [b"b", b"e"]);
        assert_eq!(
            txn.get(&table, b"e", |v| Ok(v.to_vec()))?,
            Some(b"changed".to_vec())
        );
        assert_eq!(txn.get(&table, b"c", |v| Ok(v.to_vec()))?, None);
        txn.delete_range(&table, (Included(&b"b"[..]), Excluded(&b"f"[..])))?;
        assert_eq!(keys(txn, &table, all, Direction::Forward)?, [b"a", b"f"]);
        Ok::<_, StorageError>(())
    })?;
    let seen = kv.read("test", |txn| keys(txn, &table, all, Direction::Forward))?;
    assert_eq!(seen, [b"a", b"f"]);
    Ok(())
}

/// Ranges that can hold no key (inverted, or meeting at an excluded key) are answered
/// empty, in both directions, whatever is stored.
#[test]
fn ranges_holding_no_key_scan_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = FjallBackend::open(dir.path(), OpenOptions::default())?;
    let kv: Arc<Db> = Arc::clone(&backend.db);
    let table = kv.table("segment.entries")?;
    kv.write(Commit::Backend, "test", |txn| {
        for key in [b"a", b"b", b"c"] {
            txn.put(&table, key, b"v")?;
        }
        Ok::<_, StorageError>(())
    })?;
    let empty: [KeyBounds<'_>; 3] = [
        (Included(&b"c"[..]), Included(&b"a"[..])),
        (Included(&b"b"[..]), Excluded(&b"b"[..])),
        (Excluded(&b"b"[..]), Included(&b"b"[..])),
    ];
    for range in empty {
        for direction in [Direction::Forward, Direction::Backward] {
            let seen = kv.read("test", |txn| keys(txn, &table, range, direction))?;
            assert!(seen.is_empty(), "{range:?} {direction:?}: {seen:?}");
        }
    }
    let point = (Included(&b"b"[..]), Included(&b"b"[..]));
    let seen = kv.read("test", |txn| keys(txn, &table, point, Direction::Backward))?;
    assert_eq!(seen, [b"b"]);
    Ok(())
}

/// The durability modes map to fjall's persist modes, and under `Relaxed` a clean close
/// (dropping the backend) still loses nothing.
#[test]
fn relaxed_writes_survive_a_clean_close() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let relaxed = OpenOptions {
        durability: Durability::Relaxed,
        ..OpenOptions::default()
    };
    let backend = FjallBackend::open(dir.path(), relaxed.clone())?;
    assert_eq!(backend.db.persist_mode(), fjall::PersistMode::Buffer);
    assert_eq!(backend.durability(), Durability::Relaxed);
    for i in 0u32..100 {
        backend.engine().put_batch(&[(&i.to_be_bytes(), b"v")])?;
    }
    drop(backend);
    let backend = FjallBackend::open(dir.path(), OpenOptions::default())?;
    assert_eq!(backend.db.persist_mode(), fjall::PersistMode::SyncAll);
    assert_eq!(backend.engine().current_sequence(), 100);
    assert_eq!(
        backend.engine().get(&99u32.to_be_bytes())?.as_deref(),
        Some(&b"v"[..])
    );
    Ok(())
}

/// An open leaves no backup links behind, and a stale backup directory (from an open
/// whose process died) is replaced, not taken for data.
#[test]
fn an_open_leaves_no_backup_links() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = FjallBackend::open(dir.path(), OpenOptions::default())?;
    backend.engine().put_batch(&[(b"k", b"v")])?;
    drop(backend);
    assert!(!dir.path().join(OPEN_BACKUP_DIR).exists());
    std::fs::create_dir_all(dir.path().join(OPEN_BACKUP_DIR).join("stale"))?;
    let backend = FjallBackend::open(dir.path(), OpenOptions::default())?;
    assert!(!dir.path().join(OPEN_BACKUP_DIR).exists());
    assert!(dir.path().join(FJALL_SUBDIR).is_dir());
    assert_eq!(backend.engine().get(b"k")?.as_deref(), Some(&b"v"[..]));
    Ok(())
}
