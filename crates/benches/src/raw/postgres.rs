//! The raw PostgreSQL baseline: the same work as store-postgres, written directly as SQL
//! over the same client (`postgres`) and the same kind of pool (`r2d2`, as many
//! connections as the store's scratch location allows), on a schema of its own on the same
//! server.
//!
//! Each statement is prepared once per pooled connection, and the pool does not test a
//! connection when it is taken: the same two economies store-postgres makes, so the ratio
//! prices the store's own work, not a round trip the baseline wastes.
//!
//! - The engine baseline ([`open`]) as a [`Kv`]: an `engine_kv` table of store-postgres's
//!   shape (`key bytea PRIMARY KEY, value bytea`), `SELECT` by key, a range `SELECT ...
//!   ORDER BY key LIMIT`, and `put_batch` as one self-committing `unnest` upsert, like the
//!   store's, with `synchronous_commit` on ([`Durability::Immediate`]) or off (a key
//!   repeated in a batch folded to its last value first, which PostgreSQL's upsert
//!   requires). It writes the pairs only: no batch log, no sequence counter (the store's
//!   extra work, which the ratio prices).
//! - [`RawLedger`]: double-entry commits as plain SQL. One transaction per draft: an
//!   `UPDATE ... RETURNING balance` per posting (accounts in key order, so concurrent
//!   commits never deadlock), one `INSERT` of the transaction row and one of its postings
//!   (with the balances after), then `COMMIT` with `synchronous_commit = on`. What it leaves
//!   out of the store's commit: the per-book advisory lock and gapless sequence (book head),
//!   the idempotency check, the event row, the asset totals and the input checks.

use std::collections::HashMap;
use std::hint::black_box;
use std::marker::PhantomData;
use std::path::Path;
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls, Statement};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use store::postgres::PostgresLocation;
use store_api::{Direction, Durability, Transaction};

use crate::error::{BenchError, Context};
use crate::measure::{Bench, Samples};
use crate::ops::ledger::{LedgerOp, concurrent_calls};
use crate::raw::Kv;
use crate::workloads::{COMMIT_BATCH, LEDGER_PRELOAD, LedgerSpec, Rng};

/// Where a raw baseline's directory records its schema, so that reopening the directory
/// (as [`raw_fixture`](crate::ops::engine::raw_fixture) does after loading) finds the same
/// table.
const LOCATION_FILE: &str = "raw-postgres-location";

const ENGINE_TABLE: &str = "CREATE TABLE IF NOT EXISTS engine_kv (
    key bytea PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 480),
    value bytea NOT NULL
)";
const GET: &str = "SELECT value FROM engine_kv WHERE key = $1";
const UPSERT: &str = "INSERT INTO engine_kv (key, value) \
                      SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const SCAN_FORWARD: &str = "SELECT key, value FROM engine_kv WHERE key >= $1 AND key <= $2 \
                            ORDER BY key ASC LIMIT $3";
const SCAN_REVERSE: &str = "SELECT key, value FROM engine_kv WHERE key >= $1 AND key <= $2 \
                            ORDER BY key DESC LIMIT $3";

const LEDGER_TABLES: &str = "
CREATE TABLE IF NOT EXISTS raw_accounts (
    book text COLLATE \"C\" NOT NULL,
    path text COLLATE \"C\" NOT NULL,
    asset text COLLATE \"C\" NOT NULL,
    balance bigint NOT NULL,
    PRIMARY KEY (book, path)
);
CREATE TABLE IF NOT EXISTS raw_transactions (
    txid uuid PRIMARY KEY,
    book text COLLATE \"C\" NOT NULL,
    at bigint NOT NULL,
    posting_count integer NOT NULL
);
CREATE TABLE IF NOT EXISTS raw_postings (
    txid uuid NOT NULL REFERENCES raw_transactions (txid),
    idx integer NOT NULL,
    book text COLLATE \"C\" NOT NULL,
    path text COLLATE \"C\" NOT NULL,
    asset text COLLATE \"C\" NOT NULL,
    amount numeric(20, 0) NOT NULL CHECK (amount > 0),
    direction text NOT NULL,
    balance_after bigint NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (txid, idx),
    FOREIGN KEY (book, path) REFERENCES raw_accounts (book, path)
);
CREATE INDEX IF NOT EXISTS raw_postings_by_account ON raw_postings (book, path, at, idx);";
const OPEN_ACCOUNT: &str = "INSERT INTO raw_accounts (book, path, asset, balance) \
                            VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING";
const UPDATE_BALANCE: &str = "UPDATE raw_accounts SET balance = balance + $3 \
                              WHERE book = $1 AND path = $2 RETURNING balance";
const INSERT_TRANSACTION: &str =
    "INSERT INTO raw_transactions (txid, book, at, posting_count) VALUES ($1, $2, $3, $4)";
const INSERT_POSTINGS: &str = "INSERT INTO raw_postings \
     (txid, idx, book, path, asset, amount, direction, balance_after, at) \
     SELECT $1::uuid, i - 1, $2::text, p, a, m::numeric, d, b, $3::int8 \
     FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::int8[]) \
     WITH ORDINALITY AS t (p, a, m, d, b, i)";

/// The statements a baseline runs, prepared once on each pooled connection when it opens,
/// as a user who knows PostgreSQL writes them (a statement sent as text costs a second
/// round trip to prepare it, which store-postgres does not pay either).
trait Prepared: Sized + Send + Sync + 'static {
    /// The tables the statements need, created before any connection prepares them.
    const TABLES: &'static str;

    /// The statements, prepared on `client`.
    fn prepare(client: &mut Client) -> Result<Self, ::postgres::Error>;
}

/// The engine baseline's statements.
struct EngineStatements {
    get: Statement,
    upsert: Statement,
    scan_forward: Statement,
    scan_reverse: Statement,
}

impl Prepared for EngineStatements {
    const TABLES: &'static str = ENGINE_TABLE;

    fn prepare(client: &mut Client) -> Result<Self, ::postgres::Error> {
        Ok(EngineStatements {
            get: client.prepare(GET)?,
            upsert: client.prepare(UPSERT)?,
            scan_forward: client.prepare(SCAN_FORWARD)?,
            scan_reverse: client.prepare(SCAN_REVERSE)?,
        })
    }
}

/// The ledger baseline's statements.
struct LedgerStatements {
    update_balance: Statement,
    insert_transaction: Statement,
    insert_postings: Statement,
}

impl Prepared for LedgerStatements {
    const TABLES: &'static str = LEDGER_TABLES;

    fn prepare(client: &mut Client) -> Result<Self, ::postgres::Error> {
        Ok(LedgerStatements {
            update_balance: client.prepare(UPDATE_BALANCE)?,
            insert_transaction: client.prepare(INSERT_TRANSACTION)?,
            insert_postings: client.prepare(INSERT_POSTINGS)?,
        })
    }
}

/// A pooled connection with its prepared statements.
struct PreparedClient<S> {
    client: Client,
    statements: S,
}

/// Opens the pool's connections: `r2d2_postgres`'s, each with the session settings of
/// store-postgres (search path and commit durability) and the statements `S` prepared.
struct PreparingManager<S> {
    manager: PostgresConnectionManager<NoTls>,
    session: String,
    statements: PhantomData<fn() -> S>,
}

impl<S: Prepared> ManageConnection for PreparingManager<S> {
    type Connection = PreparedClient<S>;
    type Error = ::postgres::Error;

    fn connect(&self) -> Result<PreparedClient<S>, ::postgres::Error> {
        let mut client = self.manager.connect()?;
        client.batch_execute(&self.session)?;
        let statements = S::prepare(&mut client)?;
        Ok(PreparedClient { client, statements })
    }

    fn is_valid(&self, conn: &mut PreparedClient<S>) -> Result<(), ::postgres::Error> {
        self.manager.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PreparedClient<S>) -> bool {
        self.manager.has_broken(&mut conn.client)
    }
}

/// PostgreSQL used directly: a pool of connections on one schema, each with the
/// statements `S` prepared.
struct RawPg<S: Prepared> {
    pool: Pool<PreparingManager<S>>,
}

impl<S: Prepared> RawPg<S> {
    /// A pool of `location.pool_size()` connections on `location`'s schema, committing
    /// with `synchronous_commit` on under [`Durability::Immediate`]. The schema and the
    /// tables of `S` are created first (when missing) on a connection of their own.
    ///
    /// Like store-postgres's pool, it does not test a connection when it is taken (r2d2
    /// would otherwise spend a round trip on each call).
    fn connect(location: &PostgresLocation, durability: Durability) -> Result<Self, BenchError> {
        let schema = location.schema();
        let search_path = format!("SET search_path TO \"{schema}\";");
        let mut setup = location
            .config()
            .connect(NoTls)
            .context("raw postgres: connecting")?;
        setup
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; {search_path} {}",
                S::TABLES
            ))
            .context("raw postgres: creating the schema and tables")?;
        drop(setup);
        let synchronous_commit = match durability {
            Durability::Immediate => "on",
            Durability::Relaxed => "off",
        };
        let manager = PreparingManager {
            manager: PostgresConnectionManager::new(location.config().clone(), NoTls),
            session: format!("{search_path} SET synchronous_commit TO {synchronous_commit};"),
            statements: PhantomData,
        };
        let pool = Pool::builder()
            .max_size(location.pool_size())
            .min_idle(Some(0))
            .connection_timeout(location.pool_timeout())
            .test_on_check_out(false)
            .build(manager)
            .context("raw postgres: connecting")?;
        Ok(RawPg { pool })
    }

    fn client(&self) -> Result<PooledConnection<PreparingManager<S>>, BenchError> {
        self.pool.get().context("raw postgres: taking a connection")
    }
}

/// Opens (creating on first use) the raw engine table of the directory `dir`: a fresh
/// scratch schema on the test server, recorded in `dir` so that a second open finds it.
pub fn open(dir: &Path, durability: Durability) -> Result<Box<dyn Kv>, BenchError> {
    let file = dir.join(LOCATION_FILE);
    let location: PostgresLocation = if file.exists() {
        std::fs::read_to_string(&file)
            .context("raw postgres: reading the location")?
            .trim()
            .parse()
            .context("raw postgres: parsing the location")?
    } else {
        let location =
            store::postgres::scratch::fresh_location().context("raw postgres: a scratch schema")?;
        std::fs::write(&file, location.to_string()).context("raw postgres: saving the location")?;
        location
    };
    let raw = RawPg::<EngineStatements>::connect(&location, durability)?;
    Ok(Box::new(raw))
}

impl Kv for RawPg<EngineStatements> {
    fn get(&self, key: &[u8]) -> Result<Option<usize>, BenchError> {
        let mut conn = self.client()?;
        let PreparedClient { client, statements } = &mut *conn;
        let row = client
            .query_opt(&statements.get, &[&key])
            .context("raw postgres: get")?;
        let value = row.map(|r| bytes::Bytes::from(r.get::<_, Vec<u8>>(0)));
        Ok(black_box(value).map(|v| v.len()))
    }

    fn put_batch(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), BenchError> {
        // One row per key, with its last value: PostgreSQL refuses an upsert that touches
        // a row twice, so a batch repeating a key must be folded first (as the store does).
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(pairs.len());
        for (i, (key, _)) in pairs.iter().enumerate() {
            last.insert(key, i);
        }
        let mut keys: Vec<&[u8]> = Vec::with_capacity(last.len());
        let mut values: Vec<&[u8]> = Vec::with_capacity(last.len());
        for (i, (key, value)) in pairs.iter().enumerate() {
            if last.get(key) == Some(&i) {
                keys.push(key);
                values.push(value);
            }
        }
        // One statement commits on its own, atomically: no BEGIN and COMMIT round trips.
        let mut conn = self.client()?;
        let PreparedClient { client, statements } = &mut *conn;
        client
            .execute(&statements.upsert, &[&keys, &values])
            .context("raw postgres: upsert")?;
        Ok(())
    }

    fn range_scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        forward: bool,
    ) -> Result<usize, BenchError> {
        let mut conn = self.client()?;
        let PreparedClient { client, statements } = &mut *conn;
        let statement = if forward {
            &statements.scan_forward
        } else {
            &statements.scan_reverse
        };
        let rows = client
            .query(statement, &[&start, &end, &(limit as i64)])
            .context("raw postgres: range scan")?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for row in rows {
            out.push((
                bytes::Bytes::from(row.get::<_, Vec<u8>>(0)),
                bytes::Bytes::from(row.get::<_, Vec<u8>>(1)),
            ));
        }
        Ok(black_box(out).len())
    }
}

/// Double-entry commits as raw SQL, on a schema of their own (see the [module docs](self)).
pub struct RawLedger {
    raw: RawPg<LedgerStatements>,
    location: PostgresLocation,
}

impl RawLedger {
    /// A durable raw ledger on `location`: creates its tables and opens the benchmark's
    /// accounts when missing.
    pub fn open(location: PostgresLocation) -> Result<Self, BenchError> {
        let ledger = RawLedger::attach(location)?;
        let spec = LedgerSpec::new().context("building the ledger spec")?;
        let mut conn = ledger.raw.client()?;
        let mut tx = conn.client.transaction().context("raw postgres: begin")?;
        for id in &spec.accounts {
            tx.execute(
                OPEN_ACCOUNT,
                &[
                    &id.book.as_str(),
                    &id.path.as_str(),
                    &spec.asset.id.as_str(),
                ],
            )
            .context("raw postgres: opening an account")?;
        }
        tx.commit().context("raw postgres: commit")?;
        drop(conn);
        Ok(ledger)
    }

    /// A durable raw ledger on `location`, whose tables and accounts [`open`](Self::open)
    /// made before.
    pub fn attach(location: PostgresLocation) -> Result<Self, BenchError> {
        let raw = RawPg::connect(&location, Durability::Immediate)?;
        Ok(RawLedger { raw, location })
    }

    /// A durable raw ledger on a fresh scratch schema, preloaded with as many drafts as the
    /// store's ledger fixture ([`LEDGER_PRELOAD`], in transactions of [`COMMIT_BATCH`]).
    pub fn fresh() -> Result<Self, BenchError> {
        let location =
            store::postgres::scratch::fresh_location().context("raw postgres: a scratch schema")?;
        let ledger = RawLedger::open(location)?;
        let spec = LedgerSpec::new().context("building the ledger spec")?;
        let mut rng = Rng::new(0x1ED6E0);
        let mut conn = ledger.raw.client()?;
        let PreparedClient { client, statements } = &mut *conn;
        let mut left = LEDGER_PRELOAD;
        while left > 0 {
            let n = left.min(COMMIT_BATCH as u64);
            let mut tx = client.transaction().context("raw postgres: begin")?;
            tx.batch_execute("SET LOCAL synchronous_commit TO off")
                .context("raw postgres: relaxed load")?;
            for _ in 0..n {
                commit_in(&mut tx, statements, &spec.draft(&mut rng))?;
            }
            tx.commit().context("raw postgres: commit")?;
            left -= n;
        }
        drop(conn);
        Ok(ledger)
    }

    /// Where the raw ledger lives.
    pub fn location(&self) -> &PostgresLocation {
        &self.location
    }

    /// Commits `tx` in a transaction of its own.
    pub fn commit(&self, tx: &Transaction) -> Result<(), BenchError> {
        let mut conn = self.raw.client()?;
        let PreparedClient { client, statements } = &mut *conn;
        let mut sql = client.transaction().context("raw postgres: begin")?;
        commit_in(&mut sql, statements, tx)?;
        sql.commit().context("raw postgres: commit")
    }

    /// `threads` threads committing drafts concurrently, as
    /// [`concurrent_commits`](crate::ops::ledger::concurrent_commits) does on a store.
    pub fn concurrent_commits(
        &self,
        threads: usize,
        per_thread: u64,
        time: Duration,
    ) -> Result<Samples, BenchError> {
        let spec = LedgerSpec::new().context("building the ledger spec")?;
        concurrent_calls(threads, per_thread, time, |rng| {
            let tx = spec.draft(rng);
            let began = Instant::now();
            self.commit(&tx)?;
            Ok(began.elapsed())
        })
    }
}

/// The statements of one draft's commit, inside `sql`.
fn commit_in(
    sql: &mut ::postgres::Transaction<'_>,
    statements: &LedgerStatements,
    tx: &Transaction,
) -> Result<(), BenchError> {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    // Balances in account order, so that concurrent commits lock rows in one order.
    let mut order: Vec<usize> = (0..tx.postings.len()).collect();
    order.sort_by(|&a, &b| tx.postings[a].account.cmp(&tx.postings[b].account));
    let mut after = vec![0i64; tx.postings.len()];
    for i in order {
        let p = &tx.postings[i];
        let amount = i64::try_from(p.amount).context("raw postgres: amount")?;
        let delta = match p.direction {
            Direction::Debit => amount,
            Direction::Credit => -amount,
        };
        let row = sql
            .query_one(
                &statements.update_balance,
                &[&p.account.book.as_str(), &p.account.path.as_str(), &delta],
            )
            .context("raw postgres: updating a balance")?;
        after[i] = row.get(0);
    }
    let count = i32::try_from(tx.postings.len()).context("raw postgres: posting count")?;
    sql.execute(
        &statements.insert_transaction,
        &[&tx.id.0, &tx.book.as_str(), &at, &count],
    )
    .context("raw postgres: inserting the transaction")?;
    let paths: Vec<&str> = tx
        .postings
        .iter()
        .map(|p| p.account.path.as_str())
        .collect();
    let assets: Vec<&str> = tx.postings.iter().map(|p| p.asset.as_str()).collect();
    let amounts: Vec<String> = tx.postings.iter().map(|p| p.amount.to_string()).collect();
    let directions: Vec<&str> = tx
        .postings
        .iter()
        .map(|p| match p.direction {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        })
        .collect();
    sql.execute(
        &statements.insert_postings,
        &[
            &tx.id.0,
            &tx.book.as_str(),
            &at,
            &paths,
            &assets,
            &amounts,
            &directions,
            &after,
        ],
    )
    .context("raw postgres: inserting the postings")?;
    Ok(())
}

/// [`RawLedger`] as a bench of the single durable commit, drawing the same drafts as
/// [`LedgerBench`](crate::ops::ledger::LedgerBench) (same generator and seed).
pub struct RawLedgerBench {
    ledger: RawLedger,
    spec: LedgerSpec,
    rng: Rng,
    draft: Option<Transaction>,
}

impl RawLedgerBench {
    /// Benchmarks `ledger`.
    pub fn new(ledger: RawLedger) -> Result<Self, BenchError> {
        Ok(RawLedgerBench {
            ledger,
            spec: LedgerSpec::new().context("building the ledger spec")?,
            rng: Rng::new(0x1ED6E1),
            draft: None,
        })
    }

    /// The ledger benchmarked.
    pub fn ledger(&self) -> &RawLedger {
        &self.ledger
    }
}

impl Bench for RawLedgerBench {
    type Op = LedgerOp;

    fn prepare(&mut self, op: LedgerOp) -> Result<(), BenchError> {
        if op != LedgerOp::Commit {
            return Err(BenchError::msg(format!(
                "the raw PostgreSQL ledger measures single commits only, not {op:?}"
            )));
        }
        self.draft = Some(self.spec.draft(&mut self.rng));
        Ok(())
    }

    fn run(&mut self, op: LedgerOp) -> Result<(), BenchError> {
        if op != LedgerOp::Commit {
            return Err(BenchError::msg(format!(
                "the raw PostgreSQL ledger measures single commits only, not {op:?}"
            )));
        }
        let tx = match self.draft.take() {
            Some(tx) => tx,
            None => self.spec.draft(&mut self.rng),
        };
        self.ledger.commit(&tx)
    }
}
