//! `SegmentLogStore` on the tables `segments` (one row of [`SegmentMeta`] per segment),
//! `segment_entries` and `segment_traces` (`(segment, idx) -> entry`), with the shared
//! ownership rules. Every write is one transaction on the backend's writer connection, so
//! concurrent appends to one segment are serialized whole.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId, StorageError};
use store_kit::segment::{
    SegmentMeta, bad_session_index_key, readable, sessions_newest_first, writable,
};

use crate::db::Db;
use crate::{
    BACKEND_NAME, SqlContext, corrupted, crc, distinct_ids, limit_to_sql, query_page, verify_crc,
};
use store_kit::checksum::Fields;

const META: &str = "SELECT session, entries, traces, live FROM segments WHERE segment = ?1";
const UPSERT_META: &str = "INSERT INTO segments (segment, session, entries, traces, live) \
                           VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (segment) DO UPDATE \
                           SET entries = excluded.entries, traces = excluded.traces, \
                           live = excluded.live";
const INSERT_ENTRY: &str =
    "INSERT INTO segment_entries (segment, idx, entry, crc) VALUES (?1, ?2, ?3, ?4)";
const INSERT_TRACE: &str =
    "INSERT INTO segment_traces (segment, idx, entry, crc) VALUES (?1, ?2, ?3, ?4)";
/// A segment's entries and its traces: the statement and the table whose name the
/// checksums cover.
const ENTRIES: (&str, &str) = (
    "SELECT entry, idx, crc FROM segment_entries WHERE segment = ?1 ORDER BY idx",
    "segment_entries",
);
const TRACES: (&str, &str) = (
    "SELECT entry, idx, crc FROM segment_traces WHERE segment = ?1 ORDER BY idx",
    "segment_traces",
);

/// The checksum of entry `idx` of `segment` in `table`.
fn entry_crc(table: &str, segment: SegmentId, idx: i64, entry: &[u8]) -> i64 {
    crc(table, entry_key(segment, idx).as_slice(), entry)
}

fn entry_key(segment: SegmentId, idx: i64) -> Fields {
    Fields::new().bytes(&segment.to_bytes()).int(idx)
}
const DELETE_ENTRIES_FROM: &str = "DELETE FROM segment_entries WHERE segment = ?1 AND idx >= ?2";
const LIVE_DESC: &str =
    "SELECT session, segment FROM segments WHERE live = 1 ORDER BY session DESC, segment DESC";
const SESSION_SEGMENTS_DESC: &str =
    "SELECT segment FROM segments WHERE live = 1 AND session = ?1 ORDER BY segment DESC";
const SESSION_OF: &str = "SELECT session FROM segments WHERE segment = ?1 AND live = 1";
/// The first session with a live segment at or after `?1` (one seek of the
/// `segments_by_session` index): a step of the skip scan that lists sessions.
const SESSION_FROM: &str = "SELECT min(session) FROM segments WHERE live = 1 AND session >= ?1";
/// The session's live segments after `?2` (`x''` lists from the first), at most `?3`.
const SESSION_SEGMENTS_AFTER: &str = "SELECT segment FROM segments \
                                      WHERE live = 1 AND session = ?1 AND segment > ?2 \
                                      ORDER BY segment LIMIT ?3";

/// The segment log.
pub struct SqliteSegmentLog {
    db: Arc<Db>,
}

impl std::fmt::Debug for SqliteSegmentLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSegmentLog").finish_non_exhaustive()
    }
}

fn id16(bytes: Vec<u8>) -> Result<[u8; 16], StorageError> {
    bytes
        .try_into()
        .map_err(|_| corrupted("decoding a session or segment id"))
}

fn count_from(n: i64) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| corrupted("decoding a segment entry count"))
}

fn count_to_sql(n: u64) -> Result<i64, SegmentError> {
    i64::try_from(n).map_err(|_| corrupted("a segment entry count left the INTEGER range").into())
}

fn read_meta(conn: &Connection, segment: SegmentId) -> Result<Option<SegmentMeta>, StorageError> {
    const CTX: &str = "reading segment metadata";
    let row = conn
        .prepare_cached(META)
        .and_then(|mut stmt| {
            stmt.query_row([segment.to_bytes()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .optional()
        })
        .ctx(CTX)?;
    row.map(|(session, entries, traces, live)| {
        Ok(SegmentMeta {
            session: SessionId::from_bytes(id16(session)?),
            entries: count_from(entries)?,
            traces: count_from(traces)?,
            live,
        })
    })
    .transpose()
}

fn write_meta(
    conn: &Connection,
    segment: SegmentId,
    meta: &SegmentMeta,
) -> Result<(), SegmentError> {
    let entries = count_to_sql(meta.entries)?;
    let traces = count_to_sql(meta.traces)?;
    conn.prepare_cached(UPSERT_META)
        .and_then(|mut stmt| {
            stmt.execute((
                segment.to_bytes(),
                meta.session.to_bytes(),
                entries,
                traces,
                meta.live,
            ))
        })
        .ctx("writing segment metadata")?;
    Ok(())
}

fn read_entries(
    conn: &Connection,
    (sql, table): (&'static str, &'static str),
    segment: SegmentId,
    count: u64,
) -> Result<Vec<Bytes>, StorageError> {
    const CTX: &str = "reading segment entries";
    let mut stmt = conn.prepare_cached(sql).ctx(CTX)?;
    let mut rows = stmt.query([segment.to_bytes()]).ctx(CTX)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(CTX)? {
        let idx: i64 = row.get(1).ctx(CTX)?;
        let key = entry_key(segment, idx);
        let entry: Vec<u8> = row
            .get(0)
            .map_err(|_| store_kit::checksum::mismatch(BACKEND_NAME, table, key.as_slice()))?;
        verify_crc(row, 2, table, key.as_slice(), &entry)?;
        out.push(Bytes::from(entry));
    }
    // Each entry verifies alone: the count in the segment's row tells a segment that lost
    // entries (a damaged page) from a shorter one.
    if out.len() as u64 != count {
        return Err(StorageError::corrupted(
            BACKEND_NAME,
            format!(
                "{table} of segment {} holds {} entries where its row in segments counts {count}",
                segment.0,
                out.len()
            ),
        ));
    }
    Ok(out)
}

impl SqliteSegmentLog {
    /// The segment log of `db`.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        SqliteSegmentLog { db }
    }
}

impl SegmentLogStore for SqliteSegmentLog {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        check_value(entry)?;
        self.db.write(|conn| {
            let mut meta = writable(read_meta(conn, segment)?, session, segment)?;
            meta.live = true;
            let index = meta.entries;
            let idx = count_to_sql(index)?;
            meta.entries += 1;
            // The metadata row first: entries reference it.
            write_meta(conn, segment, &meta)?;
            conn.prepare_cached(INSERT_ENTRY)
                .and_then(|mut stmt| {
                    let sum = entry_crc(ENTRIES.1, segment, idx, entry);
                    stmt.execute((segment.to_bytes(), idx, entry, sum))
                })
                .ctx("appending a segment entry")?;
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
        self.db.write(|conn| {
            let mut meta = writable(read_meta(conn, segment)?, session, segment)?;
            let index = count_to_sql(meta.traces)?;
            meta.traces += 1;
            write_meta(conn, segment, &meta)?;
            conn.prepare_cached(INSERT_TRACE)
                .and_then(|mut stmt| {
                    let sum = entry_crc(TRACES.1, segment, index, entry);
                    stmt.execute((segment.to_bytes(), index, entry, sum))
                })
                .ctx("appending a trace entry")?;
            Ok(())
        })
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        self.db.read_tx(|conn| {
            let meta = readable(read_meta(conn, segment)?, session, segment)?;
            Ok(read_entries(conn, ENTRIES, segment, meta.entries)?)
        })
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        self.db.read_tx(|conn| match read_meta(conn, segment)? {
            Some(meta) if meta.session == session => {
                Ok(read_entries(conn, TRACES, segment, meta.traces)?)
            }
            _ => Ok(Vec::new()),
        })
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        let meta = self.db.read(|conn| read_meta(conn, segment))?;
        Ok(readable(meta, session, segment)?.entries)
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        let meta = self.db.read(|conn| read_meta(conn, segment))?;
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
        self.db.write(|conn| {
            const CTX: &str = "writing a segment";
            let mut meta = writable(read_meta(conn, segment)?, session, segment)?;
            meta.live = true;
            meta.entries = entries.len() as u64;
            write_meta(conn, segment, &meta)?;
            conn.prepare_cached(DELETE_ENTRIES_FROM)
                .and_then(|mut stmt| stmt.execute((segment.to_bytes(), 0i64)))
                .ctx(CTX)?;
            let mut insert = conn.prepare_cached(INSERT_ENTRY).ctx(CTX)?;
            for (idx, entry) in entries.iter().enumerate() {
                let sum = entry_crc(ENTRIES.1, segment, idx as i64, entry);
                insert
                    .execute((segment.to_bytes(), idx as i64, entry, sum))
                    .ctx(CTX)?;
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
        self.db.write(|conn| {
            let stored = read_meta(conn, segment)?;
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
            let keep = count_to_sql(len)?;
            conn.prepare_cached(DELETE_ENTRIES_FROM)
                .and_then(|mut stmt| stmt.execute((segment.to_bytes(), keep)))
                .ctx("truncating a segment")?;
            meta.entries = len;
            write_meta(conn, segment, &meta)
        })
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        const CTX: &str = "listing sessions";
        let index = self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(LIVE_DESC).ctx(CTX)?;
            let mut rows = stmt.query([]).ctx(CTX)?;
            let mut index = Vec::new();
            while let Some(row) = rows.next().ctx(CTX)? {
                index.push((
                    SessionId::from_bytes(id16(row.get(0).ctx(CTX)?)?),
                    SegmentId::from_bytes(id16(row.get(1).ctx(CTX)?)?),
                ));
            }
            Ok::<_, StorageError>(index)
        })?;
        Ok(sessions_newest_first(index))
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        const CTX: &str = "listing segments";
        Ok(self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(SESSION_SEGMENTS_DESC).ctx(CTX)?;
            let mut rows = stmt.query([session.to_bytes()]).ctx(CTX)?;
            let mut segments = Vec::new();
            while let Some(row) = rows.next().ctx(CTX)? {
                segments.push(SegmentId::from_bytes(id16(row.get(0).ctx(CTX)?)?));
            }
            Ok::<_, StorageError>(segments)
        })?)
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        let sessions = distinct_ids(
            &self.db,
            SESSION_FROM,
            after.map(|session| session.to_bytes()),
            limit,
            "listing sessions",
            || bad_session_index_key(BACKEND_NAME),
        )?;
        Ok(sessions.into_iter().map(SessionId::from_bytes).collect())
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        const CTX: &str = "listing segments";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.map(|segment| segment.to_bytes().to_vec());
        let params = (
            session.to_bytes(),
            after.unwrap_or_default(),
            limit_to_sql(limit),
        );
        self.db.read(|conn| {
            query_page(conn, SESSION_SEGMENTS_AFTER, params, CTX, |row| {
                Ok(SegmentId::from_bytes(id16(row.get(0).ctx(CTX)?)?))
            })
        })
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        let session: Option<Vec<u8>> = self.db.read(|conn| {
            conn.prepare_cached(SESSION_OF)
                .and_then(|mut stmt| {
                    stmt.query_row([segment.to_bytes()], |r| r.get(0))
                        .optional()
                })
                .ctx("looking up a segment's session")
        })?;
        Ok(session
            .map(|s| id16(s).map(SessionId::from_bytes))
            .transpose()?)
    }
}
