//! The ordered-KV layer of `store-kv` on fjall, over the backend's [`Db`]: a table is a
//! fjall keyspace, a read is a fjall snapshot, a write is one transaction of fjall's
//! single-writer transactional database. fjall's write transactions read their own puts
//! and deletes (gets and ranges alike) and commit as one journal batch: atomic, also
//! across a crash.

use std::ops::Bound;

use fjall::{PersistMode, Readable, SingleWriterTxKeyspace, SingleWriterWriteTx, Snapshot};
use store_api::StorageError;
use store_kit::gate::WriteGate;
use store_kv::{
    Commit, Direction, EngineKv, KeyBounds, KvRead, KvStore, KvWrite, Visit, visit_each,
};

use crate::db::Db;
use crate::{BACKEND_NAME, storage};

/// A fjall keyspace of the database.
#[derive(Clone)]
pub struct FjallTable {
    name: &'static str,
    keyspace: SingleWriterTxKeyspace,
}

impl std::fmt::Debug for FjallTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FjallTable").field(&self.name).finish()
    }
}

/// A read transaction: one fjall snapshot.
pub struct FjallRead {
    snapshot: Snapshot,
    context: &'static str,
}

/// A write transaction. fjall holds its single-writer lock for the transaction's life.
pub struct FjallWrite<'t> {
    tx: SingleWriterWriteTx<'t>,
    /// Whether the transaction put or deleted anything (fjall commits nothing otherwise).
    changed: bool,
    context: &'static str,
}

/// Whether `range` can hold no key: its lower bound lies above its upper bound, or they
/// meet at a key one of them excludes. Such a range is answered empty here rather than
/// handed to fjall.
fn is_empty_range((lower, upper): KeyBounds<'_>) -> bool {
    match (lower, upper) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (Bound::Included(low) | Bound::Excluded(low), Bound::Excluded(high))
        | (Bound::Excluded(low), Bound::Included(high)) => low >= high,
        _ => false,
    }
}

fn get_in<T>(
    txn: &impl Readable,
    table: &FjallTable,
    key: &[u8],
    context: &'static str,
    decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    match txn
        .get(&table.keyspace, key)
        .map_err(|e| storage(context, e))?
    {
        Some(value) => decode(&value).map(Some),
        None => Ok(None),
    }
}

fn scan_in<E: From<StorageError>>(
    txn: &impl Readable,
    table: &FjallTable,
    range: KeyBounds<'_>,
    direction: Direction,
    context: &'static str,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
) -> Result<(), E> {
    if is_empty_range(range) {
        return Ok(());
    }
    let rows = txn.range::<&[u8], _>(&table.keyspace, range);
    let step = |row: fjall::Guard| -> Result<Visit, E> {
        let (key, value) = row.into_inner().map_err(|e| storage(context, e))?;
        visit(&key, &value)
    };
    match direction {
        Direction::Forward => visit_each(rows, step),
        Direction::Backward => visit_each(rows.rev(), step),
    }
}

impl KvRead for FjallRead {
    type Table = FjallTable;

    fn get<T>(
        &self,
        table: &FjallTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        get_in(&self.snapshot, table, key, self.context, decode)
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &FjallTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        scan_in(&self.snapshot, table, range, direction, self.context, visit)
    }
}

impl KvRead for FjallWrite<'_> {
    type Table = FjallTable;

    fn get<T>(
        &self,
        table: &FjallTable,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        get_in(&self.tx, table, key, self.context, decode)
    }

    fn scan<E: From<StorageError>>(
        &self,
        table: &FjallTable,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E> {
        scan_in(&self.tx, table, range, direction, self.context, visit)
    }
}

impl KvWrite for FjallWrite<'_> {
    fn put(&mut self, table: &FjallTable, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.tx.insert(&table.keyspace, key, value);
        self.changed = true;
        Ok(())
    }

    fn delete(&mut self, table: &FjallTable, key: &[u8]) -> Result<(), StorageError> {
        self.tx.remove(&table.keyspace, key);
        self.changed = true;
        Ok(())
    }
}

impl KvStore for Db {
    type Table = FjallTable;
    type Read<'t> = FjallRead;
    type Write<'t> = FjallWrite<'t>;

    const NAME: &'static str = BACKEND_NAME;

    fn gate(&self) -> &WriteGate {
        Db::gate(self)
    }

    fn table(&self, name: &'static str) -> Result<FjallTable, StorageError> {
        Ok(FjallTable {
            name,
            keyspace: self.keyspace(name)?,
        })
    }

    fn read<T, E: From<StorageError>>(
        &self,
        context: &'static str,
        f: impl FnOnce(&FjallRead) -> Result<T, E>,
    ) -> Result<T, E> {
        self.gate().check_open()?;
        f(&FjallRead {
            snapshot: self.fjall.read_tx(),
            context,
        })
    }

    /// Runs `f` once: fjall never asks for a retry. The commit writes the transaction to
    /// the journal as one batch, synced as `commit` and the durability mode ask; a failed
    /// journal write or sync poisons fjall and shuts the gate.
    fn write<T, E: From<StorageError>>(
        &self,
        commit: Commit,
        context: &'static str,
        mut f: impl FnMut(&mut FjallWrite<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mode = match commit {
            Commit::Backend => self.persist_mode(),
            Commit::Durable => PersistMode::SyncAll,
        };
        let tx = self.fjall.write_tx().durability(Some(mode));
        self.gate().check()?;
        let mut write = FjallWrite {
            tx,
            changed: false,
            context,
        };
        let value = f(&mut write)?;
        let changed = write.changed;
        write
            .tx
            .commit()
            .map_err(|e| self.observe(storage(context, e)))?;
        // A durable commit that wrote nothing still promises every earlier write durable.
        if !changed && commit == Commit::Durable {
            self.sync(context)?;
        }
        Ok(value)
    }
}

/// The engine store runs on this layer as it is: a batch is one write transaction (one
/// journal batch), a point read one snapshot.
impl EngineKv for Db {}
