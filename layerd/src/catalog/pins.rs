//! Pins of layers that open snapshot views read (see `pins.rs`): gc never
//! condemns or deletes a pinned layer, nor the packs a pinned layer points
//! into. A holder (one process's `Layerd`) refreshes its pins while it holds
//! views; pins of a holder that went away expire.

use sqlx::AssertSqlSafe;

use super::{now_ms, placeholders, Catalog, BATCH};
use crate::error::Result;
use crate::layer::LayerId;

impl Catalog {
    /// Pin `layers` for `holder` until `expires_at` (or extend the pins).
    pub async fn pin_layers(&self, holder: &str, layers: &[LayerId], expires_at: i64) -> Result<()> {
        for chunk in layers.chunks(BATCH) {
            let sql = format!(
                "INSERT INTO view_pins (holder, layer, expires_at) VALUES {} ON CONFLICT (holder, layer) DO UPDATE SET expires_at = excluded.expires_at",
                placeholders(1, chunk.len(), 3)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for l in chunk {
                q = q.bind(holder).bind(l.to_hex()).bind(expires_at);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// `holder` now pins exactly `layers` (until `expires_at`).
    pub async fn refresh_pins(&self, holder: &str, layers: &[LayerId], expires_at: i64) -> Result<()> {
        self.pin_layers(holder, layers, expires_at).await?;
        sqlx::query("DELETE FROM view_pins WHERE holder = $1 AND expires_at < $2")
            .bind(holder)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forget the pins of holders that stopped refreshing them.
    pub async fn reap_expired_pins(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM view_pins WHERE expires_at < $1").bind(now_ms()).execute(&self.pool).await?.rows_affected())
    }
}
