//! Metadata: databases, snapshots, layers and the page dedupe table, in SQLite
//! (default, a file in the data dir) or Postgres (production), through sqlx's
//! `Any` driver so both backends run the very same statements.
//!
//! Commit points: a seal or import becomes visible in exactly one transaction
//! ([`Catalog::commit_snapshot`]), run only after its layer objects are durable.

mod binding;
mod claims;
mod lease;
mod pins;
mod schema;
mod workers;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::error::{LayerdError, Result};
use crate::layer::{LayerId, LayerKind, StoredPage};
use crate::page::PageHash;

pub use binding::StoreBinding;
pub use claims::DEFAULT_CLAIM_TTL_MS;
pub use lease::WriterLease;
pub use workers::WorkerRecord;

/// One snapshot of a database.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    pub db: String,
    pub id: i64,
    pub parent: Option<i64>,
    /// Logical file size in bytes.
    pub size: u64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub name: Option<String>,
    pub pinned: bool,
    /// Bytes of new layer objects this snapshot added to the store.
    pub stored_bytes: u64,
    /// Layer stack, bottom first.
    #[serde(serialize_with = "hex_ids")]
    pub layers: Vec<LayerId>,
    #[serde(skip)]
    pub head_ref: Option<String>,
}

fn hex_ids<S: serde::Serializer>(ids: &[LayerId], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(|i| i.to_hex()))
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseInfo {
    pub name: String,
    pub created_at: i64,
    pub snapshots: i64,
    pub latest: Option<i64>,
}

/// A layer object about to be recorded.
pub struct NewLayer {
    pub id: LayerId,
    pub kind: LayerKind,
    pub object_bytes: u64,
    pub pages: u64,
    pub refs: Vec<LayerId>,
    pub stored: Vec<StoredPage>,
}

/// Everything a seal or import commits at once.
pub struct NewSnapshot {
    pub db: String,
    pub parent: Option<i64>,
    pub size: u64,
    /// Full layer stack of the new snapshot, bottom first.
    pub layers: Vec<LayerId>,
    pub new_layers: Vec<NewLayer>,
    pub head_ref: Option<String>,
    /// Create the database in the same transaction (import).
    pub create_database: bool,
    /// Commit only while this lease is the database's current one.
    pub lease: Option<(String, i64)>,
}

/// Where an existing copy of a page's bytes lives.
#[derive(Clone, Copy, Debug)]
pub struct KnownPage {
    pub layer: LayerId,
    pub offset: u64,
    pub len: u32,
}

#[derive(Clone)]
pub struct Catalog {
    pool: AnyPool,
    url: String,
    sqlite: bool,
    /// Lifetime of layer claims (see `claims.rs`).
    claim_ttl_ms: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn layer_id(s: &str) -> Result<LayerId> {
    LayerId::from_hex(s).ok_or_else(|| LayerdError::Invalid(format!("metadata holds a malformed layer id '{s}'")))
}

const BATCH: usize = 200;

fn placeholders(first: usize, rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..cols).map(|c| format!("${}", first + r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Catalog {
    /// Connect to `sqlite://path` or `postgres://...` and bring the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(LayerdError::BadUrl {
                what: "metadata",
                url: url.to_string(),
                reason: "expected sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            });
        }
        let opts = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 15000"] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            });
        // One direct connection first: a refused or misconfigured server fails
        // fast with its real cause instead of a pool timeout.
        drop(<sqlx::AnyConnection as sqlx::Connection>::connect(url).await?);
        let pool = opts.connect(url).await?;
        let cat = Catalog { pool, url: url.to_string(), sqlite, claim_ttl_ms: DEFAULT_CLAIM_TTL_MS };
        cat.migrate().await?;
        Ok(cat)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Layer claims taken through this handle live this long without renewal.
    pub fn with_claim_ttl_ms(mut self, ms: i64) -> Self {
        self.claim_ttl_ms = ms;
        self
    }

    /// A transaction that will write. SQLite must take its write lock up
    /// front: a deferred transaction that reads first cannot upgrade once
    /// another writer committed (SQLITE_BUSY without waiting).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = if self.sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
        Ok(self.pool.begin_with(begin).await?)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if !self.sqlite {
            // Processes starting together on a fresh Postgres would race their
            // CREATE TABLEs (a unique violation in pg_type): one at a time.
            // (SQLite's write transaction already holds the database lock.)
            sqlx::query("SELECT pg_advisory_xact_lock(7478448152010870101)").execute(&mut *tx).await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS od_schema_version (version BIGINT NOT NULL)").execute(&mut *tx).await?;
        let current: Option<i64> = sqlx::query("SELECT MAX(version) FROM od_schema_version")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let current = current.unwrap_or(0) as usize;
        if current > schema::MIGRATIONS.len() {
            return Err(LayerdError::UnsupportedVersion {
                what: "metadata schema",
                object: self.url.clone(),
                found: current as u32,
                supported: schema::MIGRATIONS.len() as u32,
            });
        }
        for (i, steps) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            for stmt in *steps {
                sqlx::query(AssertSqlSafe(*stmt)).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO od_schema_version (version) VALUES ($1)").bind((i + 1) as i64).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_database(&self, name: &str) -> Result<DatabaseInfo> {
        let mut tx = self.begin_write().await?;
        let now = Self::insert_database(&mut tx, name).await?;
        tx.commit().await?;
        Ok(DatabaseInfo { name: name.to_string(), created_at: now, snapshots: 0, latest: None })
    }

    async fn insert_database(tx: &mut sqlx::Transaction<'_, sqlx::Any>, name: &str) -> Result<i64> {
        let now = now_ms();
        let res = sqlx::query("INSERT INTO databases (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        if res.rows_affected() == 0 {
            return Err(LayerdError::DatabaseExists(name.to_string()));
        }
        Ok(now)
    }

    pub async fn list_databases(&self) -> Result<Vec<DatabaseInfo>> {
        let rows = sqlx::query(
            "SELECT d.name, d.created_at, COUNT(s.id), MAX(s.id) FROM databases d
             LEFT JOIN snapshots s ON s.db = d.name GROUP BY d.name, d.created_at ORDER BY d.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DatabaseInfo { name: r.try_get(0)?, created_at: r.try_get(1)?, snapshots: r.try_get(2)?, latest: r.try_get(3)? })
            })
            .collect()
    }

    pub async fn require_database(&self, name: &str) -> Result<()> {
        let row = sqlx::query("SELECT name FROM databases WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        row.map(|_| ()).ok_or_else(|| LayerdError::UnknownDatabase(name.to_string()))
    }

    async fn layers_of(&self, db: &str, id: i64) -> Result<Vec<LayerId>> {
        let rows = sqlx::query("SELECT layer FROM snapshot_layers WHERE db = $1 AND snapshot = $2 ORDER BY position")
            .bind(db)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| layer_id(&r.try_get::<String, _>(0)?)).collect()
    }

    fn snapshot_from_row(db: &str, r: &AnyRow) -> Result<SnapshotInfo> {
        Ok(SnapshotInfo {
            db: db.to_string(),
            id: r.try_get(0)?,
            parent: r.try_get(1)?,
            size: r.try_get::<i64, _>(2)? as u64,
            created_at: r.try_get(3)?,
            name: r.try_get(4)?,
            pinned: r.try_get::<i64, _>(5)? != 0,
            stored_bytes: r.try_get::<i64, _>(6)? as u64,
            head_ref: r.try_get(7)?,
            layers: Vec::new(),
        })
    }

    const SNAPSHOT_COLS: &'static str = "id, parent, size, created_at, name, pinned, stored_bytes, head_ref";

    /// All snapshots of `db`, oldest first (layer stacks not loaded).
    pub async fn list_snapshots(&self, db: &str) -> Result<Vec<SnapshotInfo>> {
        self.require_database(db).await?;
        let sql = format!("SELECT {} FROM snapshots WHERE db = $1 ORDER BY id", Self::SNAPSHOT_COLS);
        let rows = sqlx::query(AssertSqlSafe(sql.clone())).bind(db).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Self::snapshot_from_row(db, r)).collect()
    }

    /// One snapshot with its layer stack.
    pub async fn snapshot(&self, db: &str, id: i64) -> Result<SnapshotInfo> {
        let sql = format!("SELECT {} FROM snapshots WHERE db = $1 AND id = $2", Self::SNAPSHOT_COLS);
        let row = sqlx::query(AssertSqlSafe(sql.clone())).bind(db).bind(id).fetch_optional(&self.pool).await?;
        let Some(row) = row else {
            self.require_database(db).await?;
            return Err(LayerdError::UnknownSnapshot { db: db.to_string(), snapshot: id });
        };
        let mut s = Self::snapshot_from_row(db, &row)?;
        s.layers = self.layers_of(db, id).await?;
        Ok(s)
    }

    /// The id of the newest snapshot of `db`, if any (one query when there is one).
    pub async fn latest_snapshot_id(&self, db: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MAX(id) FROM snapshots WHERE db = $1").bind(db).fetch_one(&self.pool).await?;
        let id = row.try_get::<Option<i64>, _>(0)?;
        if id.is_none() {
            self.require_database(db).await?;
        }
        Ok(id)
    }

    /// Fails with `UnknownSnapshot` (or `UnknownDatabase`) unless snapshot `id` of `db` exists.
    pub async fn require_snapshot(&self, db: &str, id: i64) -> Result<()> {
        let row = sqlx::query("SELECT id FROM snapshots WHERE db = $1 AND id = $2").bind(db).bind(id).fetch_optional(&self.pool).await?;
        if row.is_none() {
            self.require_database(db).await?;
            return Err(LayerdError::UnknownSnapshot { db: db.to_string(), snapshot: id });
        }
        Ok(())
    }

    /// The newest snapshot of `db`, if any.
    pub async fn latest_snapshot(&self, db: &str) -> Result<Option<SnapshotInfo>> {
        self.require_database(db).await?;
        let row = sqlx::query("SELECT MAX(id) FROM snapshots WHERE db = $1").bind(db).fetch_one(&self.pool).await?;
        match row.try_get::<Option<i64>, _>(0)? {
            Some(id) => Ok(Some(self.snapshot(db, id).await?)),
            None => Ok(None),
        }
    }

    /// Existing, live copies of any of `hashes`.
    pub async fn find_pages(&self, hashes: &[PageHash]) -> Result<HashMap<PageHash, KnownPage>> {
        let mut out = HashMap::new();
        for chunk in hashes.chunks(BATCH) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT p.hash, p.layer, p.byte_offset, p.len FROM pages p JOIN layers l ON l.id = p.layer
                 WHERE l.condemned_at IS NULL AND p.hash IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            for h in chunk {
                q = q.bind(h.to_hex());
            }
            for r in q.fetch_all(&self.pool).await? {
                let hash: String = r.try_get(0)?;
                let Some(hash) = PageHash::from_hex(&hash) else { continue };
                let layer = layer_id(&r.try_get::<String, _>(1)?)?;
                let known = KnownPage { layer, offset: r.try_get::<i64, _>(2)? as u64, len: r.try_get::<i64, _>(3)? as u32 };
                out.insert(hash, known);
            }
        }
        Ok(out)
    }

    /// Record new layers and the new snapshot in one transaction. Fails with
    /// `Conflict` if `parent` is no longer the latest snapshot, and with
    /// `Invalid` if a layer it points into has been garbage collected meanwhile.
    pub async fn commit_snapshot(&self, new: NewSnapshot) -> Result<SnapshotInfo> {
        let mut tx = self.begin_write().await?;
        if new.create_database {
            Self::insert_database(&mut tx, &new.db).await?;
        }
        let exists = sqlx::query("SELECT name FROM databases WHERE name = $1").bind(&new.db).fetch_optional(&mut *tx).await?;
        if exists.is_none() {
            return Err(LayerdError::UnknownDatabase(new.db.clone()));
        }
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(id) FROM snapshots WHERE db = $1").bind(&new.db).fetch_one(&mut *tx).await?.try_get(0)?;
        if latest != new.parent {
            return Err(LayerdError::Conflict { db: new.db.clone(), expected: new.parent, found: latest });
        }
        if let Some((owner, epoch)) = &new.lease {
            Self::check_lease(&mut tx, &new.db, owner, *epoch).await?;
        }
        let now = now_ms();
        let own: HashSet<LayerId> = new.new_layers.iter().map(|l| l.id).collect();
        for l in &new.new_layers {
            Self::confirm_claim(&mut tx, &l.id).await?;
            Self::insert_layer(&mut tx, l, now).await?;
        }
        let reused: HashSet<&LayerId> =
            new.new_layers.iter().flat_map(|l| l.refs.iter()).chain(new.layers.iter()).filter(|p| !own.contains(p)).collect();
        for layer in reused {
            Self::revive(&mut tx, layer).await?;
        }
        let id = latest.unwrap_or(0) + 1;
        let stored: u64 = new.new_layers.iter().map(|l| l.object_bytes).sum();
        sqlx::query(
            "INSERT INTO snapshots (db, id, parent, size, created_at, name, pinned, stored_bytes, head_ref)
             VALUES ($1, $2, $3, $4, $5, NULL, 0, $6, $7)",
        )
        .bind(&new.db)
        .bind(id)
        .bind(new.parent)
        .bind(new.size as i64)
        .bind(now)
        .bind(stored as i64)
        .bind(new.head_ref.clone())
        .execute(&mut *tx)
        .await?;
        Self::insert_stack(&mut tx, &new.db, id, &new.layers).await?;
        tx.commit().await?;
        Ok(SnapshotInfo {
            db: new.db,
            id,
            parent: new.parent,
            size: new.size,
            created_at: now,
            name: None,
            pinned: false,
            stored_bytes: stored,
            layers: new.layers,
            head_ref: new.head_ref,
        })
    }

    /// Un-condemn a layer that a new layer points into; it must still exist.
    async fn revive(tx: &mut sqlx::Transaction<'_, sqlx::Any>, layer: &LayerId) -> Result<()> {
        let res = sqlx::query("UPDATE layers SET condemned_at = NULL WHERE id = $1").bind(layer.to_hex()).execute(&mut **tx).await?;
        if res.rows_affected() == 0 {
            return Err(LayerdError::Invalid(format!("layer {layer} was garbage collected while being reused; retry")));
        }
        Ok(())
    }

    async fn insert_layer(tx: &mut sqlx::Transaction<'_, sqlx::Any>, l: &NewLayer, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO layers (id, kind, object_bytes, pages, created_at, condemned_at) VALUES ($1, $2, $3, $4, $5, NULL)
             ON CONFLICT (id) DO UPDATE SET condemned_at = NULL",
        )
        .bind(l.id.to_hex())
        .bind(l.kind.as_str())
        .bind(l.object_bytes as i64)
        .bind(l.pages as i64)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        for chunk in l.refs.chunks(BATCH) {
            let sql = format!("INSERT INTO layer_refs (layer, pack) VALUES {} ON CONFLICT DO NOTHING", placeholders(1, chunk.len(), 2));
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            for r in chunk {
                q = q.bind(l.id.to_hex()).bind(r.to_hex());
            }
            q.execute(&mut **tx).await?;
        }
        for chunk in l.stored.chunks(BATCH) {
            let sql = format!(
                "INSERT INTO pages (hash, layer, byte_offset, len) VALUES {} ON CONFLICT DO NOTHING",
                placeholders(1, chunk.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            for p in chunk {
                q = q.bind(p.hash.to_hex()).bind(l.id.to_hex()).bind(p.offset as i64).bind(p.len as i64);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn insert_stack(tx: &mut sqlx::Transaction<'_, sqlx::Any>, db: &str, id: i64, layers: &[LayerId]) -> Result<()> {
        for (pos, layer) in layers.iter().enumerate() {
            sqlx::query("INSERT INTO snapshot_layers (db, snapshot, position, layer) VALUES ($1, $2, $3, $4)")
                .bind(db)
                .bind(id)
                .bind(pos as i64)
                .bind(layer.to_hex())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Compaction: replace the stack of snapshot `id` by one image layer that
    /// holds the same pages. `expected` guards against a concurrent compaction.
    pub async fn replace_stack(&self, db: &str, id: i64, expected: &[LayerId], image: NewLayer) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query("SELECT layer FROM snapshot_layers WHERE db = $1 AND snapshot = $2 ORDER BY position")
            .bind(db)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let current: Vec<LayerId> = rows.iter().map(|r| layer_id(&r.try_get::<String, _>(0)?)).collect::<Result<_>>()?;
        if current != expected {
            return Err(LayerdError::Invalid(format!("snapshot {id} of '{db}' changed during compaction; retry")));
        }
        Self::confirm_claim(&mut tx, &image.id).await?;
        Self::insert_layer(&mut tx, &image, now_ms()).await?;
        for pack in &image.refs {
            Self::revive(&mut tx, pack).await?;
        }
        sqlx::query("DELETE FROM snapshot_layers WHERE db = $1 AND snapshot = $2").bind(db).bind(id).execute(&mut *tx).await?;
        Self::insert_stack(&mut tx, db, id, &[image.id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new database whose first snapshot shares `src`'s layers (no copying).
    pub async fn clone_database(&self, src: &SnapshotInfo, dst: &str) -> Result<SnapshotInfo> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        Self::insert_database(&mut tx, dst).await?;
        for layer in &src.layers {
            Self::revive(&mut tx, layer).await?;
        }
        sqlx::query(
            "INSERT INTO snapshots (db, id, parent, size, created_at, name, pinned, stored_bytes, head_ref)
             VALUES ($1, 1, NULL, $2, $3, $4, 0, 0, NULL)",
        )
        .bind(dst)
        .bind(src.size as i64)
        .bind(now)
        .bind(format!("clone of {}@{}", src.db, src.id))
        .execute(&mut *tx)
        .await?;
        Self::insert_stack(&mut tx, dst, 1, &src.layers).await?;
        tx.commit().await?;
        self.snapshot(dst, 1).await
    }

    pub async fn set_pinned(&self, db: &str, id: i64, pinned: bool) -> Result<()> {
        let res = sqlx::query("UPDATE snapshots SET pinned = $1 WHERE db = $2 AND id = $3")
            .bind(pinned as i64)
            .bind(db)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            self.require_database(db).await?;
            return Err(LayerdError::UnknownSnapshot { db: db.to_string(), snapshot: id });
        }
        Ok(())
    }

    /// Forget snapshots (retention). Never the latest or a pinned one.
    pub async fn delete_snapshots(&self, db: &str, ids: &[i64]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for id in ids {
            let res = sqlx::query(
                "DELETE FROM snapshots WHERE db = $1 AND id = $2 AND pinned = 0
                 AND id < (SELECT MAX(id) FROM snapshots WHERE db = $3)",
            )
            .bind(db)
            .bind(*id)
            .bind(db)
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() > 0 {
                sqlx::query("DELETE FROM snapshot_layers WHERE db = $1 AND snapshot = $2").bind(db).bind(*id).execute(&mut *tx).await?;
                n += 1;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// GC phase 1: mark every layer no snapshot uses. Returns how many.
    pub async fn condemn_unreferenced(&self, now: i64) -> Result<u64> {
        let sql = format!("UPDATE layers SET condemned_at = $1 WHERE condemned_at IS NULL AND {}", schema::UNREFERENCED);
        Ok(sqlx::query(AssertSqlSafe(sql.clone())).bind(now).execute(&self.pool).await?.rows_affected())
    }

    /// GC phase 2 candidates: layers condemned before `cutoff` and still
    /// unused (each is then taken with [`Catalog::tombstone_condemned`]).
    pub async fn sweepable(&self, cutoff: i64) -> Result<Vec<LayerId>> {
        let sql = format!("SELECT id FROM layers WHERE condemned_at IS NOT NULL AND condemned_at <= $1 AND {}", schema::UNREFERENCED);
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(cutoff).fetch_all(&self.pool).await?;
        rows.iter().map(|r| layer_id(&r.try_get::<String, _>(0)?)).collect()
    }

    /// Every layer the metadata knows (condemned or not).
    pub async fn known_layers(&self) -> Result<HashSet<LayerId>> {
        let rows = sqlx::query("SELECT id FROM layers").fetch_all(&self.pool).await?;
        rows.iter().map(|r| layer_id(&r.try_get::<String, _>(0)?)).collect()
    }
}
