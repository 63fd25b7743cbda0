//! An all-in-one OpenDuck server in this process: the difffs mount, DuckDB
//! workers on it and the gRPC service on a TCP listener. `openduck serve`,
//! the integration tests and the benchmarks all start it the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use difffs::{Daemon, DiffFs, MountOptions};
use futures::FutureExt;
use layerd::Layerd;

use crate::engine::Engine;
use crate::error::{QueryError, QueryResult};
use crate::registration::Registration;
use crate::sandbox::WorkerLimits;
use crate::storage::Storage;
use crate::writer::CheckpointPolicy;


pub struct LocalServerConfig {
    pub listen: SocketAddr,
    /// Token and TLS of the gRPC service.
    pub access: crate::service::Access,
    pub mountpoint: PathBuf,
    pub fuse_threads: usize,
    pub hydrate_bytes: u64,
    pub limits: WorkerLimits,
    pub policy: CheckpointPolicy,
    /// Register in the worker registry (`openduck worker`) under this
    /// endpoint; `Some("")`: the address it listens on.
    pub advertise: Option<String>,
}

pub struct LocalServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    pub fs: Arc<DiffFs>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<QueryResult<()>>,
    daemon: Daemon,
    registration: Option<Registration>,
}

impl LocalServer {
    /// Mount, open the workers and start serving. Needs a multi-threaded runtime.
    pub async fn start(od: Arc<Layerd>, cfg: LocalServerConfig) -> QueryResult<Self> {
        let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| QueryError::Internal(format!("listening on {}: {e}", cfg.listen)))?;
        let addr = listener.local_addr().map_err(|e| QueryError::Internal(e.to_string()))?;
        let opts = MountOptions { mountpoint: cfg.mountpoint.clone(), threads: cfg.fuse_threads };
        let daemon = Daemon::start(od.clone(), opts, cfg.hydrate_bytes).await.map_err(|e| QueryError::Storage(e.to_string()))?;
        let fs = daemon.fs.clone();
        let storage = Storage::new(od.clone(), Some(fs.clone()), daemon.mountpoint().to_path_buf());
        let engine = Arc::new(Engine::new(storage, cfg.limits, cfg.policy));
        let scheme = if cfg.access.tls.is_some() { "https" } else { "http" };
        let registration = cfg.advertise.map(|endpoint| {
            let endpoint = if endpoint.is_empty() { format!("{scheme}://{addr}") } else { endpoint };
            Registration::start(od, Arc::downgrade(&engine), endpoint)
        });
        // `openduck seal` through the daemon checkpoints the writer first.
        let weak = Arc::downgrade(&engine);
        fs.set_checkpoint_hook(Arc::new(move |db: String| -> difffs::fs::CheckpointFuture {
            let weak = weak.clone();
            Box::pin(async move {
                match weak.upgrade() {
                    Some(engine) => engine.checkpoint_db(&db).await.map_err(|e| e.to_string()),
                    None => Ok(()),
                }
            })
        }));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let access = cfg.access;
        let task = tokio::spawn(async move {
            let served = crate::service::serve(engine.clone(), access, listener, rx.map(|_| ())).await;
            // Close the DuckDB workers while the mount is still there
            // (connections of clients that did not go away still hold the
            // engine itself).
            engine.close().await;
            served
        });
        Ok(LocalServer { addr, scheme, fs, stop, task, daemon, registration })
    }

    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn mountpoint(&self) -> &std::path::Path {
        self.daemon.mountpoint()
    }

    /// Stop serving, close the workers, then unmount (waits for open files).
    pub async fn shutdown(self) -> QueryResult<()> {
        // Gateways stop sending new work here first.
        if let Some(registration) = self.registration {
            registration.leave().await;
        }
        let _ = self.stop.send(());
        let served = self.task.await?;
        self.daemon.stop().await.map_err(|e| QueryError::Storage(format!("unmount: {e}")))?;
        served
    }
}
