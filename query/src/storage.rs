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

    /// After a write's CHECKPOINT: wait until difffs sealed it; the new latest.
    pub async fn after_write(&self, db: &str) -> QueryResult<Option<i64>> {
        if let Some(fs) = &self.fs {
            if let Some(h) = fs.open_heads().into_iter().find(|h| h.head.db() == db) {
                h.settle().await;
            }
        }
        Ok(self.od.catalog().latest_snapshot_id(db).await?)
    }
}
