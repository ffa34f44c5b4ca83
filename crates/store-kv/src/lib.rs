//! One ordered key-value layer under the stores of `store-api`.
//!
//! The embedded engines (redb, LMDB, sled) all offer the same thing: named tables of byte
//! keys in byte order, read transactions that see one consistent state, and write
//! transactions that land whole or not at all. [`KvStore`] is that shape and nothing more;
//! the stores written once above it ([`KvPartitions`], [`KvLedger`], [`KvSideEffects`],
//! [`KvSegmentLog`]) hold every rule,
//! key encoding and record format, so a backend crate only says how its engine begins,
//! reads, writes and commits a transaction.
//!
//! The design follows the transaction traits of SurrealDB's `kvs` and TiKV's
//! `engine_traits`, cut to what the stores use, with one change: a write is a closure that
//! the engine may run again ([`KvStore::write`]), as FoundationDB's `run` does, because
//! LMDB must abort, grow its memory map and start over when the map fills.
//!
//! # Invariants every implementation keeps
//!
//! - **Tables.** A table is a named keyspace of byte keys and byte values, ordered by
//!   unsigned byte comparison. Tables never share keys. An empty key is never stored.
//! - **A read** ([`KvStore::read`]) sees one committed state of every table for its whole
//!   closure: every write transaction committed before it began, none committed after,
//!   and never part of one.
//! - **A write** ([`KvStore::write`]) runs its closure with no other write transaction of
//!   the same store running (writers are serialized), so what it reads stays true until it
//!   commits; it sees its own puts and deletes. When the closure returns `Ok` the
//!   transaction commits: every put and delete becomes visible at once to later reads,
//!   or, when the commit fails, none does and the error is returned. When the closure
//!   returns `Err` nothing of it is written. A transaction that put and deleted nothing
//!   may commit nothing (no `fsync`).
//! - **Retries.** The closure may run more than once (after the engine grew its storage,
//!   say); every run starts from a fresh transaction, so it must keep no effect of an
//!   earlier run outside the transaction.
//! - **Durability.** With [`Commit::Backend`] a commit is as durable as the backend's
//!   [`Durability`](store_api::Durability) mode says (each backend documents what a crash
//!   can lose under `Relaxed`); with [`Commit::Durable`] it is durable when `write`
//!   returns, together with every commit before it, whatever the mode. Under any mode a
//!   crash keeps a prefix of the commit history: never part of a transaction.
//! - **Failures.** Engine errors are [`StorageError`]s naming the backend; a failed write
//!   that leaves the engine's state in doubt shuts the backend's write gate (the backend's
//!   database handle decides: later writes answer `Poisoned`).
//! - **No nesting.** A closure must not begin another transaction of the same store: the
//!   engines' locks are not reentrant.

mod engine;
mod ledger;
mod listing;
mod segment;
mod side_effect;
mod state;

use std::fmt::Debug;
use std::ops::{Bound, ControlFlow};

use bytes::Bytes;
use store_api::StorageError;
use store_kit::engine::SCAN_PREALLOC;

pub use engine::{
    BatchWrites, ENGINE_TABLES, EngineBatch, EngineHandles, EngineKv, EngineTables, KvEngine,
    decode_sequence,
};
pub use ledger::{KvLedger, LEDGER_TABLES, LedgerTables};
pub use segment::{KvSegmentLog, SEGMENT_TABLES, SegmentTables};
pub use side_effect::{KvSideEffects, SIDE_EFFECT_TABLES, SideEffectTables};
pub use state::{KvPartition, KvPartitions, StateTables};

/// A range of keys: the lower and the upper bound, each included, excluded or unbounded.
pub type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The order a scan visits keys in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Backward,
}

/// How durable a write's commit must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// As the backend's durability mode says.
    Backend,
    /// Durable when the write returns, together with every earlier commit (a state
    /// partition's `flush`), whatever the mode.
    Durable,
}

/// What a scan's visitor says after each row: go on, or stop here.
pub type Visit = ControlFlow<()>;

/// Passes `rows` (an engine's range, already in the scan's direction) to `step` until it
/// says stop or fails: the loop of every engine's [`KvRead::scan`].
pub fn visit_each<R, E>(
    rows: impl IntoIterator<Item = R>,
    mut step: impl FnMut(R) -> Result<Visit, E>,
) -> Result<(), E> {
    for row in rows {
        if step(row)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// An engine with ordered tables and transactions: the whole interface the stores of this
/// crate need. Implementations live in the backend crates, on their database handle, so
/// their write gate and lifecycle checks stay in one place per backend.
pub trait KvStore: Debug + Send + Sync + 'static {
    /// A resolved table: a handle the engine opens cheaply in each transaction. Stores drop
    /// their tables before their handle on the engine (an engine may keep its files open
    /// while a table handle lives).
    type Table: Clone + Debug + Send + Sync;
    /// A read transaction.
    type Read<'t>: KvRead<Table = Self::Table>;
    /// A write transaction.
    type Write<'t>: KvWrite<Table = Self::Table>;

    /// The backend's name, in errors.
    const NAME: &'static str;

    /// The table called `name`, created when the database was made.
    fn table(&self, name: &'static str) -> Result<Self::Table, StorageError>;

    /// The backend's gate: whether it is open, read-only or poisoned. The stores above
    /// check it where a call never reaches the engine (a state partition's in-memory
    /// reads and writes).
    fn gate(&self) -> &store_kit::gate::WriteGate;

    /// Runs `f` in one read transaction (see the crate docs for what it sees); `context`
    /// names what the caller is doing, for errors.
    fn read<T, E: From<StorageError>>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Self::Read<'_>) -> Result<T, E>,
    ) -> Result<T, E>;

    /// Runs `f` in one write transaction and commits it as `commit` asks when `f` returns
    /// `Ok`; aborts it when `f` returns `Err`. `f` may be run more than once.
    fn write<T, E: From<StorageError>>(
        &self,
        commit: Commit,
        context: &'static str,
        f: impl FnMut(&mut Self::Write<'_>) -> Result<T, E>,
    ) -> Result<T, E>;
}

/// The reads of a transaction, read or write.
pub trait KvRead {
    /// The engine's table handle.
    type Table;

    /// The value at `key` in `table`, passed to `decode` without copying it out first.
    fn get<T>(
        &self,
        table: &Self::Table,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError>;

    /// Visits the rows of `table` whose keys lie in `range`, in `direction`, until `visit`
    /// says stop or fails (its error is returned).
    fn scan<E: From<StorageError>>(
        &self,
        table: &Self::Table,
        range: KeyBounds<'_>,
        direction: Direction,
        visit: impl FnMut(&[u8], &[u8]) -> Result<Visit, E>,
    ) -> Result<(), E>;

    /// The values of the rows of `table` in `range`, ascending, as [`Bytes`]. The default
    /// copies each value; an engine that can share its buffers overrides it.
    fn values(
        &self,
        table: &Self::Table,
        range: KeyBounds<'_>,
    ) -> Result<Vec<Bytes>, StorageError> {
        let mut out = Vec::new();
        self.scan(table, range, Direction::Forward, |_, value| {
            out.push(Bytes::copy_from_slice(value));
            Ok::<_, StorageError>(Visit::Continue(()))
        })?;
        Ok(out)
    }

    /// The value at `key` in `table`, copied out as [`Bytes`]. The default copies it; an
    /// engine that can share its buffers overrides it.
    #[inline]
    fn get_bytes(&self, table: &Self::Table, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.get(table, key, |value| Ok(Bytes::copy_from_slice(value)))
    }

    /// The first `limit` rows of `table` in `range`, in `direction`, as [`Bytes`]. The
    /// default copies each key and value; an engine that can share its buffers overrides
    /// it.
    fn rows(
        &self,
        table: &Self::Table,
        range: KeyBounds<'_>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
        let mut rows = Vec::with_capacity(limit.min(SCAN_PREALLOC));
        if limit == 0 {
            return Ok(rows);
        }
        self.scan(table, range, direction, |key, value| {
            rows.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
            Ok::<_, StorageError>(if rows.len() < limit {
                Visit::Continue(())
            } else {
                Visit::Break(())
            })
        })?;
        Ok(rows)
    }
}

/// The writes of a write transaction; it reads what it wrote.
pub trait KvWrite: KvRead {
    /// Stores `value` at `key` in `table`, replacing what was there.
    fn put(&mut self, table: &Self::Table, key: &[u8], value: &[u8]) -> Result<(), StorageError>;

    /// Removes `key` from `table`, if it is there.
    fn delete(&mut self, table: &Self::Table, key: &[u8]) -> Result<(), StorageError>;

    /// Stores at `key` a value of `len` bytes that `write` fills in, like
    /// [`put`](Self::put). The default fills a buffer, then puts it; an engine that can
    /// reserve the space in its page (redb's `insert_reserve`, LMDB's `MDB_RESERVE`)
    /// overrides it. `write` must fill all `len` bytes.
    #[inline]
    fn put_reserved(
        &mut self,
        table: &Self::Table,
        key: &[u8],
        len: usize,
        write: impl FnOnce(&mut [u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut value = vec![0; len];
        write(&mut value)?;
        self.put(table, key, &value)
    }

    /// Stores `value` at `key` like [`put`](Self::put) when `key` is above every key of
    /// `table` and the engine can append there faster than it can put (LMDB's
    /// `MDB_APPEND`: no key search, full pages); `Ok(false)`, with nothing changed, when it
    /// cannot. The default never appends.
    fn append(
        &mut self,
        table: &Self::Table,
        key: &[u8],
        value: &[u8],
    ) -> Result<bool, StorageError> {
        let _ = (table, key, value);
        Ok(false)
    }

    /// Removes every key of `table` in `range`; returns how many it removed. The default
    /// scans the keys, then deletes each; an engine with a range delete overrides it.
    fn delete_range(
        &mut self,
        table: &Self::Table,
        range: KeyBounds<'_>,
    ) -> Result<u64, StorageError> {
        let mut keys = Vec::new();
        self.scan(table, range, Direction::Forward, |key, _| {
            keys.push(key.to_vec());
            Ok::<_, StorageError>(Visit::Continue(()))
        })?;
        for key in &keys {
            self.delete(table, key)?;
        }
        Ok(keys.len() as u64)
    }
}
