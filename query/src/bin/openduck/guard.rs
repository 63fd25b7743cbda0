//! The mount guard process (see `difffs::guard`): `serve`, `worker` and
//! `mount` start one next to themselves, as a hidden `openduck mount-guard`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

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

/// Start a guard for the mount this process serves at `mountpoint`.
pub fn spawn(mountpoint: &Path) -> Result<MountGuard> {
    let connection = difffs::guard::connection_of(mountpoint).with_context(|| format!("reading the mount at {}", mountpoint.display()))?;
    let exe = std::env::current_exe().context("finding the openduck binary for the mount guard")?;
    let child = std::process::Command::new(exe)
        .arg("mount-guard")
        .args(["--pid", &std::process::id().to_string(), "--connection", &connection.to_string()])
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
    difffs::guard::watch(args.pid, args.connection, &args.mountpoint);
    Ok(())
}
