//! The connection to the server: opening (and creating or checking) the store's schema, the
//! pool every store shares, the dedicated connections of state partitions, and the write
//! transactions that retry serialization failures, deadlocks and lost insert races.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};
use r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use store_api::{Durability, OpenError, OpenOptions, StorageError, StorageErrorKind, StoreError};
use store_kit::gate::{EngineSlot, WriteGate};

use crate::location::PostgresLocation;
use crate::{BACKEND_NAME, PgContext, SCHEMA_SQL, SCHEMA_VERSION, pg_error};

/// The tables of schema version 1.
const TABLES: &[&str] = &[
    "store_version",
    "engine_kv",
    "engine_batch_log",
    "engine_meta",
    "state_partitions",
    "state_entries",
    "ledger_assets",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_transaction_metadata",
    "ledger_postings",
    "ledger_events",
    "ledger_book_heads",
    "ledger_totals",
    "side_effect_outputs",
    "side_effect_call_outputs",
    "side_effect_inbound",
    "segments",
    "segment_entries",
    "segment_traces",
];

/// How many times a write transaction is tried when it fails with a serialization
/// failure (SQLSTATE `40001`), a deadlock (`40P01`) or a unique violation (`23505`, a
/// concurrent writer inserted the row this one checked for), before the failure is
/// reported.
pub const MAX_WRITE_ATTEMPTS: u32 = 30;

/// The first pause between two attempts; it doubles per attempt up to
/// [`MAX_RETRY_PAUSE`], with jitter.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(1);

/// The longest pause between two attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The statements prepared on one connection, by SQL text.
///
/// A statement sent as text costs two round trips (prepare, then execute); a prepared one
/// costs one. Every statement this crate runs is prepared once per connection, the first
/// time it runs there, and kept for the connection's life (the texts come from the code,
/// so the cache stays small). A statement prepared inside a transaction outlives it: the
/// server's prepared statements are not transactional.
#[derive(Default)]
pub(crate) struct Statements(HashMap<String, Statement>);

impl Statements {
    /// `sql` prepared on `client`, preparing it on first use.
    fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// A connection to the server and the statements prepared on it. Derefs to the
/// [`Client`] for what runs outside the cache (`batch_execute`, notifications).
pub(crate) struct PgConn {
    client: Client,
    statements: Statements,
}

impl PgConn {
    fn new(client: Client) -> Self {
        PgConn {
            client,
            statements: Statements::default(),
        }
    }

    /// Begins a transaction on this connection and its cache: a read-only `REPEATABLE READ`
    /// one, or a read-write one at the session's `READ COMMITTED`.
    fn begin(
        &mut self,
        read_only_repeatable: bool,
        context: &'static str,
    ) -> Result<Tx<'_>, StorageError> {
        let tx = if read_only_repeatable {
            self.client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
        } else {
            self.client.transaction()
        }
        .ctx(context)?;
        Ok(Tx {
            tx,
            statements: &mut self.statements,
        })
    }
}

impl Deref for PgConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A transaction on a [`PgConn`], running its statements through the connection's cache.
/// Dropping it without [`commit`](Self::commit) rolls it back.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut Statements,
}

impl Tx<'_> {
    fn commit(self, context: &'static str) -> Result<(), StorageError> {
        self.tx.commit().ctx(context)
    }

    /// Runs `sql` (one or more statements, no parameters) as text.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }
}

/// What runs this crate's statements, each prepared once per connection ([`Statements`]):
/// a pooled or dedicated connection outside any transaction, or a transaction.
pub(crate) trait Sql {
    /// The rows of `sql`.
    fn query_rows(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error>;
    /// The row of `sql`, if any (an error when there are more).
    fn query_row_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error>;
    /// Runs `sql`, returning the number of rows it changed.
    fn execute_sql(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error>;
}

/// [`Sql`] for a type with a `GenericClient` field `$client` and a [`Statements`] field.
macro_rules! impl_sql {
    ($ty:ty, $client:ident) => {
        impl Sql for $ty {
            fn query_rows(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>, postgres::Error> {
                let statement = self.statements.get(&mut self.$client, sql)?;
                self.$client.query(&statement, params)
            }

            fn query_row_opt(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Option<Row>, postgres::Error> {
                let statement = self.statements.get(&mut self.$client, sql)?;
                self.$client.query_opt(&statement, params)
            }

            fn execute_sql(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<u64, postgres::Error> {
                let statement = self.statements.get(&mut self.$client, sql)?;
                self.$client.execute(&statement, params)
            }
        }
    };
}

impl_sql!(PgConn, client);
impl_sql!(Tx<'_>, tx);

/// Opens the connections of the pool: `r2d2_postgres`'s, each with its own statement
/// cache.
#[derive(Debug)]
pub(crate) struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        self.0.connect().map(PgConn::new)
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// A pooled connection.
pub(crate) type Conn = PooledConnection<Manager>;

/// The session settings every connection gets: the store's schema first on the search
/// path, and the commit durability.
#[derive(Debug, Clone)]
struct Session {
    setup: String,
}

impl Session {
    fn new(location: &PostgresLocation, options: &OpenOptions) -> Self {
        let synchronous_commit = match options.durability {
            Durability::Immediate => "on",
            Durability::Relaxed => "off",
        };
        // A read-only open's connections refuse writes on the server too, not only in the
        // backend's gate.
        let read_only = if options.read_only { "on" } else { "off" };
        Session {
            setup: format!(
                "SET search_path TO {}; SET synchronous_commit TO {synchronous_commit}; \
                 SET default_transaction_read_only TO {read_only};",
                location.quoted_schema()
            ),
        }
    }

    fn apply(&self, client: &mut Client) -> Result<(), postgres::Error> {
        client.batch_execute(&self.setup)
    }
}

impl CustomizeConnection<PgConn, postgres::Error> for Session {
    fn on_acquire(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.apply(&mut conn.client)
    }
}

/// The server of one backend: a pool of connections set up for the store's schema.
pub(crate) struct Db {
    /// Taken out by [`close`](Self::close).
    pool: EngineSlot<Pool<Manager>>,
    location: PostgresLocation,
    session: Session,
    gate: Arc<WriteGate>,
}

/// Whether a failed write should be tried again: a serialization failure, a deadlock, or
/// a unique violation (in this schema only a concurrent insert of a row the transaction
/// checked for causes one; the retry sees that row).
fn is_retryable(error: &StorageError) -> bool {
    let Some(pg) =
        std::error::Error::source(error).and_then(|s| s.downcast_ref::<postgres::Error>())
    else {
        return false;
    };
    matches!(
        pg.code().map(|c| c.code()),
        Some("40001" | "40P01" | "23505")
    )
}

/// The pause before attempt `attempt + 1` (exponential, with jitter so that two writers
/// that collided do not collide again in step).
fn retry_pause(attempt: u32) -> Duration {
    let base = FIRST_RETRY_PAUSE
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_RETRY_PAUSE);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from(nanos) % (base.as_micros() as u64).max(1);
    base / 2 + Duration::from_micros(jitter / 2)
}

/// Runs `f` in one transaction on `client` and commits it, trying again (bounded, with
/// backoff) when it fails with a retryable error.
pub(crate) fn write_on<T, E>(
    client: &mut PgConn,
    durable: bool,
    mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StorageError> + StoreError,
{
    with_retries(|| run_write(client, durable, &mut f))
}

/// Runs `run` until it succeeds, fails with an error that is not [retryable](is_retryable),
/// or has been tried [`MAX_WRITE_ATTEMPTS`] times, pausing with backoff between tries; each
/// retry is a `debug` event (target `store_postgres`) with the error that caused it.
fn with_retries<T, E: StoreError>(mut run: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut attempt = 0;
    loop {
        match run() {
            Err(e) if attempt + 1 < MAX_WRITE_ATTEMPTS && e.storage().is_some_and(is_retryable) => {
                let pause = retry_pause(attempt);
                tracing::debug!(
                    target: "store_postgres",
                    attempt = attempt + 1,
                    pause_ms = pause.as_millis() as u64,
                    error = %store_api::error_chain(&e),
                    "write tried again"
                );
                std::thread::sleep(pause);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What a write was doing when its `BEGIN` failed: nothing was sent to the server yet, so
/// a connection found closed there is replaced and the write tried again.
const BEGIN_WRITE: &str = "beginning a write transaction";

/// Whether `error` is a connection found closed before anything was done on it.
fn closed_before_begin(error: &StorageError) -> bool {
    error.kind() == StorageErrorKind::Unavailable && error.context() == BEGIN_WRITE
}

/// Whether `error` is a connection found broken (the server restarted, or dropped the
/// connection while it was idle in the pool): a read meeting it may run again on a new
/// connection.
fn connection_broken(error: &StorageError) -> bool {
    error.kind() == StorageErrorKind::Unavailable
}

fn run_write<T, E: From<StorageError>>(
    client: &mut PgConn,
    durable: bool,
    f: &mut impl FnMut(&mut Tx<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let mut tx = client.begin(false, BEGIN_WRITE)?;
    if durable {
        tx.batch_execute("SET LOCAL synchronous_commit TO on")
            .ctx("making a write durable")?;
    }
    // Dropping the transaction on an error rolls it back.
    let out = f(&mut tx)?;
    tx.commit("committing a write transaction")?;
    Ok(out)
}

/// Classifies an error met while opening `location`.
fn open_error(location: &PostgresLocation, context: &'static str, e: postgres::Error) -> OpenError {
    let error = pg_error(context, e);
    if error.kind() == StorageErrorKind::Unavailable {
        return OpenError::Unreachable {
            location: location.to_string(),
            source: Box::new(error),
        };
    }
    OpenError::Storage(error)
}

/// Creates the store's schema and tables when they are missing, or checks that the
/// schema holds a store of [`SCHEMA_VERSION`]. Concurrent opens of one schema are
/// serialized by a transaction-level advisory lock.
///
/// With `may_create` false (`create_if_missing` off, or `read_only`), a schema that does
/// not exist or holds no table is [`OpenError::NotFound`] and nothing is created.
fn prepare_schema(
    client: &mut Client,
    location: &PostgresLocation,
    may_create: bool,
) -> Result<(), OpenError> {
    let err = |context| move |e| open_error(location, context, e);
    let schema = location.schema();
    let mut tx = client
        .transaction()
        .map_err(err("beginning the schema check"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('store-postgres schema ' || $1, 0))",
        &[&schema],
    )
    .map_err(err("locking the schema"))?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .and_then(|row| row.try_get(0))
        .map_err(err("looking up the schema"))?;
    let not_found = || OpenError::NotFound {
        location: location.to_string(),
    };
    if !exists && !may_create {
        return Err(not_found());
    }
    let tables: Vec<String> = if exists {
        tx.query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .map_err(err("listing the schema's tables"))?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(err("listing the schema's tables"))?
    } else {
        tx.batch_execute(&format!("CREATE SCHEMA {}", location.quoted_schema()))
            .map_err(err("creating the schema"))?;
        Vec::new()
    };
    let foreign = |detail: String| OpenError::ForeignSchema {
        location: location.to_string(),
        detail,
    };
    if tables.is_empty() && !may_create {
        return Err(not_found());
    }
    if tables.is_empty() {
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {};\n{SCHEMA_SQL}",
            location.quoted_schema()
        ))
        .map_err(err("creating the tables"))?;
        tx.execute(
            "INSERT INTO store_version (id, version, written_by) VALUES (1, $1, $2)",
            &[
                &i32::try_from(SCHEMA_VERSION).unwrap_or(i32::MAX),
                &concat!("store-postgres ", env!("CARGO_PKG_VERSION")),
            ],
        )
        .map_err(err("writing the schema version"))?;
    } else {
        if !tables.iter().any(|t| t == "store_version") {
            return Err(foreign(format!(
                "schema {schema:?} holds tables ({}) but no store_version table: it is not a \
                 store-postgres store",
                tables.join(", ")
            )));
        }
        let version: Option<i32> = tx
            .query_opt(
                &format!(
                    "SELECT version FROM {}.store_version WHERE id = 1",
                    location.quoted_schema()
                ),
                &[],
            )
            .map_err(err("reading the schema version"))?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(err("reading the schema version"))?;
        let Some(version) = version else {
            return Err(foreign(format!(
                "schema {schema:?} has an empty store_version table"
            )));
        };
        if i64::from(version) != SCHEMA_VERSION {
            return Err(OpenError::SchemaVersion {
                location: location.to_string(),
                found: i64::from(version),
                supported: SCHEMA_VERSION,
            });
        }
        if let Some(missing) = TABLES.iter().find(|t| !tables.iter().any(|n| n == *t)) {
            return Err(foreign(format!(
                "schema {schema:?} lacks table {missing} of schema version {SCHEMA_VERSION}"
            )));
        }
    }
    tx.commit().map_err(err("committing the schema"))
}

impl Db {
    /// Connects to the server of `location`, prepares the store's schema and builds the
    /// connection pool.
    pub(crate) fn open(
        location: &PostgresLocation,
        options: &OpenOptions,
    ) -> Result<Db, OpenError> {
        let mut client = location
            .config()
            .connect(NoTls)
            .map_err(|e| OpenError::Unreachable {
                location: location.to_string(),
                source: Box::new(e),
            })?;
        store_kit::open_step::timed(BACKEND_NAME, "schema check", || {
            prepare_schema(&mut client, location, options.may_create())
        })?;
        drop(client);
        let session = Session::new(location, options);
        let manager = Manager(PostgresConnectionManager::new(
            location.config().clone(),
            NoTls,
        ));
        let pool = Pool::builder()
            .max_size(location.pool_size())
            .min_idle(Some(0))
            .connection_timeout(location.pool_timeout())
            .test_on_check_out(false)
            .connection_customizer(Box::new(session.clone()))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(Db {
            pool: EngineSlot::new(BACKEND_NAME, pool),
            location: location.clone(),
            session,
            gate: Arc::new(
                WriteGate::new(BACKEND_NAME)
                    .with_read_only(options.read_only)
                    .with_location(location.to_string()),
            ),
        })
    }

    /// The backend's gate.
    pub(crate) fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// Closes this instance (its gate is already closed): makes every commit it
    /// acknowledged durable (a commit under `synchronous_commit = on` flushes the WAL
    /// through every earlier one), wakes its waiters (a notification on the commit
    /// `channel`; other instances' waiters ignore it) and drops its connection pool. A
    /// failure is reported; the pool is dropped whatever happens.
    pub(crate) fn close(&self, channel: &str) -> Result<(), StorageError> {
        const CTX: &str = "making every commit durable at close";
        let Some(pool) = self.pool.take() else {
            return Ok(());
        };
        let read_only = self.gate.is_read_only();
        let flushed = pool
            .get()
            .map_err(|e| StorageError::new(BACKEND_NAME, StorageErrorKind::Unavailable, CTX, e))
            .and_then(|mut conn| {
                // Read-write even on a read-only open: a notification needs it. It writes
                // nothing else, and takes a transaction id (which makes its commit wait
                // for the WAL flush) only when this instance may have written.
                let mut tx = conn.build_transaction().read_only(false).start().ctx(CTX)?;
                tx.batch_execute("SET LOCAL synchronous_commit TO on")
                    .ctx(CTX)?;
                if !read_only {
                    tx.execute("SELECT txid_current()", &[]).ctx(CTX)?;
                }
                tx.execute("SELECT pg_notify($1, 'closing')", &[&channel])
                    .ctx(CTX)?;
                tx.commit().ctx(CTX)
            });
        drop(pool);
        flushed
    }

    /// The location this store lives at.
    pub(crate) fn location(&self) -> &PostgresLocation {
        &self.location
    }

    /// A connection of the pool. A connection the server closed since its last use is
    /// discarded and replaced, once.
    pub(crate) fn conn(&self) -> Result<Conn, StorageError> {
        for _ in 0..2 {
            let conn = self.pool.get()?.get().map_err(|e| {
                StorageError::new(
                    BACKEND_NAME,
                    StorageErrorKind::Unavailable,
                    "waiting for a connection to the database server",
                    e,
                )
            })?;
            if !conn.is_closed() {
                return Ok(conn);
            }
        }
        Err(StorageError::without_source(
            BACKEND_NAME,
            StorageErrorKind::Unavailable,
            "the database server closed every new connection",
        ))
    }

    /// A new connection of its own (not pooled), set up like the pooled ones: the owner
    /// of a state partition holds its session-level lock on it.
    pub(crate) fn dedicated(&self) -> Result<PgConn, StorageError> {
        self.gate.check_open()?;
        // Whatever refuses a new connection (down, restarting, out of connections, not
        // accepting connections) leaves the server unavailable to this call.
        let mut client = self.location.config().connect(NoTls).map_err(|e| {
            StorageError::new(
                BACKEND_NAME,
                StorageErrorKind::Unavailable,
                "connecting to the database server",
                e,
            )
        })?;
        self.session
            .apply(&mut client)
            .ctx("setting up a connection")?;
        Ok(PgConn::new(client))
    }

    /// Runs `f` on a pooled connection, outside any explicit transaction (each statement
    /// sees the data committed when it starts). A read that finds its pooled connection
    /// broken (the server restarted, or dropped it) runs once more on a new one.
    pub(crate) fn read<T, E>(&self, mut f: impl FnMut(&mut PgConn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError> + StoreError,
    {
        let mut conn = self.conn()?;
        match f(&mut conn) {
            Err(e) if e.storage().is_some_and(connection_broken) => {
                drop(conn);
                f(&mut *self.conn()?)
            }
            other => other,
        }
    }

    /// Runs `f` in a read-only `REPEATABLE READ` transaction: every statement of `f` sees
    /// the same snapshot. Retried once on a new connection like [`read`](Self::read).
    pub(crate) fn read_tx<T, E>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StorageError> + StoreError,
    {
        self.read(|conn| {
            let mut tx = conn.begin(true, "beginning a read transaction")?;
            let out = f(&mut tx)?;
            tx.commit("ending a read transaction")?;
            Ok(out)
        })
    }

    /// One page of a listing (§9.1): the rows of `sql`, run with `params` and then `limit`
    /// as its last parameter (`LIMIT $n`), each made into an item by `item`, in the order
    /// `sql` gives. A `limit` of 0 lists nothing without asking the server.
    pub(crate) fn list<T, E>(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        limit: usize,
        context: &'static str,
        item: impl Fn(&postgres::Row) -> Result<T, StorageError>,
    ) -> Result<Vec<T>, E>
    where
        E: From<StorageError> + StoreError,
    {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A limit beyond the bigint range lists everything, as `i64::MAX` does.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut all_params = params.to_vec();
        all_params.push(&limit);
        self.read(|conn| {
            query(conn, sql, &all_params, context)?
                .iter()
                .map(|row| item(row).map_err(E::from))
                .collect()
        })
    }

    /// Runs `f` in one `READ COMMITTED` write transaction on a pooled connection and
    /// commits it (rolls it back when `f` fails), retrying serialization failures,
    /// deadlocks and lost insert races up to [`MAX_WRITE_ATTEMPTS`] times. `f` may run
    /// more than once: it must take every decision from what it reads.
    pub(crate) fn write<T, E>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError> + StoreError,
    {
        let mut conn = self.conn()?;
        match write_on(&mut conn, false, &mut f) {
            Err(e) if e.storage().is_some_and(closed_before_begin) => {
                drop(conn);
                write_on(&mut *self.conn()?, false, f)
            }
            other => other,
        }
    }
}

impl Db {
    /// Runs `f`, which sends exactly the one statement `sql`, on a pooled connection
    /// outside any explicit transaction: the statement is a transaction of its own
    /// (atomic, committed when it ends, with the session's durability), in one round trip
    /// instead of the three of `BEGIN`, statement, `COMMIT`. Retried like
    /// [`write`](Self::write) on a serialization failure, deadlock or lost insert race (the
    /// statement rolled back). A connection found broken while preparing `sql` (nothing was
    /// executed yet) is replaced once, as [`write`](Self::write) does when its `BEGIN`
    /// fails; one that breaks while the statement runs is reported, since the statement
    /// may have committed.
    pub(crate) fn write_statement<T, E>(
        &self,
        sql: &str,
        mut f: impl FnMut(&mut PgConn) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StorageError> + StoreError,
    {
        let mut conn = self.conn()?;
        let prepared = {
            let PgConn { client, statements } = &mut *conn;
            statements.get(client, sql).ctx(BEGIN_WRITE)
        };
        if let Err(e) = prepared {
            if !connection_broken(&e) {
                return Err(e.into());
            }
            drop(conn);
            conn = self.conn()?;
        }
        with_retries(|| f(&mut conn))
    }
}

/// A value read from `row`, with a storage error naming `context` when it has another
/// type (a table this crate did not write).
pub(crate) fn get<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    idx: usize,
    context: &'static str,
) -> Result<T, StorageError> {
    row.try_get(idx).ctx(context)
}

/// Queries `sql` on any client or transaction.
pub(crate) fn query(
    client: &mut impl Sql,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    context: &'static str,
) -> Result<Vec<postgres::Row>, StorageError> {
    client.query_rows(sql, params).ctx(context)
}

/// Queries at most one row of `sql`.
pub(crate) fn query_opt(
    client: &mut impl Sql,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    context: &'static str,
) -> Result<Option<postgres::Row>, StorageError> {
    client.query_row_opt(sql, params).ctx(context)
}

/// Executes `sql`, returning the number of rows it changed.
pub(crate) fn execute(
    client: &mut impl Sql,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    context: &'static str,
) -> Result<u64, StorageError> {
    client.execute_sql(sql, params).ctx(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_grow_and_stay_bounded() {
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let pause = retry_pause(attempt);
            assert!(pause <= MAX_RETRY_PAUSE, "{attempt}: {pause:?}");
            assert!(pause >= FIRST_RETRY_PAUSE / 2, "{attempt}: {pause:?}");
        }
        assert!(retry_pause(10) >= MAX_RETRY_PAUSE / 2);
    }

    #[test]
    fn only_postgres_conflicts_are_retried() {
        let plain = StorageError::without_source(BACKEND_NAME, StorageErrorKind::Engine, "x");
        assert!(!is_retryable(&plain));
        let io = StorageError::new(
            BACKEND_NAME,
            StorageErrorKind::Io,
            "x",
            std::io::Error::other("boom"),
        );
        assert!(!is_retryable(&io));
    }
}
