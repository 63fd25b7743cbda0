//! The metadata side of the store binding (see `binding.rs`): one row naming
//! the object store this metadata belongs with.

use sqlx::Row;

use super::Catalog;
use crate::error::{LayerdError, Result};

/// The object store a metadata store belongs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreBinding {
    /// The pair's id, also in the store's marker object.
    pub id: String,
    /// The store's URL when it was bound (for messages).
    pub store_url: String,
    /// Unix milliseconds.
    pub bound_at: i64,
    /// The store's marker was written (the binding is complete).
    pub marked: bool,
}

impl Catalog {
    pub async fn store_binding(&self) -> Result<Option<StoreBinding>> {
        let row =
            sqlx::query("SELECT id, store_url, bound_at, marked FROM store_binding WHERE singleton = 1").fetch_optional(&self.pool).await?;
        row.map(|r| {
            Ok(StoreBinding { id: r.try_get(0)?, store_url: r.try_get(1)?, bound_at: r.try_get(2)?, marked: r.try_get::<i64, _>(3)? != 0 })
        })
        .transpose()
    }

    /// Record the binding unless one exists; returns the binding that holds.
    pub async fn bind_store(&self, id: &str, store_url: &str, now: i64) -> Result<StoreBinding> {
        sqlx::query(
            "INSERT INTO store_binding (singleton, id, store_url, bound_at) VALUES (1, $1, $2, $3) ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(id)
        .bind(store_url)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.store_binding().await?.ok_or_else(|| LayerdError::Invalid("the store binding vanished while it was made; retry".into()))
    }

    /// The store's marker for binding `id` is written.
    pub async fn mark_store_bound(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE store_binding SET marked = 1 WHERE singleton = 1 AND id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Undo a binding this process just made (to a store that turned out to
    /// belong elsewhere).
    pub async fn unbind_store(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM store_binding WHERE singleton = 1 AND id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}
