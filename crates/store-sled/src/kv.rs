//! The ordered-KV layer of `store-kv` on sled, over the backend's [`Shared`] handle.
//!
//! sled has no read snapshots, so isolation comes from two locks of the handle: a write
//! holds the writer lock for its whole run (writers are serialized, so what a write read
//! stays true until it commits), buffers its puts and deletes in memory (reads of the
//! write see them over the trees), and commits them as one sled transaction (one
//! [`Batch`] when it touched one tree) while it holds the visibility lock exclusively; a
//! read holds that lock shared for its whole run, so it sees every commit whole or not at
//! all. The commit's durability step (the sync round of [`Shared::sync`], or
//! [`Shared::make_durable`] for a durable commit) runs before the visibility lock is
//! released, so a read never sees a write that is not yet durable under `Immediate`.
//! Every read and write checks the write gate first; a failed commit shuts it.
//!
//! Every value is stored with its checksum (`store_kit::checksum`, format 2): a put adds
//! it after the value, every read (`get`, `scan`, `values`, a write's own reads included)
//! verifies it and passes the value on without it.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;
use store_kit::gate::WriteGate;

use bytes::Bytes;
use sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};
use sled::{Batch, IVec, Tree};
use store_api::StorageError;
use store_kit::checksum::{open_value, seal_value};
use store_kv::{Commit, Direction, KeyBounds, KvRead, KvStore, KvWrite, Visit, visit_each};

use crate::{BACKEND_NAME, Shared, from_tx, opened_bytes, storage_error};

/// A sled tree, with its name.
#[derive(Clone)]
pub struct SledTable {
    name: &'static str,
    tree: Tree,
}

impl std::fmt::Debug for SledTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SledTable").field(&self.name).finish()
    }
}

/// A read: the visibility lock is held shared while it runs.
pub struct SledRead {
    context: &'static str,
}

/// A write's puts (`Some`) and deletes (`None`) of one tree, by key.
type Changes = BTreeMap<IVec, Option<IVec>>;

/// One row a scan visits: key and value.
type Row = (IVec, IVec);

/// A write's changes of one tree, in scan order.
type ChangedRows<'c> = Box<dyn Iterator<Item = (&'c IVec, &'c Option<IVec>)> + 'c>;

/// A write: the writer lock is held while it runs; its changes wait in memory until it
/// commits.
pub struct SledWrite {
    changes: Vec<(SledTable, Changes)>,
    context: &'static str,
}

/// Whether `range` holds no key at all (a `BTreeMap` refuses to walk such a range).
fn is_empty_range(range: KeyBounds<'_>) -> bool {
    match range {
        (Bound::Included(lo), Bound::Included(hi)) => lo > hi,
        (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi))
        | (Bound::Excluded(lo), Bound::Included(hi)) => lo >= hi,
        _ => false,
    }
}

fn get_in<T>(
    table: &SledTable,
    key: &[u8],
    context: &'static str,
    decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    match table.tree.get(key).map_err(|e| storage_error(context, e))? {
        Some(stored) => decode(open_value(BACKEND_NAME, table.name, key, &stored)?).map(Some),
        None => Ok(None),
    }
}

/// The stored rows of `tree` in `range`, in `direction`.
fn rows(
    tree: &Tree,
    range: KeyBounds<'_>,
    direction: Direction,
) -> Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>>> {
    let rows = tree.range::<&[u8], _>(range);
    match direction {
        Direction::Forward => Box::new(rows),
        Direction::Backward => Box::new(rows.rev()),
    }
}

fn scan_in<E: From<StorageError>>(
    table: &SledTable,
    range: KeyBounds<'_>,
    direction: Direction,
    context: &'static str,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
) -> Result<(), E> {
    let rows = table.tree.range::<&[u8], _>(range);
    let step = |row: sled::Result<(IVec, IVec)>| -> Result<Visit, E> {
        let (key, stored) = row.map_err(|e| storage_error(context, e))?;
        visit(&key, open_value(BACKEND_NAME, table.name, &key, &stored)?)
    };
    match direction {
        Direction::Forward => visit_each(rows, step),
        Direction::Backward => visit_each(rows.rev(), step),
    }
}

impl KvRead for SledRead {
    type Table = SledTable;

    fn get<T>(
        &self,
        table: &SledTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        get_in(table, key, self.context, decode)
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &SledTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        scan_in(table, range, direction, self.context, visit)
    }

    /// Shares sled's buffer for large values instead of copying them.
    fn values(&self, table: &SledTable, range: KeyBounds<'_>) -> Result<Vec<Bytes>, StorageError> {
        table
            .tree
            .range::<&[u8], _>(range)
            .map(|row| {
                let (key, stored) = row.map_err(|e| storage_error(self.context, e))?;
                opened_bytes(table.name, &key, stored)
            })
            .collect()
    }
}

impl SledWrite {
    /// The changes this write made to `table`, if any.
    fn changes_of(&self, table: &SledTable) -> Option<&Changes> {
        self.changes
            .iter()
            .find(|(t, _)| t.name == table.name)
            .map(|(_, changes)| changes)
    }

    fn changes_of_mut(&mut self, table: &SledTable) -> &mut Changes {
        let index = match self.changes.iter().position(|(t, _)| t.name == table.name) {
            Some(index) => index,
            None => {
                self.changes.push((table.clone(), Changes::new()));
                self.changes.len() - 1
            }
        };
        &mut self.changes[index].1
    }
}

/// The next row of a scan over stored rows with a write's changes laid over them: the
/// nearer key of the two in `direction`, the change winning on equal keys; deleted keys
/// are skipped.
fn merged_next<'c, E: From<StorageError>>(
    stored: &mut Peekable<impl Iterator<Item = sled::Result<(IVec, IVec)>>>,
    changed: &mut Peekable<impl Iterator<Item = (&'c IVec, &'c Option<IVec>)>>,
    direction: Direction,
    context: &'static str,
) -> Result<Option<Row>, E> {
    loop {
        let stored_key = match stored.peek() {
            Some(Ok((key, _))) => Some(key.clone()),
            Some(Err(_)) => {
                if let Some(Err(e)) = stored.next() {
                    return Err(storage_error(context, e).into());
                }
                continue;
            }
            None => None,
        };
        let change_first = match (&stored_key, changed.peek()) {
            (None, None) => return Ok(None),
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(stored_key), Some((changed_key, _))) => match direction {
                Direction::Forward => changed_key.as_ref() <= stored_key.as_ref(),
                Direction::Backward => changed_key.as_ref() >= stored_key.as_ref(),
            },
        };
        if change_first {
            let Some((key, value)) = changed.next() else {
                return Ok(None);
            };
            if stored_key.as_deref() == Some(key.as_ref()) {
                stored.next();
            }
            if let Some(value) = value {
                return Ok(Some((key.clone(), value.clone())));
            }
        } else if let Some(Ok((key, value))) = stored.next() {
            return Ok(Some((key, value)));
        }
    }
}

impl KvRead for SledWrite {
    type Table = SledTable;

    fn get<T>(
        &self,
        table: &SledTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        match self.changes_of(table).and_then(|changes| changes.get(key)) {
            Some(Some(stored)) => {
                decode(open_value(BACKEND_NAME, table.name, key, stored)?).map(Some)
            }
            Some(None) => Ok(None),
            None => get_in(table, key, self.context, decode),
        }
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &SledTable,
        range: KeyBounds<'_>,
        direction: Direction,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        let changes = match self.changes_of(table) {
            Some(changes) if !is_empty_range(range) => changes,
            _ => return scan_in(table, range, direction, self.context, visit),
        };
        let changed = changes.range::<[u8], _>(range);
        let changed: ChangedRows<'_> = match direction {
            Direction::Forward => Box::new(changed),
            Direction::Backward => Box::new(changed.rev()),
        };
        let mut changed = changed.peekable();
        let mut stored = rows(&table.tree, range, direction).peekable();
        while let Some((key, value)) =
            merged_next::<E>(&mut stored, &mut changed, direction, self.context)?
        {
            let value = open_value(BACKEND_NAME, table.name, &key, &value)?;
            if visit(&key, value)?.is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl KvWrite for SledWrite {
    fn put(&mut self, table: &SledTable, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let stored = IVec::from(seal_value(table.name, key, value));
        self.changes_of_mut(table)
            .insert(IVec::from(key), Some(stored));
        Ok(())
    }

    fn delete(&mut self, table: &SledTable, key: &[u8]) -> Result<(), StorageError> {
        self.changes_of_mut(table).insert(IVec::from(key), None);
        Ok(())
    }
}

/// The changes of one tree as a sled batch.
fn batch_of(changes: &Changes) -> Batch {
    let mut batch = Batch::default();
    for (key, value) in changes {
        match value {
            Some(value) => batch.insert(key.clone(), value.clone()),
            None => batch.remove(key.clone()),
        }
    }
    batch
}

impl Shared {
    /// Applies the changes of a write as one atomic step: one batch for one tree, one
    /// transaction over every tree otherwise.
    fn apply(
        &self,
        changes: &[(SledTable, Changes)],
        context: &'static str,
    ) -> Result<(), StorageError> {
        let applied = match changes {
            [] => Ok(()),
            [(table, changes)] => table
                .tree
                .apply_batch(batch_of(changes))
                .map_err(|e| storage_error(context, e)),
            many => {
                let trees: Vec<Tree> = many.iter().map(|(t, _)| t.tree.clone()).collect();
                let batches: Vec<Batch> = many.iter().map(|(_, c)| batch_of(c)).collect();
                trees
                    .as_slice()
                    .transaction(|views: &Vec<TransactionalTree>| {
                        for (view, batch) in views.iter().zip(&batches) {
                            view.apply_batch(batch)?;
                        }
                        Ok::<_, ConflictableTransactionError<StorageError>>(())
                    })
                    .map_err(|e| from_tx(context, e))
            }
        };
        applied.map_err(|e| self.poisoning(e))
    }
}

impl KvStore for Shared {
    type Table = SledTable;
    type Read<'t> = SledRead;
    type Write<'t> = SledWrite;

    const NAME: &'static str = BACKEND_NAME;

    fn gate(&self) -> &WriteGate {
        Shared::gate(self)
    }

    fn table(&self, name: &'static str) -> Result<SledTable, StorageError> {
        Ok(SledTable {
            name,
            tree: self.tree(name)?,
        })
    }

    fn read<T, E: From<StorageError>>(
        &self,
        context: &'static str,
        f: impl FnOnce(&SledRead) -> Result<T, E>,
    ) -> Result<T, E> {
        self.readable()?;
        let _visible = self.kv_visible.read();
        f(&SledRead { context })
    }

    fn write<T, E: From<StorageError>>(
        &self,
        commit: Commit,
        context: &'static str,
        mut f: impl FnMut(&mut SledWrite) -> Result<T, E>,
    ) -> Result<T, E> {
        let _writer = store_kit::lock_wait::lock(&self.kv_writer, "sled writer");
        self.writable()?;
        let mut write = SledWrite {
            changes: Vec::new(),
            context,
        };
        let value = f(&mut write)?;
        if write.changes.is_empty() && commit == Commit::Backend {
            return Ok(value);
        }
        let _visible = self.kv_visible.write();
        self.apply(&write.changes, context)?;
        match commit {
            Commit::Backend => self.sync(context)?,
            Commit::Durable => self.make_durable(context)?,
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use store_api::{Backend, OpenOptions, StorageError};
    use store_kv::{Commit, Direction, KeyBounds, KvRead, KvStore, KvWrite, Visit};

    use super::SledWrite;
    use crate::{Shared, SledBackend};

    fn keys(
        txn: &impl KvRead<Table = super::SledTable>,
        table: &super::SledTable,
        range: KeyBounds<'_>,
        direction: Direction,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        txn.scan(table, range, direction, |key, _| {
            out.push(key.to_vec());
            Ok::<_, StorageError>(Visit::Continue(()))
        })
        .unwrap();
        out
    }

    /// A write reads its own puts and deletes laid over the stored rows, in both
    /// directions, and a range delete removes stored and new keys alike.
    #[test]
    fn a_write_scans_its_own_changes_over_the_stored_rows() {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let dir = tempfile::tempdir().unwrap();
        let backend = SledBackend::open(dir.path(), OpenOptions::default()).unwrap();
        let kv: Arc<Shared> = Arc::clone(&backend.shared);
        let table = kv.table("segment.entries").unwrap();
        kv.write(Commit::Backend, "test", |txn: &mut SledWrite| {
            for key in [b"a", b"c", b"e"] {
                txn.put(&table, key, b"stored")?;
            }
            Ok::<_, StorageError>(())
        })
        .unwrap();
        kv.write(Commit::Backend, "test", |txn: &mut SledWrite| {
            txn.delete(&table, b"c")?;
            txn.put(&table, b"b", b"new")?;
            txn.put(&table, b"e", b"changed")?;
            txn.put(&table, b"f", b"new")?;
            let all = (Unbounded, Unbounded);
            assert_eq!(
                keys(txn, &table, all, Direction::Forward),
                [b"a", b"b", b"e", b"f"]
            );
            assert_eq!(
                keys(txn, &table, all, Direction::Backward),
                [b"f", b"e", b"b", b"a"]
            );
            let inner = (Excluded(&b"a"[..]), Included(&b"e"[..]));
            assert_eq!(keys(txn, &table, inner, Direction::Forward), [b"b", b"e"]);
            assert_eq!(
                txn.get(&table, b"e", |v| Ok(v.to_vec()))?,
                Some(b"changed".to_vec())
            );
            assert_eq!(txn.get(&table, b"c", |v| Ok(v.to_vec()))?, None);
            txn.delete_range(&table, (Included(&b"b"[..]), Excluded(&b"f"[..])))?;
            assert_eq!(keys(txn, &table, all, Direction::Forward), [b"a", b"f"]);
            Ok::<_, StorageError>(())
        })
        .unwrap();
        kv.read("test", |txn| {
            let all = (Unbounded, Unbounded);
            assert_eq!(keys(txn, &table, all, Direction::Forward), [b"a", b"f"]);
            Ok::<_, StorageError>(())
        })
        .unwrap();
    }
}
