//! Point reads on the LMDB backend: `StateStore::get` (a hit on a partition of 100k keys)
//! and `StoreEngine::get` (a hit among 100k keys). Keys are 16 bytes, values 100 bytes.
//!
//! `cargo bench -p store-lmdb --bench state_get -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, OpenOptions, StateStore, StoreEngine};
use store_lmdb::LmdbBackend;

const KEYS: u64 = 100_000;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"key-0000");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn point_reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backend = LmdbBackend::open(&dir.path().join("db"), OpenOptions::default()).expect("open");
    let value = [0x5Au8; 100];

    let mut state = backend.state_store("bench").expect("a partition");
    for i in 0..KEYS {
        state.put(&key(i), &value).expect("put");
    }
    state.flush().expect("flush");

    let engine = backend.engine();
    let keys: Vec<[u8; 16]> = (0..KEYS).map(key).collect();
    for chunk in keys.chunks(10_000) {
        let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|k| (&k[..], &value[..])).collect();
        engine.put_batch(&pairs).expect("put_batch");
    }

    // A fixed pseudo-random walk over the keys, so reads are not sequential.
    let mut group = c.benchmark_group("lmdb");
    let mut i = 0u64;
    group.bench_function("state_get_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7_919) % KEYS;
            black_box(state.get(black_box(&keys[i as usize])).expect("get"))
        })
    });
    let mut i = 0u64;
    group.bench_function("engine_get_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7_919) % KEYS;
            black_box(engine.get(black_box(&keys[i as usize])).expect("get"))
        })
    });
    group.finish();
}

criterion_group!(benches, point_reads);
criterion_main!(benches);
