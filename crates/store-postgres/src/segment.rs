//! `SegmentLogStore` on the tables `segments` (one row of [`SegmentMeta`] per segment),
//! `segment_entries` and `segment_traces` (`(segment, idx) -> entry`), with the shared
//! ownership rules.
//!
//! Every write first makes sure the segment's row exists (a placeholder owned by the
//! writing session, `ON CONFLICT DO NOTHING`, rolled back with the transaction if the write
//! fails) and locks it (`SELECT ... FOR UPDATE`): concurrent writes to one segment, from any
//! instance, are serialized whole, so appends are never lost or interleaved and each gets
//! the next index.

use std::sync::Arc;

use bytes::Bytes;
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId, StorageError};
use store_kit::segment::{SegmentMeta, readable, sessions_newest_first, writable};
use uuid::Uuid;

use crate::db::{Db, Sql, Tx, execute, get, query, query_opt};
use crate::{seq_from_sql, seq_to_sql};

const META: &str = "SELECT session, entries, traces, live FROM segments WHERE segment = $1";
const PLACEHOLDER: &str = "INSERT INTO segments (segment, session, entries, traces, live) \
                           VALUES ($1, $2, 0, 0, false) ON CONFLICT (segment) DO NOTHING";
const LOCK_META: &str =
    "SELECT session, entries, traces, live FROM segments WHERE segment = $1 FOR UPDATE";
const UPDATE_META: &str =
    "UPDATE segments SET entries = $2, traces = $3, live = $4 WHERE segment = $1";
const INSERT_ENTRY: &str = "INSERT INTO segment_entries (segment, idx, entry) VALUES ($1, $2, $3)";
const INSERT_ENTRIES: &str = "INSERT INTO segment_entries (segment, idx, entry) \
                              SELECT $1, i - 1, e FROM unnest($2::bytea[]) WITH ORDINALITY AS t (e, i)";
const INSERT_TRACE: &str = "INSERT INTO segment_traces (segment, idx, entry) VALUES ($1, $2, $3)";
const ENTRIES: &str = "SELECT entry FROM segment_entries WHERE segment = $1 ORDER BY idx";
const TRACES: &str = "SELECT entry FROM segment_traces WHERE segment = $1 ORDER BY idx";
const DELETE_ENTRIES_FROM: &str = "DELETE FROM segment_entries WHERE segment = $1 AND idx >= $2";
const LIVE_DESC: &str =
    "SELECT session, segment FROM segments WHERE live ORDER BY session DESC, segment DESC";
const SESSION_SEGMENTS_DESC: &str =
    "SELECT segment FROM segments WHERE live AND session = $1 ORDER BY segment DESC";
/// The sessions with a live segment, ascending, each once, at most the last parameter: a
/// skip scan of the partial index `segments_by_session`, one index probe per session
/// listed whatever it holds (a recursive query the server evaluates only as far as the
/// limit asks). The first session is the first of all ([`SESSIONS_FROM_FIRST`]) or the
/// first after `$1` ([`SESSIONS_AFTER`]).
macro_rules! sessions_from {
    ($first:literal, $limit:literal) => {
        concat!(
            "WITH RECURSIVE sessions (session) AS ( \
                 (SELECT session FROM segments WHERE live ",
            $first,
            " ORDER BY session LIMIT 1) \
                 UNION ALL \
                 SELECT (SELECT s.session FROM segments AS s \
                         WHERE s.live AND s.session > p.session ORDER BY s.session LIMIT 1) \
                 FROM sessions AS p WHERE p.session IS NOT NULL) \
             SELECT session FROM sessions WHERE session IS NOT NULL LIMIT ",
            $limit
        )
    };
}
pub(crate) const SESSIONS_FROM_FIRST: &str = sessions_from!("", "$1");
pub(crate) const SESSIONS_AFTER: &str = sessions_from!("AND session > $1", "$2");
/// The session `$1`'s live segments, ascending, at most the last parameter, from the first
/// one or after `$2`: a range of the partial index `segments_by_session`.
pub(crate) const SESSION_SEGMENTS_FROM_FIRST: &str =
    "SELECT segment FROM segments WHERE live AND session = $1 ORDER BY segment LIMIT $2";
pub(crate) const SESSION_SEGMENTS_AFTER: &str = "SELECT segment FROM segments \
                                      WHERE live AND session = $1 AND segment > $2 \
                                      ORDER BY segment LIMIT $3";
const SESSION_OF: &str = "SELECT session FROM segments WHERE segment = $1 AND live";

/// The segment log.
pub struct PostgresSegmentLog {
    db: Arc<Db>,
}

impl std::fmt::Debug for PostgresSegmentLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSegmentLog").finish_non_exhaustive()
    }
}

fn meta_from(row: &postgres::Row) -> Result<SegmentMeta, StorageError> {
    const CTX: &str = "reading segment metadata";
    Ok(SegmentMeta {
        session: SessionId(get::<Uuid>(row, 0, CTX)?),
        entries: seq_from_sql(get(row, 1, CTX)?, "decoding a segment entry count")?,
        traces: seq_from_sql(get(row, 2, CTX)?, "decoding a segment trace count")?,
        live: get(row, 3, CTX)?,
    })
}

fn read_meta(
    client: &mut impl Sql,
    segment: SegmentId,
) -> Result<Option<SegmentMeta>, StorageError> {
    query_opt(client, META, &[&segment.0], "reading segment metadata")?
        .map(|row| meta_from(&row))
        .transpose()
}

/// The segment's metadata, its row created (as a placeholder owned by `session`) when
/// missing and locked until the transaction ends; `None` stands for the placeholder, which
/// is a segment never touched.
fn lock_meta(
    tx: &mut Tx<'_>,
    session: SessionId,
    segment: SegmentId,
) -> Result<Option<SegmentMeta>, StorageError> {
    const CTX: &str = "locking a segment";
    let created = execute(tx, PLACEHOLDER, &[&segment.0, &session.0], CTX)? == 1;
    let meta = query_opt(tx, LOCK_META, &[&segment.0], CTX)?
        .map(|row| meta_from(&row))
        .transpose()?;
    Ok(meta.filter(|_| !created))
}

fn write_meta(tx: &mut Tx<'_>, segment: SegmentId, meta: &SegmentMeta) -> Result<(), StorageError> {
    execute(
        tx,
        UPDATE_META,
        &[
            &segment.0,
            &seq_to_sql(meta.entries)?,
            &seq_to_sql(meta.traces)?,
            &meta.live,
        ],
        "writing segment metadata",
    )?;
    Ok(())
}

fn read_entries(
    client: &mut impl Sql,
    sql: &'static str,
    segment: SegmentId,
) -> Result<Vec<Bytes>, StorageError> {
    const CTX: &str = "reading segment entries";
    query(client, sql, &[&segment.0], CTX)?
        .iter()
        .map(|row| Ok(Bytes::from(get::<Vec<u8>>(row, 0, CTX)?)))
        .collect()
}

impl PostgresSegmentLog {
    /// The segment log of `db`.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        PostgresSegmentLog { db }
    }
}

impl SegmentLogStore for PostgresSegmentLog {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        check_value(entry)?;
        self.db.write(|tx| {
            let mut meta = writable(lock_meta(tx, session, segment)?, session, segment)?;
            meta.live = true;
            let index = meta.entries;
            meta.entries += 1;
            write_meta(tx, segment, &meta)?;
            execute(
                tx,
                INSERT_ENTRY,
                &[&segment.0, &seq_to_sql(index)?, &entry],
                "appending a segment entry",
            )?;
            Ok(index)
        })
    }

    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError> {
        check_value(entry)?;
        self.db.write(|tx| {
            let mut meta = writable(lock_meta(tx, session, segment)?, session, segment)?;
            let index = meta.traces;
            meta.traces += 1;
            write_meta(tx, segment, &meta)?;
            execute(
                tx,
                INSERT_TRACE,
                &[&segment.0, &seq_to_sql(index)?, &entry],
                "appending a trace entry",
            )?;
            Ok(())
        })
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        self.db.read_tx(|tx| {
            readable(read_meta(tx, segment)?, session, segment)?;
            Ok(read_entries(tx, ENTRIES, segment)?)
        })
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        self.db.read_tx(|tx| match read_meta(tx, segment)? {
            Some(meta) if meta.session == session => Ok(read_entries(tx, TRACES, segment)?),
            _ => Ok(Vec::new()),
        })
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        let meta = self
            .db
            .read(|conn| Ok::<_, SegmentError>(read_meta(conn, segment)?))?;
        Ok(readable(meta, session, segment)?.entries)
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        let meta = self
            .db
            .read(|conn| Ok::<_, SegmentError>(read_meta(conn, segment)?))?;
        Ok(readable(meta, session, segment).is_ok())
    }

    fn create_segment(
        &self,
        session: SessionId,
        segment: SegmentId,
        entries: &[&[u8]],
    ) -> Result<(), SegmentError> {
        for entry in entries {
            check_value(entry)?;
        }
        self.db.write(|tx| {
            const CTX: &str = "writing a segment";
            let mut meta = writable(lock_meta(tx, session, segment)?, session, segment)?;
            meta.live = true;
            meta.entries = entries.len() as u64;
            write_meta(tx, segment, &meta)?;
            execute(tx, DELETE_ENTRIES_FROM, &[&segment.0, &0i64], CTX)?;
            if !entries.is_empty() {
                execute(tx, INSERT_ENTRIES, &[&segment.0, &entries], CTX)?;
            }
            Ok(())
        })
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        self.db.write(|tx| {
            let stored = lock_meta(tx, session, segment)?;
            // A write: another session's segment is `WrongSession`, then only a live
            // segment can be truncated.
            writable(stored, session, segment)?;
            let mut meta = readable(stored, session, segment)?;
            if len > meta.entries {
                return Err(SegmentError::TruncateBeyondEnd {
                    segment,
                    requested: len,
                    len: meta.entries,
                });
            }
            execute(
                tx,
                DELETE_ENTRIES_FROM,
                &[&segment.0, &seq_to_sql(len)?],
                "truncating a segment",
            )?;
            meta.entries = len;
            write_meta(tx, segment, &meta)?;
            Ok(())
        })
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        const CTX: &str = "listing sessions";
        let index = self.db.read(|conn| {
            query(conn, LIVE_DESC, &[], CTX)?
                .iter()
                .map(|row| {
                    Ok((
                        SessionId(get::<Uuid>(row, 0, CTX)?),
                        SegmentId(get::<Uuid>(row, 1, CTX)?),
                    ))
                })
                .collect::<Result<Vec<_>, SegmentError>>()
        })?;
        Ok(sessions_newest_first(index))
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        const CTX: &str = "listing segments";
        self.db.read(|conn| {
            query(conn, SESSION_SEGMENTS_DESC, &[&session.0], CTX)?
                .iter()
                .map(|row| Ok(SegmentId(get::<Uuid>(row, 0, CTX)?)))
                .collect()
        })
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        const CTX: &str = "looking up a segment's session";
        self.db.read(|conn| {
            query_opt(conn, SESSION_OF, &[&segment.0], CTX)?
                .map(|row| Ok(SessionId(get::<Uuid>(&row, 0, CTX)?)))
                .transpose()
        })
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        const CTX: &str = "listing sessions";
        let session = |row: &postgres::Row| Ok(SessionId(get::<Uuid>(row, 0, CTX)?));
        match after {
            None => self.db.list(SESSIONS_FROM_FIRST, &[], limit, CTX, session),
            Some(after) => self
                .db
                .list(SESSIONS_AFTER, &[&after.0], limit, CTX, session),
        }
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        const CTX: &str = "listing segments";
        let segment = |row: &postgres::Row| Ok(SegmentId(get::<Uuid>(row, 0, CTX)?));
        match after {
            None => self.db.list(
                SESSION_SEGMENTS_FROM_FIRST,
                &[&session.0],
                limit,
                CTX,
                segment,
            ),
            Some(after) => self.db.list(
                SESSION_SEGMENTS_AFTER,
                &[&session.0, &after.0],
                limit,
                CTX,
                segment,
            ),
        }
    }
}
