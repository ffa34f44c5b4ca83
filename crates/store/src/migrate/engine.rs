//! Engine migration: replay the retained batch log with its sequence numbers, carry the
//! data of pruned batches as base batches, and compare everything the API shows.

use std::collections::{HashSet, VecDeque};

use store_api::{Bytes, EngineError, Mutation, StoreEngine};

use super::{Difference, MigrateError, PAGE, StoreKind, record};
use crate::migrate::report::CopySummary;
use crate::stores::Stores;

/// The key filler batches delete. The destination is empty while fillers are written, so
/// deleting it changes no data; the fillers' log entries are pruned afterwards.
const FILLER_KEY: &[u8] = b"\xffstore-migrate/filler";
/// Target size of one base batch, in key and value bytes.
const BASE_BATCH_BYTES: u64 = 32 * 1024 * 1024;

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

pub(super) fn check_empty(to: &Stores) -> Result<(), MigrateError> {
    let engine = to.engine();
    let seq = engine.current_sequence();
    if seq != 0 || !engine.range_scan(&[], &[], 1, true)?.is_empty() {
        return Err(MigrateError::DestinationNotEmpty {
            store: StoreKind::Engine,
            detail: format!("current sequence {seq}"),
        });
    }
    Ok(())
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

fn expect_seq(expected: u64, got: u64) -> Result<(), MigrateError> {
    if expected == got {
        Ok(())
    } else {
        Err(MigrateError::EngineSequence { expected, got })
    }
}

/// Writes one logged batch again, with the same mutations in the same order (puts,
/// deletes or both).
fn replay(dst: &dyn StoreEngine, seq: u64, batch: &[Mutation]) -> Result<(), MigrateError> {
    if batch.is_empty() {
        return Err(MigrateError::UnreplayableBatch {
            seq,
            reason: "it is empty, and an empty batch takes no sequence number",
        });
    }
    expect_seq(seq, dst.write_batch(batch)?)
}

/// The source's data not touched by any retained batch: what the pruned batches left.
fn base_entries<'a>(
    src: &'a dyn StoreEngine,
    touched: &'a HashSet<Bytes>,
) -> impl Iterator<Item = Result<(Bytes, Bytes), EngineError>> + 'a {
    Scan::new(src).filter(move |row| !matches!(row, Ok((key, _)) if touched.contains(key)))
}

/// Writes the base: `slots` sequence numbers (`1..=slots`) end with base batches holding
/// every base entry and start with filler batches.
fn write_base(
    src: &dyn StoreEngine,
    dst: &dyn StoreEngine,
    touched: &HashSet<Bytes>,
    slots: u64,
    batch_bytes: u64,
) -> Result<u64, MigrateError> {
    let mut total_bytes = 0u64;
    let mut total_entries = 0u64;
    for row in base_entries(src, touched) {
        let (key, value) = row?;
        total_bytes += (key.len() + value.len()) as u64;
        total_entries += 1;
    }
    let wanted = total_bytes.div_ceil(batch_bytes).max(1);
    let batches = wanted.min(slots);
    let per_batch = total_bytes.div_ceil(batches).max(1);
    let mut seq = 0;
    for _ in 0..slots - batches {
        seq += 1;
        expect_seq(seq, dst.delete_batch(&[FILLER_KEY])?)?;
    }
    let mut pending: Vec<(Bytes, Bytes)> = Vec::new();
    let mut pending_bytes = 0u64;
    let mut written = 0u64;
    let mut flush = |pending: &mut Vec<(Bytes, Bytes)>| -> Result<(), MigrateError> {
        seq += 1;
        let got = if pending.is_empty() {
            dst.delete_batch(&[FILLER_KEY])?
        } else {
            let pairs: Vec<(&[u8], &[u8])> = pending
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_ref()))
                .collect();
            dst.put_batch(&pairs)?
        };
        pending.clear();
        expect_seq(seq, got)
    };
    for row in base_entries(src, touched) {
        let (key, value) = row?;
        pending_bytes += (key.len() + value.len()) as u64;
        pending.push((key, value));
        if pending_bytes >= per_batch && written + 1 < batches {
            flush(&mut pending)?;
            written += 1;
            pending_bytes = 0;
        }
    }
    while written < batches {
        flush(&mut pending)?;
        written += 1;
    }
    Ok(total_entries)
}

pub(super) fn copy(from: &Stores, to: &Stores) -> Result<CopySummary, MigrateError> {
    copy_with(from, to, BASE_BATCH_BYTES)
}

fn copy_with(from: &Stores, to: &Stores, batch_bytes: u64) -> Result<CopySummary, MigrateError> {
    let (src, dst) = (from.engine(), to.engine());
    let (first, current) = retained(src.as_ref())?;
    let mut touched = HashSet::new();
    if first > 1 {
        for seq in first..=current {
            touched.extend(
                source_batch(src.as_ref(), seq)?
                    .into_iter()
                    .map(|m| match m {
                        Mutation::Put { key, .. } | Mutation::Delete { key } => key,
                    }),
            );
        }
    }
    let base = if first > 1 {
        write_base(src.as_ref(), dst.as_ref(), &touched, first - 1, batch_bytes)?
    } else {
        0
    };
    for seq in first..=current {
        replay(dst.as_ref(), seq, &source_batch(src.as_ref(), seq)?)?;
    }
    if first > 1 {
        dst.prune_batch_log(first)?;
    }
    let replayed = (current + 1).saturating_sub(first);
    let mut copied = format!("logged batches {replayed}, replayed with their sequence numbers");
    if first > 1 {
        copied.push_str(&format!(
            "; batches 1..={} were pruned in the source: the keys they left ({base}) written \
             as base batches below {first}, whose log entries were then pruned",
            first - 1
        ));
    }
    copied.push_str(&format!("; current sequence {current}"));
    Ok(CopySummary {
        store: StoreKind::Engine,
        copied,
        not_migrated: Vec::new(),
    })
}

pub(super) fn verify(
    from: &Stores,
    to: &Stores,
    differences: &mut Vec<Difference>,
) -> Result<(), MigrateError> {
    let (src, dst) = (from.engine(), to.engine());
    let mut diff = |detail: String| record(differences, StoreKind::Engine, detail);
    let (src_seq, dst_seq) = (src.current_sequence(), dst.current_sequence());
    if src_seq != dst_seq {
        diff(format!(
            "current sequence: source {src_seq}, destination {dst_seq}"
        ));
    }
    let (src_oldest, dst_oldest) = (src.oldest_retained_batch()?, dst.oldest_retained_batch()?);
    if src_oldest != dst_oldest {
        diff(format!(
            "oldest retained batch: source {src_oldest:?}, destination {dst_oldest:?}"
        ));
    }
    if let Some(first) = src_oldest {
        for seq in first..=src_seq {
            let (a, b) = (src.get_batch(seq)?, dst.get_batch(seq)?);
            if a != b && !diff(format!("batch {seq}: source {a:?}, destination {b:?}")) {
                return Ok(());
            }
        }
    }
    let mut a = Scan::new(src.as_ref());
    let mut b = Scan::new(dst.as_ref());
    let mut next_a = a.next().transpose()?;
    let mut next_b = b.next().transpose()?;
    loop {
        let detail = match (&next_a, &next_b) {
            (None, None) => return Ok(()),
            (Some((ka, va)), Some((kb, vb))) if ka == kb => {
                let detail = (va != vb)
                    .then(|| format!("key {ka:?}: source value {va:?}, destination value {vb:?}"));
                next_a = a.next().transpose()?;
                next_b = b.next().transpose()?;
                match detail {
                    Some(detail) => detail,
                    None => continue,
                }
            }
            (Some((ka, _)), Some((kb, _))) if ka > kb => {
                let detail = format!("key {kb:?} is in the destination only");
                next_b = b.next().transpose()?;
                detail
            }
            (Some((ka, _)), _) => {
                let detail = format!("key {ka:?} is missing from the destination");
                next_a = a.next().transpose()?;
                detail
            }
            (None, Some((kb, _))) => {
                let detail = format!("key {kb:?} is in the destination only");
                next_b = b.next().transpose()?;
                detail
            }
        };
        if !diff(detail) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use store_api::OpenOptions;
    use store_mem::MemBackend;

    use super::*;
    use crate::stores::open_as;

    fn mem() -> Stores {
        open_as::<MemBackend>(Path::new(""), OpenOptions::default()).unwrap()
    }

    /// Copies `source` with base batches of `batch_bytes`, checks the destination matches
    /// and returns it.
    fn copied(source: &Stores, batch_bytes: u64) -> Stores {
        let destination = mem();
        check_empty(&destination).unwrap();
        copy_with(source, &destination, batch_bytes).unwrap();
        let mut differences = Vec::new();
        verify(source, &destination, &mut differences).unwrap();
        assert!(differences.is_empty(), "{differences:#?}");
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
        // Batches 4..=6 rewrite every key group, so the base is empty: a filler holds seq 3.
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
        let mut differences = Vec::new();
        verify(&source, &destination, &mut differences).unwrap();
        let text: Vec<&str> = differences.iter().map(|d| d.detail.as_str()).collect();
        assert!(
            text.iter().any(|d| d.starts_with("current sequence")),
            "{text:#?}"
        );
        assert!(text.iter().any(|d| d.contains("source value")), "{text:#?}");
        assert!(
            text.iter()
                .any(|d| d.contains("missing from the destination")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|d| d.contains("in the destination only")),
            "{text:#?}"
        );
        assert!(check_empty(&destination).is_err());
    }
}
