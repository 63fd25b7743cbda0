//! Hydration: complete local copies of hot snapshots, so that opens can be
//! served by kernel FUSE passthrough at native speed (FACTS §2). A snapshot is
//! hydrated in the background the first time it is opened; until the copy is
//! complete (it appears by rename), reads are assembled from layers. Copies
//! are kept within a byte budget, least recently used first out.

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use layerd::Layerd;

pub struct Hydrator {
    dir: PathBuf,
    budget: u64,
    busy: Mutex<HashSet<(String, i64)>>,
}

impl Hydrator {
    pub fn new(dir: PathBuf, budget: u64) -> Self {
        Hydrator { dir, budget, busy: Mutex::default() }
    }

    fn path(&self, db: &str, id: i64) -> PathBuf {
        self.dir.join(db).join(format!("{id}.duckdb"))
    }

    /// The complete local copy, if there is one.
    pub fn ready(&self, db: &str, id: i64) -> Option<File> {
        let path = self.path(db, id);
        let f = File::open(&path).ok()?;
        // Touch for LRU eviction.
        let _ = f.set_modified(std::time::SystemTime::now());
        Some(f)
    }

    /// Start hydrating a snapshot unless it is done or under way.
    pub fn request(self: &Arc<Self>, od: &Arc<Layerd>, rt: &tokio::runtime::Handle, db: &str, id: i64) {
        if self.budget == 0 || self.path(db, id).exists() {
            return;
        }
        let key = (db.to_string(), id);
        if !self.busy.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return;
        }
        let (me, od) = (self.clone(), od.clone());
        rt.spawn(async move {
            let path = me.path(&key.0, key.1);
            let result = async {
                std::fs::create_dir_all(path.parent().unwrap_or(&me.dir)).map_err(|e| layerd::LayerdError::io(&me.dir, e))?;
                od.export(&key.0, Some(key.1), &path, &|_, _| {}).await
            }
            .await;
            match result {
                Ok(_) => tracing::info!(db = key.0, snapshot = key.1, "hydrated"),
                Err(e) => tracing::warn!(db = key.0, snapshot = key.1, error = %e, "hydration failed"),
            }
            me.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            me.evict();
        });
    }

    /// Delete least recently used copies beyond the budget (open files stay
    /// readable until closed).
    fn evict(&self) {
        let mut files = Vec::new();
        let Ok(dbs) = std::fs::read_dir(&self.dir) else { return };
        for db in dbs.flatten() {
            let Ok(rd) = std::fs::read_dir(db.path()) else { continue };
            for f in rd.flatten() {
                if let Ok(m) = f.metadata() {
                    if f.path().extension().is_some_and(|e| e == "duckdb") {
                        files.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len(), f.path()));
                    }
                }
            }
        }
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        for (_, len, path) in files {
            if total <= self.budget {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}
