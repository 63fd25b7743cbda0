//! The worker registry: every `openduck worker` upserts its row (endpoint,
//! load, what it serves) about once a second; gateways read the rows with a
//! fresh heartbeat and route by them. Rows of workers that stopped cleanly
//! are deleted; rows of crashed ones simply go stale.

use std::collections::HashMap;

use sqlx::Row;

use super::{now_ms, Catalog};
use crate::error::Result;

/// One registered worker, as its last heartbeat described it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WorkerRecord {
    /// The worker's data-dir identity: the owner name of the writer leases it holds.
    pub id: String,
    /// Where gateways reach its gRPC service (`http://host:port`).
    pub endpoint: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds of the last heartbeat.
    pub heartbeat_at: i64,
    /// Statements running on it at the last heartbeat.
    pub in_flight: i64,
    /// A JSON object the worker fills (databases it writes, seal lag, ...).
    pub status: String,
}

impl Catalog {
    /// Insert or refresh a worker's row; its `heartbeat_at` becomes now.
    pub async fn heartbeat_worker(&self, w: &WorkerRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (id, endpoint, started_at, heartbeat_at, in_flight, status) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, started_at = excluded.started_at,
                 heartbeat_at = excluded.heartbeat_at, in_flight = excluded.in_flight, status = excluded.status",
        )
        .bind(&w.id)
        .bind(&w.endpoint)
        .bind(w.started_at)
        .bind(now_ms())
        .bind(w.in_flight)
        .bind(&w.status)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Workers whose last heartbeat is at most `max_age_ms` old, by id.
    pub async fn live_workers(&self, max_age_ms: i64) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(
            "SELECT id, endpoint, started_at, heartbeat_at, in_flight, status FROM workers WHERE heartbeat_at >= $1 ORDER BY id",
        )
        .bind(now_ms() - max_age_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkerRecord {
                    id: r.try_get(0)?,
                    endpoint: r.try_get(1)?,
                    started_at: r.try_get(2)?,
                    heartbeat_at: r.try_get(3)?,
                    in_flight: r.try_get(4)?,
                    status: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// A worker that stops cleanly leaves the registry at once.
    pub async fn remove_worker(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM workers WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Who holds an unexpired writer lease, by database.
    pub async fn current_writers(&self) -> Result<HashMap<String, String>> {
        let rows = sqlx::query("SELECT db, owner FROM writer_leases WHERE expires_at >= $1").bind(now_ms()).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }
}
