//! The filesystem's logic, free of FUSE types so it can be tested without a
//! kernel mount. `fuse.rs` is a thin adapter over it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use layerd::{Layerd, LayerdError, SnapshotInfo, SnapshotView};
use lru::LruCache;
use std::num::NonZeroUsize;
use tokio::runtime::Handle as Runtime;

use crate::checkpoint::DbHead;
use crate::error::{FsError, FsResult};
use crate::hydrate::Hydrator;
use crate::namespace::{parse_snapshot_file_name, snapshot_file_name, Namespace, Node, HEAD_FILE, LATEST_FILE, SNAPSHOTS_DIR};

/// Snapshot metadata and page maps kept for snapshots not open right now.
const CACHED_INFOS: usize = 4096;
const CACHED_VIEWS: usize = 32;

/// Immutable things are cached by the kernel for long; changing ones briefly.
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(3600);
pub const MUTABLE_TTL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

#[derive(Clone, Debug)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub mtime: SystemTime,
    pub ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct DirEntry {
    pub ino: u64,
    pub kind: Kind,
    pub name: String,
}

/// An open file: what `open`/`create` return.
#[derive(Clone, Debug)]
pub struct Opened {
    pub fh: u64,
    /// The content can never change: let the kernel keep its page cache.
    pub keep_cache: bool,
    /// A complete local file the kernel may serve directly (passthrough):
    /// a hydrated snapshot, or the side file itself.
    pub backing: Option<Arc<File>>,
}

/// Read and write requests on side files that the daemon served itself:
/// with kernel passthrough they go straight to the local file and never
/// reach the daemon, so these stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SideIo {
    pub reads: u64,
    pub writes: u64,
}

#[derive(Clone)]
enum OpenFile {
    Head(Arc<DbHead>),
    Snapshot(Arc<SnapshotView>),
    Side(Arc<File>, PathBuf),
}

/// Runs a DuckDB `CHECKPOINT` on the writer of a database (set by a server
/// that runs the writer in this process), so that `openduck seal` through
/// the control socket seals commits that are still only in the WAL.
pub type CheckpointHook = Arc<dyn Fn(String) -> CheckpointFuture + Send + Sync>;
pub type CheckpointFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

pub struct DiffFs {
    checkpoint_hook: Mutex<Option<CheckpointHook>>,
    od: Arc<Layerd>,
    rt: Runtime,
    ns: Namespace,
    heads: Mutex<HashMap<String, Arc<DbHead>>>,
    /// Bounded caches: memory does not grow with every snapshot ever opened
    /// (an open file keeps its own view).
    infos: Mutex<LruCache<(String, i64), SnapshotInfo>>,
    views: Mutex<LruCache<(String, i64), Arc<SnapshotView>>>,
    files: Mutex<HashMap<u64, OpenFile>>,
    /// Side files whose directory entry is durable (synced since their
    /// directory last changed): their fsync need not sync the directory.
    durable_names: Mutex<std::collections::HashSet<PathBuf>>,
    next_fh: AtomicU64,
    mounted_at: SystemTime,
    hydrated: Arc<Hydrator>,
    side_reads: AtomicU64,
    side_writes: AtomicU64,
    /// Whether the kernel agreed to FUSE passthrough (set by the adapter).
    kernel_passthrough: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn wants_write(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn name_str(name: &OsStr) -> FsResult<&str> {
    name.to_str().ok_or(FsError::NotFound)
}

impl DiffFs {
    /// `hydrate_budget`: bytes of local snapshot copies for passthrough (0: off).
    pub fn new(od: Arc<Layerd>, rt: Runtime, hydrate_budget: u64) -> Self {
        let od_dir = od.data_dir().to_path_buf();
        DiffFs {
            checkpoint_hook: Mutex::default(),
            od,
            rt,
            ns: Namespace::default(),
            heads: Mutex::default(),
            infos: Mutex::new(LruCache::new(NonZeroUsize::new(CACHED_INFOS).expect("non-zero"))),
            views: Mutex::new(LruCache::new(NonZeroUsize::new(CACHED_VIEWS).expect("non-zero"))),
            files: Mutex::default(),
            durable_names: Mutex::default(),
            next_fh: AtomicU64::new(1),
            mounted_at: SystemTime::now(),
            hydrated: Arc::new(Hydrator::new(od_dir.join("hydrated"), hydrate_budget)),
            side_reads: AtomicU64::new(0),
            side_writes: AtomicU64::new(0),
            kernel_passthrough: AtomicBool::new(false),
        }
    }

    /// Side-file reads and writes the daemon served (not the kernel).
    pub fn side_io_served(&self) -> SideIo {
        SideIo { reads: self.side_reads.load(Ordering::Relaxed), writes: self.side_writes.load(Ordering::Relaxed) }
    }

    /// Called by the FUSE adapter once the kernel has answered `init`.
    pub fn set_kernel_passthrough(&self, on: bool) {
        self.kernel_passthrough.store(on, Ordering::Relaxed);
    }

    /// Whether the mounted session may serve files by kernel passthrough.
    pub fn kernel_passthrough(&self) -> bool {
        self.kernel_passthrough.load(Ordering::Relaxed)
    }

    pub fn layerd(&self) -> &Arc<Layerd> {
        &self.od
    }

    pub fn set_checkpoint_hook(&self, hook: CheckpointHook) {
        *lock(&self.checkpoint_hook) = Some(hook);
    }

    pub fn checkpoint_hook(&self) -> Option<CheckpointHook> {
        lock(&self.checkpoint_hook).clone()
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn node(&self, ino: u64) -> FsResult<Node> {
        self.ns.node(ino).ok_or(FsError::NotFound)
    }

    fn side_dir(&self, db: &str) -> PathBuf {
        self.od.data_dir().join("heads").join(db).join("side")
    }

    /// Where a side file of `db` (e.g. DuckDB's WAL) is kept.
    pub fn side_file(&self, db: &str, name: &str) -> PathBuf {
        self.side_dir(db).join(name)
    }

    /// Rebuilt from its components: a side path the namespace moved on a
    /// rename may end in a separator (`x.wal/`), which the local filesystem
    /// answers with ENOTDIR for a file.
    fn side_path(&self, db: &str, rel: &Path) -> PathBuf {
        let mut p = self.side_dir(db);
        p.extend(rel.components());
        p
    }

    /// The head of `db`, opened on first use and held while mounted (or
    /// until another process takes its writer lease over).
    pub fn head(&self, db: &str) -> FsResult<Arc<DbHead>> {
        {
            let mut heads = lock(&self.heads);
            match heads.get(db) {
                Some(h) if !h.head.is_fenced() => return Ok(h.clone()),
                Some(_) => {
                    heads.remove(db);
                }
                None => {}
            }
        }
        let head = self.block_on(self.od.open_head(db)).map_err(|e| match e {
            LayerdError::HeadLocked { .. } | LayerdError::LeaseHeld { .. } => FsError::Busy(db.to_string()),
            e => FsError::Storage(e),
        })?;
        std::fs::create_dir_all(self.side_dir(db))?;
        let h = Arc::new(DbHead::new(head));
        Ok(lock(&self.heads).entry(db.to_string()).or_insert(h).clone())
    }

    /// Every open head (for shutdown and explicit seals).
    pub fn open_heads(&self) -> Vec<Arc<DbHead>> {
        lock(&self.heads).values().cloned().collect()
    }

    fn snapshot_info(&self, db: &str, id: i64) -> FsResult<SnapshotInfo> {
        let key = (db.to_string(), id);
        if let Some(i) = lock(&self.infos).get(&key) {
            return Ok(i.clone());
        }
        let info = self.block_on(self.od.catalog().snapshot(db, id))?;
        lock(&self.infos).put(key, info.clone());
        Ok(info)
    }

    fn view(&self, db: &str, id: i64) -> FsResult<Arc<SnapshotView>> {
        let key = (db.to_string(), id);
        if let Some(v) = lock(&self.views).get(&key) {
            return Ok(v.clone());
        }
        let info = self.snapshot_info(db, id)?;
        let v = Arc::new(self.block_on(self.od.view(info))?);
        let mut views = lock(&self.views);
        if let Some(raced) = views.get(&key) {
            return Ok(raced.clone());
        }
        views.put(key, v.clone());
        Ok(v)
    }

    fn latest(&self, db: &str) -> FsResult<Option<i64>> {
        Ok(self.block_on(self.od.catalog().latest_snapshot(db))?.map(|s| s.id))
    }

    fn dir_attr(&self, ino: u64, ttl: Duration) -> Attr {
        Attr { ino, kind: Kind::Dir, size: 0, perm: 0o755, mtime: self.mounted_at, ttl }
    }

    fn side_attr(&self, ino: u64, path: &Path) -> FsResult<Attr> {
        let m = std::fs::symlink_metadata(path).map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { FsError::NotFound } else { e.into() })?;
        let kind = if m.is_dir() { Kind::Dir } else { Kind::File };
        Ok(Attr { ino, kind, size: m.len(), perm: (m.mode() & 0o7777) as u16, mtime: m.modified().unwrap_or(self.mounted_at), ttl: MUTABLE_TTL })
    }

    fn attr_of(&self, ino: u64, node: &Node) -> FsResult<Attr> {
        match node {
            Node::Root | Node::Db(_) | Node::Snapshots(_) => Ok(self.dir_attr(ino, MUTABLE_TTL)),
            Node::Snapshot(db, id) => {
                let info = self.snapshot_info(db, *id)?;
                Ok(Attr { ino, kind: Kind::File, size: info.size, perm: 0o444, mtime: ms_to_time(info.created_at), ttl: IMMUTABLE_TTL })
            }
            Node::Latest(db) => {
                let id = self.latest(db)?.ok_or(FsError::NotFound)?;
                let target = format!("{SNAPSHOTS_DIR}/{}", snapshot_file_name(id));
                Ok(Attr { ino, kind: Kind::Symlink, size: target.len() as u64, perm: 0o777, mtime: self.mounted_at, ttl: MUTABLE_TTL })
            }
            Node::Head(db) => {
                let h = self.head(db)?;
                if !h.exists() {
                    return Err(FsError::NotFound);
                }
                Ok(Attr { ino, kind: Kind::File, size: h.head.size(), perm: 0o644, mtime: SystemTime::now(), ttl: MUTABLE_TTL })
            }
            Node::Side(db, rel) => self.side_attr(ino, &self.side_path(db, rel)),
        }
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let node = self.node(ino)?;
        self.attr_of(ino, &node)
    }

    fn child(&self, parent: &Node, name: &str) -> FsResult<Node> {
        Ok(match parent {
            Node::Root => {
                self.block_on(self.od.catalog().require_database(name))?;
                Node::Db(name.to_string())
            }
            Node::Db(db) => match name {
                SNAPSHOTS_DIR => Node::Snapshots(db.clone()),
                LATEST_FILE => Node::Latest(db.clone()),
                HEAD_FILE => Node::Head(db.clone()),
                _ => Node::Side(db.clone(), PathBuf::from(name)),
            },
            Node::Snapshots(db) => Node::Snapshot(db.clone(), parse_snapshot_file_name(name).ok_or(FsError::NotFound)?),
            Node::Side(db, rel) => Node::Side(db.clone(), rel.join(name)),
            Node::Snapshot(..) | Node::Latest(_) | Node::Head(_) => return Err(FsError::NotDir),
        })
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<Attr> {
        let parent = self.node(parent)?;
        let node = self.child(&parent, name_str(name)?)?;
        // Check existence before handing out an inode.
        let probe = self.attr_of(0, &node)?;
        Ok(Attr { ino: self.ns.ino(&node), ..probe })
    }

    pub fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let node = self.node(ino)?;
        let mut out = Vec::new();
        let mut push = |node: Node, kind: Kind, name: String| out.push(DirEntry { ino: self.ns.ino(&node), kind, name });
        match &node {
            Node::Root => {
                for d in self.block_on(self.od.list_databases())? {
                    push(Node::Db(d.name.clone()), Kind::Dir, d.name);
                }
            }
            Node::Db(db) => {
                push(Node::Snapshots(db.clone()), Kind::Dir, SNAPSHOTS_DIR.into());
                if self.latest(db)?.is_some() {
                    push(Node::Latest(db.clone()), Kind::Symlink, LATEST_FILE.into());
                }
                if self.head(db)?.exists() {
                    push(Node::Head(db.clone()), Kind::File, HEAD_FILE.into());
                }
                self.side_entries(db, Path::new(""), &mut push)?;
            }
            Node::Snapshots(db) => {
                for s in self.block_on(self.od.snapshots(db))? {
                    push(Node::Snapshot(db.clone(), s.id), Kind::File, snapshot_file_name(s.id));
                }
            }
            Node::Side(db, rel) => self.side_entries(db, rel, &mut push)?,
            _ => return Err(FsError::NotDir),
        }
        Ok(out)
    }

    fn side_entries(&self, db: &str, rel: &Path, push: &mut impl FnMut(Node, Kind, String)) -> FsResult<()> {
        let dir = self.side_path(db, rel);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = if e.file_type()?.is_dir() { Kind::Dir } else { Kind::File };
            push(Node::Side(db.to_string(), rel.join(&name)), kind, name);
        }
        Ok(())
    }

    pub fn readlink(&self, ino: u64) -> FsResult<String> {
        match self.node(ino)? {
            Node::Latest(db) => {
                let id = self.latest(&db)?.ok_or(FsError::NotFound)?;
                Ok(format!("{SNAPSHOTS_DIR}/{}", snapshot_file_name(id)))
            }
            _ => Err(FsError::NotPermitted("not a symlink")),
        }
    }

    fn register(&self, f: OpenFile) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(fh, f);
        fh
    }

    /// Open a side file with the access DuckDB asked for (plus read, for the
    /// daemon's own reads). The same file is the passthrough backing.
    fn open_side(&self, db: &str, rel: &Path, flags: i32, create: bool) -> FsResult<(u64, Arc<File>)> {
        let path = self.side_path(db, rel);
        if create {
            std::fs::create_dir_all(self.side_dir(db))?;
        }
        let mut o = OpenOptions::new();
        o.read(true).write(wants_write(flags)).truncate(flags & libc::O_TRUNC != 0);
        if create {
            if flags & libc::O_EXCL != 0 {
                o.create_new(true);
            } else {
                o.create(true);
            }
            o.write(true).mode(0o644);
        }
        let f = Arc::new(o.open(&path).map_err(|e| if e.kind() == std::io::ErrorKind::AlreadyExists { FsError::Exists } else { e.into() })?);
        Ok((self.register(OpenFile::Side(f.clone(), path)), f))
    }

    pub fn open(&self, ino: u64, flags: i32) -> FsResult<Opened> {
        match self.node(ino)? {
            Node::Snapshot(db, id) => {
                if wants_write(flags) {
                    return Err(FsError::ReadOnly);
                }
                let v = self.view(&db, id)?;
                let backing = self.hydrated.ready(&db, id).map(Arc::new);
                if backing.is_none() {
                    self.hydrated.request(&self.od, &self.rt, &db, id);
                }
                Ok(Opened { fh: self.register(OpenFile::Snapshot(v)), keep_cache: true, backing })
            }
            Node::Head(db) => {
                let h = self.head(&db)?;
                if flags & libc::O_TRUNC != 0 && wants_write(flags) {
                    self.block_on(h.truncate(0))?;
                }
                Ok(Opened { fh: self.register(OpenFile::Head(h)), keep_cache: false, backing: None })
            }
            Node::Side(db, rel) => {
                let (fh, f) = self.open_side(&db, &rel, flags, false)?;
                Ok(Opened { fh, keep_cache: false, backing: Some(f) })
            }
            Node::Latest(_) => Err(FsError::NotPermitted("open the link's target")),
            Node::Root | Node::Db(_) | Node::Snapshots(_) => Err(FsError::IsDir),
        }
    }

    pub fn create(&self, parent: u64, name: &OsStr, flags: i32) -> FsResult<(Attr, Opened)> {
        lock(&self.durable_names).clear();
        let parent = self.node(parent)?;
        let node = self.child(&parent, name_str(name)?)?;
        let (fh, backing) = match &node {
            Node::Head(db) => {
                let h = self.head(db)?;
                if h.exists() && flags & libc::O_EXCL != 0 {
                    return Err(FsError::Exists);
                }
                if flags & libc::O_TRUNC != 0 {
                    self.block_on(h.truncate(0))?;
                }
                h.mark_created();
                (self.register(OpenFile::Head(h)), None)
            }
            Node::Side(db, rel) => {
                let (fh, f) = self.open_side(db, rel, flags, true)?;
                (fh, Some(f))
            }
            Node::Snapshot(..) | Node::Snapshots(_) | Node::Latest(_) => return Err(FsError::ReadOnly),
            Node::Root | Node::Db(_) => return Err(FsError::NotPermitted("use mkdir to create a database")),
        };
        let ino = self.ns.ino(&node);
        let attr = match self.attr_of(ino, &node) {
            Ok(a) => a,
            Err(e) => {
                self.release(fh);
                return Err(e);
            }
        };
        Ok((attr, Opened { fh, keep_cache: false, backing }))
    }

    fn file(&self, fh: u64) -> FsResult<OpenFile> {
        lock(&self.files).get(&fh).cloned().ok_or(FsError::BadHandle)
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        match self.file(fh)? {
            OpenFile::Head(h) => Ok(self.block_on(h.head.read(offset, size as usize))?),
            OpenFile::Snapshot(v) => Ok(self.block_on(v.read(offset, size as usize))?),
            OpenFile::Side(f, _) => {
                self.side_reads.fetch_add(1, Ordering::Relaxed);
                let mut buf = vec![0u8; size as usize];
                let mut n = 0;
                while n < buf.len() {
                    let r = f.read_at(&mut buf[n..], offset + n as u64)?;
                    if r == 0 {
                        break;
                    }
                    n += r;
                }
                buf.truncate(n);
                Ok(buf)
            }
        }
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        match self.file(fh)? {
            OpenFile::Head(h) => self.block_on(h.write(offset, data))?,
            OpenFile::Snapshot(_) => return Err(FsError::ReadOnly),
            OpenFile::Side(f, _) => {
                self.side_writes.fetch_add(1, Ordering::Relaxed);
                f.write_all_at(data, offset)?
            }
        }
        Ok(data.len() as u32)
    }

    /// `truncate`/`ftruncate`.
    pub fn set_size(&self, ino: u64, size: u64) -> FsResult<Attr> {
        let node = self.node(ino)?;
        match &node {
            Node::Head(db) => self.block_on(self.head(db)?.truncate(size))?,
            Node::Side(db, rel) => OpenOptions::new().write(true).open(self.side_path(db, rel))?.set_len(size)?,
            Node::Snapshot(..) => return Err(FsError::ReadOnly),
            _ => return Err(FsError::IsDir),
        }
        self.attr_of(ino, &node)
    }

    /// Capacity and free space of the disk behind the data directory.
    pub fn statfs(&self) -> FsResult<crate::statfs::FsStat> {
        Ok(crate::statfs::of(self.od.data_dir())?)
    }

    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        match self.file(fh)? {
            OpenFile::Head(h) => Ok(self.block_on(h.fsync(&self.od))?),
            OpenFile::Snapshot(_) => Ok(()),
            OpenFile::Side(f, path) => {
                // Also for passthrough opens (the kernel still sends fsync
                // here): writes went to the same local inode, and fdatasync
                // on any descriptor of it flushes them.
                f.sync_data()?;
                // A new (or renamed) WAL must survive a crash by name, too:
                // once per name, not per commit.
                if !lock(&self.durable_names).contains(&path) {
                    if let Some(dir) = path.parent() {
                        File::open(dir)?.sync_all()?;
                    }
                    lock(&self.durable_names).insert(path);
                }
                Ok(())
            }
        }
    }

    pub fn release(&self, fh: u64) {
        lock(&self.files).remove(&fh);
    }

    pub fn mkdir(&self, parent: u64, name: &OsStr) -> FsResult<Attr> {
        let parent = self.node(parent)?;
        let name = name_str(name)?;
        let node = match &parent {
            Node::Root => {
                self.block_on(self.od.create_database(name))?;
                Node::Db(name.to_string())
            }
            Node::Db(_) | Node::Side(..) => {
                let node = self.child(&parent, name)?;
                let Node::Side(db, rel) = &node else { return Err(FsError::Exists) };
                std::fs::create_dir_all(self.side_dir(db))?;
                std::fs::create_dir(self.side_path(db, rel)).map_err(|e| if e.kind() == std::io::ErrorKind::AlreadyExists { FsError::Exists } else { e.into() })?;
                node
            }
            _ => return Err(FsError::ReadOnly),
        };
        let ino = self.ns.ino(&node);
        self.attr_of(ino, &node)
    }

    fn side_child(&self, parent: u64, name: &OsStr) -> FsResult<(String, PathBuf)> {
        let parent = self.node(parent)?;
        match self.child(&parent, name_str(name)?)? {
            Node::Side(db, rel) => Ok((db, rel)),
            Node::Head(_) | Node::Latest(_) | Node::Snapshots(_) => Err(FsError::NotPermitted("part of the database")),
            Node::Snapshot(..) => Err(FsError::ReadOnly),
            _ => Err(FsError::NotPermitted("databases are not removed through the mount")),
        }
    }

    pub fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let (db, rel) = self.side_child(parent, name)?;
        lock(&self.durable_names).clear();
        std::fs::remove_file(self.side_path(&db, &rel))?;
        self.ns.forget_side(&db, &rel);
        Ok(())
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let (db, rel) = self.side_child(parent, name)?;
        std::fs::remove_dir(self.side_path(&db, &rel))?;
        self.ns.forget_side(&db, &rel);
        Ok(())
    }

    pub fn rename(&self, parent: u64, name: &OsStr, new_parent: u64, new_name: &OsStr) -> FsResult<()> {
        let (db, from) = self.side_child(parent, name)?;
        let (db2, to) = self.side_child(new_parent, new_name)?;
        if db != db2 {
            return Err(FsError::NotPermitted("rename across databases"));
        }
        lock(&self.durable_names).clear();
        std::fs::rename(self.side_path(&db, &from), self.side_path(&db, &to))?;
        self.ns.rename_side(&db, &from, &to);
        Ok(())
    }

    /// Wait for every checkpoint seal in flight (before unmounting).
    pub fn settle(&self) {
        for h in self.open_heads() {
            if let Err(e) = self.block_on(h.settle()) {
                tracing::warn!(db = h.head.db(), error = %e, "a checkpoint is not sealed yet (its pages stay in the head)");
            }
        }
    }
}
