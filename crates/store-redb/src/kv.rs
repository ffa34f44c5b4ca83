//! The ordered-KV layer of `store-kv` on redb, over the backend's [`Db`]: a read is one
//! redb read transaction (an MVCC snapshot), a write one redb write transaction begun by
//! [`Db::begin_write`] (so the durability mode and the relaxed sync interval stay there).
//! A write that changed nothing is aborted instead of committed, unless it must be
//! durable. Each transaction opens a table once and keeps it open until it ends.

use std::cell::RefCell;
use store_kit::gate::WriteGate;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition};
use store_api::StorageError;
use store_kv::{Commit, Direction, KeyBounds, KvRead, KvStore, KvWrite, Visit, visit_each};

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

/// How many tables a transaction keeps open (the ledger uses eight at once).
const OPEN_SLOTS: usize = 8;

/// The tables a transaction opened, by name, held inline (a transaction allocates nothing
/// for them): `T` is redb's table type of the transaction.
type OpenTables<T> = RefCell<[Option<(&'static str, T)>; OPEN_SLOTS]>;

fn no_open_tables<T>() -> OpenTables<T> {
    RefCell::new(std::array::from_fn(|_| None))
}

/// A table of a read transaction.
type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A read transaction: redb's, with the tables it opened.
pub struct RedbRead {
    txn: ReadTransaction,
    open: OpenTables<ReadTable>,
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
    let step = |row: RangeEntry<'a>| -> Result<Visit, E> {
        let (key, value) = row.ctx(context)?;
        visit(key.value(), value.value())
    };
    match direction {
        Direction::Forward => visit_each(rows, step),
        Direction::Backward => visit_each(rows.rev(), step),
    }
}

/// Runs `f` on `table`, opened once per transaction by `open_table`. While the
/// transaction's open tables are in use (a visitor reading during a scan), or when every
/// slot is taken, the table is opened afresh for this call.
fn with_open<T, R>(
    open: &OpenTables<T>,
    table: RedbTable,
    open_table: impl Fn() -> Result<T, StorageError>,
    f: impl FnOnce(&mut T) -> R,
) -> Result<R, StorageError> {
    let Ok(mut slots) = open.try_borrow_mut() else {
        return Ok(f(&mut open_table()?));
    };
    let mut free = None;
    for (index, slot) in slots.iter_mut().enumerate() {
        match slot {
            Some((name, opened)) if *name == table.0 => return Ok(f(opened)),
            None if free.is_none() => free = Some(index),
            _ => {}
        }
    }
    match free.and_then(|index| slots.get_mut(index)) {
        Some(slot) => {
            let (_, opened) = slot.insert((table.0, open_table()?));
            Ok(f(opened))
        }
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

impl KvRead for RedbRead {
    type Table = RedbTable;

    fn get<T>(
        &self,
        table: &RedbTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        let open = || self.txn.open_table(table.definition()).ctx(self.context);
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
        let open = || self.txn.open_table(table.definition()).ctx(self.context);
        with_open(&self.open, *table, open, |t| {
            scan_in(t, range, direction, self.context, visit)
        })?
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
    ) -> Result<u64, StorageError> {
        self.changed = true;
        let mut removed = 0u64;
        let open = || self.txn.table(table.definition(), self.context);
        with_open(&self.open, *table, open, |t| {
            t.retain_in::<&[u8], _>(range, |_, _| {
                removed += 1;
                false
            })
            .ctx(self.context)
        })??;
        Ok(removed)
    }
}

impl KvStore for Db {
    type Table = RedbTable;
    type Read<'t> = RedbRead;
    type Write<'t> = RedbWrite<'t>;

    const NAME: &'static str = BACKEND_NAME;

    fn gate(&self) -> &WriteGate {
        Db::gate(self)
    }

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
            open: no_open_tables(),
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
            open: no_open_tables(),
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
