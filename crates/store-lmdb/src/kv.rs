//! The ordered-KV layer of `store-kv` on LMDB, over the backend's [`Db`]: a read is one
//! LMDB read transaction, a write one write transaction under the backend's writer lock,
//! run through [`Writer::attempt`](crate::tables::Writer::attempt), so map growth (the
//! write is run again on a doubled map) and the write gate stay there. A durable commit
//! under `Relaxed` forces the meta-page sync LMDB skipped.
//!
//! Every value is stored with its checksum (`store_kit::checksum`, format 2): a put writes
//! it after the value, a read verifies it over the slice LMDB hands out and passes the
//! value on without the trailer, still without copying.

use std::ops::Bound;
use store_kit::checksum::Framing;
use store_kit::gate::WriteGate;

use heed::{MdbError, PutFlags, RoTxn, RwTxn};
use store_api::{Durability, StorageError};
use store_kv::{Commit, Direction, KeyBounds, KvRead, KvStore, KvWrite, Visit, visit_each};

use crate::tables::{Abort, Db, Table, put_record};
use crate::{BACKEND_NAME, HeedExt, kind_of};

/// A named LMDB database of the environment, with how its records are laid out.
#[derive(Clone, Copy)]
pub struct LmdbTable {
    name: &'static str,
    db: Table<'static>,
    framing: Framing,
}

impl std::fmt::Debug for LmdbTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LmdbTable").field(&self.name).finish()
    }
}

/// A read transaction.
pub struct LmdbRead<'t> {
    txn: &'t RoTxn<'t>,
    context: &'static str,
}

/// A write transaction, with the first LMDB failure of its writes: that one decides what
/// the writer does (grow the map and run again, or shut the gate), whatever the store's
/// closure made of it.
pub struct LmdbWrite<'t> {
    txn: RwTxn<'t>,
    failed: Option<heed::Error>,
    context: &'static str,
}

/// LMDB refuses an empty key, even to seek with; no key is empty, so a bound at the empty
/// key is the same as none. `None` when the range can hold no key.
fn lmdb_range(range: KeyBounds<'_>) -> Option<KeyBounds<'_>> {
    let (lower, upper) = range;
    let lower = match lower {
        Bound::Included([]) | Bound::Excluded([]) => Bound::Unbounded,
        other => other,
    };
    match upper {
        Bound::Included([]) | Bound::Excluded([]) => None,
        upper => Some((lower, upper)),
    }
}

fn get_in<T>(
    txn: &RoTxn<'_>,
    table: &LmdbTable,
    key: &[u8],
    context: &'static str,
    decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    match table.db.get(txn, key).ctx(context)? {
        Some(stored) => {
            decode(table.framing.open(BACKEND_NAME, table.name, key, stored)?).map(Some)
        }
        None => Ok(None),
    }
}

fn scan_in<E: From<StorageError>>(
    txn: &RoTxn<'_>,
    table: &LmdbTable,
    range: KeyBounds<'_>,
    direction: Direction,
    context: &'static str,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
) -> Result<(), E> {
    let Some(range) = lmdb_range(range) else {
        return Ok(());
    };
    let step = |row: heed::Result<(&[u8], &[u8])>| -> Result<Visit, E> {
        let (key, stored) = row.ctx(context)?;
        visit(
            key,
            table.framing.open(BACKEND_NAME, table.name, key, stored)?,
        )
    };
    match direction {
        Direction::Forward => visit_each(table.db.range(txn, &range).ctx(context)?, step),
        Direction::Backward => visit_each(table.db.rev_range(txn, &range).ctx(context)?, step),
    }
}

impl KvRead for LmdbRead<'_> {
    type Table = LmdbTable;

    fn get<T>(
        &self,
        table: &LmdbTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        get_in(self.txn, table, key, self.context, decode)
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &LmdbTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        scan_in(self.txn, table, range, direction, self.context, visit)
    }
}

impl KvRead for LmdbWrite<'_> {
    type Table = LmdbTable;

    fn get<T>(
        &self,
        table: &LmdbTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        get_in(&self.txn, table, key, self.context, decode)
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &LmdbTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        scan_in(&self.txn, table, range, direction, self.context, visit)
    }
}

impl LmdbWrite<'_> {
    /// Keeps the first failure of a write for the writer and reports it to the store.
    fn failure(&mut self, error: heed::Error) -> StorageError {
        let reported = StorageError::without_source(
            BACKEND_NAME,
            kind_of(&error),
            format!("{}: {error}", self.context),
        );
        self.failed.get_or_insert(error);
        reported
    }
}

impl KvWrite for LmdbWrite<'_> {
    fn put(&mut self, table: &LmdbTable, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        put_record(
            &table.db,
            &mut self.txn,
            table.framing,
            table.name,
            key,
            value,
        )
        .map_err(|e| self.failure(e))
    }

    fn delete(&mut self, table: &LmdbTable, key: &[u8]) -> Result<(), StorageError> {
        match table.db.delete(&mut self.txn, key) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// LMDB refuses an append below the table's last key with `MDB_KEYEXIST`, changing
    /// nothing.
    fn append(
        &mut self,
        table: &LmdbTable,
        key: &[u8],
        value: &[u8],
    ) -> Result<bool, StorageError> {
        let stored = table.framing.seal(table.name, key, value);
        match table
            .db
            .put_with_flags(&mut self.txn, PutFlags::APPEND, key, &stored)
        {
            Ok(()) => Ok(true),
            Err(heed::Error::Mdb(MdbError::KeyExist)) => Ok(false),
            Err(e) => Err(self.failure(e)),
        }
    }

    fn delete_range(
        &mut self,
        table: &LmdbTable,
        range: KeyBounds<'_>,
    ) -> Result<u64, StorageError> {
        let Some(range) = lmdb_range(range) else {
            return Ok(0);
        };
        match table.db.delete_range(&mut self.txn, &range) {
            Ok(removed) => Ok(removed as u64),
            Err(e) => Err(self.failure(e)),
        }
    }
}

impl KvStore for Db {
    type Table = LmdbTable;
    type Read<'t> = LmdbRead<'t>;
    type Write<'t> = LmdbWrite<'t>;

    const NAME: &'static str = BACKEND_NAME;

    fn gate(&self) -> &WriteGate {
        Db::gate(self)
    }

    fn table(&self, name: &'static str) -> Result<LmdbTable, StorageError> {
        match self.tables().named(name) {
            Some(db) => Ok(LmdbTable {
                name,
                db,
                framing: self.framing(),
            }),
            None => Err(StorageError::corrupted(
                BACKEND_NAME,
                format!("the environment has no database named {name:?}"),
            )),
        }
    }

    fn read<T, E: From<StorageError>>(
        &self,
        context: &'static str,
        f: impl FnOnce(&LmdbRead<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.read(context, |txn, _| f(&LmdbRead { txn, context }))
    }

    fn write<T, E: From<StorageError>>(
        &self,
        commit: Commit,
        context: &'static str,
        mut f: impl FnMut(&mut LmdbWrite<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let value = self.writer().attempt(context, |txn| {
            let mut write = LmdbWrite {
                txn,
                failed: None,
                context,
            };
            let outcome = f(&mut write);
            if let Some(engine) = write.failed {
                return Err(Abort::Engine(engine));
            }
            let value = outcome.map_err(Abort::Fail)?;
            write.txn.commit()?;
            Ok(value)
        })?;
        // Under `Relaxed` the commit skipped the meta-page sync: force it for a durable one.
        if commit == Commit::Durable && self.durability() == Durability::Relaxed {
            self.sync(context)?;
        }
        Ok(value)
    }
}
