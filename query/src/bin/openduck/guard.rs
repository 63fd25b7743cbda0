//! The mount guard process (see `difffs::guard`): `serve`, `worker` and
//! `mount` start one next to themselves, as a hidden `openduck mount-guard`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct GuardArgs {
    /// The daemon process to watch.
    #[arg(long)]
    pub pid: u32,
    /// Its FUSE connection number.
    #[arg(long)]
    pub connection: u32,
    /// The lock this guard holds while it lives.
    #[arg(long)]
    pub lock: PathBuf,
    pub mountpoint: PathBuf,
}

/// A running guard. A daemon that stops cleanly dismisses it before it
/// unmounts (the kernel reuses connection numbers).
pub struct MountGuard(std::process::Child);

impl MountGuard {
    pub fn dismiss(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long a new daemon waits for the guard of the previous one.
const PREVIOUS_GUARD_WAIT: Duration = Duration::from_secs(30);

/// Before mounting: let the guard of an earlier daemon of `data_dir` finish.
pub fn wait_for_previous(data_dir: &Path) -> Result<()> {
    let lock = difffs::guard::lock_path(data_dir);
    let waited = tokio::task::block_in_place(|| difffs::guard::wait_for_previous(&lock, PREVIOUS_GUARD_WAIT));
    waited.with_context(|| format!("waiting for {}", lock.display()))
}

/// Start a guard for the mount this process serves at `mountpoint`.
pub fn spawn(data_dir: &Path, mountpoint: &Path) -> Result<MountGuard> {
    let connection = difffs::guard::connection_of(mountpoint).with_context(|| format!("reading the mount at {}", mountpoint.display()))?;
    let exe = std::env::current_exe().context("finding the openduck binary for the mount guard")?;
    let child = std::process::Command::new(exe)
        .arg("mount-guard")
        .args(["--pid", &std::process::id().to_string(), "--connection", &connection.to_string()])
        .arg("--lock")
        .arg(difffs::guard::lock_path(data_dir))
        .arg(mountpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Its own process group: a Ctrl-C to the server's group does not stop it.
        .process_group(0)
        .spawn()
        .context("starting the mount guard")?;
    Ok(MountGuard(child))
}

/// The guard itself: outlive the daemon, clean up after a hard kill.
pub fn run(args: GuardArgs) -> Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: ignoring a signal has no preconditions.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    difffs::guard::watch(args.pid, args.connection, &args.mountpoint, &args.lock).with_context(|| format!("guarding {}", args.mountpoint.display()))
}
