//! Layer claims: how writers and gc agree on who may touch a layer object,
//! with no timing bet.
//!
//! A layer's object name is its content hash, so two parties can meet on one
//! name: a seal re-creating byte-identical content, and a gc deleting the old
//! copy. Every layer id has at most one claim row:
//!
//! - `writing`: a seal, import or compaction will put (or has put) this object
//!   and has not committed yet. Writers take the claim *before* the put,
//!   renew it while they work, and the commit transaction releases it (the
//!   layer's metadata row protects the object from then on); a claim that
//!   expired and was taken over by gc makes the commit fail (`ClaimLost`),
//!   never commit a snapshot that points at a deleted object.
//! - `deleting`: a tombstone. gc takes it in the same transaction that forgets
//!   the layer's metadata, deletes the object, then drops the tombstone. While
//!   it stands nobody may write that name: a writer that meets a tombstone
//!   encodes its layer with another salt, so it gets another name.
//!
//! gc deletes only objects it holds a tombstone for, and takes a tombstone
//! only over no claim or an expired `writing` one (all within one
//! transaction, serialised by the claim row's primary key).

use sqlx::{AssertSqlSafe, Row};

use super::{layer_id, now_ms, schema, Catalog};
use crate::error::{LayerdError, Result};
use crate::layer::LayerId;

/// How long a `writing` claim lives without renewal, unless configured
/// ([`crate::LayerdConfig::claim_ttl_ms`]). Writers renew every claim they
/// hold before each object put (at most every
/// [`crate::seal::LAYER_TARGET_BYTES`] of data), and at commit.
pub const DEFAULT_CLAIM_TTL_MS: i64 = 10 * 60 * 1000;

const WRITING: &str = "writing";
const DELETING: &str = "deleting";

impl Catalog {
    /// Claim `layer` for writing. `false` if a gc holds a tombstone on it (the
    /// writer must pick another name: another salt).
    pub async fn claim_layer(&self, layer: &LayerId, owner: &str) -> Result<bool> {
        let now = now_ms();
        let res = sqlx::query(
            "INSERT INTO layer_claims (layer, state, owner, expires_at) VALUES ($1, 'writing', $2, $3)
             ON CONFLICT (layer) DO UPDATE SET owner = excluded.owner,
                 expires_at = CASE WHEN excluded.expires_at > layer_claims.expires_at
                                   THEN excluded.expires_at ELSE layer_claims.expires_at END
             WHERE layer_claims.state = 'writing'",
        )
        .bind(layer.to_hex())
        .bind(owner)
        .bind(now + self.claim_ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Extend the claims a writer holds. Fails with `ClaimLost` if gc took any
    /// of them over (the writer stalled past the claim lifetime).
    pub async fn renew_claims(&self, layers: &[LayerId]) -> Result<()> {
        let expires = now_ms() + self.claim_ttl_ms;
        for layer in layers {
            let res = sqlx::query("UPDATE layer_claims SET expires_at = $1 WHERE layer = $2 AND state = 'writing'")
                .bind(expires)
                .bind(layer.to_hex())
                .execute(&self.pool)
                .await?;
            if res.rows_affected() == 0 {
                return Err(LayerdError::ClaimLost { layer: layer.to_hex() });
            }
        }
        Ok(())
    }

    /// In a commit transaction: the object of `layer` is safe to reference.
    /// Either the writer's claim still stands (it is released: from this
    /// commit on the layer's metadata row protects the object), or another
    /// writer of the same content committed first and released it, and the
    /// layer's row still exists (revived here, under its row lock, so a
    /// concurrent gc cannot be between forgetting it and deleting it).
    pub(super) async fn confirm_claim(tx: &mut sqlx::Transaction<'_, sqlx::Any>, layer: &LayerId) -> Result<()> {
        let released =
            sqlx::query("DELETE FROM layer_claims WHERE layer = $1 AND state = 'writing'").bind(layer.to_hex()).execute(&mut **tx).await?;
        if released.rows_affected() == 1 {
            return Ok(());
        }
        let revived = sqlx::query("UPDATE layers SET condemned_at = NULL WHERE id = $1").bind(layer.to_hex()).execute(&mut **tx).await?;
        if revived.rows_affected() == 0 {
            return Err(LayerdError::ClaimLost { layer: layer.to_hex() });
        }
        Ok(())
    }

    /// Take a tombstone on `layer` unless a live writer claims it.
    async fn take_tombstone(tx: &mut sqlx::Transaction<'_, sqlx::Any>, layer: &str, owner: &str, now: i64) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO layer_claims (layer, state, owner, expires_at) VALUES ($1, 'deleting', $2, $3)
             ON CONFLICT (layer) DO UPDATE SET state = 'deleting', owner = excluded.owner, expires_at = excluded.expires_at
             WHERE layer_claims.state = 'deleting' OR layer_claims.expires_at < $4",
        )
        .bind(layer)
        .bind(owner)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// GC: forget a layer condemned before `cutoff` and still unused, and take
    /// its tombstone, in one transaction. `false` if it was revived or a
    /// writer claims its name; then the object must stay.
    pub async fn tombstone_condemned(&self, layer: &LayerId, cutoff: i64, owner: &str) -> Result<bool> {
        let id = layer.to_hex();
        let mut tx = self.begin_write().await?;
        if !Self::take_tombstone(&mut tx, &id, owner, now_ms()).await? {
            return Ok(false);
        }
        let sql =
            format!("DELETE FROM layers WHERE id = $1 AND condemned_at IS NOT NULL AND condemned_at <= $2 AND {}", schema::UNREFERENCED);
        let res = sqlx::query(AssertSqlSafe(sql)).bind(&id).bind(cutoff).execute(&mut *tx).await?;
        if res.rows_affected() == 0 {
            return Ok(false); // dropping `tx` rolls the tombstone back
        }
        sqlx::query("DELETE FROM layer_refs WHERE layer = $1").bind(&id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM pages WHERE layer = $1").bind(&id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// GC: take the tombstone of an object the metadata does not know, unless
    /// a live writer claims it (a seal or import still running).
    pub async fn tombstone_orphan(&self, layer: &LayerId, owner: &str) -> Result<bool> {
        let id = layer.to_hex();
        let mut tx = self.begin_write().await?;
        if !Self::take_tombstone(&mut tx, &id, owner, now_ms()).await? {
            return Ok(false);
        }
        let known = sqlx::query("SELECT 1 FROM layers WHERE id = $1").bind(&id).fetch_optional(&mut *tx).await?;
        if known.is_some() {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// GC: the object under this tombstone is deleted; its name is free again.
    pub async fn drop_tombstone(&self, layer: &LayerId) -> Result<()> {
        sqlx::query("DELETE FROM layer_claims WHERE layer = $1 AND state = 'deleting'").bind(layer.to_hex()).execute(&self.pool).await?;
        Ok(())
    }

    /// Tombstones standing now (a gc that stopped between taking one and
    /// dropping it): their objects may be deleted at once.
    pub async fn tombstones(&self) -> Result<Vec<LayerId>> {
        let rows =
            sqlx::query(AssertSqlSafe(format!("SELECT layer FROM layer_claims WHERE state = '{DELETING}'"))).fetch_all(&self.pool).await?;
        rows.iter().map(|r| layer_id(&r.try_get::<String, _>(0)?)).collect()
    }

    /// GC: forget expired `writing` claims of writers that are gone. A claim
    /// whose object was put but never committed leaves an orphan object,
    /// which the orphan pass then takes under a tombstone. Returns how many.
    pub async fn reap_expired_claims(&self) -> Result<u64> {
        let sql = format!("DELETE FROM layer_claims WHERE state = '{WRITING}' AND expires_at < $1");
        Ok(sqlx::query(AssertSqlSafe(sql)).bind(now_ms()).execute(&self.pool).await?.rows_affected())
    }
}
