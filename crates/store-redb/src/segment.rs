//! `SegmentLogStore` on redb, with the shared ownership rules: per-segment metadata in
//! `segment.meta`, live segments indexed by session in `segment.sessions`, log entries in
//! `segment.entries` and trace entries in `segment.traces`, both keyed
//! `segment(16) index:u64be`.
//!
//! Every write is one write transaction that reads the metadata, checks it and writes the
//! entries and the new metadata; redb runs one write transaction at a time, so concurrent
//! appends to one segment are serialized whole.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use redb::ReadableTable;
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId, StorageError};
use store_kit::codec::{self, prefix_successor};
use store_kit::segment::{
    SegmentMeta, bad_session_index_key, entry_key, existing_writable, meta_key,
    parse_session_index_key, readable, segments_after, session_index_key, sessions_newest_first,
    writable,
};

use crate::BACKEND_NAME;
use crate::db::{
    Context, Db, WriteTable, WriteTxn, distinct_leading, get_with, list_page, read_table,
};
use crate::tables::{SEGMENT_ENTRIES, SEGMENT_META, SEGMENT_SESSIONS, SEGMENT_TRACES};

/// The segment log of a [`RedbBackend`](crate::RedbBackend).
#[derive(Debug)]
pub struct RedbSegmentLog {
    db: Arc<Db>,
}

fn decode_meta(bytes: &[u8]) -> Result<SegmentMeta, StorageError> {
    codec::decode(BACKEND_NAME, "segment metadata", bytes)
}

/// Reads the metadata of `segment` in a write transaction.
fn stored_meta(
    table: &WriteTable<'_>,
    segment: SegmentId,
    context: &'static str,
) -> Result<Option<SegmentMeta>, StorageError> {
    get_with(table, &meta_key(segment), context, decode_meta)
}

/// Stores the metadata of `segment`.
fn put_meta(
    table: &mut WriteTable<'_>,
    segment: SegmentId,
    meta: &SegmentMeta,
    context: &'static str,
) -> Result<(), StorageError> {
    let value = codec::encode(BACKEND_NAME, "segment metadata", meta)?;
    table
        .insert(meta_key(segment).as_slice(), value.as_slice())
        .ctx(context)?;
    Ok(())
}

/// Marks the segment live: indexed under its session.
fn make_live(
    txn: &WriteTxn<'_>,
    meta: &mut SegmentMeta,
    segment: SegmentId,
    context: &'static str,
) -> Result<(), StorageError> {
    if !meta.live {
        meta.live = true;
        let mut sessions = txn.table(SEGMENT_SESSIONS, context)?;
        sessions
            .insert(session_index_key(meta.session, segment).as_slice(), &[][..])
            .ctx(context)?;
    }
    Ok(())
}

/// Removes the entries of `segment` with index `from..` from `table`.
fn remove_entries_from(
    table: &mut WriteTable<'_>,
    segment: SegmentId,
    from: u64,
    context: &'static str,
) -> Result<(), StorageError> {
    let start = entry_key(segment, from);
    let end = prefix_successor(&segment.to_bytes());
    let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
        Bound::Included(start.as_slice()),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
    );
    table
        .retain_in::<&[u8], _>(bounds, |_, _| false)
        .ctx(context)
}

/// Reads entries `0..count` of `segment` from `table`.
fn read_entries(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    segment: SegmentId,
    count: u64,
    context: &'static str,
) -> Result<Vec<Bytes>, StorageError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let start = entry_key(segment, 0);
    let end = entry_key(segment, count);
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 16));
    for entry in table
        .range::<&[u8]>(start.as_slice()..end.as_slice())
        .ctx(context)?
    {
        let (_, value) = entry.ctx(context)?;
        out.push(Bytes::copy_from_slice(value.value()));
    }
    if out.len() as u64 != count {
        return Err(StorageError::corrupted(
            BACKEND_NAME,
            "a segment holds fewer entries than its metadata counts",
        ));
    }
    Ok(out)
}

impl RedbSegmentLog {
    /// The segment log over `db`.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        RedbSegmentLog { db }
    }

    /// The metadata of `segment` in a read transaction.
    fn read_meta(
        &self,
        txn: &redb::ReadTransaction,
        segment: SegmentId,
        context: &'static str,
    ) -> Result<Option<SegmentMeta>, StorageError> {
        let table = read_table(txn, SEGMENT_META, context)?;
        get_with(&table, &meta_key(segment), context, decode_meta)
    }
}

impl SegmentLogStore for RedbSegmentLog {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        const CONTEXT: &str = "appending a segment entry";
        check_value(entry)?;
        let txn = self.db.begin_write(CONTEXT)?;
        let index = {
            let mut metas = txn.table(SEGMENT_META, CONTEXT)?;
            let mut meta = writable(stored_meta(&metas, segment, CONTEXT)?, session, segment)?;
            make_live(&txn, &mut meta, segment, CONTEXT)?;
            let index = meta.entries;
            let mut entries = txn.table(SEGMENT_ENTRIES, CONTEXT)?;
            entries
                .insert(entry_key(segment, index).as_slice(), entry)
                .ctx(CONTEXT)?;
            meta.entries += 1;
            put_meta(&mut metas, segment, &meta, CONTEXT)?;
            index
        };
        txn.commit(CONTEXT)?;
        Ok(index)
    }

    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError> {
        const CONTEXT: &str = "appending a segment trace entry";
        check_value(entry)?;
        let txn = self.db.begin_write(CONTEXT)?;
        {
            let mut metas = txn.table(SEGMENT_META, CONTEXT)?;
            let mut meta = writable(stored_meta(&metas, segment, CONTEXT)?, session, segment)?;
            let mut traces = txn.table(SEGMENT_TRACES, CONTEXT)?;
            traces
                .insert(entry_key(segment, meta.traces).as_slice(), entry)
                .ctx(CONTEXT)?;
            meta.traces += 1;
            put_meta(&mut metas, segment, &meta, CONTEXT)?;
        }
        txn.commit(CONTEXT)?;
        Ok(())
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        const CONTEXT: &str = "reading a segment";
        let txn = self.db.begin_read(CONTEXT)?;
        let meta = readable(self.read_meta(&txn, segment, CONTEXT)?, session, segment)?;
        let entries = read_table(&txn, SEGMENT_ENTRIES, CONTEXT)?;
        Ok(read_entries(&entries, segment, meta.entries, CONTEXT)?)
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        const CONTEXT: &str = "reading a segment trace";
        let txn = self.db.begin_read(CONTEXT)?;
        match self.read_meta(&txn, segment, CONTEXT)? {
            Some(meta) if meta.session == session => {
                let traces = read_table(&txn, SEGMENT_TRACES, CONTEXT)?;
                Ok(read_entries(&traces, segment, meta.traces, CONTEXT)?)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        const CONTEXT: &str = "reading a segment's entry count";
        let txn = self.db.begin_read(CONTEXT)?;
        Ok(readable(self.read_meta(&txn, segment, CONTEXT)?, session, segment)?.entries)
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        const CONTEXT: &str = "checking that a segment exists";
        let txn = self.db.begin_read(CONTEXT)?;
        Ok(readable(self.read_meta(&txn, segment, CONTEXT)?, session, segment).is_ok())
    }

    fn create_segment(
        &self,
        session: SessionId,
        segment: SegmentId,
        entries: &[&[u8]],
    ) -> Result<(), SegmentError> {
        const CONTEXT: &str = "creating a segment";
        for entry in entries {
            check_value(entry)?;
        }
        let txn = self.db.begin_write(CONTEXT)?;
        {
            let mut metas = txn.table(SEGMENT_META, CONTEXT)?;
            let mut meta = writable(stored_meta(&metas, segment, CONTEXT)?, session, segment)?;
            make_live(&txn, &mut meta, segment, CONTEXT)?;
            let mut table = txn.table(SEGMENT_ENTRIES, CONTEXT)?;
            remove_entries_from(&mut table, segment, 0, CONTEXT)?;
            for (index, entry) in (0u64..).zip(entries) {
                table
                    .insert(entry_key(segment, index).as_slice(), *entry)
                    .ctx(CONTEXT)?;
            }
            meta.entries = entries.len() as u64;
            put_meta(&mut metas, segment, &meta, CONTEXT)?;
        }
        txn.commit(CONTEXT)?;
        Ok(())
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        const CONTEXT: &str = "truncating a segment";
        let txn = self.db.begin_write(CONTEXT)?;
        {
            let mut metas = txn.table(SEGMENT_META, CONTEXT)?;
            let mut meta =
                existing_writable(stored_meta(&metas, segment, CONTEXT)?, session, segment)?;
            if len > meta.entries {
                return Err(SegmentError::TruncateBeyondEnd {
                    segment,
                    requested: len,
                    len: meta.entries,
                });
            }
            if len == meta.entries {
                return Ok(());
            }
            let mut table = txn.table(SEGMENT_ENTRIES, CONTEXT)?;
            remove_entries_from(&mut table, segment, len, CONTEXT)?;
            meta.entries = len;
            put_meta(&mut metas, segment, &meta, CONTEXT)?;
        }
        txn.commit(CONTEXT)?;
        Ok(())
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        const CONTEXT: &str = "listing sessions";
        let txn = self.db.begin_read(CONTEXT)?;
        let sessions = read_table(&txn, SEGMENT_SESSIONS, CONTEXT)?;
        let mut keys = Vec::new();
        for entry in sessions.iter().ctx(CONTEXT)?.rev() {
            let (key, _) = entry.ctx(CONTEXT)?;
            keys.push(parse_index_key(key.value())?);
        }
        Ok(sessions_newest_first(keys))
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        const CONTEXT: &str = "listing segments";
        let txn = self.db.begin_read(CONTEXT)?;
        let sessions = read_table(&txn, SEGMENT_SESSIONS, CONTEXT)?;
        let prefix = session.to_bytes();
        let end = prefix_successor(&prefix);
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            Bound::Included(prefix.as_slice()),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        );
        let mut segments = Vec::new();
        for entry in sessions.range::<&[u8]>(bounds).ctx(CONTEXT)?.rev() {
            let (key, _) = entry.ctx(CONTEXT)?;
            segments.push(parse_index_key(key.value())?.1);
        }
        Ok(segments)
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        let sessions = distinct_leading(
            &self.db,
            SEGMENT_SESSIONS,
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
        let range = segments_after(session, after);
        list_page(
            &self.db,
            SEGMENT_SESSIONS,
            &range,
            limit,
            "listing segments",
            |key, _| Ok(parse_index_key(key)?.1),
        )
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        const CONTEXT: &str = "looking up a segment's session";
        let txn = self.db.begin_read(CONTEXT)?;
        Ok(self
            .read_meta(&txn, segment, CONTEXT)?
            .filter(|meta| meta.live)
            .map(|meta| meta.session))
    }
}

fn parse_index_key(key: &[u8]) -> Result<(SessionId, SegmentId), StorageError> {
    parse_session_index_key(key).ok_or_else(|| bad_session_index_key(BACKEND_NAME))
}
