//! A worker's entry in the registry gateways route by: while it runs, the
//! worker refreshes its row (endpoint, statements in flight, databases it
//! is the writer of) every [`HEARTBEAT`]; it deletes the row when it stops
//! cleanly. A gateway treats a row older than [`STALE_AFTER`] as a dead worker.

use std::sync::{Arc, Weak};
use std::time::Duration;

use layerd::catalog::WorkerRecord;
use layerd::Layerd;

use crate::engine::Engine;

/// How often a worker refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_millis(1000);
/// A row not refreshed for this long belongs to a dead (or cut-off) worker.
pub const STALE_AFTER: Duration = Duration::from_millis(3500);

/// The heartbeat task of one worker; [`Registration::leave`] removes the row.
pub struct Registration {
    od: Arc<Layerd>,
    task: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Register `engine` under this data dir's identity at `endpoint`.
    pub fn start(od: Arc<Layerd>, engine: Weak<Engine>, endpoint: String) -> Self {
        let started_at = layerd::catalog::now_ms();
        let catalog_od = od.clone();
        let task = tokio::spawn(async move {
            let mut warned = false;
            loop {
                let Some(engine) = engine.upgrade() else { return };
                let writing = engine.writing().await;
                let seal_lag_ms: serde_json::Map<String, serde_json::Value> =
                    writing.iter().map(|(db, lag)| (db.clone(), serde_json::json!(lag.map(|l| l.as_millis() as u64).unwrap_or(0)))).collect();
                let writing: Vec<&String> = writing.iter().map(|(db, _)| db).collect();
                let record = WorkerRecord {
                    id: catalog_od.owner().to_string(),
                    endpoint: endpoint.clone(),
                    started_at,
                    heartbeat_at: 0,
                    in_flight: engine.in_flight() as i64,
                    status: serde_json::json!({ "writing": writing, "seal_lag_ms": seal_lag_ms, "version": env!("CARGO_PKG_VERSION") }).to_string(),
                };
                drop(engine);
                match catalog_od.catalog().heartbeat_worker(&record).await {
                    Ok(()) if warned => {
                        tracing::info!("worker registry reachable again");
                        warned = false;
                    }
                    Ok(()) => {}
                    Err(e) if !warned => {
                        tracing::warn!(error = %e, "cannot refresh this worker's registry row: gateways will stop routing here until it works again");
                        warned = true;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        Registration { od, task }
    }

    /// Stop heartbeating and leave the registry (gateways stop routing here).
    pub async fn leave(self) {
        self.task.abort();
        if let Err(e) = self.od.catalog().remove_worker(self.od.owner()).await {
            tracing::warn!(error = %e, "could not remove this worker's registry row (it goes stale by itself)");
        }
    }
}
