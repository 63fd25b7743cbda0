//! `openduck mount MOUNTPOINT`: run difffs in the foreground until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use difffs::{DiffFs, MountOptions};
use tokio::signal::unix::{signal, SignalKind};

use crate::storage::StorageOpts;

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Where to mount (created if missing; a stale mount there is cleared).
    pub mountpoint: PathBuf,
    /// FUSE request threads.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Local disk budget for hydrated snapshot copies served by kernel
    /// passthrough, in MiB (0 disables hydration).
    #[arg(long, default_value_t = 16384)]
    pub hydrate_mib: u64,
}

pub async fn run(opts: &StorageOpts, args: MountArgs) -> Result<()> {
    let od = Arc::new(opts.open().await?);
    let data_dir = od.data_dir().to_path_buf();
    let fs = Arc::new(DiffFs::new(od, tokio::runtime::Handle::current(), args.hydrate_mib << 20));
    let control = difffs::control::serve(fs.clone(), &data_dir).context("starting the control socket")?;
    let mount_opts = MountOptions { mountpoint: args.mountpoint.clone(), threads: args.threads };
    let mounted = tokio::task::spawn_blocking(move || difffs::mount(fs, &mount_opts)).await??;
    eprintln!("mounted OpenDuck at {} (Ctrl-C to unmount)", mounted.mountpoint.display());
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("unmounting {} ...", args.mountpoint.display());
    control.abort();
    let _ = std::fs::remove_file(difffs::control::socket_path(&data_dir));
    let unmount = tokio::task::spawn_blocking(move || mounted.unmount());
    tokio::select! {
        r = unmount => r?.with_context(|| format!("unmounting {}", args.mountpoint.display()))?,
        _ = term.recv() => anyhow::bail!("stopped while files were still open under {}", args.mountpoint.display()),
        _ = int.recv() => anyhow::bail!("stopped while files were still open under {}", args.mountpoint.display()),
    }
    Ok(())
}
