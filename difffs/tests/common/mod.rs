//! A real kernel mount of one database `db` for tests (root only: the
//! tests skip elsewhere), its head created as DuckDB would.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use difffs::mount::{MountOptions, Mounted};
use difffs::DiffFs;
use layerd::{Layerd, LayerdConfig};

pub struct Env {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub mnt: PathBuf,
    pub fs: Arc<DiffFs>,
    pub mounted: Option<Mounted>,
    _rt: tokio::runtime::Runtime,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            if let Err(e) = m.unmount() {
                eprintln!("unmount {}: {e}", self.mnt.display());
            }
        }
    }
}

pub fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: needs root and /dev/fuse");
        return false;
    }
    true
}

/// Mount with `mount` (e.g. `difffs::mount`); the mountpoint's parent is
/// open to other users (so that what stops them is the mount itself).
pub fn start(mount: impl FnOnce(Arc<DiffFs>, &MountOptions) -> Mounted) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = dir.path().join("data");
    let mnt = dir.path().join("mnt");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let od = rt.block_on(Layerd::open(LayerdConfig::new(data.clone()))).expect("open");
    rt.block_on(od.create_database("db")).expect("create");
    let fs = Arc::new(DiffFs::new(Arc::new(od), rt.handle().clone(), 0));
    let opts = MountOptions { mountpoint: mnt.clone(), threads: 2 };
    let mounted = mount(fs.clone(), &opts);
    let env = Env { _dir: dir, data, mnt, fs, mounted: Some(mounted), _rt: rt };
    // The head appears once its owner creates it (as DuckDB does, before its WAL).
    drop(std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(env.mnt.join("db/head.duckdb")).expect("create head"));
    env
}
