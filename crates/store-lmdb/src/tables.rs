//! The LMDB environment of one backend directory: its named databases, read and write
//! transactions, map growth and durability.
//!
//! Every transaction holder takes the `resize` lock shared; only the map resizer takes it
//! exclusively, because LMDB may change the map size only while no transaction of this
//! process is active. Write transactions are serialized by the `writer` mutex (LMDB allows
//! one writer at a time anyway), so each store can number and order its writes under it.

use std::ops::Bound;
use std::path::Path;

use heed::types::Bytes as Raw;
use heed::{CommitToken, Database, Env, EnvFlags, EnvOpenOptions, OnCommit, RoTxn, RwTxn};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};
use std::io::Write as _;
use store_api::{Durability, OpenError, OpenOptions, StorageError, StorageErrorKind};

use store_kit::checksum::{Framing, checksum, format_record, framing_of_format, seal_value};
use store_kit::dir::DirGuard;
use store_kit::gate::{EngineSlot, WriteGate};
use store_kv::{LEDGER_TABLES, SEGMENT_TABLES, SIDE_EFFECT_TABLES, StateTables};

use crate::{corrupted_at_open, open_error, storage};

/// The engine's databases: its data, its batch log and its sequence counter.
pub(crate) const ENGINE_DATA: &str = "engine.data";
pub(crate) const ENGINE_LOG: &str = "engine.log";
pub(crate) const ENGINE_META: &str = "engine.meta";

/// The state databases; partition ids start at 0.
pub(crate) const STATE: StateTables = StateTables {
    entries: "state.data",
    partitions: "state.names",
    meta: "state.meta",
    first_id: 0,
};

/// Name of LMDB's data file inside the backend directory.
pub(crate) const DATA_FILE: &str = "data.mdb";
/// Name of LMDB's lock file inside the backend directory.
pub(crate) const LOCK_FILE: &str = "lock.mdb";

/// The map size a new environment starts with: 64 MiB. It doubles whenever a write
/// finds the map full.
pub(crate) const INITIAL_MAP_SIZE: usize = 64 << 20;

/// How many times one write may grow the map before it gives up (64 MiB × 2^24 is far
/// beyond any disk).
const MAX_MAP_GROWTHS: u32 = 24;

/// Named databases: 22 are used (the 21 of the stores and `meta`), the rest is headroom
/// for later versions.
const MAX_DBS: u32 = 32;

/// Reader slots. Read transactions use thread-local slots (a thread keeps its slot until
/// it exits), so this bounds the number of live threads that read at once.
const MAX_READERS: u32 = 1024;

/// The database holding the format record (`format` -> `store-lmdb/2`). Its record is
/// stored as is, without a checksum, so it can be read before the format is known; a
/// damaged one is refused at open like an unknown format.
pub(crate) const META_DB: &str = "meta";
/// The key of the format record in [`META_DB`].
pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// The name in the format record.
pub(crate) const FORMAT_NAME: &str = "store-lmdb";
/// The format this build writes: 2, every record checksummed. Format 1 (no format
/// record) stored values as given.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// How many records the upgrade from format 1 copies out of a database at a time.
const UPGRADE_CHUNK: usize = 1024;

/// A byte-keyed, byte-valued LMDB database.
pub(crate) type Table<'t> = Database<'t, Raw, Raw>;

/// Every named database of the environment, one group per store kind. Store kinds never
/// share a database, so they never see each other's keys.
#[derive(Clone, Copy)]
pub(crate) struct Tables<'t> {
    pub engine_data: Table<'t>,
    pub engine_log: Table<'t>,
    pub engine_meta: Table<'t>,
    pub state_data: Table<'t>,
    pub state_names: Table<'t>,
    pub state_meta: Table<'t>,
    pub ledger_assets: Table<'t>,
    pub ledger_accounts: Table<'t>,
    pub ledger_postings: Table<'t>,
    pub ledger_events: Table<'t>,
    pub ledger_heads: Table<'t>,
    pub ledger_idempotency: Table<'t>,
    pub ledger_transactions: Table<'t>,
    pub ledger_totals: Table<'t>,
    pub side_effect_outputs: Table<'t>,
    pub side_effect_call_outputs: Table<'t>,
    pub side_effect_inbound: Table<'t>,
    pub segment_meta: Table<'t>,
    pub segment_sessions: Table<'t>,
    pub segment_entries: Table<'t>,
    pub segment_traces: Table<'t>,
}

impl<'t> Tables<'t> {
    /// The tables, each made by `table` from its name.
    pub(crate) fn from_names(
        mut table: impl FnMut(&str) -> heed::Result<Table<'t>>,
    ) -> heed::Result<Self> {
        Ok(Tables {
            engine_data: table(ENGINE_DATA)?,
            engine_log: table(ENGINE_LOG)?,
            engine_meta: table(ENGINE_META)?,
            state_data: table(STATE.entries)?,
            state_names: table(STATE.partitions)?,
            state_meta: table(STATE.meta)?,
            ledger_assets: table(LEDGER_TABLES.assets)?,
            ledger_accounts: table(LEDGER_TABLES.accounts)?,
            ledger_postings: table(LEDGER_TABLES.postings)?,
            ledger_events: table(LEDGER_TABLES.events)?,
            ledger_heads: table(LEDGER_TABLES.heads)?,
            ledger_idempotency: table(LEDGER_TABLES.idempotency)?,
            ledger_transactions: table(LEDGER_TABLES.transactions)?,
            ledger_totals: table(LEDGER_TABLES.totals)?,
            side_effect_outputs: table(SIDE_EFFECT_TABLES.outputs)?,
            side_effect_call_outputs: table(SIDE_EFFECT_TABLES.call_outputs)?,
            side_effect_inbound: table(SIDE_EFFECT_TABLES.inbound)?,
            segment_meta: table(SEGMENT_TABLES.meta)?,
            segment_sessions: table(SEGMENT_TABLES.sessions)?,
            segment_entries: table(SEGMENT_TABLES.entries)?,
            segment_traces: table(SEGMENT_TABLES.traces)?,
        })
    }
}

impl<'t> Tables<'t> {
    /// Every database with its name.
    pub(crate) fn all(&self) -> [(&'static str, Table<'t>); 21] {
        [
            (ENGINE_DATA, self.engine_data),
            (ENGINE_LOG, self.engine_log),
            (ENGINE_META, self.engine_meta),
            (STATE.entries, self.state_data),
            (STATE.partitions, self.state_names),
            (STATE.meta, self.state_meta),
            (LEDGER_TABLES.assets, self.ledger_assets),
            (LEDGER_TABLES.accounts, self.ledger_accounts),
            (LEDGER_TABLES.postings, self.ledger_postings),
            (LEDGER_TABLES.events, self.ledger_events),
            (LEDGER_TABLES.heads, self.ledger_heads),
            (LEDGER_TABLES.idempotency, self.ledger_idempotency),
            (LEDGER_TABLES.transactions, self.ledger_transactions),
            (LEDGER_TABLES.totals, self.ledger_totals),
            (SIDE_EFFECT_TABLES.outputs, self.side_effect_outputs),
            (
                SIDE_EFFECT_TABLES.call_outputs,
                self.side_effect_call_outputs,
            ),
            (SIDE_EFFECT_TABLES.inbound, self.side_effect_inbound),
            (SEGMENT_TABLES.meta, self.segment_meta),
            (SEGMENT_TABLES.sessions, self.segment_sessions),
            (SEGMENT_TABLES.entries, self.segment_entries),
            (SEGMENT_TABLES.traces, self.segment_traces),
        ]
    }
}

/// Stores `key -> value` in `db` (the database called `name`) as `framing` lays records
/// out: with its checksum written straight after the value into the space LMDB reserves
/// for the record, so nothing is copied first.
pub(crate) fn put_record(
    db: &Table<'_>,
    txn: &mut RwTxn<'_>,
    framing: Framing,
    name: &str,
    key: &[u8],
    value: &[u8],
) -> heed::Result<()> {
    match framing {
        Framing::Checksummed => {
            db.put_reserved(txn, key, framing.stored_len(value.len()), |space| {
                space.write_all(value)?;
                space.write_all(&checksum(name, key, value).to_le_bytes())
            })
        }
        Framing::Bare => db.put(txn, key, value),
    }
}

/// Rewrites every record of `tables`, stored as given by format 1, with its checksum
/// (format 2), in the write transaction `txn`; returns how many it rewrote.
fn upgrade_records(txn: &mut RwTxn<'_>, tables: &Tables<'_>) -> heed::Result<u64> {
    let mut rewritten = 0u64;
    for (name, table) in tables.all() {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let lower = match &after {
                Some(key) => Bound::Excluded(key.as_slice()),
                None => Bound::Unbounded,
            };
            let range: (Bound<&[u8]>, Bound<&[u8]>) = (lower, Bound::Unbounded);
            let chunk = table
                .range(txn, &range)?
                .take(UPGRADE_CHUNK)
                .map(|row| row.map(|(key, value)| (key.to_vec(), value.to_vec())))
                .collect::<heed::Result<Vec<_>>>()?;
            for (key, value) in &chunk {
                table.put(txn, key, &seal_value(name, key, value))?;
            }
            rewritten += chunk.len() as u64;
            match chunk.into_iter().last() {
                Some((key, _)) => after = Some(key),
                None => break,
            }
        }
    }
    Ok(rewritten)
}

/// What the open found about the format: the framing of the records, or (`Err`) why the
/// environment is refused.
type FormatCheck = Result<Framing, String>;

impl<'t> OnCommit for Tables<'t> {
    type Committed = Tables<'static>;

    fn on_commit(self, token: &CommitToken) -> Tables<'static> {
        Tables {
            engine_data: self.engine_data.on_commit(token),
            engine_log: self.engine_log.on_commit(token),
            engine_meta: self.engine_meta.on_commit(token),
            state_data: self.state_data.on_commit(token),
            state_names: self.state_names.on_commit(token),
            state_meta: self.state_meta.on_commit(token),
            ledger_assets: self.ledger_assets.on_commit(token),
            ledger_accounts: self.ledger_accounts.on_commit(token),
            ledger_postings: self.ledger_postings.on_commit(token),
            ledger_events: self.ledger_events.on_commit(token),
            ledger_heads: self.ledger_heads.on_commit(token),
            ledger_idempotency: self.ledger_idempotency.on_commit(token),
            ledger_transactions: self.ledger_transactions.on_commit(token),
            ledger_totals: self.ledger_totals.on_commit(token),
            side_effect_outputs: self.side_effect_outputs.on_commit(token),
            side_effect_call_outputs: self.side_effect_call_outputs.on_commit(token),
            side_effect_inbound: self.side_effect_inbound.on_commit(token),
            segment_meta: self.segment_meta.on_commit(token),
            segment_sessions: self.segment_sessions.on_commit(token),
            segment_entries: self.segment_entries.on_commit(token),
            segment_traces: self.segment_traces.on_commit(token),
        }
    }
}

impl Tables<'static> {
    /// The database called `name` among those the `store-kv` stores use.
    pub(crate) fn named(&self, name: &str) -> Option<Table<'static>> {
        let found = match name {
            n if n == STATE.entries => self.state_data,
            n if n == STATE.partitions => self.state_names,
            n if n == STATE.meta => self.state_meta,
            n if n == LEDGER_TABLES.assets => self.ledger_assets,
            n if n == LEDGER_TABLES.accounts => self.ledger_accounts,
            n if n == LEDGER_TABLES.postings => self.ledger_postings,
            n if n == LEDGER_TABLES.events => self.ledger_events,
            n if n == LEDGER_TABLES.heads => self.ledger_heads,
            n if n == LEDGER_TABLES.idempotency => self.ledger_idempotency,
            n if n == LEDGER_TABLES.transactions => self.ledger_transactions,
            n if n == LEDGER_TABLES.totals => self.ledger_totals,
            n if n == SIDE_EFFECT_TABLES.outputs => self.side_effect_outputs,
            n if n == SIDE_EFFECT_TABLES.call_outputs => self.side_effect_call_outputs,
            n if n == SIDE_EFFECT_TABLES.inbound => self.side_effect_inbound,
            n if n == SEGMENT_TABLES.meta => self.segment_meta,
            n if n == SEGMENT_TABLES.sessions => self.segment_sessions,
            n if n == SEGMENT_TABLES.entries => self.segment_entries,
            n if n == SEGMENT_TABLES.traces => self.segment_traces,
            _ => return None,
        };
        Some(found)
    }
}

/// Why a write closure stopped: an LMDB failure (retried after growing the map when the
/// map is full) or a failure of the store's own (returned as is; the transaction aborts).
pub(crate) enum Abort<E> {
    /// LMDB failed.
    Engine(heed::Error),
    /// The store refused the write (bad input, conflict, corrupted record, ...).
    Fail(E),
}

impl<E> From<heed::Error> for Abort<E> {
    fn from(e: heed::Error) -> Self {
        Abort::Engine(e)
    }
}

impl<E: From<StorageError>> From<StorageError> for Abort<E> {
    fn from(e: StorageError) -> Self {
        Abort::Fail(E::from(e))
    }
}

/// The open environment of one backend directory.
pub struct Db {
    /// Taken out by [`close`](Self::close).
    env: EngineSlot<Env>,
    tables: Tables<'static>,
    resize: RwLock<()>,
    writer: Mutex<()>,
    durability: Durability,
    /// The engine's sequence counter as stored when the environment was opened.
    sequence_at_open: u64,
    /// How records are stored: checksummed (format 2), or as given by a format-1
    /// environment opened read-only (so not upgraded) and read unverified.
    framing: Framing,
    /// Shut by a write that failed with an I/O error (not a full disk): after a failed
    /// `fsync` the pages of earlier writes may be gone, so nothing more is acknowledged
    /// until the environment is reopened.
    gate: Arc<WriteGate>,
    /// The directory, for classifying write failures after the lock is gone.
    path: std::path::PathBuf,
    /// Declared after `env`, so the directory lock is released only once LMDB has closed.
    dir: Mutex<Option<DirGuard>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // A clean close loses nothing, whatever the durability mode: under `Relaxed` the
        // last commit's meta page may not be on disk yet. Nothing can report a failure
        // here; a failed sync leaves the database consistent (LMDB's meta pages).
        if self.durability == Durability::Relaxed
            && let Ok(env) = self.env.get()
        {
            let _ = env.force_sync();
        }
    }
}

impl Db {
    /// Opens (or creates) the environment in the locked directory `dir`.
    ///
    /// A damaged data file is refused with [`OpenError::Corrupted`] before anything is
    /// written to it; LMDB's lock file is put back as it was when the open fails.
    pub(crate) fn open(dir: DirGuard, options: &OpenOptions) -> Result<Db, OpenError> {
        let durability = options.durability;
        let path = dir.path().to_path_buf();
        let data_path = path.join(DATA_FILE);
        let data_len = match std::fs::metadata(&data_path) {
            Ok(meta) if !meta.is_file() => {
                return Err(corrupted_at_open(
                    &data_path,
                    "the database file is not a regular file",
                ));
            }
            Ok(meta) => Some(meta.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !options.may_create() => {
                return Err(OpenError::NotFound {
                    location: data_path.display().to_string(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(OpenError::from_io(&data_path, e)),
        };
        if data_len == Some(0) {
            // LMDB would silently start a new database over an emptied file.
            return Err(corrupted_at_open(
                &data_path,
                "the database file is empty (truncated)",
            ));
        }
        let lock_path = path.join(LOCK_FILE);
        let lock_before = match std::fs::read(&lock_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(OpenError::from_io(&lock_path, e)),
        };
        let map_size = initial_map_size(data_len.unwrap_or(0));
        let opened = store_kit::open_step::timed(crate::BACKEND_NAME, "environment open", || {
            Self::open_env(&path, &data_path, map_size, options)
        });
        match opened {
            Ok((env, tables, sequence_at_open, framing)) => Ok(Db {
                env: EngineSlot::new(crate::BACKEND_NAME, env),
                tables,
                sequence_at_open,
                framing,
                resize: RwLock::new(()),
                writer: Mutex::new(()),
                durability,
                gate: Arc::new(
                    WriteGate::new(crate::BACKEND_NAME)
                        .with_read_only(options.read_only)
                        .with_location(path.display().to_string()),
                ),
                path,
                dir: Mutex::new(Some(dir)),
            }),
            Err(e) => {
                // The environment is closed by now: leave LMDB's lock file as it was.
                // Best effort: the open error is what the caller needs to see.
                let _ = match lock_before {
                    Some(bytes) => std::fs::write(&lock_path, bytes),
                    None => std::fs::remove_file(&lock_path),
                };
                Err(e)
            }
        }
    }

    /// Opens the environment, checks its format and, on a read-write open of a format-1
    /// environment, upgrades it (see [`Db::open_tables`]).
    fn open_env(
        path: &Path,
        data_path: &Path,
        map_size: usize,
        options: &OpenOptions,
    ) -> Result<(Env, Tables<'static>, u64, Framing), OpenError> {
        let env = open_lmdb(path, map_size, options).map_err(|e| open_error(data_path, e))?;
        // A data file shorter than its last committed page would make LMDB read past the
        // end of the file through the memory map: refuse it here.
        let page_size = u64::from(env.unnamed_database_stat().page_size);
        let last_page = env.info().last_page_number as u64;
        let needed = last_page.saturating_add(1).saturating_mul(page_size);
        let actual = std::fs::metadata(data_path)
            .map_err(|e| OpenError::from_io(data_path, e))?
            .len();
        if actual < needed {
            return Err(corrupted_at_open(
                data_path,
                format!(
                    "the database file is truncated: {actual} bytes, but its last committed \
                     page ends at byte {needed}"
                ),
            ));
        }
        let mut growths = 0;
        let (tables, format) = loop {
            match Self::open_tables(&env, options) {
                Err(heed::Error::Mdb(heed::MdbError::MapFull)) if growths < MAX_MAP_GROWTHS => {
                    // The upgrade rewrote more than the map holds: it was aborted, no
                    // transaction is active, so the map may grow.
                    growths += 1;
                    let next = env.info().map_size.saturating_mul(2);
                    resize_lmdb(&env, next).map_err(|e| open_error(data_path, e))?;
                }
                Err(e) => return Err(open_error(data_path, e)),
                Ok(opened) => break opened,
            }
        };
        let framing = format.map_err(|detail| OpenError::ForeignData {
            path: data_path.to_path_buf(),
            detail,
        })?;
        let tables = match tables {
            heed::CommitOrAbort::Commit(tables) => tables,
            heed::CommitOrAbort::Abort(()) => {
                return Err(corrupted_at_open(
                    data_path,
                    "the database tables could not be opened",
                ));
            }
        };
        let sequence = {
            let rtxn = env.read_txn().map_err(|e| open_error(data_path, e))?;
            crate::engine::stored_sequence(&rtxn, &tables, framing)
        };
        match sequence {
            Ok(sequence) => Ok((env, tables, sequence, framing)),
            Err(e) if e.kind() == StorageErrorKind::Corrupted => Err(OpenError::Corrupted {
                path: data_path.to_path_buf(),
                source: Box::new(e),
            }),
            Err(e) => Err(OpenError::Storage(e)),
        }
    }

    /// Opens the named databases and reads the format record. A read-only open needs every
    /// database of the stores to be there and reads a format-1 environment as it is
    /// ([`Framing::Bare`]). A read-write open creates what is missing and, when the
    /// environment has no format record (format 1, or new), rewrites every record with its
    /// checksum and writes the format record, all in one write transaction: a crash or a
    /// failure leaves the environment as it was. An unknown format aborts the transaction.
    #[allow(clippy::type_complexity)]
    fn open_tables(
        env: &Env,
        options: &OpenOptions,
    ) -> heed::Result<(heed::CommitOrAbort<Tables<'static>, ()>, FormatCheck)> {
        let mut format: FormatCheck = Ok(Framing::Checksummed);
        let tables = if options.read_only {
            // A read-only environment cannot create tables: every one must be there.
            let rtxn = env.read_txn()?;
            env.open_databases_and_commit(rtxn, |opener, rtxn| {
                let tables = Tables::from_names(|name| {
                    opener
                        .open_database::<Raw, Raw>(rtxn, Some(name))?
                        .ok_or(heed::Error::Mdb(heed::MdbError::NotFound))
                })?;
                let record = match opener.open_database::<Raw, Raw>(rtxn, Some(META_DB))? {
                    Some(meta) => meta.get(rtxn, FORMAT_KEY)?,
                    None => None,
                };
                format = framing_of_format(FORMAT_NAME, FORMAT_VERSION, record);
                Ok::<_, heed::Error>(heed::CommitOrAbort::Commit(tables))
            })?
        } else {
            let wtxn = env.write_txn()?;
            env.create_databases_and_commit(wtxn, |opener, wtxn| {
                let tables = Tables::from_names(|name| {
                    opener.create_database::<Raw, Raw>(wtxn, Some(name))
                })?;
                let meta = opener.create_database::<Raw, Raw>(wtxn, Some(META_DB))?;
                format =
                    framing_of_format(FORMAT_NAME, FORMAT_VERSION, meta.get(wtxn, FORMAT_KEY)?);
                match format {
                    Ok(Framing::Checksummed) => {}
                    Ok(Framing::Bare) => {
                        upgrade_records(wtxn, &tables)?;
                        let record = format_record(FORMAT_NAME, FORMAT_VERSION);
                        meta.put(wtxn, FORMAT_KEY, &record)?;
                        format = Ok(Framing::Checksummed);
                    }
                    Err(_) => return Ok(heed::CommitOrAbort::Abort(())),
                }
                Ok::<_, heed::Error>(heed::CommitOrAbort::Commit(tables))
            })?
        };
        Ok((tables, format))
    }

    /// The named databases.
    pub(crate) fn tables(&self) -> &Tables<'static> {
        &self.tables
    }

    /// The durability mode.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// How records are stored, hence what reads verify and writes add.
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// The engine's sequence counter as stored when the environment was opened.
    pub(crate) fn sequence_at_open(&self) -> u64 {
        self.sequence_at_open
    }

    /// LMDB's key size limit of this environment.
    #[cfg(test)]
    pub(crate) fn max_key_size(&self) -> usize {
        self.env.get().map_or(0, |env| env.max_key_size())
    }

    /// Runs `f` in a fresh read transaction, ended before this returns.
    #[inline]
    pub(crate) fn read<T, E: From<StorageError>>(
        &self,
        what: &'static str,
        f: impl FnOnce(&RoTxn<'_>, &Tables<'static>) -> Result<T, E>,
    ) -> Result<T, E> {
        let env = self.env.get()?;
        let _resize = self.resize.read();
        let txn = env.read_txn().map_err(|e| storage(what, e))?;
        f(&txn, &self.tables)
    }

    /// Takes the writer lock: the holder is the only one writing until it drops it.
    pub(crate) fn writer(&self) -> Writer<'_> {
        Writer {
            db: self,
            _lock: store_kit::lock_wait::lock(&self.writer, "lmdb writer"),
        }
    }

    /// Runs `f` in one write transaction under the writer lock and commits it.
    pub(crate) fn write<T, E: From<StorageError>>(
        &self,
        what: &'static str,
        f: impl FnMut(&mut RwTxn<'_>, &Tables<'static>) -> Result<T, Abort<E>>,
    ) -> Result<T, E> {
        self.writer().run(what, f)
    }

    /// Forces every committed write to disk (data and meta pages).
    pub(crate) fn sync(&self, what: &'static str) -> Result<(), StorageError> {
        self.gate.check()?;
        let env = self.env.get()?;
        let _resize = self.resize.read();
        env.force_sync()
            .map_err(|e| self.write_failure(storage(what, e)))
    }

    /// The backend's gate.
    pub(crate) fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// Closes the environment (the backend's gate is already closed): once the calls in
    /// progress are done, syncs it (under `Relaxed` too), closes it and releases the
    /// directory lock. A failed sync is reported; the lock is released whatever happens.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        let mut outcome = Ok(());
        if let Some(env) = self.env.take() {
            if !self.gate.is_read_only() {
                outcome = env
                    .force_sync()
                    .map_err(|e| storage("syncing the environment at close", e));
            }
            // Waits until LMDB has closed the environment: a reopen may follow at once.
            env.prepare_for_closing().wait();
        }
        drop(self.dir.lock().take());
        outcome
    }

    /// A failed write's error, classified (an `EIO` on a full filesystem is a full disk:
    /// LMDB reports a write cut short that way) and shutting the gate when it leaves the
    /// disk in doubt.
    fn write_failure(&self, error: StorageError) -> StorageError {
        self.gate
            .observe(WriteGate::classify_full_disk(error, &self.path))
    }

    /// Doubles the map size. Waits until no transaction of this process is active.
    fn grow_map(&self, what: &'static str) -> Result<(), StorageError> {
        let env = self.env.get()?;
        let _resize = self.resize.write();
        let current = env.info().map_size;
        let Some(next) = current.checked_mul(2) else {
            return Err(StorageError::without_source(
                crate::BACKEND_NAME,
                StorageErrorKind::Engine,
                format!("{what}: the LMDB map cannot grow beyond {current} bytes"),
            ));
        };
        resize_lmdb(&env, next).map_err(|e| storage(what, e))
    }
}

/// The writer lock of a [`Db`]; writes run through [`Writer::run`].
pub(crate) struct Writer<'a> {
    db: &'a Db,
    _lock: MutexGuard<'a, ()>,
}

impl Writer<'_> {
    /// Runs `f` in one write transaction and commits it. When LMDB reports a full map, the
    /// transaction is aborted, the map doubled and `f` run again from scratch, so callers
    /// never see `MDB_MAP_FULL`. A failure of `f` aborts the transaction: nothing of it is
    /// written.
    pub(crate) fn run<T, E: From<StorageError>>(
        &self,
        what: &'static str,
        mut f: impl FnMut(&mut RwTxn<'_>, &Tables<'static>) -> Result<T, Abort<E>>,
    ) -> Result<T, E> {
        let tables = &self.db.tables;
        self.attempt(what, |mut txn| {
            let value = f(&mut txn, tables)?;
            txn.commit()?;
            Ok(value)
        })
    }

    /// Runs `attempt` on a fresh write transaction, which it commits or drops (aborting
    /// it), under the write gate: a full map grows the map and runs `attempt` again, any
    /// other LMDB failure goes through the gate, a failure of the store's own is returned
    /// as it is.
    pub(crate) fn attempt<T, E: From<StorageError>>(
        &self,
        what: &'static str,
        mut attempt: impl FnMut(RwTxn<'_>) -> Result<T, Abort<E>>,
    ) -> Result<T, E> {
        let db = self.db;
        db.gate.check()?;
        let mut growths = 0;
        loop {
            let outcome = {
                let env = db.env.get()?;
                let _resize = db.resize.read();
                let txn = env.write_txn().map_err(|e| storage(what, e))?;
                attempt(txn)
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(Abort::Engine(heed::Error::Mdb(heed::MdbError::MapFull)))
                    if growths < MAX_MAP_GROWTHS =>
                {
                    growths += 1;
                    db.grow_map(what)?;
                }
                Err(Abort::Engine(e)) => return Err(E::from(db.write_failure(storage(what, e)))),
                Err(Abort::Fail(e)) => return Err(e),
            }
        }
    }
}

/// The first map size: 64 MiB, or room for twice the existing data.
fn initial_map_size(data_len: u64) -> usize {
    let mut size = INITIAL_MAP_SIZE;
    while (size as u64) < data_len.saturating_mul(2) {
        match size.checked_mul(2) {
            Some(next) => size = next,
            None => break,
        }
    }
    size
}

/// Opens the LMDB environment in `path`.
#[allow(unsafe_code)]
fn open_lmdb(path: &Path, map_size: usize, open: &OpenOptions) -> heed::Result<Env> {
    let mut options = EnvOpenOptions::new();
    options
        .map_size(map_size)
        .max_dbs(MAX_DBS)
        .max_readers(MAX_READERS);
    // SAFETY: heed marks these unsafe for two reasons, both upheld here.
    // (1) The memory map is undefined behaviour if the file changes behind LMDB's back: the
    //     directory is held under this backend's process lock (`store_kit::dir::open_dir`,
    //     kept alive in `Db`): exclusive for a read-write open, shared by read-only opens
    //     and excluding every writer, and this crate writes `data.mdb` only through LMDB; the file is checked against its last committed
    //     page right after opening, so a truncated file is refused before any page read.
    // (2) `NO_META_SYNC` is an "unsafe flag" only in the durability sense: LMDB documents
    //     that it keeps the database consistent and may only undo the last transaction on
    //     a system crash, which is exactly what `Durability::Relaxed` allows.
    unsafe {
        if open.durability == Durability::Relaxed {
            options.flags(EnvFlags::NO_META_SYNC);
        }
        if open.read_only {
            options.flags(EnvFlags::READ_ONLY);
        }
        options.open(path)
    }
}

/// Sets the map size of `env` to `size` bytes.
#[allow(unsafe_code)]
fn resize_lmdb(env: &Env, size: usize) -> heed::Result<()> {
    // SAFETY: LMDB requires that no transaction of this process is active while the map
    // is resized. Every transaction of this crate is begun and ended while its thread holds
    // `Db::resize` shared, and the only caller (`Db::grow_map`) holds it exclusively, so
    // no transaction exists during this call. `size` is a power-of-two multiple of 64 MiB,
    // hence a multiple of the OS page size.
    unsafe { env.resize(size) }
}
