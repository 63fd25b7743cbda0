//! Mounting: preflight checks, stale-mount recovery, kernel tuning, unmount.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{Config, MountOption, SessionACL};

use crate::fs::DiffFs;
use crate::fuse::FuseAdapter;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("/dev/fuse is missing: load the fuse kernel module (`modprobe fuse`) or run where FUSE is available")]
    NoFuseDevice,
    #[error("mounting as a non-root user needs fusermount3: install it (`apt-get install fuse3`) or run as root")]
    NoFusermount,
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("could not clear the stale mount at {path} left by a crashed daemon: {source} (try `fusermount3 -uz {path}`)")]
    Stale { path: PathBuf, source: std::io::Error },
    #[error("{0} is already mounted by a running daemon: stop it first (or `umount {0}`)")]
    Busy(PathBuf),
    #[error("mount at {path} failed: {source}")]
    Mount { path: PathBuf, source: std::io::Error },
}

pub struct MountOptions {
    pub mountpoint: PathBuf,
    /// FUSE request threads (DuckDB reads one file from several threads).
    pub threads: usize,
}

/// Who may use the mount. The kernel always checks the owners and modes the
/// daemon reports (`default_permissions`): files belong to the daemon's user,
/// the head is 0644, snapshots 0444, directories 0755.
#[derive(Clone, Copy, Debug, Default)]
pub struct MountAccess {
    /// Let other local users in (`allow_other`), still under those modes:
    /// they may read snapshots but never write the head. Off by default: only
    /// the daemon's user (and not even root, unless that is the daemon's user)
    /// can use the mount.
    pub allow_other: bool,
}

pub struct Mounted {
    session: fuser::BackgroundSession,
    fs: Arc<DiffFs>,
    pub mountpoint: PathBuf,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
}

/// The filesystem type mounted exactly at `path`, from /proc/self/mountinfo.
fn mounted_fs_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy();
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let mount_point = fields.nth(4)?;
        let fstype = line.split(" - ").nth(1)?.split(' ').next()?;
        (mount_point.replace("\\040", " ") == want).then(|| fstype.to_string())
    })
}

/// A mountpoint whose daemon died answers every call with an error
/// (ENOTCONN): detach it. A live FUSE mount there is refused.
fn clear_stale_mount(path: &Path) -> Result<(), MountError> {
    let Some(fstype) = mounted_fs_type(path) else { return Ok(()) };
    if !fstype.starts_with("fuse") {
        return Ok(());
    }
    // Listing needs an answer from the daemon (attributes may come from the
    // kernel's cache even when the daemon is gone).
    if std::fs::read_dir(path).and_then(|mut rd| rd.next().transpose()).is_ok() {
        return Err(MountError::Busy(path.into()));
    }
    tracing::warn!(path = %path.display(), "clearing a stale mount left by a crashed daemon");
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| MountError::Stale { path: path.into(), source: std::io::Error::other(e) })?;
    // SAFETY: c is a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        let ok = std::process::Command::new("fusermount3").arg("-uz").arg(path).status().is_ok_and(|s| s.success());
        if !ok {
            return Err(MountError::Stale { path: path.into(), source: err });
        }
    }
    Ok(())
}

/// Ask for up to 1 MiB read-ahead on the new mount (FACTS §2). Best effort.
fn tune_readahead(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else { return };
    let dev = m.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, "1024") {
        tracing::debug!(knob, error = %e, "could not raise read-ahead");
    }
}

/// Mount with the default access: the daemon's user only.
pub fn mount(fs: Arc<DiffFs>, opts: &MountOptions) -> Result<Mounted, MountError> {
    mount_with_access(fs, opts, MountAccess::default())
}

pub fn mount_with_access(fs: Arc<DiffFs>, opts: &MountOptions, access: MountAccess) -> Result<Mounted, MountError> {
    if !Path::new("/dev/fuse").exists() {
        return Err(MountError::NoFuseDevice);
    }
    if !is_root() && !on_path("fusermount3") {
        return Err(MountError::NoFusermount);
    }
    let mp = &std::path::absolute(&opts.mountpoint).map_err(|e| MountError::Mount { path: opts.mountpoint.clone(), source: e })?;
    clear_stale_mount(mp)?;
    std::fs::create_dir_all(mp).map_err(|e| MountError::Mount { path: mp.clone(), source: e })?;
    if !mp.is_dir() {
        return Err(MountError::NotADirectory(mp.clone()));
    }
    let mut cfg = Config::default();
    cfg.mount_options = vec![MountOption::FSName("openduck".into()), MountOption::Subtype("difffs".into()), MountOption::DefaultPermissions];
    cfg.acl = if access.allow_other { SessionACL::All } else { SessionACL::Owner };
    cfg.n_threads = Some(opts.threads.max(1));
    let session = fuser::spawn_mount(FuseAdapter::new(fs.clone()), mp, &cfg).map_err(|e| MountError::Mount { path: mp.clone(), source: e })?;
    tune_readahead(mp);
    tracing::info!(mountpoint = %mp.display(), threads = cfg.n_threads, allow_other = access.allow_other, "mounted");
    Ok(Mounted { session, fs, mountpoint: mp.clone() })
}

fn umount2(path: &Path, flags: i32) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Mounted {
    /// Finish in-flight checkpoint seals, then unmount. If files are still
    /// open, detach the mount (new opens fail, open files keep working) and
    /// return once the last one is closed. Blocking.
    pub fn unmount(self) -> std::io::Result<()> {
        self.fs.settle();
        match umount2(&self.mountpoint, 0) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::warn!(mountpoint = %self.mountpoint.display(), "files are still open: detaching; exiting once they are closed (signal again to stop now)");
                eprintln!("files under {} are still open: detached, waiting for them to be closed (Ctrl-C again to stop now)", self.mountpoint.display());
                umount2(&self.mountpoint, libc::MNT_DETACH)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return self.session.umount_and_join(),
            Err(e) => return Err(e),
        }
        self.session.join()
    }
}

/// The whole daemon: the filesystem, its kernel mount and its control socket.
pub struct Daemon {
    pub fs: Arc<DiffFs>,
    mounted: Mounted,
    control: tokio::task::JoinHandle<()>,
    data_dir: PathBuf,
}

impl Daemon {
    /// Mount `od`'s databases at `opts.mountpoint`. Call from a multi-threaded
    /// tokio runtime.
    pub async fn start(od: Arc<layerd::Layerd>, opts: MountOptions, hydrate_bytes: u64) -> Result<Daemon, MountError> {
        Self::start_with_access(od, opts, hydrate_bytes, MountAccess::default()).await
    }

    /// [`Daemon::start`] with an explicit [`MountAccess`].
    pub async fn start_with_access(od: Arc<layerd::Layerd>, opts: MountOptions, hydrate_bytes: u64, access: MountAccess) -> Result<Daemon, MountError> {
        let data_dir = od.data_dir().to_path_buf();
        let fs = Arc::new(DiffFs::new(od, tokio::runtime::Handle::current(), hydrate_bytes));
        let control = crate::control::serve(fs.clone(), &data_dir).map_err(|e| MountError::Mount { path: data_dir.clone(), source: e })?;
        let fs2 = fs.clone();
        let mounted = tokio::task::spawn_blocking(move || mount_with_access(fs2, &opts, access))
            .await
            .map_err(|e| MountError::Mount { path: data_dir.clone(), source: std::io::Error::other(e) })??;
        Ok(Daemon { fs, mounted, control, data_dir })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mounted.mountpoint
    }

    /// Stop the control socket, finish seals and unmount (waiting for files
    /// that are still open to be closed).
    pub async fn stop(self) -> std::io::Result<()> {
        self.control.abort();
        let _ = std::fs::remove_file(crate::control::socket_path(&self.data_dir));
        let mounted = self.mounted;
        tokio::task::spawn_blocking(move || mounted.unmount()).await.map_err(std::io::Error::other)?
    }
}
