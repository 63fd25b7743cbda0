//! The gateway's view of the worker registry (metadata table `workers`,
//! refreshed every [`REFRESH`]) and the routing rules on top of it:
//!
//! - **Latest state, writes, transactions** of a database go to its writer:
//!   the worker holding its writer lease, or, while nobody holds it, the
//!   worker rendezvous hashing picks for the database (every gateway picks
//!   the same one; it takes the lease on first use). The writer serves the
//!   commits that are not sealed yet, so a client reads its own writes
//!   whichever gateway it uses.
//! - **Reads of a sealed snapshot** (`snapshot_id`) go to the worker with
//!   the fewest calls in flight from this gateway, ties broken by the rank
//!   rendezvous hashing gives the snapshot (so a lightly loaded cluster
//!   reads each snapshot on one worker, where it is warm, and a busy one
//!   spreads a hot snapshot over all workers).
//! - A worker that failed a call is skipped for [`DOWN_FOR`]; a worker that
//!   stops heartbeating drops out of the view within
//!   [`crate::registration::STALE_AFTER`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use layerd::catalog::{Catalog, WorkerRecord};
use openduck_proto::client::{lazy_raw_client, RawClient};
use tonic::Status;

use crate::registration::STALE_AFTER;

/// How often the view is read from the metadata store.
pub const REFRESH: Duration = Duration::from_millis(500);
/// How long a worker that failed a call gets no new calls from this
/// gateway: longer than a dead worker takes to drop out of the view.
pub const DOWN_FOR: Duration = Duration::from_secs(5);

/// A live worker as this gateway sees it.
pub struct Worker {
    pub record: WorkerRecord,
    /// Names the worker inside result handles: any gateway can route a Fetch.
    pub key: String,
    pub client: RawClient,
    /// Calls this gateway has open on it now.
    pub in_flight: Arc<AtomicI64>,
}

impl Worker {
    /// Counts a call as in flight on this worker until dropped.
    pub fn call(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard(self.in_flight.clone())
    }
}

pub struct CallGuard(Arc<AtomicI64>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The route key of a worker id.
pub fn route_key(id: &str) -> String {
    blake3::hash(id.as_bytes()).to_hex()[..12].to_string()
}

/// Rendezvous (highest random weight) score of `worker` for `item`.
fn score(item: &str, worker: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(item.as_bytes());
    h.update(&[0]);
    h.update(worker.as_bytes());
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or_default())
}

/// Candidates for `item`, best first.
fn ranked<'a>(item: &str, workers: impl Iterator<Item = &'a Arc<Worker>>) -> Vec<&'a Arc<Worker>> {
    let mut all: Vec<(u64, &Arc<Worker>)> = workers.map(|w| (score(item, &w.record.id), w)).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0));
    all.into_iter().map(|(_, w)| w).collect()
}

#[derive(Default)]
pub struct View {
    pub workers: Vec<Arc<Worker>>,
    /// Unexpired writer leases: database -> owner (a worker id).
    pub writers: HashMap<String, String>,
    pub refreshed: Option<Instant>,
    /// Why the last refresh failed (the view is then older than usual).
    pub error: Option<String>,
}

pub struct Registry {
    catalog: Catalog,
    token: Option<String>,
    view: RwLock<Arc<View>>,
    down: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// Read the registry once, then keep refreshing it in the background
    /// for as long as the registry is alive. `token`: what workers expect.
    pub async fn start(catalog: Catalog, token: Option<String>) -> Arc<Self> {
        let registry = Arc::new(Registry { catalog, token, view: RwLock::default(), down: Mutex::default() });
        registry.refresh().await;
        let weak = Arc::downgrade(&registry);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                let Some(registry) = weak.upgrade() else { return };
                registry.refresh().await;
            }
        });
        registry
    }

    pub fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn refresh(&self) {
        let read = async {
            let workers = self.catalog.live_workers(STALE_AFTER.as_millis() as i64).await?;
            let writers = self.catalog.current_writers().await?;
            Ok::<_, layerd::LayerdError>((workers, writers))
        };
        let old = self.view();
        let next = match read.await {
            Ok((records, writers)) => {
                let workers = records
                    .into_iter()
                    .filter_map(|record| {
                        // Keep the connection (and the in-flight count) of a worker already known.
                        if let Some(known) = old.workers.iter().find(|w| w.record.id == record.id && w.record.endpoint == record.endpoint) {
                            return Some(Arc::new(Worker { key: known.key.clone(), client: known.client.clone(), in_flight: known.in_flight.clone(), record }));
                        }
                        match lazy_raw_client(&record.endpoint, self.token.as_deref()) {
                            Ok(client) => Some(Arc::new(Worker { key: route_key(&record.id), client, in_flight: Arc::default(), record })),
                            Err(e) => {
                                tracing::warn!(worker = %record.id, endpoint = %record.endpoint, error = %e, "ignoring a worker with a bad endpoint");
                                None
                            }
                        }
                    })
                    .collect();
                View { workers, writers, refreshed: Some(Instant::now()), error: None }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the worker registry: routing by the last view");
                View { workers: old.workers.clone(), writers: old.writers.clone(), refreshed: old.refreshed, error: Some(e.to_string()) }
            }
        };
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    fn is_down(&self, w: &Worker) -> bool {
        lock(&self.down).get(&w.record.id).is_some_and(|until| *until > Instant::now())
    }

    /// Skip `w` for a while: a call to it failed.
    pub fn mark_down(&self, w: &Worker) {
        let mut down = lock(&self.down);
        down.retain(|_, until| *until > Instant::now());
        down.insert(w.record.id.clone(), Instant::now() + DOWN_FOR);
    }

    fn no_workers(view: &View) -> Status {
        let why = match &view.error {
            Some(e) => format!(" (the registry cannot be read: {e})"),
            None => String::new(),
        };
        Status::unavailable(format!("no live OpenDuck worker is registered{why}: start `openduck worker` against the same metadata store, or retry shortly"))
    }

    /// Where the latest state of `db` is served (and written).
    pub fn writer_for(&self, db: &str) -> Result<Arc<Worker>, Status> {
        let view = self.view();
        if let Some(owner) = view.writers.get(db) {
            if let Some(w) = view.workers.iter().find(|w| &w.record.id == owner && !self.is_down(w)) {
                return Ok(w.clone());
            }
        }
        // Nobody (alive) holds the lease: the same choice on every gateway.
        ranked(db, view.workers.iter().filter(|w| !self.is_down(w))).first().map(|w| (*w).clone()).ok_or_else(|| Self::no_workers(&view))
    }

    /// Where sealed snapshot `snapshot` of `db` is read.
    pub fn reader_for(&self, db: &str, snapshot: i64) -> Result<Arc<Worker>, Status> {
        let view = self.view();
        let item = format!("{db}@{snapshot}");
        let ranked = ranked(&item, view.workers.iter().filter(|w| !self.is_down(w)));
        let pick = ranked.iter().enumerate().min_by_key(|(rank, w)| (w.in_flight.load(Ordering::Relaxed), *rank)).map(|(_, w)| w);
        pick.map(|w| (*w).clone()).ok_or_else(|| Self::no_workers(&view))
    }

    /// The worker whose route key is `key` (a Fetch).
    pub fn by_key(&self, key: &str) -> Result<Arc<Worker>, Status> {
        self.view().workers.iter().find(|w| w.key == key).cloned().ok_or_else(|| {
            Status::unavailable("the worker holding this result is gone (it stopped or died): run the statement again")
        })
    }

    /// The registry as JSON, for `GET /health`.
    pub fn health(&self) -> serde_json::Value {
        let view = self.view();
        let now = layerd::catalog::now_ms();
        let workers: Vec<serde_json::Value> = view
            .workers
            .iter()
            .map(|w| {
                let status: serde_json::Value = serde_json::from_str(&w.record.status).unwrap_or_default();
                serde_json::json!({
                    "id": w.record.id,
                    "endpoint": w.record.endpoint,
                    "route_key": w.key,
                    "heartbeat_age_ms": now - w.record.heartbeat_at,
                    "up_ms": now - w.record.started_at,
                    "in_flight": w.record.in_flight,
                    "in_flight_from_this_gateway": w.in_flight.load(Ordering::Relaxed),
                    "down": self.is_down(w),
                    "writing": status.get("writing").cloned().unwrap_or_default(),
                    "seal_lag_ms": status.get("seal_lag_ms").cloned().unwrap_or_default(),
                })
            })
            .collect();
        serde_json::json!({
            "workers": workers,
            "writers": view.writers,
            "registry_age_ms": view.refreshed.map(|t| t.elapsed().as_millis() as u64),
            "registry_error": view.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_and_spreads() {
        let ids: Vec<String> = (0..3).map(|i| format!("host{i}:/var/lib/openduck#{i:012}")).collect();
        let pick = |item: &str, ids: &[String]| ids.iter().max_by_key(|id| score(item, id)).cloned().unwrap();
        // The same choice every time, and only the removed worker's items move.
        let mut moved = 0;
        let mut per_worker = HashMap::new();
        for db in 0..300 {
            let item = format!("db{db}");
            let before = pick(&item, &ids);
            assert_eq!(before, pick(&item, &ids));
            *per_worker.entry(before.clone()).or_insert(0) += 1;
            let after = pick(&item, &ids[..2]);
            if before != after {
                assert_eq!(before, ids[2], "only items of the removed worker may move");
                moved += 1;
            }
        }
        assert!(per_worker.values().all(|n| *n > 60), "uneven spread: {per_worker:?}");
        assert!(moved > 60 && moved < 140, "{moved} of 300 moved");
    }

    #[test]
    fn route_keys_are_short_and_distinct() {
        assert_eq!(route_key("a").len(), 12);
        assert_ne!(route_key("a"), route_key("b"));
    }
}
