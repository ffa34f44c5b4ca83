//! A small least-recently-used cache for read paths.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use parking_lot::Mutex;

/// A thread-safe LRU cache of at most `capacity` entries (0 disables it).
///
/// Every operation takes the lock for in-memory work only; callers must never hold it
/// across I/O, and the API makes that impossible (no guard escapes).
#[derive(Debug)]
pub struct LruCache<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    tick: u64,
    entries: HashMap<K, (V, u64), foldhash::fast::RandomState>,
    by_age: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V: Clone> LruCache<K, V> {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        LruCache {
            capacity,
            inner: Mutex::new(Inner {
                tick: 0,
                entries: HashMap::default(),
                by_age: BTreeMap::new(),
            }),
        }
    }

    /// The cached value of `key`, marking it most recently used.
    pub fn get(&self, key: &K) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        inner.tick += 1;
        let tick = inner.tick;
        let (value, age) = inner.entries.get_mut(key)?;
        let old = std::mem::replace(age, tick);
        let value = value.clone();
        if let Some(k) = inner.by_age.remove(&old) {
            inner.by_age.insert(tick, k);
        }
        Some(value)
    }

    /// Caches `value` for `key`, evicting the least recently used entry when full.
    pub fn insert(&self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((_, old)) = inner.entries.insert(key.clone(), (value, tick)) {
            inner.by_age.remove(&old);
        }
        inner.by_age.insert(tick, key);
        while inner.entries.len() > self.capacity {
            let Some((_, oldest)) = inner.by_age.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let cache = LruCache::new(2);
        cache.insert(1, "a");
        cache.insert(2, "b");
        assert_eq!(cache.get(&1), Some("a"));
        cache.insert(3, "c");
        assert_eq!(cache.get(&2), None);
        assert_eq!(cache.get(&1), Some("a"));
        assert_eq!(cache.get(&3), Some("c"));
        assert_eq!(cache.len(), 2);
        let off = LruCache::new(0);
        off.insert(1, 1);
        assert_eq!(off.get(&1), None);
    }
}
