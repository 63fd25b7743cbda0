//! Garbage collection: retention (which snapshots to forget), then deletion
//! of the layer objects no snapshot needs.
//!
//! Deletion never bets on timing for writers: an object is deleted only under
//! a tombstone claim taken in the metadata (see `catalog/claims.rs`), which
//! no live seal, import or compaction can hold a claim against. The grace
//! period protects only *readers* that opened a snapshot before retention
//! dropped it (or before a compaction replaced its stack): a condemned layer
//! stays in the store for `grace` before it is deleted.

use crate::catalog::now_ms;
use crate::engine::Layerd;
use crate::error::Result;

/// What `gc` should keep and how long it waits before deleting.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Only this database's snapshots are subject to retention (objects are
    /// shared, so unreferenced objects are collected store-wide).
    pub db: Option<String>,
    /// Keep at least the newest N snapshots of each database.
    pub keep_last: Option<usize>,
    /// Keep snapshots younger than this.
    pub keep_within_ms: Option<i64>,
    /// A layer no snapshot uses any more is deleted only after it has been
    /// unreferenced this long: readers that opened a just-dropped snapshot
    /// keep reading it meanwhile. (Seals, imports and compactions in flight
    /// are protected by their claims, whatever the grace.)
    pub grace_ms: i64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { db: None, keep_last: None, keep_within_ms: None, grace_ms: 3_600_000 }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub snapshots_deleted: u64,
    pub layers_condemned: u64,
    pub layers_deleted: u64,
    pub orphans_deleted: u64,
}

impl Layerd {
    /// Retention, then collection of unreferenced layer objects.
    pub async fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let mut report = GcReport::default();
        let now = now_ms();
        if opts.keep_last.is_some() || opts.keep_within_ms.is_some() {
            report.snapshots_deleted = self.apply_retention(opts, now).await?;
        }
        // A gc that stopped between its tombstone and its delete left work.
        for id in self.catalog().tombstones().await? {
            self.store().delete_layer(&id).await?;
            self.catalog().drop_tombstone(&id).await?;
        }
        self.catalog().reap_expired_pins().await?;
        report.layers_condemned = self.catalog().condemn_unreferenced(now).await?;
        for id in self.catalog().sweepable(now - opts.grace_ms).await? {
            if self.catalog().tombstone_condemned(&id, now - opts.grace_ms, self.owner()).await? {
                self.store().delete_layer(&id).await?;
                self.catalog().drop_tombstone(&id).await?;
                report.layers_deleted += 1;
            }
        }
        // Objects no snapshot ever committed: a seal or import that crashed
        // after its put (its claim expired), or one still running (its claim
        // stands: left alone).
        self.catalog().reap_expired_claims().await?;
        let known = self.catalog().known_layers().await?;
        for obj in self.store().list_layers().await? {
            if !known.contains(&obj.id) && self.catalog().tombstone_orphan(&obj.id, self.owner()).await? {
                self.store().delete_layer(&obj.id).await?;
                self.catalog().drop_tombstone(&obj.id).await?;
                report.orphans_deleted += 1;
            }
        }
        Ok(report)
    }

    /// Forget the snapshots the options do not keep (never the latest or a
    /// pinned one). Returns how many.
    async fn apply_retention(&self, opts: &GcOptions, now: i64) -> Result<u64> {
        let dbs: Vec<String> = match &opts.db {
            Some(db) => {
                self.catalog().require_database(db).await?;
                vec![db.clone()]
            }
            None => self.catalog().list_databases().await?.into_iter().map(|d| d.name).collect(),
        };
        let mut deleted = 0;
        for db in dbs {
            let snaps = self.catalog().list_snapshots(&db).await?;
            let n = snaps.len();
            let doomed: Vec<i64> = snaps
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    let recent = opts.keep_last.is_some_and(|k| i + k >= n);
                    let young = opts.keep_within_ms.is_some_and(|w| s.created_at >= now - w);
                    !(s.pinned || recent || young || i + 1 == n)
                })
                .map(|(_, s)| s.id)
                .collect();
            deleted += self.catalog().delete_snapshots(&db, &doomed).await?;
        }
        Ok(deleted)
    }
}
