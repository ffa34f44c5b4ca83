//! Hot-path reads on the sled backend: `StateStore::get` hits on a partition of 100k keys
//! (16-byte keys, 100-byte values), `StoreEngine::get` hits on 100k keys, and the same
//! engine reads on raw sled for reference.
//!
//! `cargo bench -p store-sled --bench state_get -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability, OpenOptions, StateStore, StoreEngine};
use store_sled::SledBackend;

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
    let options = OpenOptions::default().durability(Durability::Relaxed);
    let backend = SledBackend::open(&dir.path().join("db"), options).unwrap();
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
    c.bench_function("sled/state_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            black_box(state.get(black_box(&k)).unwrap())
        })
    });

    let engine = backend.engine();
    let keys: Vec<[u8; 16]> = (0..KEYS).map(key).collect();
    for chunk in keys.chunks(500) {
        let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|k| (&k[..], &value[..])).collect();
        engine.put_batch(&pairs).unwrap();
    }
    let mut walk = Walk(1);
    c.bench_function("sled/engine_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            black_box(engine.get(black_box(&k)).unwrap())
        })
    });

    // The same reads on raw sled, for reference: a tree lookup with the value copied out,
    // the work `StoreEngine::get` does besides its key check.
    let raw_dir = tempfile::tempdir().unwrap();
    let raw = sled::Config::new()
        .path(raw_dir.path())
        .flush_every_ms(Some(store_sled::FLUSH_EVERY_MS))
        .open()
        .unwrap();
    let tree = raw.open_tree("data").unwrap();
    for chunk in keys.chunks(500) {
        let mut batch = sled::Batch::default();
        for k in chunk {
            batch.insert(&k[..], &value[..]);
        }
        tree.apply_batch(batch).unwrap();
    }
    let mut walk = Walk(1);
    c.bench_function("sled/raw_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            black_box(tree.get(black_box(&k)).unwrap().map(|v| v.to_vec()))
        })
    });
}

criterion_group!(sled_benches, benches);
criterion_main!(sled_benches);
