//! A bounded, sharded cache from query text to its analysis, shared by all sessions.
//!
//! Each shard keeps two generations of entries: hits in the old generation move to the new one, and when the
//! new one is full the old one is dropped wholesale. That approximates LRU with plain hash maps, costs one
//! hash lookup per hit and never allocates on a hit in the new generation.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::analysis::Analysis;

const SHARDS: usize = 16;

struct Shard {
    young: HashMap<Box<str>, Arc<Analysis>>,
    old: HashMap<Box<str>, Arc<Analysis>>,
}

pub(crate) struct AnalysisCache {
    shards: Vec<Mutex<Shard>>,
    generation_capacity: usize,
    hasher: RandomState,
}

impl AnalysisCache {
    /// A cache holding at most about `capacity` texts (0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        let generation_capacity = capacity.div_ceil(2 * SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    young: HashMap::new(),
                    old: HashMap::new(),
                })
            })
            .collect();
        Self {
            shards,
            generation_capacity,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, text: &str) -> Option<MutexGuard<'_, Shard>> {
        if self.generation_capacity == 0 {
            return None;
        }
        let index = (self.hasher.hash_one(text) as usize) % SHARDS;
        let shard = self.shards.get(index)?;
        // A panic while holding the lock cannot leave a map half-updated in a way that matters here.
        Some(
            shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub(crate) fn get(&self, text: &str) -> Option<Arc<Analysis>> {
        let mut shard = self.shard(text)?;
        if let Some(hit) = shard.young.get(text) {
            return Some(Arc::clone(hit));
        }
        let (key, value) = shard.old.remove_entry(text)?;
        let hit = Arc::clone(&value);
        self.insert_locked(&mut shard, key, value);
        Some(hit)
    }

    pub(crate) fn insert(&self, text: &str, analysis: Arc<Analysis>) {
        if let Some(mut shard) = self.shard(text) {
            self.insert_locked(&mut shard, text.into(), analysis);
        }
    }

    fn insert_locked(&self, shard: &mut Shard, key: Box<str>, value: Arc<Analysis>) {
        if shard.young.len() >= self.generation_capacity {
            shard.old = std::mem::take(&mut shard.young);
        }
        shard.young.insert(key, value);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.young.len() + s.old.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_hot_entries() {
        let cache = AnalysisCache::new(64);
        let hot = Arc::new(Analysis { statements: vec![] });
        cache.insert("hot", Arc::clone(&hot));
        for i in 0..10_000 {
            cache.insert(
                &format!("SELECT {i}"),
                Arc::new(Analysis { statements: vec![] }),
            );
            assert!(cache.get("hot").is_some(), "hot entry evicted after {i}");
            assert!(cache.len() <= 64 + 2 * SHARDS);
        }
        assert!(Arc::ptr_eq(&cache.get("hot").unwrap(), &hot));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = AnalysisCache::new(0);
        cache.insert("x", Arc::new(Analysis { statements: vec![] }));
        assert!(cache.get("x").is_none());
    }
}
