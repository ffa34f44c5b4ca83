//! Bit flips on disk under SQLite (issue 21, checksums end to end): SQLite keeps no page
//! checksums, so the backend checksums every record it reads back. A known dataset
//! (engine keys and batch log, a state partition, segment entries) is written and the
//! backend closed; then, one flip per copy of the database file, a single bit at a seeded
//! position is flipped, the copy reopened and everything read back. Every read must give
//! the right value or a typed error (`Corrupted` from the read, or an open error), never a
//! wrong value, never a panic.
//!
//! A flip can also make a record unreachable by its key (a flipped key, or a flipped
//! divider key of an interior b-tree page that sends the lookup elsewhere): a checksum
//! kept beside a record cannot report a record that the lookup never finds. Such reads are
//! counted apart as `missing` and reported; a wrong value is never accepted.
//!
//! Flips per run: 60 at the default scale (a few seconds), times `RELIABILITY_SCALE`; the
//! seed is `RELIABILITY_SEED` when set (see `reliability::rng::run_seed`).

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use reliability::rng::{Rng, run_seed};
use reliability::scale::scaled;
use store_api::{
    Backend, Durability, Mutation, OpenOptions, SegmentId, SegmentLogStore, SessionId, StateStore,
    StorageErrorKind, StoreEngine, StoreError,
};
use store_sqlite::{DB_FILE, SqliteBackend};

const PARTITION: &str = "flips";
const KEYS: u32 = 240;
const BATCH: u32 = 20;
const STATE_KEYS: u32 = 60;
const SEGMENT_ENTRIES: u32 = 40;

fn session() -> SessionId {
    SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00f1)
}

fn segment() -> SegmentId {
    SegmentId::from_u128(0x0191_0000_0000_7000_8000_0000_0000_00f1)
}

fn options() -> OpenOptions {
    OpenOptions::default().durability(Durability::Relaxed)
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

/// Values of varied length and content, so records span cells and overflow pages alike.
fn value(i: u32) -> Vec<u8> {
    let len = (i as usize * 37) % 700 + 1;
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

/// What was written, to compare reads with.
struct Dataset {
    engine: BTreeMap<Vec<u8>, Vec<u8>>,
    batches: Vec<(u64, Vec<Mutation>)>,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    entries: Vec<Vec<u8>>,
}

fn write_dataset(dir: &Path) -> Dataset {
    let backend = SqliteBackend::open(dir, options()).unwrap();
    let engine = backend.engine();
    let mut data = BTreeMap::new();
    let mut batches = Vec::new();
    for start in (0..KEYS).step_by(BATCH as usize) {
        let mutations: Vec<Mutation> = (start..start + BATCH)
            .map(|i| Mutation::Put {
                key: key(i).into(),
                value: value(i).into(),
            })
            .collect();
        let seq = engine.write_batch(&mutations).unwrap();
        for i in start..start + BATCH {
            data.insert(key(i), value(i));
        }
        batches.push((seq, mutations));
    }
    // Deletes too, so the log holds both kinds of row.
    let deletes: Vec<Mutation> = (0..KEYS)
        .step_by(9)
        .map(|i| Mutation::Delete { key: key(i).into() })
        .collect();
    let seq = engine.write_batch(&deletes).unwrap();
    for i in (0..KEYS).step_by(9) {
        data.remove(&key(i));
    }
    batches.push((seq, deletes));

    let mut state = BTreeMap::new();
    let mut partition = backend.state_store(PARTITION).unwrap();
    for i in 0..STATE_KEYS {
        partition.put(&key(i), &value(i + 1000)).unwrap();
        state.insert(key(i), value(i + 1000));
    }
    partition.flush().unwrap();
    drop(partition);

    let log = backend.segment_log();
    let entries: Vec<Vec<u8>> = (0..SEGMENT_ENTRIES).map(|i| value(i + 2000)).collect();
    for entry in &entries {
        log.append(session(), segment(), entry).unwrap();
    }
    backend.close().unwrap();
    Dataset {
        engine: data,
        batches,
        state,
        entries,
    }
}

/// What the reads of one damaged copy gave.
#[derive(Default, Debug)]
struct Tally {
    right: u64,
    corrupted: u64,
    missing: u64,
    wrong: u64,
    /// What each wrong read was.
    wrong_reads: Vec<String>,
    /// Typed errors of another kind than `Corrupted`, by kind.
    other: BTreeMap<String, u64>,
}

impl Tally {
    fn error<E: StoreError + std::fmt::Debug>(&mut self, e: &E) {
        match e.storage().map(|s| s.kind()) {
            Some(StorageErrorKind::Corrupted) => self.corrupted += 1,
            kind => *self.other.entry(format!("{kind:?}: {e:?}")).or_default() += 1,
        }
    }

    fn wrong(&mut self, what: String) {
        self.wrong += 1;
        self.wrong_reads.push(what);
    }

    fn add(&mut self, o: &Tally) {
        self.right += o.right;
        self.corrupted += o.corrupted;
        self.missing += o.missing;
        self.wrong += o.wrong;
        for (k, n) in &o.other {
            *self.other.entry(k.clone()).or_default() += n;
        }
    }
}

/// Reads everything of `data` back from the backend of `dir`.
fn read_back(backend: &SqliteBackend, data: &Dataset) -> Tally {
    let mut t = Tally::default();
    let engine = backend.engine();
    for i in 0..KEYS {
        let k = key(i);
        match (engine.get(&k), data.engine.get(&k)) {
            (Ok(got), want) if got.as_deref() == want.map(Vec::as_slice) => t.right += 1,
            (Ok(None), Some(_)) => t.missing += 1,
            (Ok(got), want) => t.wrong(format!("get {i}: {got:?}, want {want:?}")),
            (Err(e), _) => t.error(&e),
        }
    }
    match engine.range_scan(b"", b"", usize::MAX, true) {
        Ok(rows) => {
            let mut scanned = 0;
            for (k, v) in &rows {
                match data.engine.get(k.as_ref()) {
                    Some(want) if want == v.as_ref() => scanned += 1,
                    want => t.wrong(format!("scan {k:?}: {v:?}, want {want:?}")),
                }
            }
            if scanned == data.engine.len() {
                t.right += 1;
            } else {
                t.missing += (data.engine.len() - scanned) as u64;
            }
        }
        Err(e) => t.error(&e),
    }
    for (seq, want) in &data.batches {
        match engine.get_batch(*seq) {
            Ok(Some(got)) if &got == want => t.right += 1,
            Ok(None) => t.missing += 1,
            Ok(Some(got)) => {
                let differ: Vec<usize> = (0..got.len().max(want.len()))
                    .filter(|&i| got.get(i) != want.get(i))
                    .collect();
                t.wrong(format!(
                    "batch {seq}: {} mutations, want {}, differing at {differ:?}",
                    got.len(),
                    want.len()
                ))
            }
            Err(e) => t.error(&e),
        }
    }
    match backend.state_store(PARTITION) {
        Ok(partition) => {
            for (k, want) in &data.state {
                match partition.get(k) {
                    Ok(Some(got)) if got.as_ref() == want.as_slice() => t.right += 1,
                    Ok(None) => t.missing += 1,
                    Ok(Some(got)) => t.wrong(format!("state {k:?}: {got:?}")),
                    Err(e) => t.error(&e),
                }
            }
            if partition.len() > data.state.len() {
                t.wrong(format!("state: {} entries", partition.len()));
            }
        }
        Err(e) => t.error(&e),
    }
    match backend.segment_log().read_all(session(), segment()) {
        Ok(got) => {
            for (i, want) in data.entries.iter().enumerate() {
                match got.get(i) {
                    Some(g) if g.as_ref() == want.as_slice() => t.right += 1,
                    None => t.missing += 1,
                    Some(g) => t.wrong(format!("segment entry {i}: {g:?}")),
                }
            }
            if got.len() > data.entries.len() {
                t.wrong(format!("segment: {} entries", got.len()));
            }
        }
        Err(e) => t.error(&e),
    }
    t
}

#[test]
fn single_bit_flips_are_typed_errors_never_wrong_values() {
    let root = tempfile::tempdir().unwrap();
    let clean = root.path().join("clean");
    let data = write_dataset(&clean);
    let original = std::fs::read(clean.join(DB_FILE)).unwrap();
    assert!(
        !clean.join(format!("{DB_FILE}-wal")).exists(),
        "closing checkpoints the WAL into the file"
    );
    // The clean copy reads back entirely right: the reads check what they should.
    let clean_tally = read_back(&SqliteBackend::open(&clean, options()).unwrap(), &data);
    assert_eq!(
        (
            clean_tally.wrong,
            clean_tally.missing,
            clean_tally.corrupted
        ),
        (0, 0, 0),
        "{clean_tally:?}"
    );
    assert!(clean_tally.other.is_empty(), "{clean_tally:?}");

    let seed = run_seed();
    let mut rng = Rng::new(seed);
    let flips = scaled(60);
    let bits = original.len() as u64 * 8;
    let (mut opened, mut open_errors, mut detected_copies, mut silent_missing_copies) =
        (0u64, 0u64, 0u64, 0u64);
    let mut total = Tally::default();
    for n in 0..flips {
        let bit = rng.below(bits);
        let copy = root.path().join(format!("copy-{n}"));
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(&clean).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name != DB_FILE && entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.join(&name)).unwrap();
            }
        }
        let mut bytes = original.clone();
        bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
        std::fs::write(copy.join(DB_FILE), &bytes).unwrap();
        match SqliteBackend::open(&copy, options()) {
            Err(_) => open_errors += 1,
            Ok(backend) => {
                opened += 1;
                let t = read_back(&backend, &data);
                assert_eq!(
                    t.wrong,
                    0,
                    "bit {bit} (byte {}, seed {seed}): a wrong value was read: {t:?}",
                    bit / 8
                );
                if t.corrupted > 0 || !t.other.is_empty() {
                    detected_copies += 1;
                } else if t.missing > 0 {
                    silent_missing_copies += 1;
                }
                total.add(&t);
                // A close may fail on a damaged file; the copy is thrown away either way.
                let _ = backend.close();
            }
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
    eprintln!(
        "RELIABILITY-FIGURES bit-flips backend=sqlite seed={seed} file_bytes={} flips={flips} \
         open_errors={open_errors} opened={opened} copies_with_typed_read_errors={detected_copies} \
         copies_with_undetected_missing={silent_missing_copies} reads_right={} \
         reads_corrupted={} reads_missing={} reads_other_errors={:?} wrong_reads={}",
        original.len(),
        total.right,
        total.corrupted,
        total.missing,
        total.other,
        total.wrong
    );
    assert_eq!(total.wrong, 0);
}
