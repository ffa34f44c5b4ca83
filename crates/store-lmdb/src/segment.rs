//! `SegmentLogStore` on four LMDB databases: `segment.meta` (segment id → `SegmentMeta`),
//! `segment.sessions` (the session index `session(16) segment(16)`, live segments only),
//! `segment.entries` and `segment.traces` (`segment(16) index(u64be)` → the entry bytes,
//! stored as given). Ownership rules are the shared ones of [`store_kit::segment`].

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use heed::{RoTxn, RwTxn};
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId, StorageError};
use store_kit::codec::{decode, encode};
use store_kit::segment::{
    SegmentMeta, bad_session_index_key, entry_key, existing_writable, meta_key,
    parse_session_index_key, readable, segments_after, session_index_key, sessions_newest_first,
    writable,
};

use crate::listing::{distinct_leading, list_page};
use crate::tables::{Abort, Db, Table, Tables};
use crate::{BACKEND_NAME, HeedExt};

/// The LMDB segment log. Writes run under the backend's writer lock, so concurrent appends
/// to one segment are serialized whole.
#[derive(Debug)]
pub struct LmdbSegmentLog {
    db: Arc<Db>,
}

impl LmdbSegmentLog {
    /// The segment log of `db`.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        LmdbSegmentLog { db }
    }
}

/// The stored metadata of `segment`.
fn meta(
    txn: &RoTxn<'_>,
    t: &Tables<'_>,
    segment: SegmentId,
) -> Result<Option<SegmentMeta>, StorageError> {
    match t
        .segment_meta
        .get(txn, &meta_key(segment))
        .ctx("reading segment metadata")?
    {
        Some(bytes) => decode(BACKEND_NAME, "segment metadata", bytes).map(Some),
        None => Ok(None),
    }
}

fn put_meta(
    txn: &mut RwTxn<'_>,
    t: &Tables<'_>,
    segment: SegmentId,
    meta: &SegmentMeta,
) -> Result<(), Abort<SegmentError>> {
    let bytes = encode(BACKEND_NAME, "segment metadata", meta)?;
    t.segment_meta.put(txn, &meta_key(segment), &bytes)?;
    Ok(())
}

/// Marks the segment live and indexes it under its session.
fn make_live(
    txn: &mut RwTxn<'_>,
    t: &Tables<'_>,
    meta: &mut SegmentMeta,
    segment: SegmentId,
) -> Result<(), Abort<SegmentError>> {
    if !meta.live {
        meta.live = true;
        t.segment_sessions
            .put(txn, &session_index_key(meta.session, segment), &[])?;
    }
    Ok(())
}

/// Key bounds of the entries `from..to` of `segment`.
fn entry_range(segment: SegmentId, from: u64, to: u64) -> (Vec<u8>, Vec<u8>) {
    (entry_key(segment, from), entry_key(segment, to))
}

/// Deletes the entries `from..to` of `segment` in `table`.
fn delete_entries(
    txn: &mut RwTxn<'_>,
    table: Table<'_>,
    segment: SegmentId,
    from: u64,
    to: u64,
) -> Result<(), Abort<SegmentError>> {
    if from < to {
        let (start, end) = entry_range(segment, from, to);
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&start), Bound::Excluded(&end));
        table.delete_range(txn, &range)?;
    }
    Ok(())
}

/// Reads the `count` entries of `segment` in `table`, in order.
fn read_entries(
    txn: &RoTxn<'_>,
    table: Table<'_>,
    segment: SegmentId,
    count: u64,
) -> Result<Vec<Bytes>, StorageError> {
    const WHAT: &str = "reading segment entries";
    let (start, end) = entry_range(segment, 0, count);
    let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&start), Bound::Excluded(&end));
    let mut entries = Vec::new();
    for row in table.range(txn, &range).ctx(WHAT)? {
        let (_, bytes) = row.ctx(WHAT)?;
        entries.push(Bytes::copy_from_slice(bytes));
    }
    if entries.len() as u64 != count {
        return Err(StorageError::corrupted(
            BACKEND_NAME,
            "a segment holds fewer entries than its metadata counts",
        ));
    }
    Ok(entries)
}

impl SegmentLogStore for LmdbSegmentLog {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        check_value(entry)?;
        self.db.write("appending a segment entry", |txn, t| {
            let mut meta =
                writable(meta(txn, t, segment)?, session, segment).map_err(Abort::Fail)?;
            make_live(txn, t, &mut meta, segment)?;
            let index = meta.entries;
            t.segment_entries
                .put(txn, &entry_key(segment, index), entry)?;
            meta.entries += 1;
            put_meta(txn, t, segment, &meta)?;
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
        self.db.write("appending a trace entry", |txn, t| {
            let mut meta =
                writable(meta(txn, t, segment)?, session, segment).map_err(Abort::Fail)?;
            t.segment_traces
                .put(txn, &entry_key(segment, meta.traces), entry)?;
            meta.traces += 1;
            put_meta(txn, t, segment, &meta)
        })
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        self.db.read("reading a segment", |txn, t| {
            let meta = readable(meta(txn, t, segment)?, session, segment)?;
            Ok(read_entries(txn, t.segment_entries, segment, meta.entries)?)
        })
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        self.db.read("reading a segment's trace", |txn, t| {
            match meta(txn, t, segment)? {
                Some(meta) if meta.session == session => {
                    Ok(read_entries(txn, t.segment_traces, segment, meta.traces)?)
                }
                _ => Ok(Vec::new()),
            }
        })
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        self.db.read("reading a segment's length", |txn, t| {
            Ok(readable(meta(txn, t, segment)?, session, segment)?.entries)
        })
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        self.db.read("reading segment metadata", |txn, t| {
            Ok(readable(meta(txn, t, segment)?, session, segment).is_ok())
        })
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
        self.db.write("creating a segment", |txn, t| {
            let mut meta =
                writable(meta(txn, t, segment)?, session, segment).map_err(Abort::Fail)?;
            make_live(txn, t, &mut meta, segment)?;
            delete_entries(txn, t.segment_entries, segment, 0, meta.entries)?;
            for (index, entry) in (0u64..).zip(entries) {
                t.segment_entries
                    .put(txn, &entry_key(segment, index), entry)?;
            }
            meta.entries = entries.len() as u64;
            put_meta(txn, t, segment, &meta)
        })
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        self.db.write("truncating a segment", |txn, t| {
            let mut meta =
                existing_writable(meta(txn, t, segment)?, session, segment).map_err(Abort::Fail)?;
            if len > meta.entries {
                return Err(Abort::Fail(SegmentError::TruncateBeyondEnd {
                    segment,
                    requested: len,
                    len: meta.entries,
                }));
            }
            delete_entries(txn, t.segment_entries, segment, len, meta.entries)?;
            meta.entries = len;
            put_meta(txn, t, segment, &meta)
        })
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        const WHAT: &str = "listing sessions";
        self.db.read(WHAT, |txn, t| {
            let mut keys = Vec::new();
            for row in t.segment_sessions.rev_iter(txn).ctx(WHAT)? {
                let (key, _) = row.ctx(WHAT)?;
                keys.push(parse_session_index_key(key).ok_or_else(bad_index_key)?);
            }
            Ok(sessions_newest_first(keys))
        })
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        const WHAT: &str = "listing segments";
        self.db.read(WHAT, |txn, t| {
            let mut segments = Vec::new();
            for row in t
                .segment_sessions
                .rev_prefix_iter(txn, &session.to_bytes())
                .ctx(WHAT)?
            {
                let (key, _) = row.ctx(WHAT)?;
                let (_, segment) = parse_session_index_key(key).ok_or_else(bad_index_key)?;
                segments.push(segment);
            }
            Ok(segments)
        })
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        let sessions = distinct_leading(
            &self.db,
            |t| t.segment_sessions,
            after.map(|session| session.to_bytes()),
            limit,
            "listing sessions",
            bad_index_key,
        )?;
        Ok(sessions.into_iter().map(SessionId::from_bytes).collect())
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        list_page(
            &self.db,
            |t| t.segment_sessions,
            &segments_after(session, after),
            limit,
            "listing segments",
            |key, _| Ok(parse_session_index_key(key).ok_or_else(bad_index_key)?.1),
        )
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        self.db.read("looking up a segment's session", |txn, t| {
            Ok(meta(txn, t, segment)?
                .filter(|meta| meta.live)
                .map(|meta| meta.session))
        })
    }
}

fn bad_index_key() -> StorageError {
    bad_session_index_key(BACKEND_NAME)
}
