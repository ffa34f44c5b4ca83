//! What a migration copied (or a dry run would copy), what it handled specially or could
//! not copy, and what verification found, store by store. Every type serializes (the
//! `--json` report of `store-migrate`) and displays (its text report).

use std::fmt;

use serde::Serialize;
use serde::ser::SerializeMap;

/// One of the five stores of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The `StoreEngine`.
    Engine,
    /// The `StateStore` partitions.
    State,
    /// The `LedgerStore`.
    Ledger,
    /// The `SegmentLogStore`.
    Segments,
    /// The `SideEffectStore`.
    SideEffects,
}

impl StoreKind {
    /// Every store, in the order a migration copies and reports them.
    pub const ALL: [StoreKind; 5] = [
        StoreKind::Engine,
        StoreKind::State,
        StoreKind::Ledger,
        StoreKind::Segments,
        StoreKind::SideEffects,
    ];

    /// The store's name on the command line and in the JSON report (`side-effects`).
    pub const fn name(self) -> &'static str {
        match self {
            StoreKind::Engine => "engine",
            StoreKind::State => "state",
            StoreKind::Ledger => "ledger",
            StoreKind::Segments => "segments",
            StoreKind::SideEffects => "side-effects",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Named counts, in a fixed order (`keys 700, retained batches 4`); serialized as a JSON
/// object in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub Vec<(&'static str, u64)>);

impl Counts {
    /// A count of 0 for each of `names`, in that order.
    pub fn zero(names: &[&'static str]) -> Self {
        Counts(names.iter().map(|name| (*name, 0)).collect())
    }

    /// The count called `what`, if there is one.
    pub fn get(&self, what: &str) -> Option<u64> {
        self.0
            .iter()
            .find(|(name, _)| *name == what)
            .map(|(_, n)| *n)
    }

    /// Adds `n` to the count called `what`, creating it (at the end) if needed.
    pub fn add(&mut self, what: &'static str, n: u64) {
        match self.0.iter_mut().find(|(name, _)| *name == what) {
            Some((_, count)) => *count += n,
            None => self.0.push((what, n)),
        }
    }

    /// Sets the count called `what`.
    pub fn set(&mut self, what: &'static str, n: u64) {
        match self.0.iter_mut().find(|(name, _)| *name == what) {
            Some((_, count)) => *count = n,
            None => self.0.push((what, n)),
        }
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (what, n) in &self.0 {
            map.serialize_entry(what, n)?;
        }
        map.end()
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        for (i, (what, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{what} {n}")?;
        }
        Ok(())
    }
}

/// What was copied of one store (or, in a dry run, would be), what had to be handled
/// specially, and what cannot be copied through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopySummary {
    /// The store.
    pub store: StoreKind,
    /// What was (or would be) copied, counted.
    pub counts: Counts,
    /// What could not be copied as it is and was handled explicitly (a pruned batch log
    /// prefix), in words.
    pub handled: Vec<String>,
    /// What may exist in the source and cannot be copied through the API, and why.
    pub not_migrated: Vec<String>,
}

/// One side of a verified store: its counts and the digest of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// The store's counts (keys, books, events, ...).
    pub counts: Counts,
    /// How many items were compared (each key, log entry, event, segment, slot, ...).
    pub items: u64,
    /// SHA-256 of the canonical encoding of every item, in order, as hex: equal stores
    /// have equal digests, whatever the backend.
    pub digest: String,
}

/// The verification of one store: both sides counted and digested, and how they differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreCheck {
    /// The store.
    pub store: StoreKind,
    /// The source side.
    pub source: Tally,
    /// The destination side.
    pub destination: Tally,
    /// Items of the source missing from the destination.
    pub missing: u64,
    /// Items of the destination the source does not have.
    pub extra: u64,
    /// Items on both sides with different contents.
    pub changed: u64,
    /// The first differences, in words (at most 50).
    pub differences: Vec<String>,
}

impl StoreCheck {
    /// Whether both sides hold exactly the same items.
    pub fn matches(&self) -> bool {
        self.missing == 0
            && self.extra == 0
            && self.changed == 0
            && self.source.digest == self.destination.digest
    }
}

/// What the destination was before the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationState {
    /// An in-memory backend: always empty when opened.
    InMemory,
    /// The directory did not exist: the migration creates it.
    Absent,
    /// The directory existed and was empty.
    EmptyDirectory,
    /// The directory held a database of the backend, with nothing in it.
    EmptyDatabase,
    /// The directory held a database with data, and `--into-existing` allowed it (only
    /// stores empty there are copied).
    ExistingDatabase,
}

impl fmt::Display for DestinationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DestinationState::InMemory => "in memory (starts empty)",
            DestinationState::Absent => "absent (the migration creates it)",
            DestinationState::EmptyDirectory => "an empty directory",
            DestinationState::EmptyDatabase => "an empty database",
            DestinationState::ExistingDatabase => {
                "a database holding data (--into-existing: only stores empty there are copied)"
            }
        })
    }
}

/// How a migration opened its source (contract §1.3). Only a read-only open guarantees
/// that the source's files are left byte-identical, so every report says which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAccess {
    /// Read-only: the source's data files are left byte-identical.
    ReadOnly,
    /// Read-write, never creating it, because its backend cannot open a store read-only
    /// (`Capabilities::read_only_open` is false: sled and fjall write to their files
    /// whenever they open).
    ReadWriteNoReadOnlyOpen,
    /// Read-write, because the read-only open found a store left by a crash that needs
    /// recovery first (`OpenError::NeedsRecovery`, redb): the read-write open ran it.
    ReadWriteToRecover,
    /// In memory: a new, empty store of this process.
    InMemory,
}

impl SourceAccess {
    /// Its name in the JSON report.
    pub const fn name(self) -> &'static str {
        match self {
            SourceAccess::ReadOnly => "read-only",
            SourceAccess::ReadWriteNoReadOnlyOpen => "read-write-no-read-only-open",
            SourceAccess::ReadWriteToRecover => "read-write-to-recover",
            SourceAccess::InMemory => "in-memory",
        }
    }

    /// What it means, in one plain sentence.
    pub const fn sentence(self) -> &'static str {
        match self {
            SourceAccess::ReadOnly => {
                "the source was opened read-only: its files are left as they were"
            }
            SourceAccess::ReadWriteNoReadOnlyOpen => {
                "the source was opened read-write (never created) because its backend cannot \
                 open a store read-only: it writes to its files whenever it opens"
            }
            SourceAccess::ReadWriteToRecover => {
                "the source needed recovery after an unclean shutdown; it was opened \
                 read-write to recover it"
            }
            SourceAccess::InMemory => "the source is in memory: a new, empty store",
        }
    }

    /// Whether the source was opened for writing.
    pub const fn is_read_write(self) -> bool {
        matches!(
            self,
            SourceAccess::ReadWriteNoReadOnlyOpen | SourceAccess::ReadWriteToRecover
        )
    }
}

/// Serialized as `{"access": "read-only", "note": "<the sentence>"}`.
impl Serialize for SourceAccess {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("access", self.name())?;
        map.serialize_entry("note", self.sentence())?;
        map.end()
    }
}

impl fmt::Display for SourceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sentence())
    }
}

/// What a report is the result of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// A copy followed by its verification.
    Migration,
    /// A verification of an existing destination (`--verify-only`).
    Verification,
}

/// The result of [`migrate`](super::migrate) or [`verify_only`](super::verify_only): what
/// was copied and what verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// A migration or a verification alone.
    pub kind: ReportKind,
    /// The source's URL.
    pub from: String,
    /// The destination's URL.
    pub to: String,
    /// How the source was opened.
    pub source: SourceAccess,
    /// What the destination was before the migration (`None` for a verification alone).
    pub destination: Option<DestinationState>,
    /// How the plan narrowed the copy (empty: everything was copied).
    pub narrowed: Vec<String>,
    /// One summary per store copied (empty for a verification alone).
    pub copied: Vec<CopySummary>,
    /// One check per store verified.
    pub checks: Vec<StoreCheck>,
    /// Set when the destination still carries the `MIGRATING` marker of an unfinished
    /// migration: why it is there.
    pub unfinished: Option<String>,
}

impl MigrationReport {
    /// Whether every store verified equal and the destination is not marked unfinished.
    pub fn is_exact(&self) -> bool {
        self.unfinished.is_none() && self.checks.iter().all(StoreCheck::matches)
    }
}

/// Writes the first 16 hex digits of a digest: enough to tell two apart by eye.
fn short(digest: &str) -> &str {
    digest.get(..16).unwrap_or(digest)
}

fn write_notes(f: &mut fmt::Formatter<'_>, summary: &CopySummary) -> fmt::Result {
    for note in &summary.handled {
        writeln!(f, "  {:<12}   handled: {note}", "")?;
    }
    for gap in &summary.not_migrated {
        writeln!(f, "  {:<12}   not migrated: {gap}", "")?;
    }
    Ok(())
}

fn write_check(f: &mut fmt::Formatter<'_>, check: &StoreCheck) -> fmt::Result {
    if check.matches() {
        return writeln!(
            f,
            "  {:<12} verified: {} (digest {})",
            check.store,
            check.source.counts,
            short(&check.source.digest)
        );
    }
    writeln!(
        f,
        "  {:<12} DIFFERS: source {} (digest {}), destination {} (digest {}): {} missing \
         from the destination, {} only in the destination, {} changed",
        check.store,
        check.source.counts,
        short(&check.source.digest),
        check.destination.counts,
        short(&check.destination.digest),
        check.missing,
        check.extra,
        check.changed
    )?;
    for difference in &check.differences {
        writeln!(f, "  {:<12}   {difference}", "")?;
    }
    Ok(())
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ReportKind::Migration => writeln!(f, "migrated {} -> {}", self.from, self.to)?,
            ReportKind::Verification => writeln!(f, "verified {} -> {}", self.from, self.to)?,
        }
        writeln!(f, "  {}", self.source)?;
        if let Some(state) = self.destination {
            writeln!(f, "  destination was {state}")?;
        }
        for narrowing in &self.narrowed {
            writeln!(f, "  narrowed to {narrowing}")?;
        }
        for store in StoreKind::ALL {
            if let Some(summary) = self.copied.iter().find(|s| s.store == store) {
                writeln!(f, "  {store:<12} copied {}", summary.counts)?;
                write_notes(f, summary)?;
            }
            if let Some(check) = self.checks.iter().find(|c| c.store == store) {
                write_check(f, check)?;
            }
        }
        if let Some(why) = &self.unfinished {
            writeln!(f, "  UNFINISHED: {why}")?;
        }
        let differing = self.checks.iter().filter(|c| !c.matches()).count();
        match (self.is_exact(), differing) {
            (true, _) => write!(f, "result: the destination matches the source"),
            (false, 0) => write!(f, "result: the destination is marked unfinished"),
            (false, n) => write!(
                f,
                "result: {n} of {} stores differ, the destination does not match",
                self.checks.len()
            ),
        }
    }
}

/// The result of [`dry_run`](super::dry_run): what a migration would copy (a migration
/// that would be refused is an error of the dry run too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunReport {
    /// The source's URL.
    pub from: String,
    /// The destination's URL.
    pub to: String,
    /// How the source was opened (as the migration would open it).
    pub source: SourceAccess,
    /// What the destination is now.
    pub destination: DestinationState,
    /// How the plan narrows the copy (empty: everything would be copied).
    pub narrowed: Vec<String>,
    /// One summary per store that would be copied.
    pub would_copy: Vec<CopySummary>,
}

impl fmt::Display for DryRunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dry run: {} -> {}", self.from, self.to)?;
        writeln!(f, "  {}", self.source)?;
        writeln!(f, "  destination is {}", self.destination)?;
        for narrowing in &self.narrowed {
            writeln!(f, "  narrowed to {narrowing}")?;
        }
        for summary in &self.would_copy {
            writeln!(f, "  {:<12} would copy {}", summary.store, summary.counts)?;
            write_notes(f, summary)?;
        }
        write!(f, "result: nothing written; the migration would run")
    }
}
