//! `SegmentLogStore` on in-memory maps, with the shared ownership rules.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use bytes::Bytes;
use parking_lot::RwLock;
use store_api::limits::check_value;
use store_api::{SegmentError, SegmentId, SegmentLogStore, SessionId};
use store_kit::listing::distinct;
use store_kit::segment::{
    SegmentMeta, existing_writable, readable, sessions_newest_first, writable,
};

/// The smallest segment id: a session's index entries lie at or after it.
fn first_segment() -> SegmentId {
    SegmentId::from_u128(0)
}

/// The greatest segment id: a session's index entries lie at or before it.
fn last_segment() -> SegmentId {
    SegmentId::from_u128(u128::MAX)
}

/// The in-memory segment log. Writes take the lock exclusively, so concurrent appends to
/// one segment are serialized whole.
#[derive(Debug, Default)]
pub struct MemSegmentLog {
    tables: RwLock<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    meta: HashMap<SegmentId, SegmentMeta>,
    by_session: BTreeSet<(SessionId, SegmentId)>,
    entries: HashMap<SegmentId, Vec<Bytes>>,
    traces: HashMap<SegmentId, Vec<Bytes>>,
}

impl Tables {
    fn make_live(&mut self, meta: &mut SegmentMeta, segment: SegmentId) {
        if !meta.live {
            meta.live = true;
            self.by_session.insert((meta.session, segment));
        }
    }
}

impl SegmentLogStore for MemSegmentLog {
    fn append(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<u64, SegmentError> {
        check_value(entry)?;
        let mut tables = self.tables.write();
        let mut meta = writable(tables.meta.get(&segment).copied(), session, segment)?;
        tables.make_live(&mut meta, segment);
        let index = meta.entries;
        tables
            .entries
            .entry(segment)
            .or_default()
            .push(Bytes::copy_from_slice(entry));
        meta.entries += 1;
        tables.meta.insert(segment, meta);
        Ok(index)
    }

    fn append_trace(
        &self,
        session: SessionId,
        segment: SegmentId,
        entry: &[u8],
    ) -> Result<(), SegmentError> {
        check_value(entry)?;
        let mut tables = self.tables.write();
        let mut meta = writable(tables.meta.get(&segment).copied(), session, segment)?;
        tables
            .traces
            .entry(segment)
            .or_default()
            .push(Bytes::copy_from_slice(entry));
        meta.traces += 1;
        tables.meta.insert(segment, meta);
        Ok(())
    }

    fn read_all(&self, session: SessionId, segment: SegmentId) -> Result<Vec<Bytes>, SegmentError> {
        let tables = self.tables.read();
        readable(tables.meta.get(&segment).copied(), session, segment)?;
        Ok(tables.entries.get(&segment).cloned().unwrap_or_default())
    }

    fn read_traces(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<Vec<Bytes>, SegmentError> {
        let tables = self.tables.read();
        match tables.meta.get(&segment) {
            Some(meta) if meta.session == session => {
                Ok(tables.traces.get(&segment).cloned().unwrap_or_default())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn read_entry_count(
        &self,
        session: SessionId,
        segment: SegmentId,
    ) -> Result<u64, SegmentError> {
        let tables = self.tables.read();
        Ok(readable(tables.meta.get(&segment).copied(), session, segment)?.entries)
    }

    fn exists(&self, session: SessionId, segment: SegmentId) -> Result<bool, SegmentError> {
        let tables = self.tables.read();
        Ok(readable(tables.meta.get(&segment).copied(), session, segment).is_ok())
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
        let mut tables = self.tables.write();
        let mut meta = writable(tables.meta.get(&segment).copied(), session, segment)?;
        tables.make_live(&mut meta, segment);
        let stored: Vec<Bytes> = entries.iter().map(|e| Bytes::copy_from_slice(e)).collect();
        meta.entries = stored.len() as u64;
        tables.entries.insert(segment, stored);
        tables.meta.insert(segment, meta);
        Ok(())
    }

    fn truncate(
        &self,
        session: SessionId,
        segment: SegmentId,
        len: u64,
    ) -> Result<(), SegmentError> {
        let mut tables = self.tables.write();
        let mut meta = existing_writable(tables.meta.get(&segment).copied(), session, segment)?;
        if len > meta.entries {
            return Err(SegmentError::TruncateBeyondEnd {
                segment,
                requested: len,
                len: meta.entries,
            });
        }
        if let Some(entries) = tables.entries.get_mut(&segment) {
            entries.truncate(len as usize);
        }
        meta.entries = len;
        tables.meta.insert(segment, meta);
        Ok(())
    }

    fn list_sessions(&self) -> Result<Vec<SessionId>, SegmentError> {
        let tables = self.tables.read();
        Ok(sessions_newest_first(
            tables.by_session.iter().rev().copied(),
        ))
    }

    fn list_segments(&self, session: SessionId) -> Result<Vec<SegmentId>, SegmentError> {
        let tables = self.tables.read();
        Ok(tables
            .by_session
            .range((session, first_segment())..=(session, last_segment()))
            .rev()
            .map(|(_, segment)| *segment)
            .collect())
    }

    fn list_sessions_page(
        &self,
        after: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, SegmentError> {
        let tables = self.tables.read();
        distinct(after.copied(), limit, |last| {
            let lower = match last {
                Some(session) => Bound::Excluded((*session, last_segment())),
                None => Bound::Unbounded,
            };
            Ok(tables
                .by_session
                .range((lower, Bound::Unbounded))
                .next()
                .map(|(session, _)| *session))
        })
    }

    fn list_segments_page(
        &self,
        session: SessionId,
        after: Option<&SegmentId>,
        limit: usize,
    ) -> Result<Vec<SegmentId>, SegmentError> {
        let tables = self.tables.read();
        let lower = match after {
            Some(segment) => Bound::Excluded((session, *segment)),
            None => Bound::Included((session, first_segment())),
        };
        let upper = Bound::Included((session, last_segment()));
        Ok(tables
            .by_session
            .range((lower, upper))
            .map(|(_, segment)| *segment)
            .take(limit)
            .collect())
    }

    fn lookup_session_of(&self, segment: SegmentId) -> Result<Option<SessionId>, SegmentError> {
        let tables = self.tables.read();
        Ok(tables
            .meta
            .get(&segment)
            .filter(|meta| meta.live)
            .map(|meta| meta.session))
    }
}
