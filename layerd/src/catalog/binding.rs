//! The metadata side of the store binding (see `binding.rs`): one row naming
//! the object store this metadata belongs with.

use sqlx::Row;

use super::Catalog;
use crate::error::Result;

/// The object store a metadata store belongs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreBinding {
    /// The pair's id, also in the store's marker object.
    pub id: String,
    /// The store's URL when it was bound (for messages).
    pub store_url: String,
}

impl Catalog {
    pub async fn store_binding(&self) -> Result<Option<StoreBinding>> {
        let row = sqlx::query("SELECT id, store_url FROM store_binding ORDER BY bound_at LIMIT 1").fetch_optional(&self.pool).await?;
        row.map(|r| Ok(StoreBinding { id: r.try_get(0)?, store_url: r.try_get(1)? })).transpose()
    }

    /// Record the binding unless one exists; returns the id that holds.
    pub async fn bind_store(&self, id: &str, store_url: &str, now: i64) -> Result<String> {
        sqlx::query(
            "INSERT INTO store_binding (singleton, id, store_url, bound_at) VALUES (1, $1, $2, $3) ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(id)
        .bind(store_url)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self.store_binding().await?.map(|b| b.id).unwrap_or_else(|| id.to_string()))
    }

    /// No database has ever been created here.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM databases LIMIT 1").fetch_optional(&self.pool).await?.is_none())
    }
}
