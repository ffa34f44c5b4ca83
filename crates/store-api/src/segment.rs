//! `SegmentLogStore`: append-only session logs (`docs/contract.md` section 7).
//!
//! # Terms
//! - **Segment** ([`SegmentId`]): one append-only log of opaque byte entries. An entry,
//!   once appended, keeps its index (0, 1, 2, ...); the only rewrites are whole ones
//!   ([`create_segment`](SegmentLogStore::create_segment), which replaces the entries, and
//!   [`truncate`](SegmentLogStore::truncate), which keeps a prefix).
//! - **Session** ([`SessionId`]): a group of segments, such as the logs of one agent or
//!   user session. A segment belongs to the session that first wrote it; every call names
//!   both, and a call naming another session writes nothing
//!   ([`SegmentError::WrongSession`]) and reads nothing.
//! - **Trace entry**: a debug entry kept beside a segment's log
//!   ([`append_trace`](SegmentLogStore::append_trace),
//!   [`read_traces`](SegmentLogStore::read_traces)). Trace entries have no index, never
//!   appear among the entries, and do not make a segment exist: a segment with only trace
//!   entries is not listed and `exists` is false for it.
//!
//! Both ids are 128-bit UUIDs; [`new_v7`](SessionId::new_v7) makes time-ordered ones, so
//! the ascending id order of the paged listings is creation order.
//!
//! ```
//! use store_api::*;
//!
//! let backend = store_mem::MemBackend::new(OpenOptions::default());
//! let log = backend.segment_log();
//! let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
//! log.append_trace(session, segment, b"debug: started")?;
//! assert_eq!(log.append(session, segment, b"user: hello")?, 0);
//! assert_eq!(log.append(session, segment, b"agent: hi")?, 1);
//! assert_eq!(log.read_all(session, segment)?, ["user: hello", "agent: hi"]);
//! assert_eq!(log.read_traces(session, segment)?, ["debug: started"]);
//! assert_eq!(log.lookup_session_of(segment)?, Some(session));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{InputError, StorageError};
use crate::uuid_id::uuid_id;

uuid_id!(
    /// A session: a group of segments. 128-bit, time-ordered.
    SessionId,
    "session id"
);
uuid_id!(
    /// A segment: one append-only log, owned by one session. 128-bit, time-ordered.
    SegmentId,
    "segment id"
);

/// Errors of [`SegmentLogStore`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// An entry broke the common value limit; nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The segment does not exist in this session.
    #[error("segment {segment} not found in session {session}")]
    NotFound {
        /// The session asked for.
        session: SessionId,
        /// The segment asked for.
        segment: SegmentId,
    },
    /// The segment belongs to another session; nothing was written.
    #[error("segment {segment} belongs to session {owner}, not {given}")]
    WrongSession {
        /// The segment.
        segment: SegmentId,
        /// The session that owns it.
        owner: SessionId,
        /// The session given.
        given: SessionId,
    },
    /// `truncate` asked to keep more entries than the segment has; nothing changed.
    #[error("cannot truncate segment {segment} to {requested} entries: it has {len}")]
    TruncateBeyondEnd {
        /// The segment.
        segment: SegmentId,
        /// Entries asked to keep.
        requested: u64,
        /// Entries it has.
        len: u64,
    },
    /// A typed helper could not encode or decode an entry.
    #[error("typed entry failed to {op}: {source}")]
    Codec {
        /// "encode" or "decode".
        op: &'static str,
        /// The serializer's error.
        #[source]
        source: postcard::Error,
    },
    /// The engine underneath failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl crate::error::StoreError for SegmentError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            SegmentError::Storage(e) => Some(e),
            _ => None,
        }
    }

    fn storage_mut(&mut self) -> Option<&mut StorageError> {
        match self {
            SegmentError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// Append-only session logs.
///
/// # Guarantees
/// - Entries are opaque bytes (empty entries and entries holding newlines round-trip), at
///   most [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) each.
/// - A successful `append` adds one whole entry; a failed call leaves nothing visible.
///   Concurrent appends to one segment never lose or interleave entries.
/// - A segment belongs to the session that first wrote it; writes naming another session
///   fail with [`SegmentError::WrongSession`], reads naming another session see nothing.
/// - [`list_sessions`](Self::list_sessions) and [`list_segments`](Self::list_segments) are
///   newest first: ids descending, which for v7 ids is creation order reversed. Their paged
///   forms ([`list_sessions_page`](Self::list_sessions_page),
///   [`list_segments_page`](Self::list_segments_page)) list the same ids ascending, a page
///   at a time, like every other paged listing of the stores.
/// - Trace entries are kept apart: they never appear in [`read_all`](Self::read_all), and a
///   segment with only trace entries does not exist for `exists`, `read_all` or listings.
///
/// ```
/// use store_api::*;
///
/// let backend = store_mem::MemBackend::new(OpenOptions::default());
/// let log = backend.segment_log();
/// let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
/// assert_eq!(log.append(session, segment, b"hello")?, 0);
/// assert_eq!(log.append(session, segment, b"world")?, 1);
/// assert_eq!(log.read_all(session, segment)?, ["hello", "world"]);
/// let other = SessionId::new_v7(); // the segment belongs to `session`
/// let wrong = log.append(other, segment, b"x");
/// assert_eq!(wrong, Err(SegmentError::WrongSession { segment, owner: session, given: other }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SegmentLogStore: Send + Sync {
    /// Appends one entry, creating the segment if needed; returns the entry's index
    /// (0-based).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// assert_eq!(log.append(session, segment, b"first")?, 0); // creates the segment
    /// assert_eq!(log.append(session, segment, b"")?, 1); // an empty entry is an entry
    /// assert_eq!(log.read_entry_count(session, segment)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError>;

    /// Appends a debug trace entry to the segment's trace, apart from its log.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.append_trace(session, segment, b"debug: step 1")?;
    /// assert!(!log.exists(session, segment)?); // only trace entries: no segment yet
    /// log.append(session, segment, b"entry")?;
    /// assert_eq!(log.read_all(session, segment)?, ["entry"]); // the trace is kept apart
    /// assert_eq!(log.read_traces(session, segment)?, ["debug: step 1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError>;

    /// Every entry, in append order; [`SegmentError::NotFound`] for an unknown segment.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.append(session, segment, b"a")?;
    /// log.append(session, segment, b"b")?;
    /// assert_eq!(log.read_all(session, segment)?, ["a", "b"]);
    /// let unknown = SegmentId::new_v7();
    /// let not_found = SegmentError::NotFound { session, segment: unknown };
    /// assert_eq!(log.read_all(session, unknown), Err(not_found));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError>;

    /// Every trace entry, in append order (empty when none).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// assert!(log.read_traces(session, segment)?.is_empty());
    /// log.append_trace(session, segment, b"t1")?;
    /// log.append_trace(session, segment, b"t2")?;
    /// assert_eq!(log.read_traces(session, segment)?, ["t1", "t2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError>;

    /// Number of entries; [`SegmentError::NotFound`] for an unknown segment.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.create_segment(session, segment, &[b"a", b"b", b"c"])?;
    /// assert_eq!(log.read_entry_count(session, segment)?, 3);
    /// let unknown = SegmentId::new_v7();
    /// let not_found = SegmentError::NotFound { session, segment: unknown };
    /// assert_eq!(log.read_entry_count(session, unknown), Err(not_found));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_entry_count(&self, session: SessionId, segment: SegmentId)
    -> Result<u64, SegmentError>;

    /// Whether the segment exists in this session.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// assert!(!log.exists(session, segment)?);
    /// log.append(session, segment, b"a")?;
    /// assert!(log.exists(session, segment)?);
    /// assert!(!log.exists(SessionId::new_v7(), segment)?); // another session sees nothing
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError>;

    /// Writes the segment whole, atomically, replacing its earlier entries (its trace is
    /// kept). With no entries it leaves an existing, empty segment.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.append(session, segment, b"old")?;
    /// log.create_segment(session, segment, &[b"new-1", b"new-2"])?; // replaces the entries
    /// assert_eq!(log.read_all(session, segment)?, ["new-1", "new-2"]);
    /// let empty = SegmentId::new_v7();
    /// log.create_segment(session, empty, &[])?;
    /// assert_eq!((log.exists(session, empty)?, log.read_entry_count(session, empty)?), (true, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn create_segment(
        &self,
        session: SessionId,
        segment: SegmentId,
        entries: &[&[u8]],
    ) -> Result<(), SegmentError>;

    /// Keeps the first `len` entries (0 leaves an existing, empty segment);
    /// [`SegmentError::TruncateBeyondEnd`] when `len` exceeds the count,
    /// [`SegmentError::NotFound`] for an unknown segment, and
    /// [`SegmentError::WrongSession`] for a segment of another session (like every write).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.create_segment(session, segment, &[b"a", b"b", b"c"])?;
    /// log.truncate(session, segment, 1)?;
    /// assert_eq!(log.read_all(session, segment)?, ["a"]);
    /// let beyond = log.truncate(session, segment, 5);
    /// assert_eq!(beyond, Err(SegmentError::TruncateBeyondEnd { segment, requested: 5, len: 1 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError>;

    /// Every session with at least one segment, newest first.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// let (older, newer) = (SessionId::from_u128(1), SessionId::from_u128(2));
    /// log.append(older, SegmentId::new_v7(), b"a")?;
    /// log.append(newer, SegmentId::new_v7(), b"b")?;
    /// assert_eq!(log.list_sessions()?, vec![newer, older]); // newest first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError>;

    /// The session's segments, newest first (empty for an unknown session).
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let session = SessionId::new_v7();
    /// let (older, newer) = (SegmentId::from_u128(1), SegmentId::from_u128(2));
    /// log.append(session, older, b"a")?;
    /// log.append(session, newer, b"b")?;
    /// assert_eq!(log.list_segments(session)?, vec![newer, older]); // newest first
    /// assert!(log.list_segments(SessionId::new_v7())?.is_empty()); // unknown session
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError>;

    /// One page of the sessions with at least one segment, for walking a large log:
    /// **ascending** by id (oldest first for v7 ids, the reverse of
    /// [`list_sessions`](Self::list_sessions)), which is the byte order of the 16 id bytes;
    /// strictly after `after` (from the first session when `None`; the cursor need not be
    /// a listed session), at most `limit` (0 gives nothing). The sessions listed are those
    /// of `list_sessions`: a session whose segments hold only trace entries is not listed.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// let sessions = [SessionId::from_u128(1), SessionId::from_u128(2), SessionId::from_u128(3)];
    /// for s in sessions {
    ///     log.append(s, SegmentId::new_v7(), b"entry")?;
    /// }
    /// assert_eq!(log.list_sessions_page(None, 2)?, sessions[..2]); // ascending, 2 per page
    /// assert_eq!(log.list_sessions_page(Some(&sessions[1]), 2)?, sessions[2..]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError>;

    /// One page of the session's segments: **ascending** by id (oldest first for v7 ids,
    /// the reverse of [`list_segments`](Self::list_segments)), which is the byte order of
    /// the 16 id bytes; strictly after `after` (from the first segment when `None`; the
    /// cursor need not be a listed segment), at most `limit` (0 gives nothing). The
    /// segments listed are those of `list_segments`: an unknown session gives an empty
    /// list, and a segment that holds only trace entries is not listed.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let session = SessionId::new_v7();
    /// let segments = [SegmentId::from_u128(1), SegmentId::from_u128(2), SegmentId::from_u128(3)];
    /// for s in segments {
    ///     log.append(session, s, b"entry")?;
    /// }
    /// assert_eq!(log.list_segments_page(session, None, 2)?, segments[..2]); // ascending
    /// assert_eq!(log.list_segments_page(session, Some(&segments[1]), 2)?, segments[2..]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError>;

    /// The session that owns `segment`, or `None`.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// assert_eq!(log.lookup_session_of(segment)?, None);
    /// log.append(session, segment, b"a")?;
    /// assert_eq!(log.lookup_session_of(segment)?, Some(session));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError>;
}

/// A shared segment log is a segment log: every call goes to the one it points to, so
/// code generic over `S: SegmentLogStore` also takes an `Arc<dyn SegmentLogStore>`.
impl<S: SegmentLogStore + ?Sized> SegmentLogStore for std::sync::Arc<S> {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        (**self).append(session, segment, entry)
    }

    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError> {
        (**self).append_trace(session, segment, entry)
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        (**self).read_all(session, segment)
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        (**self).read_traces(session, segment)
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        (**self).read_entry_count(session, segment)
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        (**self).exists(session, segment)
    }

    fn create_segment(
        &self,
        session: SessionId,
        segment: SegmentId,
        entries: &[&[u8]],
    ) -> Result<(), SegmentError> {
        (**self).create_segment(session, segment, entries)
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        (**self).truncate(session, segment, len)
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        (**self).list_sessions()
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        (**self).list_segments(session)
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        (**self).list_sessions_page(after, limit)
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        (**self).list_segments_page(session, after, limit)
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        (**self).lookup_session_of(segment)
    }
}

/// Typed helpers over serde for any [`SegmentLogStore`] (entries encoded with `postcard`).
pub trait SegmentLogStoreExt: SegmentLogStore {
    /// Encodes `entry` and appends it.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.append_typed(session, segment, &("deposit", 100u64))?;
    /// log.append_typed(session, segment, &("withdraw", 30u64))?;
    /// let entries: Vec<(String, u64)> = log.read_all_typed(session, segment)?;
    /// assert_eq!(entries[1], ("withdraw".to_owned(), 30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn append_typed<T: Serialize + ?Sized>(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &T,
    ) -> Result<u64, SegmentError> {
        let bytes = postcard::to_stdvec(entry).map_err(|source| SegmentError::Codec {
            op: "encode",
            source,
        })?;
        self.append(session, segment, &bytes)
    }

    /// Reads every entry and decodes it as `T`.
    ///
    /// ```
    /// # use store_api::*;
    /// # let backend = store_mem::MemBackend::new(OpenOptions::default());
    /// # let log = backend.segment_log();
    /// # let (session, segment) = (SessionId::new_v7(), SegmentId::new_v7());
    /// log.append_typed(session, segment, &1u32)?;
    /// log.append_typed(session, segment, &2u32)?;
    /// assert_eq!(log.read_all_typed::<u32>(session, segment)?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read_all_typed<T: DeserializeOwned>(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<T>, SegmentError> {
        self.read_all(session, segment)?
            .iter()
            .map(|b| {
                postcard::from_bytes(b).map_err(|source| SegmentError::Codec {
                    op: "decode",
                    source,
                })
            })
            .collect()
    }
}

impl<S: SegmentLogStore + ?Sized> SegmentLogStoreExt for S {}
