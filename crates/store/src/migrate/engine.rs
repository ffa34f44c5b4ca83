//! Engine migration: the retained batch log applied under the source's sequence numbers
//! (`apply_batch`, contract §3.7), the data of pruned batches carried as base batches, and
//! everything the API shows walked for verification.

use std::collections::{HashSet, VecDeque};
use std::fmt;

use serde::Serialize;
use store_api::{Bytes, EngineError, Mutation, StoreEngine};

use super::Plan;
use super::compare::Sink;
use super::error::MigrateError;
use super::progress::{Phase, Progress, Step};
use super::report::{CopySummary, Counts, StoreKind};
use crate::stores::Stores;

/// Rows read per range scan while paging through the engine.
const PAGE: usize = 1024;
/// The key filler batches delete (with a suffix if the source holds it): absent from the
/// destination's data when the fillers are written, so deleting it changes nothing.
const FILLER_KEY: &[u8] = b"\xffstore-migrate/filler";
/// Target size of one base batch, in key and value bytes.
const BASE_BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Filler batches per progress report.
const FILLERS_PER_REPORT: u64 = 1024;

/// Every `(key, value)` of an engine, ascending, read a page at a time.
struct Scan<'a> {
    engine: &'a dyn StoreEngine,
    next_start: Option<Vec<u8>>,
    page: VecDeque<(Bytes, Bytes)>,
}

impl<'a> Scan<'a> {
    fn new(engine: &'a dyn StoreEngine) -> Self {
        Scan {
            engine,
            next_start: Some(Vec::new()),
            page: VecDeque::new(),
        }
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Bytes, Bytes), EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() {
            let start = self.next_start.take()?;
            let page = match self.engine.range_scan(&start, &[], PAGE, true) {
                Ok(page) => page,
                Err(e) => return Some(Err(e)),
            };
            if page.len() == PAGE
                && let Some((last, _)) = page.last()
            {
                // The smallest key after `last`: the scan's start is inclusive.
                self.next_start = Some([last.as_ref(), &[0]].concat());
            }
            self.page = page.into();
        }
        self.page.pop_front().map(Ok)
    }
}

/// What the engine holds, when it holds anything: a destination must not.
pub(super) fn holds(stores: &Stores) -> Result<Option<String>, MigrateError> {
    let engine = stores.engine();
    let seq = engine.current_sequence();
    let has_keys = !engine.range_scan(&[], &[], 1, true)?.is_empty();
    Ok((seq != 0 || has_keys).then(|| format!("engine at sequence {seq}")))
}

/// The batches the source still has in its log: `first..=current`, empty when
/// `first > current`.
fn retained(engine: &dyn StoreEngine) -> Result<(u64, u64), EngineError> {
    let current = engine.current_sequence();
    let first = engine.oldest_retained_batch()?.unwrap_or(current + 1);
    Ok((first, current))
}

fn source_batch(engine: &dyn StoreEngine, seq: u64) -> Result<Vec<Mutation>, MigrateError> {
    engine
        .get_batch(seq)?
        .ok_or(MigrateError::BatchLogGap { seq })
}

/// Says how a pruned prefix `1..first` is carried over, when there is one.
fn pruned_prefix_note(first: u64, base: Option<&Base>) -> Option<String> {
    if first <= 1 {
        return None;
    }
    let last = first - 1;
    let how = match base {
        Some(base) => format!(
            "the {} keys they left were written as {} base batches and the other {} numbers \
             as empty filler batches",
            base.keys, base.batches, base.fillers
        ),
        None => "the keys they left are written as base batches and the other numbers as \
                 empty filler batches"
            .to_owned(),
    };
    Some(format!(
        "batches 1..={last} were pruned from the source's log, so their mutations cannot be \
         copied: {how}, all numbered 1..={last} and then pruned, so the destination's data, \
         current sequence and oldest retained batch equal the source's and its numbering \
         continues after {last}"
    ))
}

/// What a dry run says about the engine besides its counts.
pub(super) fn caveats(stores: &Stores) -> Result<Vec<String>, MigrateError> {
    let (first, _) = retained(stores.engine().as_ref())?;
    Ok(pruned_prefix_note(first, None).into_iter().collect())
}

/// A key the source does not hold, for filler batches to delete.
fn filler_key(src: &dyn StoreEngine) -> Result<Vec<u8>, MigrateError> {
    let mut key = FILLER_KEY.to_vec();
    let mut suffix = 0u64;
    while src.get(&key)?.is_some() {
        suffix += 1;
        key = [FILLER_KEY, b"/", suffix.to_string().as_bytes()].concat();
    }
    Ok(key)
}

/// How the pruned prefix was written.
struct Base {
    keys: u64,
    batches: u64,
    fillers: u64,
}

/// Writes the pruned prefix `1..=slots`: base batches holding every key of the source no
/// retained batch touches (what the pruned batches left), then filler batches deleting a
/// key nobody holds; then prunes them from the destination's log.
fn write_base(
    src: &dyn StoreEngine,
    dst: &dyn StoreEngine,
    retained: (u64, u64),
    batch_bytes: u64,
    step: &Step<'_>,
) -> Result<Base, MigrateError> {
    let (first, current) = retained;
    let slots = first - 1;
    let mut touched = HashSet::new();
    for seq in first..=current {
        touched.extend(source_batch(src, seq)?.into_iter().map(|m| match m {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key,
        }));
    }
    let mut base = Base {
        keys: 0,
        batches: 0,
        fillers: 0,
    };
    let mut pending: Vec<Mutation> = Vec::new();
    let mut pending_bytes = 0u64;
    let write = |pending: &mut Vec<Mutation>, base: &mut Base| -> Result<(), MigrateError> {
        base.batches += 1;
        dst.apply_batch(base.batches, pending)?;
        step.advance(pending.len() as u64);
        pending.clear();
        Ok(())
    };
    for row in Scan::new(src) {
        let (key, value) = row?;
        if touched.contains(&key) {
            continue;
        }
        base.keys += 1;
        pending_bytes += (key.len() + value.len()) as u64;
        pending.push(Mutation::Put { key, value });
        // The last slot takes whatever is left, however large.
        if pending_bytes >= batch_bytes && base.batches + 1 < slots {
            write(&mut pending, &mut base)?;
            pending_bytes = 0;
        }
    }
    if !pending.is_empty() {
        write(&mut pending, &mut base)?;
    }
    let filler = [Mutation::Delete {
        key: Bytes::from(filler_key(src)?),
    }];
    for seq in base.batches + 1..=slots {
        dst.apply_batch(seq, &filler)?;
        base.fillers += 1;
        if base.fillers.is_multiple_of(FILLERS_PER_REPORT) {
            step.advance(FILLERS_PER_REPORT);
        }
    }
    step.advance(base.fillers % FILLERS_PER_REPORT);
    dst.prune_batch_log(first)?;
    Ok(base)
}

pub(super) fn copy(
    from: &Stores,
    to: &Stores,
    progress: &dyn Progress,
) -> Result<CopySummary, MigrateError> {
    copy_with(from, to, BASE_BATCH_BYTES, progress)
}

fn copy_with(
    from: &Stores,
    to: &Stores,
    batch_bytes: u64,
    progress: &dyn Progress,
) -> Result<CopySummary, MigrateError> {
    let step = Step::begin(progress, Phase::Copy, StoreKind::Engine);
    let (src, dst) = (from.engine(), to.engine());
    let (first, current) = retained(src.as_ref())?;
    let base = if first > 1 {
        Some(write_base(
            src.as_ref(),
            dst.as_ref(),
            (first, current),
            batch_bytes,
            &step,
        )?)
    } else {
        None
    };
    for seq in first..=current {
        let batch = source_batch(src.as_ref(), seq)?;
        if batch.is_empty() {
            return Err(MigrateError::UnreplayableBatch {
                seq,
                reason: "it is empty, and an empty batch takes no sequence number",
            });
        }
        dst.apply_batch(seq, &batch)?;
        step.advance(1);
    }
    let mut counts = Counts::default();
    counts.set("replayed batches", (current + 1).saturating_sub(first));
    if let Some(base) = &base {
        counts.set("base keys", base.keys);
        counts.set("base batches", base.batches);
        counts.set("filler batches", base.fillers);
    }
    counts.set("current sequence", current);
    Ok(CopySummary {
        store: StoreKind::Engine,
        counts,
        handled: pruned_prefix_note(first, base.as_ref())
            .into_iter()
            .collect(),
        not_migrated: Vec::new(),
    })
}

/// One item of the engine, in the order [`walk`] gives them.
#[derive(PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) enum EngineItem {
    /// A key of the data.
    Key(Bytes),
    /// A retained batch log entry.
    Batch(u64),
    /// The current sequence number.
    CurrentSequence,
    /// The oldest retained batch.
    OldestRetainedBatch,
}

impl fmt::Debug for EngineItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineItem::Key(key) => write!(f, "key {key:?}"),
            EngineItem::Batch(seq) => write!(f, "batch {seq}"),
            EngineItem::CurrentSequence => f.write_str("current sequence"),
            EngineItem::OldestRetainedBatch => f.write_str("oldest retained batch"),
        }
    }
}

/// What an [`EngineItem`] holds.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub(super) enum EngineValue {
    /// A key's value.
    Value(Bytes),
    /// A log entry's mutations (`None`: missing inside the retained range).
    Batch(Option<Vec<Mutation>>),
    /// A sequence number.
    Number(Option<u64>),
}

/// Every key, every retained log entry, the current sequence and the oldest retained batch.
pub(super) fn walk(
    stores: &Stores,
    _plan: &Plan,
    sink: &mut dyn Sink<EngineItem, EngineValue>,
) -> Result<Counts, MigrateError> {
    let engine = stores.engine();
    let mut keys = 0;
    for row in Scan::new(engine.as_ref()) {
        let (key, value) = row?;
        sink.push(EngineItem::Key(key), EngineValue::Value(value));
        keys += 1;
    }
    let current = engine.current_sequence();
    let oldest = engine.oldest_retained_batch()?;
    let mut batches = 0;
    if let Some(first) = oldest {
        for seq in first..=current {
            let batch = engine.get_batch(seq)?;
            sink.push(EngineItem::Batch(seq), EngineValue::Batch(batch));
            batches += 1;
        }
    }
    sink.push(
        EngineItem::CurrentSequence,
        EngineValue::Number(Some(current)),
    );
    sink.push(EngineItem::OldestRetainedBatch, EngineValue::Number(oldest));
    Ok(Counts(vec![
        ("keys", keys),
        ("retained batches", batches),
        ("current sequence", current),
    ]))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use store_api::OpenOptions;
    use store_mem::MemBackend;

    use super::*;
    use crate::migrate::compare;
    use crate::migrate::progress::NoProgress;
    use crate::stores::open_as;

    fn mem() -> Stores {
        open_as::<MemBackend>(Path::new(""), OpenOptions::default()).unwrap()
    }

    fn check(source: &Stores, destination: &Stores) -> crate::migrate::StoreCheck {
        compare::compare(
            StoreKind::Engine,
            source,
            destination,
            &Plan::default(),
            walk,
            &NoProgress,
        )
        .unwrap()
    }

    /// Copies `source` with base batches of `batch_bytes`, checks the destination matches
    /// and returns it.
    fn copied(source: &Stores, batch_bytes: u64) -> Stores {
        let destination = mem();
        assert_eq!(holds(&destination).unwrap(), None);
        copy_with(source, &destination, batch_bytes, &NoProgress).unwrap();
        let check = check(source, &destination);
        assert!(check.matches(), "{check:#?}");
        destination
    }

    /// A source with `batches` put batches of 10 keys of 100-byte values (keys repeat
    /// every 3 batches), pruned below `cutoff`.
    fn source(batches: u64, cutoff: u64) -> Stores {
        let stores = mem();
        let engine = stores.engine();
        for b in 0..batches {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..10u8)
                .map(|i| (vec![b'k', (b % 3) as u8, i], vec![b as u8; 100]))
                .collect();
            let refs: Vec<(&[u8], &[u8])> = pairs
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            engine.put_batch(&refs).unwrap();
        }
        engine.prune_batch_log(cutoff).unwrap();
        stores
    }

    #[test]
    fn a_complete_log_is_replayed_as_is() {
        let destination = copied(&source(5, 0), 1 << 20);
        assert_eq!(
            destination.engine().oldest_retained_batch().unwrap(),
            Some(1)
        );
    }

    #[test]
    fn pruned_data_becomes_base_batches_below_the_retained_log() {
        // Batches 1..=6 pruned: base of 30 keys (3 key groups), spread over several
        // batches when they are small, squeezed into the 6 slots when they are tiny.
        for batch_bytes in [1 << 20, 1000, 1] {
            let destination = copied(&source(9, 7), batch_bytes);
            let engine = destination.engine();
            assert_eq!(engine.current_sequence(), 9);
            assert_eq!(engine.oldest_retained_batch().unwrap(), Some(7));
        }
    }

    #[test]
    fn retained_batches_overwriting_everything_leave_an_empty_base() {
        // Batches 4..=6 rewrite every key group, so the base is empty: fillers hold 1..=3.
        let destination = copied(&source(6, 4), 1 << 20);
        assert_eq!(
            destination.engine().oldest_retained_batch().unwrap(),
            Some(4)
        );
    }

    #[test]
    fn a_fully_pruned_log_keeps_the_sequence_and_the_data() {
        let destination = copied(&source(4, 100), 1000);
        let engine = destination.engine();
        assert_eq!(engine.current_sequence(), 4);
        assert_eq!(engine.oldest_retained_batch().unwrap(), None);
        assert_eq!(engine.put_batch(&[(b"next", b"")]).unwrap(), 5);
    }

    #[test]
    fn fillers_never_delete_a_key_the_source_holds() {
        // The source holds the filler key itself, in the part of the data the pruned
        // batches left: the fillers pick another key.
        let source = source(3, 0);
        let engine = source.engine();
        engine.put_batch(&[(FILLER_KEY, b"mine")]).unwrap();
        engine.put_batch(&[(b"k", b"v")]).unwrap();
        engine.prune_batch_log(5).unwrap();
        // One base batch (seq 1), then fillers 2..=4 that must not delete it.
        let destination = copied(&source, 1 << 20);
        assert_eq!(
            destination.engine().get(FILLER_KEY).unwrap().as_deref(),
            Some(&b"mine"[..])
        );
    }

    #[test]
    fn mixed_batches_are_replayed_as_logged() {
        let source = source(2, 0);
        let mixed = vec![
            Mutation::Delete {
                key: Bytes::from_static(b"k\x00\x00"),
            },
            Mutation::Put {
                key: Bytes::from_static(b"new"),
                value: Bytes::from_static(b"v"),
            },
            Mutation::Delete {
                key: Bytes::from_static(b"new"),
            },
        ];
        assert_eq!(source.engine().write_batch(&mixed).unwrap(), 3);
        let destination = copied(&source, 1 << 20);
        assert_eq!(destination.engine().get_batch(3).unwrap(), Some(mixed));
    }

    #[test]
    fn an_empty_engine_copies_to_an_empty_engine() {
        let destination = copied(&mem(), 1000);
        assert_eq!(destination.engine().current_sequence(), 0);
    }

    #[test]
    fn verification_reports_each_kind_of_difference() {
        let source = source(3, 0);
        let destination = copied(&source, 1000);
        let engine = destination.engine();
        engine
            .put_batch(&[(b"k\x00\x00", b"changed"), (b"only-here", b"")])
            .unwrap();
        engine.delete_batch(&[b"k\x01\x00"]).unwrap();
        let check = check(&source, &destination);
        assert!(!check.matches());
        assert_ne!(check.source.digest, check.destination.digest);
        let text = check.differences.join("\n");
        assert!(text.contains("current sequence: source"), "{text}");
        assert!(text.contains("key b\"k\\0\\0\": source Value"), "{text}");
        assert!(text.contains("missing from the destination: key"), "{text}");
        assert!(text.contains("only in the destination: key"), "{text}");
        assert!(
            check.missing >= 1 && check.extra >= 3 && check.changed >= 2,
            "{check:#?}"
        );
        assert!(holds(&destination).unwrap().is_some());
    }
}
