//! `SegmentLogStore` on any [`KvStore`], with the shared ownership rules of
//! [`store_kit::segment`]: per-segment metadata, live segments indexed by session, log
//! entries and trace entries, each in its own table.
//!
//! Every write is one write transaction that reads the metadata, checks it and writes the
//! entries and the new metadata; write transactions are serialized, so concurrent appends
//! to one segment are serialized whole, and a read never sees half of a write.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId, StorageError};
use store_kit::codec::{self, prefix_successor};
use store_kit::segment::{
    SegmentMeta, bad_session_index_key, entry_key, existing_writable, meta_key,
    parse_session_index_key, readable, segments_after, session_index_key, sessions_newest_first,
    writable,
};

use crate::listing::{distinct_leading, first_key, list_page};
use crate::{Commit, Direction, KvRead, KvStore, KvWrite};

/// The names of the segment tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentTables {
    /// Segment metadata: segment id (16 bytes) → `SegmentMeta`.
    pub meta: &'static str,
    /// Live segments by session: `session(16) segment(16)` → empty.
    pub sessions: &'static str,
    /// Log entries: `segment(16) index:u64be` → the entry, as given.
    pub entries: &'static str,
    /// Trace entries: `segment(16) index:u64be` → the trace entry, as given.
    pub traces: &'static str,
}

/// The table names redb, LMDB and sled databases have always used.
pub const SEGMENT_TABLES: SegmentTables = SegmentTables {
    meta: "segment.meta",
    sessions: "segment.sessions",
    entries: "segment.entries",
    traces: "segment.traces",
};

impl SegmentTables {
    /// Every table name.
    pub fn names(&self) -> [&'static str; 4] {
        [self.meta, self.sessions, self.entries, self.traces]
    }
}

/// The segment log of a backend on the engine `K`.
pub struct KvSegmentLog<K: KvStore> {
    meta: K::Table,
    sessions: K::Table,
    entries: K::Table,
    traces: K::Table,
    /// Declared last: the tables are dropped before the engine handle, which may close
    /// its files only once no table handle is left (sled does).
    kv: Arc<K>,
}

impl<K: KvStore> std::fmt::Debug for KvSegmentLog<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSegmentLog")
            .field("backend", &K::NAME)
            .finish_non_exhaustive()
    }
}

impl<K: KvStore> KvSegmentLog<K> {
    /// The segment log over `kv`, in the tables `tables` names.
    pub fn open(kv: Arc<K>, tables: SegmentTables) -> Result<Self, StorageError> {
        Ok(KvSegmentLog {
            meta: kv.table(tables.meta)?,
            sessions: kv.table(tables.sessions)?,
            entries: kv.table(tables.entries)?,
            traces: kv.table(tables.traces)?,
            kv,
        })
    }

    /// The stored metadata of `segment`.
    fn stored_meta(
        &self,
        txn: &impl KvRead<Table = K::Table>,
        segment: SegmentId,
    ) -> Result<Option<SegmentMeta>, StorageError> {
        txn.get(&self.meta, &meta_key(segment), |bytes| {
            codec::decode(K::NAME, "segment metadata", bytes)
        })
    }

    /// Stores the metadata of `segment`.
    fn put_meta(
        &self,
        txn: &mut impl KvWrite<Table = K::Table>,
        segment: SegmentId,
        meta: &SegmentMeta,
    ) -> Result<(), StorageError> {
        let value = codec::encode(K::NAME, "segment metadata", meta)?;
        txn.put(&self.meta, &meta_key(segment), &value)
    }

    /// Marks the segment live: indexed under its session.
    fn make_live(
        &self,
        txn: &mut impl KvWrite<Table = K::Table>,
        meta: &mut SegmentMeta,
        segment: SegmentId,
    ) -> Result<(), StorageError> {
        if !meta.live {
            meta.live = true;
            txn.put(
                &self.sessions,
                &session_index_key(meta.session, segment),
                &[],
            )?;
        }
        Ok(())
    }

    /// Removes the entries of `segment` with index `from..`.
    fn remove_entries_from(
        &self,
        txn: &mut impl KvWrite<Table = K::Table>,
        segment: SegmentId,
        from: u64,
    ) -> Result<(), StorageError> {
        let start = entry_key(segment, from);
        let end = prefix_successor(&segment.to_bytes());
        let range = (
            Bound::Included(start.as_slice()),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        );
        txn.delete_range(&self.entries, range).map(drop)
    }

    /// Entries `0..count` of `segment` in `table`.
    fn read_entries(
        txn: &impl KvRead<Table = K::Table>,
        table: &K::Table,
        segment: SegmentId,
        count: u64,
    ) -> Result<Vec<Bytes>, StorageError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let start = entry_key(segment, 0);
        let end = entry_key(segment, count);
        let range = (
            Bound::Included(start.as_slice()),
            Bound::Excluded(end.as_slice()),
        );
        let entries = txn.values(table, range)?;
        if entries.len() as u64 != count {
            return Err(StorageError::corrupted(
                K::NAME,
                "a segment holds fewer entries than its metadata counts",
            ));
        }
        Ok(entries)
    }
}

fn parse_index_key(
    backend: &'static str,
    key: &[u8],
) -> Result<(SessionId, SegmentId), StorageError> {
    match parse_session_index_key(key) {
        Some(ids) if key.len() == 32 => Ok(ids),
        _ => Err(bad_session_index_key(backend)),
    }
}

impl<K: KvStore> SegmentLogStore for KvSegmentLog<K> {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        check_value(entry)?;
        self.kv
            .write(Commit::Backend, "appending a segment entry", |txn| {
                let mut meta = writable(self.stored_meta(txn, segment)?, session, segment)?;
                self.make_live(txn, &mut meta, segment)?;
                let index = meta.entries;
                txn.put(&self.entries, &entry_key(segment, index), entry)?;
                meta.entries += 1;
                self.put_meta(txn, segment, &meta)?;
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
        self.kv
            .write(Commit::Backend, "appending a segment trace entry", |txn| {
                let mut meta = writable(self.stored_meta(txn, segment)?, session, segment)?;
                txn.put(&self.traces, &entry_key(segment, meta.traces), entry)?;
                meta.traces += 1;
                Ok(self.put_meta(txn, segment, &meta)?)
            })
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        self.kv.read("reading a segment", |txn| {
            let meta = readable(self.stored_meta(txn, segment)?, session, segment)?;
            Ok(Self::read_entries(
                txn,
                &self.entries,
                segment,
                meta.entries,
            )?)
        })
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        Ok(self.kv.read("reading a segment trace", |txn| {
            match self.stored_meta(txn, segment)? {
                Some(meta) if meta.session == session => {
                    Self::read_entries(txn, &self.traces, segment, meta.traces)
                }
                _ => Ok(Vec::new()),
            }
        })?)
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        self.kv.read("reading a segment's entry count", |txn| {
            Ok(readable(self.stored_meta(txn, segment)?, session, segment)?.entries)
        })
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        Ok(self.kv.read("checking that a segment exists", |txn| {
            Ok::<_, StorageError>(
                readable(self.stored_meta(txn, segment)?, session, segment).is_ok(),
            )
        })?)
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
        self.kv.write(Commit::Backend, "creating a segment", |txn| {
            let mut meta = writable(self.stored_meta(txn, segment)?, session, segment)?;
            self.make_live(txn, &mut meta, segment)?;
            self.remove_entries_from(txn, segment, 0)?;
            for (index, entry) in (0u64..).zip(entries) {
                txn.put(&self.entries, &entry_key(segment, index), entry)?;
            }
            meta.entries = entries.len() as u64;
            Ok(self.put_meta(txn, segment, &meta)?)
        })
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        self.kv
            .write(Commit::Backend, "truncating a segment", |txn| {
                let mut meta =
                    existing_writable(self.stored_meta(txn, segment)?, session, segment)?;
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
                self.remove_entries_from(txn, segment, len)?;
                meta.entries = len;
                Ok(self.put_meta(txn, segment, &meta)?)
            })
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        Ok(self.kv.read("listing sessions", |txn| {
            // Newest session first: the last index key, then the last key below that
            // session's prefix, and so on: one seek per session, not one row per segment.
            let mut index = Vec::new();
            let mut below: Option<[u8; 16]> = None;
            loop {
                let upper = match &below {
                    None => Bound::Unbounded,
                    Some(prefix) => Bound::Excluded(prefix.as_slice()),
                };
                let range = (Bound::Unbounded, upper);
                let Some(key) = first_key(txn, &self.sessions, range, Direction::Backward)? else {
                    break;
                };
                let (session, segment) = parse_index_key(K::NAME, &key)?;
                index.push((session, segment));
                below = Some(session.to_bytes());
            }
            Ok::<_, StorageError>(sessions_newest_first(index))
        })?)
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        Ok(self.kv.read("listing segments", |txn| {
            let prefix = session.to_bytes();
            let end = prefix_successor(&prefix);
            let range = (
                Bound::Included(prefix.as_slice()),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            );
            let mut segments = Vec::new();
            txn.scan(&self.sessions, range, Direction::Backward, |key, _| {
                segments.push(parse_index_key(K::NAME, key)?.1);
                Ok::<_, StorageError>(crate::Visit::Continue(()))
            })?;
            Ok::<_, StorageError>(segments)
        })?)
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sessions = self.kv.read("listing sessions", |txn| {
            distinct_leading(
                txn,
                &self.sessions,
                after.map(|session| session.to_bytes()),
                limit,
                || bad_session_index_key(K::NAME),
            )
        })?;
        Ok(sessions.into_iter().map(SessionId::from_bytes).collect())
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let range = segments_after(session, after);
        Ok(self.kv.read("listing segments", |txn| {
            list_page(txn, &self.sessions, &range, limit, |key, _| {
                Ok(parse_index_key(K::NAME, key)?.1)
            })
        })?)
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        Ok(self.kv.read("looking up a segment's session", |txn| {
            Ok::<_, StorageError>(
                self.stored_meta(txn, segment)?
                    .filter(|meta| meta.live)
                    .map(|meta| meta.session),
            )
        })?)
    }
}
