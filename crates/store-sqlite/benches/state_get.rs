//! `StateStore::get` and `StoreEngine::get` hits on 100k keys (16-byte keys, 100-byte
//! values) on the SQLite backend.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability, OpenOptions, StateStore, StoreEngine};
use store_sqlite::SqliteBackend;

const KEYS: usize = 100_000;

fn key(i: usize) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"bench-k-");
    k[8..].copy_from_slice(&(i as u64).to_be_bytes());
    k
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(
        &dir.path().join("db"),
        OpenOptions::default().durability(Durability::Relaxed),
    )
    .unwrap();
    let value = [0xABu8; 100];

    let mut state = backend.state_store("bench").unwrap();
    for i in 0..KEYS {
        state.put(&key(i), &value).unwrap();
    }
    state.flush().unwrap();
    let mut i = 0usize;
    c.bench_function("sqlite/state_get_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(state.get(black_box(&key(i))).unwrap())
        })
    });

    let engine = backend.engine();
    let keys: Vec<[u8; 16]> = (0..KEYS).map(key).collect();
    for chunk in keys.chunks(1000) {
        let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|k| (&k[..], &value[..])).collect();
        engine.put_batch(&pairs).unwrap();
    }
    let mut j = 0usize;
    c.bench_function("sqlite/engine_get_hit_100k", |b| {
        b.iter(|| {
            j = (j + 7919) % KEYS;
            black_box(engine.get(black_box(&keys[j])).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
