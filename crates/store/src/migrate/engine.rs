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

/// Writes one logged batch again, as the same kind of batch with the same mutations.
fn replay(dst: &dyn StoreEngine, seq: u64, batch: &[Mutation]) -> Result<(), MigrateError> {
    let got = match batch.first() {
        None => {
            return Err(MigrateError::UnreplayableBatch {
                seq,
                reason: "it is empty, and an empty batch takes no sequence number",
            });
        }
        Some(Mutation::Put { .. }) => {
            let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(batch.len());
            for m in batch {
                match m {
                    Mutation::Put { key, value } => pairs.push((key, value)),
                    Mutation::Delete { .. } => return Err(mixed(seq)),
                }
            }
            dst.put_batch(&pairs)?
        }
        Some(Mutation::Delete { .. }) => {
            let mut keys: Vec<&[u8]> = Vec::with_capacity(batch.len());
            for m in batch {
                match m {
                    Mutation::Delete { key } => keys.push(key),
                    Mutation::Put { .. } => return Err(mixed(seq)),
                }
            }
            dst.delete_batch(&keys)?
        }
    };
    expect_seq(seq, got)
}

fn mixed(seq: u64) -> MigrateError {
    MigrateError::UnreplayableBatch {
        seq,
        reason: "it mixes puts and deletes, which no API call writes as one batch",
    }
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
) -> Result<u64, MigrateError> {
    let mut total_bytes = 0u64;
    let mut total_entries = 0u64;
    for row in base_entries(src, touched) {
        let (key, value) = row?;
        total_bytes += (key.len() + value.len()) as u64;
        total_entries += 1;
    }
    let wanted = total_bytes.div_ceil(BASE_BATCH_BYTES).max(1);
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
        write_base(src.as_ref(), dst.as_ref(), &touched, first - 1)?
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
    let mut copied = format!("{replayed} logged batches replayed with their sequence numbers");
    if first > 1 {
        copied.push_str(&format!(
            "; batches 1..={} were pruned in the source: their {base} remaining keys written \
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
