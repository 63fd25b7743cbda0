//! What the engine needs to know about databases and snapshots: backed by
//! layerd's metadata, and (inside `openduck serve`) by the difffs mount whose
//! checkpoint seals a write must wait for.

use std::path::PathBuf;
use std::sync::Arc;

use difffs::DiffFs;
use layerd::Layerd;

use crate::error::{QueryError, QueryResult};

pub struct Storage {
    od: Arc<Layerd>,
    fs: Option<Arc<DiffFs>>,
    mountpoint: PathBuf,
}

impl Storage {
    /// `fs`: the mount served by this process (writes wait for its seals).
    pub fn new(od: Arc<Layerd>, fs: Option<Arc<DiffFs>>, mountpoint: PathBuf) -> Self {
        Storage { od, fs, mountpoint }
    }

    pub fn layerd(&self) -> &Arc<Layerd> {
        &self.od
    }

    pub fn snapshot_path(&self, db: &str, id: i64) -> PathBuf {
        self.mountpoint.join(db).join("snapshots").join(format!("{id}.duckdb"))
    }

    pub fn head_path(&self, db: &str) -> PathBuf {
        self.mountpoint.join(db).join("head.duckdb")
    }

    /// The snapshot a read runs on (one metadata query in the common case);
    /// unknown databases and snapshots are errors that say so.
    pub async fn resolve(&self, db: &str, snapshot: Option<i64>) -> QueryResult<i64> {
        layerd::config::validate_db_name(db)?;
        match snapshot {
            Some(id) => self.od.catalog().require_snapshot(db, id).await.map(|()| id).map_err(QueryError::from),
            None => self.od.catalog().latest_snapshot_id(db).await?.ok_or_else(|| QueryError::EmptyDatabase(db.to_string())),
        }
    }

    pub async fn require_database(&self, db: &str) -> QueryResult<()> {
        layerd::config::validate_db_name(db)?;
        Ok(self.od.catalog().require_database(db).await?)
    }

    /// The head of `db` if this process's mount holds it.
    fn head(&self, db: &str) -> Option<Arc<difffs::checkpoint::DbHead>> {
        self.fs.as_ref()?.open_heads().into_iter().find(|h| h.head.db() == db)
    }

    /// Open (and hold) the head of `db` in this process's mount, before a
    /// DuckDB opens the file: `false` when another process holds the
    /// database's writer lease. Blocking (call off the runtime).
    pub fn hold_head(&self, db: &str) -> QueryResult<bool> {
        let Some(fs) = &self.fs else { return Ok(true) };
        match fs.head(db) {
            Ok(_) => Ok(true),
            Err(difffs::error::FsError::Busy(_)) => Ok(false),
            Err(e) => Err(QueryError::Storage(format!("opening the head of '{db}': {e}"))),
        }
    }

    /// Whether this process may acknowledge writes to `db` now (its writer
    /// lease was renewed recently enough).
    pub fn lease_valid(&self, db: &str) -> bool {
        self.head(db).is_none_or(|h| h.head.lease_valid())
    }

    /// True when this process's head of `db` lost its writer lease.
    pub fn is_fenced(&self, db: &str) -> bool {
        self.head(db).is_some_and(|h| h.head.is_fenced())
    }

    /// The newest sealed snapshot of a database whose head this process holds.
    pub fn sealed_snapshot(&self, db: &str) -> Option<i64> {
        self.head(db)?.head.base_snapshot()
    }

    /// After a CHECKPOINT: wait until difffs sealed it.
    pub async fn settle(&self, db: &str) -> QueryResult<()> {
        match self.head(db) {
            Some(h) => h.settle().await.map_err(QueryError::SealFailed),
            None => Ok(()),
        }
    }

    /// Seal again a checkpoint whose seal failed (store or metadata outage).
    pub async fn retry_failed_seal(&self, db: &str) {
        if let Some(h) = self.head(db) {
            h.retry_failed_seal(&self.od, false).await;
        }
    }
}
