//! Streaming verification: each store is walked as a sequence of items in ascending key
//! order, on the source and on the destination at once (one thread each), and the two
//! sequences are merged. Each side is counted and digested (SHA-256 of the canonical
//! encoding of every item, in order) as it streams, so no store is ever loaded whole, and
//! the first differences are named.

use std::cmp::Ordering;
use std::fmt::{Debug, Write as _};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Plan;
use super::error::MigrateError;
use super::progress::{Phase, Progress, Step};
use super::report::{Counts, StoreCheck, StoreKind, Tally};
use crate::stores::Stores;

/// Differences named per store; the rest are only counted.
pub(super) const MAX_DIFFERENCES: usize = 50;
/// Items sent to the merging thread at once.
const BATCH: usize = 256;
/// Batches in flight per side before a walker waits for the merge.
const BATCHES_IN_FLIGHT: usize = 8;
/// Longest text shown for one side of a difference.
const SHOWN_CHARS: usize = 240;

/// Where a walker puts a store's items, in strictly ascending key order.
pub(super) trait Sink<K, V> {
    /// Takes the next item.
    fn push(&mut self, key: K, value: V);
}

/// A walker: puts every item of one store (as far as `plan` selects) into the sink, in
/// ascending key order, and returns the store's counts.
pub(super) type Walk<K, V> =
    fn(&Stores, &Plan, &mut dyn Sink<K, V>) -> Result<Counts, MigrateError>;

/// Counts the items and reports them as progress (a dry run).
struct Counting<'s, 'p> {
    step: &'s Step<'p>,
    pending: u64,
}

impl<K, V> Sink<K, V> for Counting<'_, '_> {
    fn push(&mut self, _key: K, _value: V) {
        self.pending += 1;
        if self.pending == 1024 {
            self.step.advance(self.pending);
            self.pending = 0;
        }
    }
}

/// Walks `stores`' `store` to count what it holds, reporting progress.
pub(super) fn survey<K, V>(
    store: StoreKind,
    stores: &Stores,
    plan: &Plan,
    walk: Walk<K, V>,
    progress: &dyn Progress,
) -> Result<Counts, MigrateError> {
    let step = Step::begin(progress, Phase::Survey, store);
    let mut sink = Counting {
        step: &step,
        pending: 0,
    };
    let counts = walk(stores, plan, &mut sink)?;
    step.advance(sink.pending);
    Ok(counts)
}

/// Digests every item and sends it, in batches, to the merging thread.
struct Channel<K, V> {
    to_merge: Option<SyncSender<Vec<(K, V)>>>,
    batch: Vec<(K, V)>,
    hasher: Sha256,
    items: u64,
    encoded: Vec<u8>,
}

impl<K: Serialize + Debug, V: Serialize + Debug> Channel<K, V> {
    fn new(to_merge: SyncSender<Vec<(K, V)>>) -> Self {
        Channel {
            to_merge: Some(to_merge),
            batch: Vec::with_capacity(BATCH),
            hasher: Sha256::new(),
            items: 0,
            encoded: Vec::new(),
        }
    }

    fn send(&mut self) {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        // The merge only hangs up when it stops early; the items are then not needed.
        if let Some(to_merge) = &self.to_merge
            && to_merge.send(batch).is_err()
        {
            self.to_merge = None;
        }
    }

    fn finish(mut self, counts: Counts) -> Tally {
        if !self.batch.is_empty() {
            self.send();
        }
        let digest = self.hasher.finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        Tally {
            counts,
            items: self.items,
            digest: hex,
        }
    }
}

impl<K: Serialize + Debug, V: Serialize + Debug> Sink<K, V> for Channel<K, V> {
    fn push(&mut self, key: K, value: V) {
        self.encoded.clear();
        let encoded = postcard::to_extend(&(&key, &value), std::mem::take(&mut self.encoded))
            // Every item type here serializes; should one ever fail, its debug text still
            // stands for it, the same on both sides.
            .unwrap_or_else(|_| format!("{key:?}={value:?}").into_bytes());
        self.hasher.update((encoded.len() as u64).to_le_bytes());
        self.hasher.update(&encoded);
        self.encoded = encoded;
        self.items += 1;
        self.batch.push((key, value));
        if self.batch.len() == BATCH {
            self.send();
        }
    }
}

fn walk_side<K, V>(
    walk: Walk<K, V>,
    stores: &Stores,
    plan: &Plan,
    to_merge: SyncSender<Vec<(K, V)>>,
) -> Result<Tally, MigrateError>
where
    K: Serialize + Debug,
    V: Serialize + Debug,
{
    let mut channel = Channel::new(to_merge);
    let counts = walk(stores, plan, &mut channel)?;
    Ok(channel.finish(counts))
}

/// What the merge of both sides found.
#[derive(Default)]
struct Merged {
    missing: u64,
    extra: u64,
    changed: u64,
    differences: Vec<String>,
}

impl Merged {
    fn note(&mut self, describe: impl FnOnce() -> String) {
        if self.differences.len() < MAX_DIFFERENCES {
            self.differences.push(describe());
        }
    }
}

/// `value`'s debug text, cut at [`SHOWN_CHARS`] characters.
fn shown(value: &impl Debug) -> String {
    let mut text = format!("{value:?}");
    if let Some((cut, _)) = text.char_indices().nth(SHOWN_CHARS) {
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

fn merge<K: Ord + Debug, V: PartialEq + Debug>(
    source: Receiver<Vec<(K, V)>>,
    destination: Receiver<Vec<(K, V)>>,
    step: &Step<'_>,
) -> Merged {
    let mut merged = Merged::default();
    let mut a = source.into_iter().flatten();
    let mut b = destination.into_iter().flatten();
    let (mut next_a, mut next_b) = (a.next(), b.next());
    let mut pending = 0u64;
    loop {
        match (next_a.take(), next_b.take()) {
            (None, None) => break,
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(&kb) {
                Ordering::Equal => {
                    if va != vb {
                        merged.changed += 1;
                        merged.note(|| {
                            format!(
                                "{}: source {}, destination {}",
                                shown(&ka),
                                shown(&va),
                                shown(&vb)
                            )
                        });
                    }
                    (next_a, next_b) = (a.next(), b.next());
                }
                Ordering::Less => {
                    merged.missing += 1;
                    merged.note(|| format!("missing from the destination: {}", shown(&ka)));
                    (next_a, next_b) = (a.next(), Some((kb, vb)));
                }
                Ordering::Greater => {
                    merged.extra += 1;
                    merged.note(|| format!("only in the destination: {}", shown(&kb)));
                    (next_a, next_b) = (Some((ka, va)), b.next());
                }
            },
            (Some((ka, _)), None) => {
                merged.missing += 1;
                merged.note(|| format!("missing from the destination: {}", shown(&ka)));
                next_a = a.next();
            }
            (None, Some((kb, _))) => {
                merged.extra += 1;
                merged.note(|| format!("only in the destination: {}", shown(&kb)));
                next_b = b.next();
            }
        }
        pending += 1;
        if pending == 1024 {
            step.advance(pending);
            pending = 0;
        }
    }
    step.advance(pending);
    merged
}

/// Walks `store` on both sides at once and compares them item by item.
pub(super) fn compare<K, V>(
    store: StoreKind,
    from: &Stores,
    to: &Stores,
    plan: &Plan,
    walk: Walk<K, V>,
    progress: &dyn Progress,
) -> Result<StoreCheck, MigrateError>
where
    K: Ord + Debug + Serialize + Send,
    V: PartialEq + Debug + Serialize + Send,
{
    let step = Step::begin(progress, Phase::Verify, store);
    std::thread::scope(|scope| {
        let (to_merge_a, source) = sync_channel(BATCHES_IN_FLIGHT);
        let (to_merge_b, destination) = sync_channel(BATCHES_IN_FLIGHT);
        let a = scope.spawn(move || walk_side(walk, from, plan, to_merge_a));
        let b = scope.spawn(move || walk_side(walk, to, plan, to_merge_b));
        let merged = merge(source, destination, &step);
        let stopped = |side| MigrateError::VerifierStopped { store, side };
        let source = a.join().map_err(|_| stopped("source"))??;
        let destination = b.join().map_err(|_| stopped("destination"))??;
        Ok(StoreCheck {
            store,
            source,
            destination,
            missing: merged.missing,
            extra: merged.extra,
            changed: merged.changed,
            differences: merged.differences,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(a: Vec<(u32, &'static str)>, b: Vec<(u32, &'static str)>) -> Merged {
        let (ta, ra) = sync_channel(8);
        let (tb, rb) = sync_channel(8);
        for (tx, items) in [(ta, a), (tb, b)] {
            for item in items {
                tx.send(vec![item]).unwrap();
            }
        }
        let progress = super::super::progress::NoProgress;
        let step = Step::begin(&progress, Phase::Verify, StoreKind::Engine);
        merge(ra, rb, &step)
    }

    #[test]
    fn the_merge_tells_missing_extra_and_changed_items_apart() {
        let m = merged(
            vec![(1, "a"), (2, "b"), (4, "d"), (6, "f")],
            vec![(1, "a"), (3, "c"), (4, "D"), (7, "g"), (8, "h")],
        );
        assert_eq!((m.missing, m.extra, m.changed), (2, 3, 1));
        assert_eq!(m.differences.len(), 6);
        assert!(
            m.differences
                .contains(&"4: source \"d\", destination \"D\"".to_owned())
        );
        assert!(
            m.differences
                .contains(&"missing from the destination: 2".to_owned())
        );
        assert!(
            m.differences
                .contains(&"only in the destination: 8".to_owned())
        );
    }

    #[test]
    fn equal_sides_merge_clean_and_long_values_are_cut() {
        let m = merged(vec![(1, "a"), (2, "b")], vec![(1, "a"), (2, "b")]);
        assert_eq!((m.missing, m.extra, m.changed), (0, 0, 0));
        let long = "x".repeat(1000);
        let text = shown(&long);
        assert!(text.len() < 300 && text.ends_with("..."), "{text}");
    }
}
