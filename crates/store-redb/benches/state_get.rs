//! Hot-path reads on the redb backend: `StateStore::get` hits on a partition of 100k keys
//! (16-byte keys, 100-byte values), and `StoreEngine::get` hits on 100k keys, with the
//! same reads on raw redb for reference.
//!
//! `cargo bench -p store-redb --bench state_get -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use store_api::{Backend, Durability, OpenOptions, StateStore, StoreEngine};
use store_redb::RedbBackend;

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
    let backend = RedbBackend::open(dir.path(), options).unwrap();
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
    c.bench_function("redb/state_get_hit_100k", |b| {
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
    c.bench_function("redb/engine_get_hit_100k", |b| {
        b.iter(|| {
            let k = key(walk.next());
            black_box(engine.get(black_box(&k)).unwrap())
        })
    });

    // The same reads on raw redb, for reference: one read transaction per get, the value
    // copied out, exactly the work `StoreEngine::get` does besides its key check.
    let raw_dir = tempfile::tempdir().unwrap();
    let raw = redb::Database::create(raw_dir.path().join("raw.redb")).unwrap();
    const RAW: redb::TableDefinition<'static, &[u8], &[u8]> = redb::TableDefinition::new("data");
    let txn = raw.begin_write().unwrap();
    {
        let mut table = txn.open_table(RAW).unwrap();
        for k in &keys {
            table.insert(&k[..], &value[..]).unwrap();
        }
    }
    txn.commit().unwrap();
    let mut walk = Walk(1);
    c.bench_function("redb/raw_redb_get_hit_100k", |b| {
        b.iter(|| {
            use redb::ReadableDatabase;
            let k = key(walk.next());
            let txn = raw.begin_read().unwrap();
            let table = txn.open_table(RAW).unwrap();
            let found = table.get(black_box(&k[..])).unwrap();
            black_box(found.map(|v| bytes::Bytes::copy_from_slice(v.value())))
        })
    });
}

criterion_group!(state_get, benches);
criterion_main!(state_get);
