//! Segment-log migration: every session and segment the source lists (or the sessions the
//! plan names), written whole, with its trace entries.

use std::fmt;

use serde::Serialize;
use store_api::{Bytes, SegmentId, SegmentLogStore, SessionId};

use super::compare::Sink;
use super::error::MigrateError;
use super::progress::{Phase, Progress, Step};
use super::report::{CopySummary, Counts, StoreKind};
use super::{Plan, paged};
use crate::stores::Stores;

/// What the walk and the copy count, in report order.
const COUNTED: [&str; 4] = ["sessions", "segments", "entries", "trace entries"];

/// What no listing shows, so no migration can copy.
pub(super) const TRACE_ONLY_NOTE: &str = "segments holding only trace entries, if any: the \
     listings do not show them (contract §7.6), so they cannot be found";

/// The sessions of `log` that `plan` selects, ascending by id.
fn sessions<'a>(
    log: &'a dyn SegmentLogStore,
    plan: &'a Plan,
) -> impl Iterator<Item = Result<SessionId, MigrateError>> + 'a {
    paged(
        move |after: Option<&SessionId>, limit| {
            log.list_sessions_page(after, limit).map_err(Into::into)
        },
        |session: &SessionId| *session,
    )
    .filter(move |session| match session {
        Ok(session) => plan.sessions.is_empty() || plan.sessions.contains(session),
        Err(_) => true,
    })
}

/// The segments of `session`, ascending by id.
fn segments(
    log: &dyn SegmentLogStore,
    session: SessionId,
) -> impl Iterator<Item = Result<SegmentId, MigrateError>> + '_ {
    paged(
        move |after: Option<&SegmentId>, limit| {
            log.list_segments_page(session, after, limit)
                .map_err(Into::into)
        },
        |segment: &SegmentId| *segment,
    )
}

/// What the segment log holds, when it holds anything: a destination must not.
pub(super) fn holds(stores: &Stores) -> Result<Option<String>, MigrateError> {
    let first = stores.segment_log().list_sessions_page(None, 1)?;
    Ok(first
        .first()
        .map(|session| format!("session {session} and maybe more")))
}

/// Refuses a session named in the plan that the source does not hold.
pub(super) fn check_named(from: &Stores, plan: &Plan) -> Result<(), MigrateError> {
    let log = from.segment_log();
    for session in &plan.sessions {
        if log.list_segments_page(*session, None, 1)?.is_empty() {
            return Err(MigrateError::NotInSource {
                what: "session",
                name: session.to_string(),
                hint: "it has no segment holding an entry".to_owned(),
            });
        }
    }
    Ok(())
}

pub(super) fn copy(
    from: &Stores,
    to: &Stores,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<CopySummary, MigrateError> {
    let step = Step::begin(progress, Phase::Copy, StoreKind::Segments);
    let (src, dst) = (from.segment_log(), to.segment_log());
    let mut counts = Counts::zero(&COUNTED);
    for session in sessions(src.as_ref(), plan) {
        let session = session?;
        counts.add("sessions", 1);
        for segment in segments(src.as_ref(), session) {
            let segment = segment?;
            let log = src.read_all(session, segment)?;
            let refs: Vec<&[u8]> = log.iter().map(|e| e.as_ref()).collect();
            dst.create_segment(session, segment, &refs)?;
            let traces = src.read_traces(session, segment)?;
            for trace in &traces {
                dst.append_trace(session, segment, trace)?;
            }
            counts.add("segments", 1);
            counts.add("entries", log.len() as u64);
            counts.add("trace entries", traces.len() as u64);
            step.advance(1);
        }
    }
    Ok(CopySummary {
        store: StoreKind::Segments,
        counts,
        handled: Vec::new(),
        not_migrated: vec![TRACE_ONLY_NOTE.to_owned()],
    })
}

/// One segment, by session and id.
#[derive(PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) struct SegmentItem {
    session: SessionId,
    segment: SegmentId,
}

impl fmt::Debug for SegmentItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session {} segment {}", self.session, self.segment)
    }
}

/// A segment's entries and trace entries.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub(super) struct SegmentContents {
    entries: Vec<Bytes>,
    traces: Vec<Bytes>,
}

/// Every selected session's segments, each with its entries and trace entries; one
/// segment in memory at a time.
pub(super) fn walk(
    stores: &Stores,
    plan: &Plan,
    sink: &mut dyn Sink<SegmentItem, SegmentContents>,
) -> Result<Counts, MigrateError> {
    let log = stores.segment_log();
    let log = log.as_ref();
    let mut counts = Counts::zero(&COUNTED);
    for session in sessions(log, plan) {
        let session = session?;
        counts.add("sessions", 1);
        for segment in segments(log, session) {
            let segment = segment?;
            let entries = log.read_all(session, segment)?;
            let traces = log.read_traces(session, segment)?;
            counts.add("segments", 1);
            counts.add("entries", entries.len() as u64);
            counts.add("trace entries", traces.len() as u64);
            sink.push(
                SegmentItem { session, segment },
                SegmentContents { entries, traces },
            );
        }
    }
    Ok(counts)
}
