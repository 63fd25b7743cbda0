//! The writable head of one database as the mount serves it, and the rule
//! that turns DuckDB checkpoints into snapshots.
//!
//! DuckDB checkpoints by writing data blocks, `fdatasync`, then writing a 4 KiB
//! database header (in page 0) and `fdatasync` again (FACTS §1). So: the first
//! `fsync` after any write into page 0 marks a complete, consistent database.
//! At that moment the head is frozen (made durable, later writes go to a new
//! log segment) and the frozen cut is sealed in the background. A seal of the
//! next checkpoint waits for the previous one, so cuts are sealed in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use layerd::page::HEADER_PAGE_SIZE;
use layerd::{Head, Layerd, SnapshotInfo};
use tokio::sync::Mutex;

pub struct DbHead {
    pub head: Arc<Head>,
    header_dirty: AtomicBool,
    /// Set once DuckDB created the file (a head with no snapshot and no bytes
    /// does not exist yet, so DuckDB creates a fresh database in it).
    created: AtomicBool,
    seal_lock: Arc<Mutex<()>>,
}

impl DbHead {
    pub fn new(head: Head) -> Self {
        let exists = head.base_snapshot().is_some() || head.size() > 0;
        DbHead { head: Arc::new(head), header_dirty: AtomicBool::new(false), created: AtomicBool::new(exists), seal_lock: Arc::new(Mutex::new(())) }
    }

    pub fn exists(&self) -> bool {
        self.created.load(Ordering::SeqCst) || self.head.size() > 0
    }

    pub fn mark_created(&self) {
        self.created.store(true, Ordering::SeqCst);
    }

    pub async fn write(&self, offset: u64, data: &[u8]) -> layerd::Result<()> {
        self.head.write(offset, data).await?;
        if offset < HEADER_PAGE_SIZE {
            self.header_dirty.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    pub async fn truncate(&self, size: u64) -> layerd::Result<()> {
        self.head.truncate(size).await
    }

    /// `fsync` of the head file: durable, and a snapshot when it completes a
    /// checkpoint. Returns once the cut is durable; sealing goes on behind.
    pub async fn fsync(&self, od: &Arc<Layerd>) -> layerd::Result<()> {
        if !self.header_dirty.swap(false, Ordering::SeqCst) {
            return self.head.sync().await;
        }
        let guard = self.seal_lock.clone().lock_owned().await;
        let cut = match self.head.freeze().await {
            Ok(cut) => cut,
            Err(e) => {
                self.header_dirty.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        let (od, head) = (od.clone(), self.head.clone());
        tokio::spawn(async move {
            let _in_order = guard;
            match od.seal_cut(&head, cut, None).await {
                Ok(Some(s)) => tracing::info!(db = head.db(), snapshot = s.id, size = s.size, "checkpoint sealed"),
                Ok(None) => tracing::debug!(db = head.db(), "checkpoint without changes"),
                // The frozen pages stay in the head and go into the next seal.
                Err(e) => tracing::error!(db = head.db(), error = %e, "sealing a checkpoint failed"),
            }
        });
        Ok(())
    }

    /// Wait until every checkpoint seen so far is sealed.
    pub async fn settle(&self) {
        drop(self.seal_lock.lock().await);
    }

    /// An explicit seal (e.g. `openduck seal` through the daemon): every
    /// checkpoint is already a snapshot, so wait for the in-flight one and
    /// report the newest snapshot.
    pub async fn latest_checkpoint(&self, od: &Layerd) -> layerd::Result<Option<SnapshotInfo>> {
        self.settle().await;
        od.catalog().latest_snapshot(self.head.db()).await
    }
}
