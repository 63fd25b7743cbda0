//! The writable head of one database as the mount serves it, and the rule
//! that turns DuckDB checkpoints into snapshots.
//!
//! DuckDB checkpoints by writing data blocks, `fdatasync`, then writing a 4 KiB
//! database header (in page 0) and `fdatasync` again (FACTS §1). So: the first
//! `fsync` after any write into page 0 marks a complete, consistent database.
//! At that moment the head is frozen (made durable, later writes go to a new
//! log segment) and the frozen cut is sealed in the background. A seal of the
//! next checkpoint waits for the previous one, so cuts are sealed in order.
//!
//! A seal that fails (object store or metadata unreachable) loses nothing:
//! the cut's pages stay in the durable head. The failure is kept (and
//! reported by [`DbHead::settle`]); the cut is sealed again by
//! [`DbHead::retry_failed_seal`], or superseded by the next checkpoint's cut,
//! which holds every page since the same base.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use layerd::head::HeadCut;
use layerd::page::HEADER_PAGE_SIZE;
use layerd::{Head, Layerd, SnapshotInfo};
use tokio::sync::Mutex;

/// The newest cut whose seal failed, and why.
struct FailedSeal {
    cut: HeadCut,
    error: String,
    /// Failed attempts so far, and when to try again (backing off).
    attempts: u32,
    not_before: std::time::Instant,
}

pub struct DbHead {
    pub head: Arc<Head>,
    header_dirty: AtomicBool,
    /// Set once DuckDB created the file (a head with no snapshot and no bytes
    /// does not exist yet, so DuckDB creates a fresh database in it).
    created: AtomicBool,
    seal_lock: Arc<Mutex<()>>,
    failed: Arc<std::sync::Mutex<Option<FailedSeal>>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DbHead {
    pub fn new(head: Head) -> Self {
        let exists = head.base_snapshot().is_some() || head.size() > 0;
        DbHead { head: Arc::new(head), header_dirty: AtomicBool::new(false), created: AtomicBool::new(exists), seal_lock: Arc::new(Mutex::new(())), failed: Arc::default() }
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
        // This cut holds every page of a failed one (same base): it supersedes it.
        lock(&self.failed).take();
        let (od, head, failed) = (od.clone(), self.head.clone(), self.failed.clone());
        tokio::spawn(async move {
            let _in_order = guard;
            seal(&od, &head, cut, 0, &failed).await;
        });
        Ok(())
    }

    /// Seal the newest failed cut again (if any). Returns true when nothing
    /// is left unsealed.
    /// `now`: do not wait for the back-off.
    pub async fn retry_failed_seal(&self, od: &Arc<Layerd>, now: bool) -> bool {
        let _in_order = self.seal_lock.lock().await;
        let f = {
            let mut failed = lock(&self.failed);
            let due = match &*failed {
                None => return true,
                Some(f) => now || f.not_before <= std::time::Instant::now(),
            };
            if !due {
                return false;
            }
            failed.take()
        };
        let Some(f) = f else { return true };
        seal(od, &self.head, f.cut, f.attempts, &self.failed).await;
        lock(&self.failed).is_none()
    }

    /// Wait until every checkpoint seen so far is sealed; the error of the
    /// newest seal that failed (its pages are safe in the head and will be
    /// sealed by a retry or the next checkpoint).
    pub async fn settle(&self) -> Result<(), String> {
        drop(self.seal_lock.lock().await);
        match &*lock(&self.failed) {
            Some(f) => Err(f.error.clone()),
            None => Ok(()),
        }
    }

    /// An explicit seal (e.g. `openduck seal` through the daemon): every
    /// checkpoint is already a snapshot, so wait for the in-flight one (and
    /// retry a failed one) and report the newest snapshot.
    pub async fn latest_checkpoint(&self, od: &Arc<Layerd>) -> layerd::Result<Option<SnapshotInfo>> {
        if !self.retry_failed_seal(od, true).await {
            let error = self.settle().await.err().unwrap_or_default();
            return Err(layerd::LayerdError::Invalid(format!("sealing the last checkpoint failed (its data is safe in the head): {error}")));
        }
        od.catalog().latest_snapshot(self.head.db()).await
    }
}

/// Seal `cut`; on failure keep it for a retry (unless a newer cut came).
async fn seal(od: &Layerd, head: &Head, cut: HeadCut, attempts: u32, failed: &std::sync::Mutex<Option<FailedSeal>>) {
    match od.seal_cut(head, &cut, None).await {
        Ok(Some(s)) => tracing::info!(db = head.db(), snapshot = s.id, size = s.size, "checkpoint sealed"),
        Ok(None) => tracing::debug!(db = head.db(), "checkpoint without changes"),
        Err(e) => {
            // The frozen pages stay in the head: a retry or the next checkpoint seals them.
            tracing::error!(db = head.db(), error = %e, attempts = attempts + 1, "sealing a checkpoint failed; it will be retried");
            let backoff = std::time::Duration::from_millis(250u64 << attempts.min(6)).min(std::time::Duration::from_secs(10));
            let mut f = lock(failed);
            if f.is_none() {
                *f = Some(FailedSeal { cut, error: e.to_string(), attempts: attempts + 1, not_before: std::time::Instant::now() + backoff });
            }
        }
    }
}
