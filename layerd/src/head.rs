//! The head: the writable state of a database since its last snapshot.
//!
//! It lives on local disk as append-only log segments of full page images
//! (see [`log`]) on top of a base snapshot. `sync` appends a `Sync` record and
//! `fdatasync`s; after a crash, [`Head::open`] replays exactly up to the last
//! `Sync`. Sealing freezes the current segment (a short hold of the writer),
//! builds layers from the frozen segments while writes go on into a new one, and
//! then rebases the head onto the new snapshot.
//!
//! On disk, `heads/<db>/`: `LOCK` (held by the one owning process), `MANIFEST`
//! (format, head id, base snapshot, last sealed segment; see [`manifest`]) and
//! `seg-<n>.log`.

pub mod log;
mod manifest;
mod replay;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::catalog::SnapshotInfo;
use crate::error::{IoContext, LayerdError, Result};
use crate::page::{page_count, page_len, page_of, page_start, pages_in_range, read_range, PageHash, PageNo};
use crate::snapshot::SnapshotView;
use log::{encode_record, segment_header, Chain, RecordKind};
use manifest::{read_manifest, sync_dir, write_manifest, Manifest, HEAD_DIR_FORMAT};
use replay::replay;

/// Where the current bytes of a page written to the head are.
#[derive(Clone, Copy, Debug)]
pub struct LogPage {
    pub seg: u64,
    pub offset: u64,
    pub len: u32,
    pub hash: PageHash,
}

struct State {
    base: Option<Arc<SnapshotView>>,
    /// Pages at or above this number are never taken from the base (they were
    /// truncated away since).
    base_limit: u64,
    size: u64,
    pages: HashMap<PageNo, LogPage>,
    segments: BTreeMap<u64, Arc<File>>,
    cur: u64,
    cur_len: u64,
    sealed_through: u64,
    sync_seq: u64,
    unsynced: bool,
    /// Where the next record goes in the chain of records (see [`log`]).
    chain: Chain,
}

impl State {
    /// Apply one logged record (on append and on replay alike).
    fn apply(&mut self, kind: RecordKind, arg: u64, lp: LogPage) {
        match kind {
            RecordKind::Write => {
                self.pages.insert(arg, lp);
            }
            RecordKind::Truncate => self.set_size(arg),
            RecordKind::Sync => self.sync_seq = self.sync_seq.max(arg),
        }
    }

    fn set_size(&mut self, size: u64) {
        if size < self.size {
            let n = page_count(size);
            self.pages.retain(|p, _| *p < n);
            self.base_limit = self.base_limit.min(n);
        }
        self.size = size;
    }
}

/// A frozen, consistent cut of the head, taken for a seal.
#[derive(Clone)]
pub struct HeadCut {
    pub base: Option<Arc<SnapshotView>>,
    pub base_limit: u64,
    pub size: u64,
    pub pages: Vec<(PageNo, LogPage)>,
    pub sealed_through: u64,
    segments: BTreeMap<u64, Arc<File>>,
    head_ref: String,
    /// A seal of this cut (or of a clone) was started before.
    attempted: Arc<AtomicBool>,
}

impl HeadCut {
    pub fn head_ref(&self) -> &str {
        &self.head_ref
    }

    /// Mark a seal of this cut as started; `true` if one was started before
    /// (it may have committed: see `Layerd::seal_cut`).
    pub fn retried(&self) -> bool {
        self.attempted.swap(true, Ordering::SeqCst)
    }

    /// The bytes of a page as of the cut, verified against the logged hash.
    pub fn read_page(&self, lp: &LogPage) -> Result<Vec<u8>> {
        read_logged(segment_of(&self.segments, lp)?, lp)
    }
}

fn segment_of<'a>(segments: &'a BTreeMap<u64, Arc<File>>, lp: &LogPage) -> Result<&'a Arc<File>> {
    segments.get(&lp.seg).ok_or_else(|| LayerdError::Invalid(format!("head segment {} is gone", lp.seg)))
}

fn read_logged(f: &File, lp: &LogPage) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; lp.len as usize];
    f.read_exact_at(&mut buf, lp.offset).map_err(|e| LayerdError::io(format!("head segment {}", lp.seg), e))?;
    if PageHash::of(&buf) != lp.hash {
        return Err(LayerdError::Corrupt { object: format!("head segment {}", lp.seg), detail: "page hash mismatch".into() });
    }
    Ok(buf)
}

enum Source {
    /// The page's record and the segment holding it: a rebase may drop the
    /// segment from the state meanwhile, the open file stays readable.
    Log(LogPage, Arc<File>),
    Base(Arc<SnapshotView>),
    Zero,
}

pub struct Head {
    db: String,
    dir: PathBuf,
    head_id: [u8; 16],
    _lock: File,
    writer: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// The writer lease this head's seals commit under (heads opened through
    /// `Layerd::open_head` always have one).
    lease: Mutex<Option<Arc<crate::writer_lease::LeaseKeeper>>>,
    #[cfg(test)]
    hooks: tests::Hooks,
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("seg-{n:010}.log"))
}

fn new_head_id(dir: &Path) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(format!("{:?}{}{}", std::time::SystemTime::now(), std::process::id(), dir.display()).as_bytes());
    h.finalize().as_bytes()[..16].try_into().expect("16 bytes")
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let name = e.at(dir)?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_prefix("seg-").and_then(|s| s.strip_suffix(".log")).and_then(|s| s.parse().ok()) {
            v.push(n);
        }
    }
    v.sort();
    Ok(v)
}

fn fresh_state(base: Option<Arc<SnapshotView>>) -> State {
    let size = base.as_ref().map(|b| b.size()).unwrap_or(0);
    State {
        base,
        base_limit: page_count(size),
        size,
        pages: HashMap::new(),
        segments: BTreeMap::new(),
        cur: 0,
        cur_len: 0,
        sealed_through: 0,
        sync_seq: 0,
        unsynced: false,
        chain: Chain::default(),
    }
}

impl Head {
    /// Open (or create) the head of `db` in `dir`, recovering from a crash.
    /// `latest` is the database's newest snapshot and `open_view` opens one.
    pub(crate) async fn open<F, Fut>(dir: PathBuf, db: &str, latest: Option<SnapshotInfo>, open_view: F) -> Result<Head>
    where
        F: FnOnce(SnapshotInfo) -> Fut,
        Fut: std::future::Future<Output = Result<SnapshotView>>,
    {
        std::fs::create_dir_all(&dir).at(&dir)?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).at(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(LayerdError::HeadLocked { db: db.to_string(), lock: lock_path }),
            Err(std::fs::TryLockError::Error(e)) => return Err(LayerdError::io(lock_path, e)),
        }
        let manifest_path = dir.join("MANIFEST");
        let mut manifest = match read_manifest(&dir)? {
            Some(m) => m,
            None => {
                // A new head: nothing may linger from an older one.
                for n in list_segments(&dir)? {
                    std::fs::remove_file(seg_path(&dir, n)).at(seg_path(&dir, n))?;
                }
                let m = Manifest {
                    format: HEAD_DIR_FORMAT,
                    head_id: hex::encode(new_head_id(&dir)),
                    base: latest.as_ref().map(|s| s.id),
                    sealed_through: 0,
                };
                write_manifest(&dir, &m)?;
                m
            }
        };
        let mut head_id = [0u8; 16];
        hex::decode_to_slice(&manifest.head_id, &mut head_id)
            .map_err(|e| LayerdError::Corrupt { object: manifest_path.display().to_string(), detail: e.to_string() })?;
        // A seal that committed before it could update the manifest: adopt it.
        if let Some(l) = &latest {
            if let Some((id, seg)) = l.head_ref.as_deref().and_then(|r| r.split_once(':')) {
                let seg: u64 = seg.parse().unwrap_or(0);
                if id == manifest.head_id && seg > manifest.sealed_through && manifest.base != Some(l.id) {
                    tracing::info!(db, snapshot = l.id, "adopting a seal that finished before the crash");
                    manifest.base = Some(l.id);
                    manifest.sealed_through = seg;
                    write_manifest(&dir, &manifest)?;
                }
            }
        }
        let latest_id = latest.as_ref().map(|s| s.id);
        if manifest.base != latest_id {
            return Err(LayerdError::Conflict { db: db.to_string(), expected: manifest.base, found: latest_id });
        }
        let base = match latest {
            Some(info) => Some(Arc::new(open_view(info).await?)),
            None => None,
        };
        let mut st = fresh_state(base);
        st.sealed_through = manifest.sealed_through;
        let mut live = Vec::new();
        for n in list_segments(&dir)? {
            let path = seg_path(&dir, n);
            if n <= manifest.sealed_through {
                std::fs::remove_file(&path).at(&path)?;
            } else {
                live.push((n, Arc::new(OpenOptions::new().read(true).write(true).open(&path).at(&path)?)));
            }
        }
        let next = live.last().map_or(0, |(n, _)| *n).max(manifest.sealed_through) + 1;
        replay(&dir, &head_id, &mut st, live, true)?;
        let head = Head {
            db: db.to_string(),
            dir,
            head_id,
            _lock: lock,
            writer: tokio::sync::Mutex::new(()),
            state: Mutex::new(st),
            lease: Mutex::new(None),
            #[cfg(test)]
            hooks: Default::default(),
        };
        head.start_segment(&mut head.state(), next)?;
        Ok(head)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_segment(&self, st: &mut State, n: u64) -> Result<()> {
        let path = seg_path(&self.dir, n);
        let f = OpenOptions::new().read(true).write(true).create_new(true).open(&path).at(&path)?;
        f.write_all_at(&segment_header(&self.head_id, st.chain), 0).at(&path)?;
        f.sync_all().at(&path)?;
        sync_dir(&self.dir)?;
        st.segments.insert(n, Arc::new(f));
        st.cur = n;
        st.cur_len = log::SEGMENT_HEADER_LEN;
        Ok(())
    }

    pub(crate) fn hold_lease(&self, keeper: Arc<crate::writer_lease::LeaseKeeper>) {
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = Some(keeper);
    }

    /// The (owner, epoch) seals of this head commit under; `Fenced` once
    /// another process took the database's writer lease over.
    pub fn lease(&self) -> Result<Option<(String, i64)>> {
        match &*self.lease.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(k) => k.check().map(Some),
            None => Ok(None),
        }
    }

    /// Whether writes may still be acknowledged (see `LeaseKeeper::is_valid`).
    pub fn lease_valid(&self) -> bool {
        self.lease.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_none_or(|k| k.is_valid())
    }

    /// True once another process took the writer lease over.
    pub fn is_fenced(&self) -> bool {
        self.lease.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|k| k.is_fenced())
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    /// Logical size of the head file.
    pub fn size(&self) -> u64 {
        self.state().size
    }

    /// The snapshot this head started from.
    pub fn base_snapshot(&self) -> Option<i64> {
        self.state().base.as_ref().map(|b| b.id())
    }

    fn source(&self, page: PageNo) -> Result<Source> {
        let st = self.state();
        if let Some(lp) = st.pages.get(&page) {
            return Ok(Source::Log(*lp, segment_of(&st.segments, lp)?.clone()));
        }
        Ok(match &st.base {
            Some(b) if page < st.base_limit => match b.raw_page_ref(page) {
                Some(_) => Source::Base(b.clone()),
                None => Source::Zero,
            },
            _ => Source::Zero,
        })
    }

    /// Current full bytes of one page.
    async fn page_bytes(&self, page: PageNo) -> Result<Bytes> {
        match self.source(page)? {
            Source::Log(lp, file) => {
                #[cfg(test)]
                self.hooks.read_pause();
                Ok(Bytes::from(read_logged(&file, &lp)?))
            }
            Source::Base(view) => view.read_page(page).await,
            Source::Zero => Ok(Bytes::from(vec![0u8; page_len(page)])),
        }
    }

    /// Read up to `len` bytes at `offset` (short at the end of the file).
    pub async fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        read_range(offset, len, self.size(), |p| self.page_bytes(p)).await
    }

    /// Append records to the current segment and apply them. Callers hold the
    /// writer lock, so the segment and its length cannot change meanwhile; the
    /// state lock is not held during the write, so readers go on. A write that
    /// fails (e.g. a full disk) is cut off again, so no partial record stays
    /// behind; should that cut fail too, the chained checks still tell the
    /// leftover bytes from records on recovery.
    fn append(&self, records: Vec<(RecordKind, u64, Vec<u8>)>) -> Result<()> {
        let (cur, start, f, mut chain) = {
            let st = self.state();
            let f = st.segments.get(&st.cur).cloned().ok_or_else(|| LayerdError::Invalid("no current head segment".into()))?;
            (st.cur, st.cur_len, f, st.chain)
        };
        let mut buf = Vec::new();
        let mut applied = Vec::new();
        for (kind, arg, payload) in &records {
            let (enc, hash, next) = encode_record(*kind, *arg, payload, chain);
            chain = next;
            let at = start + buf.len() as u64;
            applied.push((*kind, *arg, LogPage { seg: cur, offset: at + log::RECORD_HEADER_LEN, len: payload.len() as u32, hash }));
            buf.extend_from_slice(&enc);
        }
        let path = seg_path(&self.dir, cur);
        if let Err(e) = self.write_segment(&f, &buf, start) {
            if let Err(cut) = f.set_len(start) {
                tracing::error!(segment = %path.display(), error = %cut, "could not cut off a failed head append");
            }
            return Err(LayerdError::io(path, e));
        }
        let mut st = self.state();
        st.cur_len = start + buf.len() as u64;
        st.chain = chain;
        for (kind, arg, lp) in applied {
            st.apply(kind, arg, lp);
        }
        st.unsynced = true;
        Ok(())
    }

    fn write_segment(&self, f: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(short) = self.hooks.short_write(f, buf, at) {
            return short;
        }
        f.write_all_at(buf, at)
    }

    /// Write `data` at `offset`, growing the file if needed.
    pub async fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let _w = self.writer.lock().await;
        let end = offset + data.len() as u64;
        let mut records = Vec::new();
        for p in pages_in_range(offset, data.len() as u64) {
            let (ps, pl) = (page_start(p), page_len(p) as u64);
            let image = if offset <= ps && end >= ps + pl {
                data[(ps - offset) as usize..(ps - offset + pl) as usize].to_vec()
            } else {
                let mut cur = self.page_bytes(p).await?.to_vec();
                let from = offset.max(ps);
                let to = end.min(ps + pl);
                cur[(from - ps) as usize..(to - ps) as usize].copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
                cur
            };
            records.push((RecordKind::Write, p, image));
        }
        if end > self.size() {
            records.push((RecordKind::Truncate, end, Vec::new()));
        }
        self.append(records)
    }

    /// Set the file size; shrinking zeroes the tail of the last page.
    pub async fn truncate(&self, size: u64) -> Result<()> {
        let _w = self.writer.lock().await;
        let mut records = Vec::new();
        if size < self.size() && size > page_start(page_of(size)) {
            let p = page_of(size);
            let mut cur = self.page_bytes(p).await?.to_vec();
            cur[(size - page_start(p)) as usize..].fill(0);
            records.push((RecordKind::Write, p, cur));
        }
        records.push((RecordKind::Truncate, size, Vec::new()));
        self.append(records)
    }

    fn sync_locked(&self) -> Result<()> {
        let (f, path, seq) = {
            let st = self.state();
            if !st.unsynced {
                return Ok(());
            }
            (st.segments.get(&st.cur).cloned(), seg_path(&self.dir, st.cur), st.sync_seq + 1)
        };
        self.append(vec![(RecordKind::Sync, seq, Vec::new())])?;
        if let Some(f) = f {
            f.sync_data().at(&path)?;
        }
        self.state().unsynced = false;
        Ok(())
    }

    /// Make every write so far durable.
    pub async fn sync(&self) -> Result<()> {
        let _w = self.writer.lock().await;
        self.sync_locked()
    }

    /// Make the head durable and freeze it for sealing: later writes go to a new
    /// segment. Holds the writer only for one `fdatasync` and a file create.
    pub async fn freeze(&self) -> Result<HeadCut> {
        let _w = self.writer.lock().await;
        self.sync_locked()?;
        let mut st = self.state();
        let frozen = st.cur;
        let cut = HeadCut {
            base: st.base.clone(),
            base_limit: st.base_limit,
            size: st.size,
            pages: st.pages.iter().map(|(p, lp)| (*p, *lp)).collect(),
            sealed_through: frozen,
            segments: st.segments.clone(),
            head_ref: format!("{}:{}", hex::encode(self.head_id), frozen),
            attempted: Arc::default(),
        };
        self.start_segment(&mut st, frozen + 1)?;
        Ok(cut)
    }

    /// After the snapshot sealed from `cut` committed: make it the new base and
    /// drop the frozen segments. The new state is built while readers go on
    /// with the old one (the writer is held, so no segment changes); the swap
    /// is one step under the state lock, and readers that found a page in a
    /// dropped segment just before still hold its open file.
    pub(crate) async fn rebase(&self, cut: &HeadCut, base: Arc<SnapshotView>) -> Result<()> {
        let _w = self.writer.lock().await;
        write_manifest(
            &self.dir,
            &Manifest { format: HEAD_DIR_FORMAT, head_id: hex::encode(self.head_id), base: Some(base.id()), sealed_through: cut.sealed_through },
        )?;
        let later: Vec<(u64, Arc<File>)> =
            self.state().segments.iter().filter(|(n, _)| **n > cut.sealed_through).map(|(n, f)| (*n, f.clone())).collect();
        let mut next = fresh_state(Some(base));
        next.sealed_through = cut.sealed_through;
        replay(&self.dir, &self.head_id, &mut next, later, false)?;
        let dropped: Vec<u64> = {
            let mut st = self.state();
            next.sync_seq = st.sync_seq;
            next.cur = st.cur;
            next.cur_len = st.cur_len;
            next.unsynced = st.unsynced;
            next.chain = st.chain;
            let dropped = st.segments.keys().copied().filter(|n| *n <= cut.sealed_through).collect();
            *st = next;
            dropped
        };
        for n in dropped {
            let path = seg_path(&self.dir, n);
            std::fs::remove_file(&path).at(&path)?;
        }
        Ok(())
    }

    /// True when nothing was written since the base snapshot.
    pub fn is_clean(&self) -> bool {
        let st = self.state();
        st.pages.is_empty() && st.size == st.base.as_ref().map(|b| b.size()).unwrap_or(0) && st.base_limit == page_count(st.size)
    }
}
