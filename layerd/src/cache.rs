//! Caches in front of the object store: a bounded in-memory LRU of verified
//! pages, and (for remote stores) a bounded local disk cache of fetched blobs.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use lru::LruCache;

use crate::page::PageHash;

/// Lookups a cache answered and did not (for hit-rate metrics).
#[derive(Default)]
pub struct Lookups {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Lookups {
    fn count<T>(&self, found: Option<T>) -> Option<T> {
        let n = if found.is_some() { &self.hits } else { &self.misses };
        n.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// (hits, misses) so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

/// In-memory LRU of page bytes keyed by hash, bounded by total bytes.
pub struct PageCache {
    inner: Mutex<(LruCache<PageHash, Bytes>, usize)>,
    max_bytes: usize,
    pub lookups: Lookups,
}

impl PageCache {
    pub fn new(max_bytes: usize) -> Self {
        PageCache { inner: Mutex::new((LruCache::unbounded(), 0)), max_bytes, lookups: Lookups::default() }
    }

    pub fn get(&self, hash: &PageHash) -> Option<Bytes> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.lookups.count(g.0.get(hash).cloned())
    }

    pub fn insert(&self, hash: PageHash, bytes: Bytes) {
        if bytes.len() > self.max_bytes {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (lru, used) = &mut *g;
        if let Some(old) = lru.put(hash, bytes.clone()) {
            *used -= old.len();
        }
        *used += bytes.len();
        while *used > self.max_bytes {
            match lru.pop_lru() {
                Some((_, b)) => *used -= b.len(),
                None => break,
            }
        }
    }

    pub fn clear(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.clear();
        g.1 = 0;
    }

    pub fn used_bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

/// A small LRU keyed by anything hashable, bounded by entry count.
pub struct CountLru<K: std::hash::Hash + Eq, V: Clone> {
    inner: Mutex<LruCache<K, V>>,
    pub lookups: Lookups,
}

impl<K: std::hash::Hash + Eq, V: Clone> CountLru<K, V> {
    pub fn new(entries: usize) -> Self {
        let n = NonZeroUsize::new(entries.max(1)).expect("non-zero");
        CountLru { inner: Mutex::new(LruCache::new(n)), lookups: Lookups::default() }
    }
    pub fn get(&self, k: &K) -> Option<V> {
        self.lookups.count(self.inner.lock().unwrap_or_else(|p| p.into_inner()).get(k).cloned())
    }
    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
    pub fn insert(&self, k: K, v: V) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).put(k, v);
    }
}

/// Content-addressed blobs on local disk. Callers verify what they read (every
/// blob is named by its hash), so a damaged cache file is just a miss.
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    used: AtomicU64,
    pub lookups: Lookups,
}

impl DiskCache {
    pub fn open(dir: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let used = dir_size(&dir);
        Ok(DiskCache { dir, max_bytes, used: AtomicU64::new(used), lookups: Lookups::default() })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn get(&self, name: &str) -> Option<Bytes> {
        self.lookups.count(std::fs::read(self.path(name)).ok().map(Bytes::from))
    }

    /// Best effort: a failed cache write only costs a later refetch.
    pub fn insert(&self, name: &str, bytes: &[u8]) {
        let tmp = self.path(&format!(".{name}.tmp"));
        let ok = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, self.path(name)));
        if let Err(e) = ok {
            tracing::debug!(error = %e, "disk cache write failed");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        let used = self.used.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
        if used > self.max_bytes {
            self.evict();
        }
    }

    /// Drop the least recently modified files until 80% of the budget is used.
    fn evict(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        files.sort();
        let mut used: u64 = files.iter().map(|f| f.1).sum();
        for (_, len, path) in files {
            if used <= self.max_bytes / 10 * 8 {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                used -= len;
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_cache_stays_within_budget() {
        let c = PageCache::new(1000);
        for i in 0..10u8 {
            c.insert(PageHash([i; 32]), Bytes::from(vec![i; 300]));
        }
        assert!(c.used_bytes() <= 1000);
        assert!(c.get(&PageHash([9; 32])).is_some());
        assert!(c.get(&PageHash([0; 32])).is_none());
    }

    #[test]
    fn disk_cache_evicts_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path().join("c"), 1000).unwrap();
        for i in 0..10 {
            c.insert(&format!("b{i}"), &[0u8; 300]);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(dir_size(&dir.path().join("c")) <= 1000);
        assert!(c.get("b9").is_some());
        assert!(c.get("b0").is_none());
    }
}
