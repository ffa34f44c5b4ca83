//! `SegmentLogStore` on four sled trees, with the shared ownership rules.
//!
//! Every write is one sled transaction over the trees it touches (metadata, session index,
//! entries or traces), so an entry and the count that makes it visible land together.
//! Writers are serialized by a mutex, which also keeps concurrent appends to one segment
//! whole and in order; readers hold a read lock that commits exclude, so a read never sees
//! half of a `create_segment` or `truncate`.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use sled::Tree;
use sled::transaction::{ConflictableTransactionError, Transactional};
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId, StorageError};
use store_kit::codec::{decode, encode};
use store_kit::segment::{
    SegmentMeta, bad_session_index_key, entry_key, meta_key, parse_session_index_key, readable,
    segments_after, session_index_key, sessions_newest_first, writable,
};

use crate::listing::{distinct_leading, list_page};
use crate::{BACKEND_NAME, Shared, from_tx, storage_error, to_bytes, trees};

/// The segment log of a [`SledBackend`](crate::SledBackend).
pub struct SledSegmentLog {
    meta: Tree,
    sessions: Tree,
    entries: Tree,
    traces: Tree,
    /// Serializes writers.
    writer: Mutex<()>,
    /// Held exclusively while a write commits; readers hold it shared.
    visible: RwLock<()>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SledSegmentLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledSegmentLog").finish_non_exhaustive()
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StorageError>>;

/// What one write does besides storing the new metadata.
#[derive(Clone, Copy)]
enum Change<'a> {
    /// Store one log entry at `index`.
    Append { index: u64, entry: &'a [u8] },
    /// Store one trace entry at `index`.
    Trace { index: u64, entry: &'a [u8] },
    /// Store `entries` at `0..`, then remove the old entries `entries.len()..old_len`.
    Replace {
        entries: &'a [&'a [u8]],
        old_len: u64,
    },
    /// Remove the entries `len..old_len`.
    Truncate { len: u64, old_len: u64 },
}

impl SledSegmentLog {
    pub(crate) fn open(shared: Arc<Shared>) -> Result<Self, StorageError> {
        Ok(SledSegmentLog {
            meta: shared.tree(trees::SEGMENT_META)?,
            sessions: shared.tree(trees::SEGMENT_SESSIONS)?,
            entries: shared.tree(trees::SEGMENT_ENTRIES)?,
            traces: shared.tree(trees::SEGMENT_TRACES)?,
            writer: Mutex::new(()),
            visible: RwLock::new(()),
            shared,
        })
    }

    fn stored_meta(&self, segment: SegmentId) -> Result<Option<SegmentMeta>, StorageError> {
        match self
            .meta
            .get(meta_key(segment))
            .map_err(|e| storage_error("reading segment metadata", e))?
        {
            None => Ok(None),
            Some(stored) => decode(BACKEND_NAME, "segment metadata", &stored).map(Some),
        }
    }

    /// Commits `change` and the new `meta` of `segment` in one transaction (indexing the
    /// segment under its session when `index_session`), then makes it durable.
    fn commit(
        &self,
        segment: SegmentId,
        meta: &SegmentMeta,
        index_session: bool,
        change: Change<'_>,
    ) -> Result<(), StorageError> {
        let meta_value = encode(BACKEND_NAME, "segment metadata", meta)?;
        let index_key = session_index_key(meta.session, segment);
        {
            let _visible = self.visible.write();
            (&self.meta, &self.sessions, &self.entries, &self.traces)
                .transaction(|(meta_tree, sessions, entries, traces)| -> TxResult<()> {
                    match change {
                        Change::Append { index, entry } => {
                            entries.insert(entry_key(segment, index), entry)?;
                        }
                        Change::Trace { index, entry } => {
                            traces.insert(entry_key(segment, index), entry)?;
                        }
                        Change::Replace {
                            entries: new,
                            old_len,
                        } => {
                            for (index, entry) in (0u64..).zip(new.iter()) {
                                entries.insert(entry_key(segment, index), *entry)?;
                            }
                            for index in (new.len() as u64)..old_len {
                                entries.remove(entry_key(segment, index))?;
                            }
                        }
                        Change::Truncate { len, old_len } => {
                            for index in len..old_len {
                                entries.remove(entry_key(segment, index))?;
                            }
                        }
                    }
                    if index_session {
                        sessions.insert(index_key.as_slice(), &[][..])?;
                    }
                    meta_tree.insert(&meta_key(segment)[..], meta_value.as_slice())?;
                    Ok(())
                })
                .map_err(|e| self.shared.poisoning(from_tx("writing a segment", e)))?;
        }
        self.shared.sync("making a segment write durable")
    }

    /// The `count` entries `0..count` of `segment` in `tree`.
    fn read_entries(
        &self,
        tree: &Tree,
        segment: SegmentId,
        count: u64,
    ) -> Result<Vec<Bytes>, StorageError> {
        let mut out = Vec::new();
        for row in tree.range(entry_key(segment, 0)..entry_key(segment, count)) {
            let (_, value) = row.map_err(|e| storage_error("reading segment entries", e))?;
            out.push(to_bytes(value));
        }
        if out.len() as u64 != count {
            return Err(StorageError::corrupted(
                BACKEND_NAME,
                "reading segment entries: fewer entries are stored than the metadata counts",
            ));
        }
        Ok(out)
    }
}

/// Marks `meta` live; returns whether it just became so (and must be indexed).
fn make_live(meta: &mut SegmentMeta) -> bool {
    let became = !meta.live;
    meta.live = true;
    became
}

impl SegmentLogStore for SledSegmentLog {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        check_value(entry)?;
        let _writer = self.writer.lock();
        self.shared.writable()?;
        let mut meta = writable(self.stored_meta(segment)?, session, segment)?;
        let index_session = make_live(&mut meta);
        let index = meta.entries;
        meta.entries += 1;
        self.commit(
            segment,
            &meta,
            index_session,
            Change::Append { index, entry },
        )?;
        Ok(index)
    }

    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError> {
        check_value(entry)?;
        let _writer = self.writer.lock();
        self.shared.writable()?;
        let mut meta = writable(self.stored_meta(segment)?, session, segment)?;
        let index = meta.traces;
        meta.traces += 1;
        self.commit(segment, &meta, false, Change::Trace { index, entry })?;
        Ok(())
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        self.shared.readable()?;
        let _visible = self.visible.read();
        let meta = readable(self.stored_meta(segment)?, session, segment)?;
        Ok(self.read_entries(&self.entries, segment, meta.entries)?)
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        self.shared.readable()?;
        let _visible = self.visible.read();
        match self.stored_meta(segment)? {
            Some(meta) if meta.session == session => {
                Ok(self.read_entries(&self.traces, segment, meta.traces)?)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        self.shared.readable()?;
        Ok(readable(self.stored_meta(segment)?, session, segment)?.entries)
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        self.shared.readable()?;
        Ok(readable(self.stored_meta(segment)?, session, segment).is_ok())
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
        let _writer = self.writer.lock();
        self.shared.writable()?;
        let mut meta = writable(self.stored_meta(segment)?, session, segment)?;
        let index_session = make_live(&mut meta);
        let old_len = meta.entries;
        meta.entries = entries.len() as u64;
        self.commit(
            segment,
            &meta,
            index_session,
            Change::Replace { entries, old_len },
        )?;
        Ok(())
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        let _writer = self.writer.lock();
        self.shared.writable()?;
        // A write: another session's segment is `WrongSession`; then it must exist.
        let meta = writable(self.stored_meta(segment)?, session, segment)?;
        let mut meta = readable(Some(meta), session, segment)?;
        if len > meta.entries {
            return Err(SegmentError::TruncateBeyondEnd {
                segment,
                requested: len,
                len: meta.entries,
            });
        }
        let old_len = meta.entries;
        meta.entries = len;
        self.commit(segment, &meta, false, Change::Truncate { len, old_len })?;
        Ok(())
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        self.shared.readable()?;
        // Newest session first: the last index key, then the last key below that
        // session's prefix, and so on: one lookup per session, not per segment.
        let mut index = Vec::new();
        let mut below: Option<[u8; 16]> = None;
        loop {
            let last = match below {
                None => self.sessions.last(),
                Some(prefix) => self.sessions.range(..prefix).next_back().transpose(),
            }
            .map_err(|e| storage_error("listing sessions", e))?;
            let Some((key, _)) = last else {
                break;
            };
            let (session, segment) = parse_index_key(&key)?;
            index.push((session, segment));
            below = Some(session.to_bytes());
        }
        Ok(sessions_newest_first(index))
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        self.shared.readable()?;
        let mut segments = Vec::new();
        for row in self.sessions.scan_prefix(session.to_bytes()).rev() {
            let (key, _) = row.map_err(|e| storage_error("listing segments", e))?;
            segments.push(parse_index_key(&key)?.1);
        }
        Ok(segments)
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        let _visible = self.visible.read();
        let sessions = distinct_leading(
            &self.sessions,
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
        let _visible = self.visible.read();
        list_page(
            &self.sessions,
            &segments_after(session, after),
            limit,
            "listing segments",
            |key, _| Ok(parse_index_key(key)?.1),
        )
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        self.shared.readable()?;
        Ok(self
            .stored_meta(segment)?
            .filter(|meta| meta.live)
            .map(|meta| meta.session))
    }
}

fn parse_index_key(key: &[u8]) -> Result<(SessionId, SegmentId), StorageError> {
    match parse_session_index_key(key) {
        Some(ids) if key.len() == 32 => Ok(ids),
        _ => Err(StorageError::corrupted(
            BACKEND_NAME,
            "reading the session index: a key is not 32 bytes",
        )),
    }
}
