//! Writer leases: exactly one writer per database among all processes that
//! share a metadata store. A lease is a row (owner, epoch, expiry); it is
//! taken when free, expired, or already the taker's own (a restart), and
//! every take bumps the epoch. The holder renews it well before it expires.
//! A snapshot commits only while its writer's (owner, epoch) is still the
//! current lease (checked under a row lock in the commit transaction), so a
//! writer that was paused or cut off past its expiry and then replaced can
//! never commit again: it is fenced.

use sqlx::Row;

use super::{now_ms, Catalog};
use crate::error::{LayerdError, Result};

/// A lease this process holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterLease {
    pub db: String,
    pub owner: String,
    pub epoch: i64,
}

impl Catalog {
    /// Take the writer lease of `db` for `ttl_ms`, or say who holds it.
    pub async fn acquire_lease(&self, db: &str, owner: &str, ttl_ms: i64) -> Result<WriterLease> {
        let now = now_ms();
        let taken = sqlx::query(
            "UPDATE writer_leases SET owner = $2, epoch = epoch + 1, expires_at = $3
             WHERE db = $1 AND (expires_at < $4 OR owner = $2)",
        )
        .bind(db)
        .bind(owner)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 0 {
            let fresh = sqlx::query("INSERT INTO writer_leases (db, owner, epoch, expires_at) VALUES ($1, $2, 1, $3) ON CONFLICT (db) DO NOTHING")
                .bind(db)
                .bind(owner)
                .bind(now + ttl_ms)
                .execute(&self.pool)
                .await?;
            if fresh.rows_affected() == 0 {
                let row = sqlx::query("SELECT owner, expires_at FROM writer_leases WHERE db = $1").bind(db).fetch_one(&self.pool).await?;
                let (holder, until): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                return Err(LayerdError::LeaseHeld { db: db.to_string(), owner: holder, remaining_ms: (until - now).max(0) });
            }
        }
        let epoch: i64 = sqlx::query("SELECT epoch FROM writer_leases WHERE db = $1 AND owner = $2")
            .bind(db)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| LayerdError::Fenced { db: db.to_string() })?
            .try_get(0)?;
        Ok(WriterLease { db: db.to_string(), owner: owner.to_string(), epoch })
    }

    /// Extend a lease; `Fenced` if another process took it over meanwhile.
    pub async fn renew_lease(&self, lease: &WriterLease, ttl_ms: i64) -> Result<()> {
        let renewed = sqlx::query("UPDATE writer_leases SET expires_at = $4 WHERE db = $1 AND owner = $2 AND epoch = $3")
            .bind(&lease.db)
            .bind(&lease.owner)
            .bind(lease.epoch)
            .bind(now_ms() + ttl_ms)
            .execute(&self.pool)
            .await?;
        if renewed.rows_affected() == 0 {
            return Err(LayerdError::Fenced { db: lease.db.clone() });
        }
        Ok(())
    }

    /// Give a lease up (a clean shutdown): the next writer need not wait.
    pub async fn release_lease(&self, lease: &WriterLease) -> Result<()> {
        sqlx::query("UPDATE writer_leases SET expires_at = 0 WHERE db = $1 AND owner = $2 AND epoch = $3")
            .bind(&lease.db)
            .bind(&lease.owner)
            .bind(lease.epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Inside a commit: the lease must still be (owner, epoch). The no-op
    /// update locks the row until the commit ends, so a takeover waits for
    /// it (and one that came first makes this fail).
    pub(super) async fn check_lease(tx: &mut sqlx::Transaction<'_, sqlx::Any>, db: &str, owner: &str, epoch: i64) -> Result<()> {
        let held = sqlx::query("UPDATE writer_leases SET epoch = epoch WHERE db = $1 AND owner = $2 AND epoch = $3")
            .bind(db)
            .bind(owner)
            .bind(epoch)
            .execute(&mut **tx)
            .await?;
        if held.rows_affected() == 0 {
            return Err(LayerdError::Fenced { db: db.to_string() });
        }
        Ok(())
    }
}
