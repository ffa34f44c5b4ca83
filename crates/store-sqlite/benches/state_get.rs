//! Hot-path reads on the SQLite backend: `StateStore::get` hits on a partition of 100k keys
//! (16-byte keys, 100-byte values), and `StoreEngine::get` hits on 100k keys, with the same
//! point read on a raw `rusqlite` connection to the same database for reference.
//!
//! `cargo bench -p store-sqlite --bench state_get -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use store_api::{Backend, Durability, OpenOptions, StateStore, StoreEngine};
use store_sqlite::{DB_FILE, SqliteBackend};

const KEYS: u64 = 100_000;
const VALUE_LEN: usize = 100;

/// The 16-byte key of entry `i`.
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A pseudo-random walk over the key indexes, so reads do not follow insertion order.
struct Walk(u64);

impl Walk {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % KEYS
    }
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let options = OpenOptions::default().durability(Durability::Relaxed);
    let backend = SqliteBackend::open(&path, options).unwrap();
    let value = vec![0xA5u8; VALUE_LEN];

    let mut state = backend.state_store("bench").unwrap();
    for i in 0..KEYS {
        state.put(&key(i), &value).unwrap();
    }
    state.flush().unwrap();
    drop(state);
    // Read from a freshly loaded handle, as after a restart.
    let state = backend.state_store("bench").unwrap();
    assert_eq!(state.len() as u64, KEYS);
    let mut walk = Walk(1);
    c.bench_function("sqlite/state_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            black_box(state.get(black_box(&k)).unwrap())
        })
    });

    let engine = backend.engine();
    let keys: Vec<[u8; 16]> = (0..KEYS).map(key).collect();
    for chunk in keys.chunks(10_000) {
        let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|k| (&k[..], &value[..])).collect();
        engine.put_batch(&pairs).unwrap();
    }
    let mut walk = Walk(1);
    c.bench_function("sqlite/engine_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            black_box(engine.get(black_box(&k)).unwrap())
        })
    });

    // The same read on a raw connection to the same database with the store's settings:
    // a cached prepared statement, the value copied out.
    let raw = Connection::open_with_flags(
        path.join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    raw.execute_batch("PRAGMA cache_size = -16384;").unwrap();
    let mut walk = Walk(1);
    c.bench_function("sqlite/raw_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            let mut stmt = raw
                .prepare_cached("SELECT value FROM engine_kv WHERE key = ?1")
                .unwrap();
            let v: Option<Vec<u8>> = stmt
                .query_row([&black_box(k)[..]], |r| r.get(0))
                .optional()
                .unwrap();
            black_box(v)
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
