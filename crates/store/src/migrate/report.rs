//! What a migration copied, what it could not, and what verification found.

use std::fmt;

/// One of the five stores of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            StoreKind::Engine => "engine",
            StoreKind::State => "state",
            StoreKind::Ledger => "ledger",
            StoreKind::Segments => "segment log",
            StoreKind::SideEffects => "side effects",
        })
    }
}

/// What was copied of one store, and what the API did not allow copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySummary {
    /// The store.
    pub store: StoreKind,
    /// What was copied, in words and counts.
    pub copied: String,
    /// What exists or may exist in the source and was not copied, and why.
    pub not_migrated: Vec<String>,
}

/// One way the destination differs from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The store where it was found.
    pub store: StoreKind,
    /// What differs: the item and both sides.
    pub detail: String,
}

/// The result of [`migrate`](super::migrate): what was copied and what verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The source's URL.
    pub from: String,
    /// The destination's URL.
    pub to: String,
    /// One summary per store.
    pub copied: Vec<CopySummary>,
    /// Every difference verification found (at most 50 per store).
    pub differences: Vec<Difference>,
}

impl MigrationReport {
    /// Whether verification found the destination equal to the source in every store it
    /// could compare.
    pub fn is_exact(&self) -> bool {
        self.differences.is_empty()
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "migrated {} -> {}", self.from, self.to)?;
        for summary in &self.copied {
            let found = self
                .differences
                .iter()
                .filter(|d| d.store == summary.store)
                .count();
            let verdict = match found {
                0 => "verified".to_owned(),
                n => format!("{n} DIFFERENCES"),
            };
            writeln!(f, "  {:<13} {verdict}: {}", summary.store, summary.copied)?;
            for gap in &summary.not_migrated {
                writeln!(f, "  {:<13}   not migrated: {gap}", "")?;
            }
        }
        for d in &self.differences {
            writeln!(f, "  DIFFERENCE in {}: {}", d.store, d.detail)?;
        }
        if self.is_exact() {
            write!(f, "result: the destination matches the source")
        } else {
            write!(
                f,
                "result: {} differences, the destination does not match",
                self.differences.len()
            )
        }
    }
}
