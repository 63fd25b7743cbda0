//! Keeping a writer lease (see `catalog/lease.rs`) while a head is open: a
//! task renews it well before it expires; a renewal that finds the lease
//! taken over marks the holder fenced (its seals fail from then on); the
//! lease is given up when the head is closed, so the next writer need not
//! wait for it to expire. A holder that has not renewed for most of the
//! lease's life (paused, cut off from the metadata store) must stop
//! acknowledging writes: [`LeaseKeeper::is_valid`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::catalog::{Catalog, WriterLease};
use crate::error::{LayerdError, Result};

/// How long a lease lasts without renewal: a writer that died is replaced
/// after at most this long.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// A lease not renewed for this long may be another's soon: stop writing.
const TRUST_FOR: Duration = Duration::from_secs(7);

pub struct LeaseKeeper {
    lease: WriterLease,
    fenced: AtomicBool,
    renewed: std::sync::Mutex<Instant>,
    catalog: Catalog,
}

impl LeaseKeeper {
    /// Hold `lease`, renewing it in the background (needs a tokio runtime).
    pub fn keep(catalog: Catalog, lease: WriterLease) -> Arc<Self> {
        let keeper = Arc::new(LeaseKeeper { lease, fenced: AtomicBool::new(false), renewed: std::sync::Mutex::new(Instant::now()), catalog });
        let weak: Weak<LeaseKeeper> = Arc::downgrade(&keeper);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let Some(k) = weak.upgrade() else { return };
                let asked = Instant::now();
                match k.catalog.renew_lease(&k.lease, LEASE_TTL.as_millis() as i64).await {
                    Ok(()) => *k.renewed.lock().unwrap_or_else(|p| p.into_inner()) = asked,
                    Err(LayerdError::Fenced { db }) => {
                        tracing::error!(db = %db, "writer lease taken over by another process: this writer is fenced");
                        k.fenced.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The metadata store is unreachable: try again; seals check the lease anyway.
                    Err(e) => tracing::warn!(db = %k.lease.db, error = %e, "renewing the writer lease failed"),
                }
            }
        });
        keeper
    }

    /// (owner, epoch) a commit must still hold; `Fenced` once it was lost.
    pub fn check(&self) -> Result<(String, i64)> {
        if self.fenced.load(Ordering::SeqCst) {
            return Err(LayerdError::Fenced { db: self.lease.db.clone() });
        }
        Ok((self.lease.owner.clone(), self.lease.epoch))
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// Whether this process may still acknowledge writes: not fenced, and
    /// renewed recently enough that no other process can have taken over.
    pub fn is_valid(&self) -> bool {
        !self.is_fenced() && self.renewed.lock().unwrap_or_else(|p| p.into_inner()).elapsed() < TRUST_FOR
    }

    pub fn lease(&self) -> &WriterLease {
        &self.lease
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        if self.is_fenced() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (catalog, lease) = (self.catalog.clone(), self.lease.clone());
            rt.spawn(async move {
                if let Err(e) = catalog.release_lease(&lease).await {
                    tracing::debug!(db = %lease.db, error = %e, "releasing the writer lease failed (it expires on its own)");
                }
            });
        }
    }
}
