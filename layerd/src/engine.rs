//! `Layerd`: one handle on a data dir, its metadata and its object store, with
//! every storage operation: databases, heads, seal, compact, clone, import
//! and export (gc is in `gc.rs`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use crate::catalog::{now_ms, Catalog, DatabaseInfo, NewSnapshot, SnapshotInfo};
use crate::config::{validate_db_name, LayerdConfig};
use crate::error::{IoContext, LayerdError, Result};
use crate::head::{Head, HeadCut};
use crate::layer::{LayerBuilder, LayerId, LayerKind, PageLoc};
use crate::page::{page_count, page_len, page_start, PageNo};
use crate::seal::{new_layer, put_claimed, Candidate, DeltaBuilder, SealStep};
use crate::snapshot::SnapshotView;
use crate::store::{LayerStore, StoreConfig};
use crate::writer_lease::{LeaseKeeper, LEASE_TTL};

pub struct Layerd {
    cfg: LayerdConfig,
    data_dir: PathBuf,
    catalog: Catalog,
    store: Arc<LayerStore>,
    /// Who this data dir is, as a writer-lease owner (stable across restarts).
    owner: String,
    /// The layers this process's open snapshot views read.
    pins: Arc<crate::pins::ViewPins>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CompactReport {
    pub db: String,
    pub snapshot: i64,
    pub layers_before: usize,
    pub image_bytes: u64,
}

/// Progress of a long copy: bytes done, bytes total.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

impl Layerd {
    pub async fn open(cfg: LayerdConfig) -> Result<Self> {
        let (data_dir, metadata_url, store_url) = cfg.resolve()?;
        let catalog = Catalog::connect(&metadata_url).await?.with_claim_ttl_ms(cfg.claim_ttl_ms);
        let store = LayerStore::open(StoreConfig {
            url: store_url,
            page_cache_bytes: cfg.page_cache_bytes,
            disk_cache: Some((data_dir.join("cache"), cfg.disk_cache_bytes)),
        })?;
        crate::binding::check_or_bind(&catalog, &store).await?;
        let owner = lease_owner(&data_dir)?;
        let holder = format!("{owner}/{}", &blake3::hash(format!("{:?}-{}", std::time::SystemTime::now(), std::process::id()).as_bytes()).to_hex()[..8]);
        let pins = crate::pins::ViewPins::start(catalog.clone(), holder);
        Ok(Layerd { cfg, data_dir, catalog, store: Arc::new(store), owner, pins })
    }

    /// This data dir's name as a writer-lease owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &Arc<LayerStore> {
        &self.store
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn head_dir(&self, db: &str) -> PathBuf {
        self.data_dir.join("heads").join(db)
    }

    pub async fn create_database(&self, name: &str) -> Result<DatabaseInfo> {
        validate_db_name(name)?;
        self.catalog.create_database(name).await
    }

    pub async fn list_databases(&self) -> Result<Vec<DatabaseInfo>> {
        self.catalog.list_databases().await
    }

    pub async fn snapshots(&self, db: &str) -> Result<Vec<SnapshotInfo>> {
        self.catalog.list_snapshots(db).await
    }

    /// A snapshot by id, or the latest one.
    pub async fn snapshot_info(&self, db: &str, id: Option<i64>) -> Result<SnapshotInfo> {
        match id {
            Some(id) => self.catalog.snapshot(db, id).await,
            None => self.catalog.latest_snapshot(db).await?.ok_or_else(|| LayerdError::NoSnapshot(db.to_string())),
        }
    }

    pub async fn open_snapshot(&self, db: &str, id: Option<i64>) -> Result<SnapshotView> {
        let info = self.snapshot_info(db, id).await?;
        self.view(info).await
    }

    /// Open a view of `info`, its layers pinned against gc while it lives
    /// (see `pins.rs`). If the snapshot lost that stack before the pin was
    /// visible (dropped, or compacted), the view opens on its current stack,
    /// or the snapshot is reported gone.
    pub async fn view(&self, mut info: SnapshotInfo) -> Result<SnapshotView> {
        for _ in 0..3 {
            let pin = self.pins.pin(&info.layers).await?;
            let now = self.catalog.snapshot(&info.db, info.id).await?;
            if now.layers == info.layers {
                return Ok(SnapshotView::open(self.store.clone(), info).await?.pinned(pin));
            }
            info = now;
        }
        Err(LayerdError::Invalid(format!("snapshot {} of '{}' keeps changing its layers (compactions); retry", info.id, info.db)))
    }

    /// Refresh this process's pins now (they are refreshed every
    /// [`crate::pins::PIN_REFRESH`] anyway).
    pub async fn refresh_pins(&self) -> Result<()> {
        self.pins.refresh().await
    }

    /// Open the writable head of `db`: one process per data dir (a file
    /// lock), one writer per database among every process sharing the
    /// metadata store (a lease, renewed while the head is open). A local
    /// head left behind by a writer that lost its lease (another process
    /// committed since) is moved aside to `heads/<db>.stale-<ms>`: its
    /// unsealed writes can no longer be committed.
    pub async fn open_head(&self, db: &str) -> Result<Head> {
        for _ in 0..3 {
            let latest = self.catalog.latest_snapshot(db).await?;
            let head = match Head::open(self.head_dir(db), db, latest.clone(), |info| self.view(info)).await {
                Ok(h) => h,
                Err(LayerdError::Conflict { expected, found, .. }) => {
                    // Only the lease holder may set a stale head aside.
                    let lease = self.catalog.acquire_lease(db, &self.owner, LEASE_TTL.as_millis() as i64).await?;
                    let aside = self.data_dir.join("heads").join(format!("{db}.stale-{}", now_ms()));
                    tracing::error!(db, ?expected, ?found, aside = %aside.display(), "the local head is based on an older snapshot than the latest (another writer committed): moving it aside");
                    std::fs::rename(self.head_dir(db), &aside).at(&aside)?;
                    drop(lease);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let lease = self.catalog.acquire_lease(db, &self.owner, LEASE_TTL.as_millis() as i64).await?;
            // A writer that committed just before the takeover: start over from its snapshot.
            let now_latest = self.catalog.latest_snapshot_id(db).await?;
            if now_latest != latest.as_ref().map(|s| s.id) {
                continue;
            }
            head.hold_lease(LeaseKeeper::keep(self.catalog.clone(), lease));
            return Ok(head);
        }
        Err(LayerdError::Conflict { db: db.to_string(), expected: None, found: None })
    }

    /// Seal the head into a new snapshot holding only the changed pages.
    /// Returns `None` when nothing changed since the base snapshot.
    pub async fn seal(&self, head: &Head) -> Result<Option<SnapshotInfo>> {
        self.seal_with(head, None).await
    }

    #[doc(hidden)]
    pub async fn seal_with(&self, head: &Head, crash: Option<SealStep>) -> Result<Option<SnapshotInfo>> {
        let cut = head.freeze().await?;
        self.seal_cut(head, &cut, crash).await
    }

    /// Seal a cut taken earlier with [`Head::freeze`] (e.g. at the exact moment
    /// a DuckDB checkpoint became durable). Cuts of one head must be sealed in
    /// the order they were taken, each after the previous one finished.
    /// A cut whose seal failed can be sealed again (until a newer cut of the
    /// same head is sealed): if the failed attempt had in fact committed
    /// (e.g. the answer of the metadata store was lost), the snapshot it
    /// committed is adopted instead of conflicting.
    pub async fn seal_cut(&self, head: &Head, cut: &HeadCut, crash: Option<SealStep>) -> Result<Option<SnapshotInfo>> {
        head.lease()?; // a fenced writer stops here
        // Only a retry can find its own commit (one metadata query saved on
        // every first seal).
        if cut.retried() {
            if let Some(adopted) = self.adopt_committed(head, cut).await? {
                return Ok(Some(adopted));
            }
        }
        let base = cut.base.clone();
        let n = page_count(cut.size);
        let mut delta = DeltaBuilder::new(&self.store, &self.catalog, &self.owner);
        // Pages truncated away and not rewritten must not show through from below.
        if let Some(b) = &base {
            let written: HashSet<PageNo> = cut.pages.iter().map(|(p, _)| *p).collect();
            for (p, r) in b.all_refs() {
                if *p >= cut.base_limit && *p < n && !written.contains(p) && r.loc != PageLoc::Zero {
                    delta.add_zero(*p);
                }
            }
        }
        let mut pages: Vec<_> = cut.pages.iter().filter(|(p, _)| *p < n).copied().collect();
        pages.sort_by_key(|(p, _)| *p);
        let candidates = pages.iter().map(|(p, lp)| Candidate { page: *p, hash: Some(lp.hash) }).collect();
        let unchanged = |p: PageNo, h: &crate::page::PageHash| {
            base.as_ref().is_some_and(|b| p < cut.base_limit && b.raw_page_ref(p).is_some_and(|r| r.hash == *h))
        };
        let logged: HashMap<PageNo, _> = pages.iter().copied().collect();
        let read = |p: PageNo| cut.read_page(&logged[&p]);
        delta.add_pages(candidates, unchanged, read, |_| {}).await?;
        let (new_layers, _) = delta.finish().await?;
        let base_size = base.as_ref().map(|b| b.size());
        if new_layers.is_empty() && (base_size == Some(cut.size) || (base.is_none() && cut.size == 0)) {
            return Ok(None);
        }
        if crash == Some(SealStep::AfterObjects) {
            return Err(LayerdError::SimulatedCrash("seal after objects"));
        }
        // The base's stack as the metadata has it now: a compaction may have
        // replaced the one the head's view was opened with (same pages, other
        // layers), and gc may since have collected the replaced layers.
        let mut stack = match &base {
            Some(b) => self.catalog.snapshot(head.db(), b.id()).await?.layers,
            None => Vec::new(),
        };
        stack.extend(new_layers.iter().map(|l| l.id));
        let stack = self.prune_stack(stack, cut.size).await?;
        let info = self
            .catalog
            .commit_snapshot(NewSnapshot {
                db: head.db().to_string(),
                parent: base.as_ref().map(|b| b.id()),
                size: cut.size,
                layers: stack,
                new_layers,
                head_ref: Some(cut.head_ref().to_string()),
                create_database: false,
                lease: head.lease()?,
            })
            .await?;
        tracing::info!(db = head.db(), snapshot = info.id, size = info.size, stored = info.stored_bytes, "sealed");
        if crash == Some(SealStep::AfterCommit) {
            return Err(LayerdError::SimulatedCrash("seal after commit"));
        }
        let view = Arc::new(self.view(info.clone()).await?);
        head.rebase(cut, view).await?;
        if info.layers.len() > self.cfg.max_stack_depth {
            self.compact(&info.db, Some(info.id)).await?;
        }
        Ok(Some(info))
    }

    /// If the latest snapshot was committed from exactly this cut (an earlier
    /// attempt committed, then failed before it could rebase the head),
    /// rebase onto it and return it.
    async fn adopt_committed(&self, head: &Head, cut: &HeadCut) -> Result<Option<SnapshotInfo>> {
        let Some(latest) = self.catalog.latest_snapshot(head.db()).await? else { return Ok(None) };
        if latest.head_ref.as_deref() != Some(cut.head_ref()) || cut.base.as_ref().map(|b| b.id()) == Some(latest.id) {
            return Ok(None);
        }
        tracing::info!(db = head.db(), snapshot = latest.id, "adopting a snapshot an earlier seal attempt committed");
        let view = Arc::new(self.view(latest.clone()).await?);
        head.rebase(cut, view).await?;
        Ok(Some(latest))
    }

    /// Drop the layers of a stack that no longer provide any page within the
    /// file (every page they hold is overwritten above them): readers skip
    /// them and gc can reclaim them once older snapshots go.
    async fn prune_stack(&self, stack: Vec<LayerId>, size: u64) -> Result<Vec<LayerId>> {
        let n = page_count(size);
        let mut winner: HashMap<PageNo, usize> = HashMap::new();
        for (i, id) in stack.iter().enumerate() {
            let ix = self.store.index(id).await?;
            winner.extend(ix.pages.keys().filter(|p| **p < n).map(|p| (*p, i)));
        }
        let used: HashSet<usize> = winner.into_values().collect();
        Ok(stack.into_iter().enumerate().filter(|(i, _)| used.contains(i)).map(|(_, id)| id).collect())
    }

    /// Merge a snapshot's layer stack into one image layer (an index pointing
    /// at the existing page bytes; nothing is copied). Readers of this or any
    /// other snapshot see the same bytes before and after.
    pub async fn compact(&self, db: &str, id: Option<i64>) -> Result<Option<CompactReport>> {
        let info = self.snapshot_info(db, id).await?;
        if info.layers.len() <= 1 {
            return Ok(None);
        }
        let view = SnapshotView::open(self.store.clone(), info.clone()).await?;
        let mut b = LayerBuilder::new(LayerKind::Image);
        for (p, r) in view.stored_pages() {
            if let PageLoc::Stored { layer, offset, len } = r.loc {
                b.add_ref(p, r.hash, layer, offset, len);
            }
        }
        let enc = put_claimed(&self.store, &self.catalog, &self.owner, &b, &[]).await?;
        self.catalog.replace_stack(db, info.id, &info.layers, new_layer(&enc)).await?;
        tracing::info!(db, snapshot = info.id, layers = info.layers.len(), "compacted");
        Ok(Some(CompactReport { db: db.to_string(), snapshot: info.id, layers_before: info.layers.len(), image_bytes: enc.bytes.len() as u64 }))
    }

    /// A new database starting from `src`'s snapshot (latest by default). Only
    /// metadata is written; both databases share the layers.
    pub async fn clone_database(&self, src: &str, dst: &str, snapshot: Option<i64>) -> Result<SnapshotInfo> {
        validate_db_name(dst)?;
        let info = self.snapshot_info(src, snapshot).await?;
        self.catalog.clone_database(&info, dst).await
    }

    /// Import a plain DuckDB file as a new database with one snapshot.
    pub async fn import(&self, db: &str, path: &Path, progress: Progress<'_>) -> Result<SnapshotInfo> {
        validate_db_name(db)?;
        if self.catalog.list_databases().await?.iter().any(|d| d.name == db) {
            return Err(LayerdError::DatabaseExists(db.to_string()));
        }
        let file = std::fs::File::open(path).at(path)?;
        let size = file.metadata().at(path)?.len();
        let n = page_count(size);
        let read = |p: PageNo| -> Result<Vec<u8>> {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; page_len(p)];
            let want = (size - page_start(p)).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..want], page_start(p)).at(path)?;
            Ok(buf)
        };
        let mut delta = DeltaBuilder::new(&self.store, &self.catalog, &self.owner);
        let candidates = (0..n).map(|page| Candidate { page, hash: None }).collect();
        let report = |done: usize| progress((done as u64 * page_len(1) as u64).min(size), size);
        delta.add_pages(candidates, |_, _| false, read, report).await?;
        let (new_layers, _) = delta.finish().await?;
        let info = self
            .catalog
            .commit_snapshot(NewSnapshot {
                db: db.to_string(),
                parent: None,
                size,
                layers: new_layers.iter().map(|l| l.id).collect(),
                new_layers,
                head_ref: None,
                create_database: true,
                lease: None,
            })
            .await?;
        tracing::info!(db, snapshot = info.id, size, stored = info.stored_bytes, "imported");
        Ok(info)
    }

    /// Write a snapshot (latest by default) to a plain file, byte-identical to
    /// the database file it captured. The file appears only when complete.
    pub async fn export(&self, db: &str, id: Option<i64>, out: &Path, progress: Progress<'_>) -> Result<SnapshotInfo> {
        use std::os::unix::fs::FileExt;
        let view = self.open_snapshot(db, id).await?;
        let size = view.size();
        let tmp = out.with_extension("partial");
        let file = std::fs::File::create(&tmp).at(&tmp)?;
        let view_ref = &view;
        let mut reads = futures::stream::iter(0..page_count(size))
            .map(|p| async move { view_ref.read_page(p).await.map(|b| (p, b)) })
            .buffered(8);
        let mut done = 0;
        while let Some((p, bytes)) = reads.try_next().await? {
            let len = (size - page_start(p)).min(bytes.len() as u64) as usize;
            file.write_all_at(&bytes[..len], page_start(p)).at(&tmp)?;
            done += len as u64;
            progress(done, size);
        }
        file.set_len(size).at(&tmp)?;
        file.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, out).at(out)?;
        Ok(view.info.clone())
    }

    /// Pin or unpin a snapshot (pinned snapshots survive any retention).
    pub async fn pin(&self, db: &str, id: i64, pinned: bool) -> Result<()> {
        self.catalog.set_pinned(db, id, pinned).await
    }
}

/// The writer-lease owner name of a data dir: host, path and a random id
/// made once (`<data dir>/owner`), so a restarted server takes its own
/// lease back at once while any other process waits for it to expire.
fn lease_owner(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("owner");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_string());
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let seed = format!("{:?}-{}-{}", std::time::SystemTime::now(), std::process::id(), data_dir.display());
    let id = &blake3::hash(seed.as_bytes()).to_hex()[..12];
    let owner = format!("{}:{}#{id}", host.trim(), data_dir.display());
    let tmp = data_dir.join("owner.tmp");
    std::fs::write(&tmp, &owner).at(&tmp)?;
    std::fs::rename(&tmp, &path).at(&path)?;
    Ok(owner)
}
