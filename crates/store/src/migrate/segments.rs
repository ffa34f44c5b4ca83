//! Segment-log migration: every listed session and segment, written whole, with its trace.

use store_api::SegmentLogStore;

use super::{Difference, MigrateError, StoreKind, record};
use crate::migrate::report::CopySummary;
use crate::stores::Stores;

pub(super) fn check_empty(to: &Stores) -> Result<(), MigrateError> {
    let sessions = to.segment_log().list_sessions()?;
    if let Some(session) = sessions.first() {
        return Err(MigrateError::DestinationNotEmpty {
            store: StoreKind::Segments,
            detail: format!("{} sessions, the newest {session}", sessions.len()),
        });
    }
    Ok(())
}

pub(super) fn copy(from: &Stores, to: &Stores) -> Result<CopySummary, MigrateError> {
    let (src, dst) = (from.segment_log(), to.segment_log());
    let (mut sessions, mut segments, mut entries, mut traces) = (0u64, 0u64, 0u64, 0u64);
    for session in src.list_sessions()? {
        sessions += 1;
        for segment in src.list_segments(session)? {
            segments += 1;
            let log = src.read_all(session, segment)?;
            let refs: Vec<&[u8]> = log.iter().map(|e| e.as_ref()).collect();
            dst.create_segment(session, segment, &refs)?;
            entries += log.len() as u64;
            for trace in src.read_traces(session, segment)? {
                dst.append_trace(session, segment, &trace)?;
                traces += 1;
            }
        }
    }
    Ok(CopySummary {
        store: StoreKind::Segments,
        copied: format!(
            "sessions {sessions}, segments {segments}, entries {entries}, trace entries {traces}"
        ),
        not_migrated: vec![
            "segments holding only trace entries: the listings do not show them \
             (docs/contract.md section 7.6), so they cannot be found"
                .to_owned(),
        ],
    })
}

pub(super) fn verify(
    from: &Stores,
    to: &Stores,
    differences: &mut Vec<Difference>,
) -> Result<(), MigrateError> {
    let (src, dst) = (from.segment_log(), to.segment_log());
    let mut diff = |detail: String| record(differences, StoreKind::Segments, detail);
    let (a, b) = (src.list_sessions()?, dst.list_sessions()?);
    if a != b && !diff(format!("sessions: source {a:?}, destination {b:?}")) {
        return Ok(());
    }
    for session in a {
        let (a, b) = (src.list_segments(session)?, dst.list_segments(session)?);
        if a != b
            && !diff(format!(
                "session {session} segments: source {a:?}, destination {b:?}"
            ))
        {
            return Ok(());
        }
        for segment in a {
            let theirs = read_segment(dst.as_ref(), session, segment)?;
            let ours = read_segment(src.as_ref(), session, segment)?;
            if ours != theirs
                && !diff(format!(
                    "segment {segment} of session {session}: source (entries, traces) {ours:?}, \
                     destination {theirs:?}"
                ))
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

type SegmentContents = Option<(Vec<store_api::Bytes>, Vec<store_api::Bytes>)>;

/// The segment's entries and trace, or `None` when it does not exist.
fn read_segment(
    log: &dyn SegmentLogStore,
    session: store_api::SessionId,
    segment: store_api::SegmentId,
) -> Result<SegmentContents, MigrateError> {
    if !log.exists(session, segment)? {
        return Ok(None);
    }
    Ok(Some((
        log.read_all(session, segment)?,
        log.read_traces(session, segment)?,
    )))
}
