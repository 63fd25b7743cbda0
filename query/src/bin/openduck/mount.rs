//! `openduck mount MOUNTPOINT`: run difffs in the foreground until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use difffs::{Daemon, MountOptions};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::storage::StorageOpts;

#[derive(Args, Debug, Clone)]
pub struct MountTuning {
    /// FUSE request threads.
    #[arg(long, default_value_t = 4)]
    pub fuse_threads: usize,
    /// Local disk budget for hydrated snapshot copies served by kernel
    /// passthrough, in MiB (0 disables hydration).
    #[arg(long, default_value_t = 16384)]
    pub hydrate_mib: u64,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Where to mount (created if missing; a stale mount there is cleared).
    pub mountpoint: PathBuf,
    #[command(flatten)]
    pub tuning: MountTuning,
    /// Let other local users in (FUSE `allow_other`): they may read the
    /// snapshots, never write a head. Off by default: only this user.
    #[arg(long)]
    pub allow_other: bool,
}

/// SIGINT and SIGTERM, as one stream of "stop" requests.
pub struct Stop(Signal, Signal);

impl Stop {
    pub fn new() -> Result<Self> {
        Ok(Stop(signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.0.recv() => {}
            _ = self.1.recv() => {}
        }
    }
}

pub async fn run(opts: &StorageOpts, args: MountArgs) -> Result<()> {
    let od = Arc::new(opts.open().await?);
    let mut stop = Stop::new()?;
    let opts = MountOptions { mountpoint: args.mountpoint.clone(), threads: args.tuning.fuse_threads };
    let data_dir = od.data_dir().to_path_buf();
    crate::guard::wait_for_previous(&data_dir)?;
    let access = difffs::MountAccess { allow_other: args.allow_other };
    let daemon = Daemon::start_with_access(od, opts, args.tuning.hydrate_mib << 20, access).await?;
    let guard = crate::guard::spawn(&data_dir, daemon.mountpoint())?;
    eprintln!("mounted OpenDuck at {} (Ctrl-C to unmount)", daemon.mountpoint().display());
    stop.recv().await;
    eprintln!("unmounting {} ...", args.mountpoint.display());
    guard.dismiss();
    tokio::select! {
        r = daemon.stop() => r.with_context(|| format!("unmounting {}", args.mountpoint.display()))?,
        _ = stop.recv() => anyhow::bail!("stopped while files were still open under {}", args.mountpoint.display()),
    }
    Ok(())
}
