//! The session-log example: an agent session written as append-only segments, with a
//! debug trace kept apart, an interrupted turn truncated away, and a summary segment
//! written whole.

use std::fmt;

use swapstore::{Bytes, SegmentId, SessionId};

use super::DemoError;
use swapstore::Stores;

/// What [`session_log_demo`] did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLogDemo {
    /// The session the demo wrote (new on every run).
    pub session: SessionId,
    /// The session's segments, newest first, each with its entries in append order.
    pub segments: Vec<(SegmentId, Vec<Bytes>)>,
    /// The first segment's trace entries, which never appear among its entries.
    pub traces: Vec<Bytes>,
    /// Entries the interrupted turn had before it was truncated.
    pub entries_before_truncate: u64,
    /// Whether the store names the session as the owner of every segment.
    pub owner_found: bool,
    /// Whether the session is among the store's listed sessions.
    pub session_listed: bool,
}

impl fmt::Display for SessionLogDemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "session {} (listed: {}):",
            self.session, self.session_listed
        )?;
        for (segment, entries) in &self.segments {
            writeln!(f, "  segment {segment} ({} entries)", entries.len())?;
            for entry in entries {
                writeln!(f, "    {:?}", String::from_utf8_lossy(entry))?;
            }
        }
        writeln!(
            f,
            "  interrupted turn truncated from {} entries; every segment owned by the session: {}",
            self.entries_before_truncate, self.owner_found
        )?;
        writeln!(f, "  trace of the first segment (kept apart from its log):")?;
        for trace in &self.traces {
            writeln!(f, "    {:?}", String::from_utf8_lossy(trace))?;
        }
        Ok(())
    }
}

/// Runs the session-log example on `stores`, in a new session: appends a turn with a
/// multi-line entry and a trace entry, appends an interrupted turn and truncates its
/// partial reply away before appending the final one, writes a summary segment whole with
/// `create_segment`, then reads everything back.
pub fn session_log_demo(stores: &Stores) -> Result<SessionLogDemo, DemoError> {
    let log = stores.segment_log();
    let session = SessionId::new_v7();

    let turn_1 = SegmentId::new_v7();
    log.append(session, turn_1, b"user: what is double-entry bookkeeping?")?;
    log.append(
        session,
        turn_1,
        b"agent: every movement is recorded twice:\na debit and an equal credit.",
    )?;
    log.append_trace(session, turn_1, b"trace: answered from the glossary")?;

    let turn_2 = SegmentId::new_v7();
    log.append(session, turn_2, b"user: and a trial balance?")?;
    log.append(session, turn_2, b"agent: it sums every deb")?;
    let entries_before_truncate = log.read_entry_count(session, turn_2)?;
    log.truncate(session, turn_2, 1)?;
    log.append(
        session,
        turn_2,
        b"agent: it sums debits and credits per asset; they must be equal.",
    )?;

    let summary = SegmentId::new_v7();
    let summary_entries: [&[u8]; 2] = [b"summary: bookkeeping basics", b""];
    log.create_segment(session, summary, &summary_entries)?;

    let mut segments = Vec::new();
    let mut owner_found = true;
    for segment in log.list_segments(session)? {
        owner_found &= log.lookup_session_of(segment)? == Some(session);
        segments.push((segment, log.read_all(session, segment)?));
    }
    Ok(SessionLogDemo {
        session,
        segments,
        traces: log.read_traces(session, turn_1)?,
        entries_before_truncate,
        owner_found,
        session_listed: log.list_sessions()?.contains(&session),
    })
}
