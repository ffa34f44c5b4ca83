//! The segment log's engine-independent half: the per-segment metadata record, its keys,
//! and the ownership rules every operation checks.

use serde::{Deserialize, Serialize};
use store_api::{SegmentError, SegmentId, SessionId, StorageError};

use crate::codec::KeyBuf;
use crate::listing::KeyRange;

/// What a backend stores about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// The session that owns it.
    pub session: SessionId,
    /// Number of log entries (entry keys `0..entries`).
    pub entries: u64,
    /// Number of trace entries (trace keys `0..traces`).
    pub traces: u64,
    /// Whether the segment exists as a log (appended to or created), rather than only
    /// holding trace entries.
    pub live: bool,
}

impl SegmentMeta {
    /// The metadata of a segment first touched by `session`.
    pub fn new(session: SessionId) -> Self {
        SegmentMeta {
            session,
            entries: 0,
            traces: 0,
            live: false,
        }
    }
}

/// Key of a segment's metadata: its 16 id bytes.
pub fn meta_key(segment: SegmentId) -> [u8; 16] {
    segment.to_bytes()
}

/// Key of the session index: `session(16) segment(16)`; only live segments are indexed.
pub fn session_index_key(session: SessionId, segment: SegmentId) -> Vec<u8> {
    KeyBuf::with_capacity(32)
        .raw(&session.to_bytes())
        .raw(&segment.to_bytes())
        .finish()
}

/// Splits a session-index key.
pub fn parse_session_index_key(key: &[u8]) -> Option<(SessionId, SegmentId)> {
    let session: [u8; 16] = key.get(..16)?.try_into().ok()?;
    let segment: [u8; 16] = key.get(16..32)?.try_into().ok()?;
    Some((
        SessionId::from_bytes(session),
        SegmentId::from_bytes(segment),
    ))
}

/// The key range, in the session index, of a
/// [`list_segments_page`](store_api::SegmentLogStore::list_segments_page) page: the
/// session's live segments after `after`.
pub fn segments_after(session: SessionId, after: Option<&SegmentId>) -> KeyRange {
    KeyRange::after_in(
        &session.to_bytes(),
        after.map(|segment| session_index_key(session, *segment)),
    )
}

/// The error for a session-index key that does not hold a session and a segment id (a
/// damaged table).
pub fn bad_session_index_key(backend: &'static str) -> StorageError {
    StorageError::corrupted(backend, "a session index key is not two 16-byte ids")
}

/// Key of log entry or trace entry `index`: `segment(16) index(u64be)`.
pub fn entry_key(segment: SegmentId, index: u64) -> Vec<u8> {
    KeyBuf::with_capacity(24)
        .raw(&segment.to_bytes())
        .u64(index)
        .finish()
}

/// The metadata a write by `session` may use: the stored one, or a fresh one when the
/// segment was never touched. Fails with [`SegmentError::WrongSession`] when another
/// session owns it.
pub fn writable(
    meta: Option<SegmentMeta>,
    session: SessionId,
    segment: SegmentId,
) -> Result<SegmentMeta, SegmentError> {
    match meta {
        Some(meta) if meta.session != session => Err(SegmentError::WrongSession {
            segment,
            owner: meta.session,
            given: session,
        }),
        Some(meta) => Ok(meta),
        None => Ok(SegmentMeta::new(session)),
    }
}

/// The metadata of an existing segment that `session` may rewrite (`truncate`):
/// [`SegmentError::WrongSession`] when another session owns it, [`SegmentError::NotFound`]
/// when it does not exist as a log.
pub fn existing_writable(
    meta: Option<SegmentMeta>,
    session: SessionId,
    segment: SegmentId,
) -> Result<SegmentMeta, SegmentError> {
    let meta = writable(meta, session, segment)?;
    readable(Some(meta), session, segment)
}

/// The metadata a read by `session` sees: [`SegmentError::NotFound`] unless the segment is
/// live and owned by `session`.
pub fn readable(
    meta: Option<SegmentMeta>,
    session: SessionId,
    segment: SegmentId,
) -> Result<SegmentMeta, SegmentError> {
    match meta {
        Some(meta) if meta.live && meta.session == session => Ok(meta),
        _ => Err(SegmentError::NotFound { session, segment }),
    }
}

/// Distinct sessions from session-index keys read in **descending** order: newest first.
pub fn sessions_newest_first(
    index_keys_desc: impl IntoIterator<Item = (SessionId, SegmentId)>,
) -> Vec<SessionId> {
    let mut sessions: Vec<SessionId> = Vec::new();
    for (session, _) in index_keys_desc {
        if sessions.last() != Some(&session) {
            sessions.push(session);
        }
    }
    sessions
}
