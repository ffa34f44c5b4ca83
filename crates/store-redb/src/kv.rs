//! The ordered-KV layer of `store-kv` on redb, over the backend's [`Db`]: a read is one
//! redb read transaction (an MVCC snapshot), a write one redb write transaction begun by
//! [`Db::begin_write`] (so the durability mode and the relaxed sync interval stay there).
//! A write that changed nothing is aborted instead of committed, unless it must be
//! durable. Each transaction opens a table once and keeps it open until it ends.

use std::cell::RefCell;
use std::rc::Rc;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition};
use store_api::StorageError;
use store_kv::{Commit, Direction, KeyBounds, KvRead, KvStore, KvWrite, Visit};

use crate::BACKEND_NAME;
use crate::db::{Context, Db, RangeEntry, WriteTable, WriteTxn};
use crate::tables::Bytes2Bytes;

/// A redb table, by name: every table of this backend maps bytes to bytes.
#[derive(Debug, Clone, Copy)]
pub struct RedbTable(&'static str);

impl RedbTable {
    fn definition(self) -> Bytes2Bytes {
        TableDefinition::new(self.0)
    }
}

/// The tables a transaction opened, by name: `T` is redb's table type of the transaction.
type OpenTables<T> = RefCell<Vec<(&'static str, T)>>;

/// A table of a read transaction.
type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A read transaction: redb's, with the tables it opened (shared, so a visitor may read
/// another table while a scan runs).
pub struct RedbRead {
    txn: ReadTransaction,
    open: OpenTables<Rc<ReadTable>>,
    context: &'static str,
}

/// A write transaction: redb's, with the tables it opened and whether it changed anything.
pub struct RedbWrite<'t> {
    txn: &'t WriteTxn<'t>,
    open: OpenTables<WriteTable<'t>>,
    changed: bool,
    context: &'static str,
}

/// Visits the rows of a redb range in `direction`.
fn visit_rows<'a, E: From<StorageError>>(
    rows: impl DoubleEndedIterator<Item = RangeEntry<'a>>,
    direction: Direction,
    context: &'static str,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
) -> Result<(), E> {
    let mut step = |row: RangeEntry<'a>| -> Result<Visit, E> {
        let (key, value) = row.ctx(context)?;
        visit(key.value(), value.value())
    };
    match direction {
        Direction::Forward => {
            for row in rows {
                if step(row)?.is_break() {
                    break;
                }
            }
        }
        Direction::Backward => {
            for row in rows.rev() {
                if step(row)?.is_break() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Runs `f` on `table`, opened once per transaction by `open_table`. While the transaction's
/// list of open tables is in use (a visitor reading again), the table is opened afresh.
fn with_open<T, R>(
    open: &OpenTables<T>,
    table: RedbTable,
    open_table: impl Fn() -> Result<T, StorageError>,
    f: impl FnOnce(&mut T) -> R,
) -> Result<R, StorageError> {
    let Ok(mut tables) = open.try_borrow_mut() else {
        return Ok(f(&mut open_table()?));
    };
    let index = match tables.iter().position(|(name, _)| *name == table.0) {
        Some(index) => index,
        None => {
            tables.push((table.0, open_table()?));
            tables.len() - 1
        }
    };
    match tables.get_mut(index) {
        Some((_, opened)) => Ok(f(opened)),
        None => Ok(f(&mut open_table()?)),
    }
}

fn get_in<T>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
    context: &'static str,
    decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    match table.get(key).ctx(context)? {
        Some(value) => decode(value.value()).map(Some),
        None => Ok(None),
    }
}

fn scan_in<E: From<StorageError>>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    range: KeyBounds<'_>,
    direction: Direction,
    context: &'static str,
    visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
) -> Result<(), E> {
    let rows = table.range::<&[u8]>(range).ctx(context)?;
    visit_rows(rows, direction, context, visit)
}

impl RedbRead {
    /// `table`, opened once per transaction.
    fn table(&self, table: RedbTable) -> Result<Rc<ReadTable>, StorageError> {
        let open = || {
            let opened = self.txn.open_table(table.definition()).ctx(self.context)?;
            Ok(Rc::new(opened))
        };
        with_open(&self.open, table, open, |opened| Rc::clone(opened))
    }
}

impl KvRead for RedbRead {
    type Table = RedbTable;

    fn get<T>(
        &self,
        table: &RedbTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        get_in(&*self.table(*table)?, key, self.context, decode)
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &RedbTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        scan_in(&*self.table(*table)?, range, direction, self.context, visit)
    }
}

impl KvRead for RedbWrite<'_> {
    type Table = RedbTable;

    fn get<T>(
        &self,
        table: &RedbTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        let open = || self.txn.table(table.definition(), self.context);
        with_open(&self.open, *table, open, |t| {
            get_in(t, key, self.context, decode)
        })?
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &RedbTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        let open = || self.txn.table(table.definition(), self.context);
        with_open(&self.open, *table, open, |t| {
            scan_in(t, range, direction, self.context, visit)
        })?
    }
}

impl KvWrite for RedbWrite<'_> {
    fn put(&mut self, table: &RedbTable, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.changed = true;
        let open = || self.txn.table(table.definition(), self.context);
        with_open(&self.open, *table, open, |t| {
            t.insert(key, value).map(drop).ctx(self.context)
        })?
    }

    fn delete(&mut self, table: &RedbTable, key: &[u8]) -> Result<(), StorageError> {
        self.changed = true;
        let open = || self.txn.table(table.definition(), self.context);
        with_open(&self.open, *table, open, |t| {
            t.remove(key).map(drop).ctx(self.context)
        })?
    }

    fn delete_range(
        &mut self,
        table: &RedbTable,
        range: KeyBounds<'_>,
    ) -> Result<(), StorageError> {
        self.changed = true;
        let open = || self.txn.table(table.definition(), self.context);
        with_open(&self.open, *table, open, |t| {
            t.retain_in::<&[u8], _>(range, |_, _| false)
                .ctx(self.context)
        })?
    }
}

impl KvStore for Db {
    type Table = RedbTable;
    type Read<'t> = RedbRead;
    type Write<'t> = RedbWrite<'t>;

    const NAME: &'static str = BACKEND_NAME;

    fn table(&self, name: &'static str) -> Result<RedbTable, StorageError> {
        Ok(RedbTable(name))
    }

    fn read<T, E: From<StorageError>>(
        &self,
        context: &'static str,
        f: impl FnOnce(&RedbRead) -> Result<T, E>,
    ) -> Result<T, E> {
        let read = RedbRead {
            txn: self.begin_read(context)?,
            open: RefCell::new(Vec::new()),
            context,
        };
        f(&read)
    }

    fn write<T, E: From<StorageError>>(
        &self,
        commit: Commit,
        context: &'static str,
        mut f: impl FnMut(&mut RedbWrite<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = match commit {
            Commit::Backend => self.begin_write(context)?,
            Commit::Durable => self.begin_durable_write(context)?,
        };
        let mut write = RedbWrite {
            txn: &txn,
            open: RefCell::new(Vec::new()),
            changed: false,
            context,
        };
        // An error drops the transaction unfinished: redb aborts it.
        let value = f(&mut write)?;
        let changed = write.changed;
        drop(write);
        if changed || commit == Commit::Durable {
            txn.commit(context)?;
        }
        Ok(value)
    }
}
