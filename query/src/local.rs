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
use crate::sandbox::WorkerLimits;
use crate::storage::Storage;
use crate::writer::CheckpointPolicy;

/// How long a stopping server waits for open connections to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub struct LocalServerConfig {
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub mountpoint: PathBuf,
    pub fuse_threads: usize,
    pub hydrate_bytes: u64,
    pub limits: WorkerLimits,
    pub policy: CheckpointPolicy,
}

pub struct LocalServer {
    pub addr: SocketAddr,
    pub fs: Arc<DiffFs>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<QueryResult<()>>,
    daemon: Daemon,
}

impl LocalServer {
    /// Mount, open the workers and start serving. Needs a multi-threaded runtime.
    pub async fn start(od: Arc<Layerd>, cfg: LocalServerConfig) -> QueryResult<Self> {
        let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| QueryError::Internal(format!("listening on {}: {e}", cfg.listen)))?;
        let addr = listener.local_addr().map_err(|e| QueryError::Internal(e.to_string()))?;
        let opts = MountOptions { mountpoint: cfg.mountpoint.clone(), threads: cfg.fuse_threads };
        let daemon = Daemon::start(od.clone(), opts, cfg.hydrate_bytes).await.map_err(|e| QueryError::Storage(e.to_string()))?;
        let fs = daemon.fs.clone();
        let storage = Storage::new(od, Some(fs.clone()), daemon.mountpoint().to_path_buf());
        let engine = Arc::new(Engine::new(storage, cfg.limits, cfg.policy));
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
        let token = cfg.token;
        let task = tokio::spawn(async move {
            let stopped = rx.map(|_| ()).shared();
            let serving = crate::service::serve(engine.clone(), token, listener, stopped.clone());
            // Open connections get a grace period to finish their requests;
            // a client that never answers (an idle HTTP/2 connection nobody
            // polls) must not keep the server from stopping.
            let served = tokio::select! {
                served = serving => served,
                () = stopped.then(|()| tokio::time::sleep(SHUTDOWN_GRACE)) => {
                    tracing::warn!("clients still connected {} s after shutdown began: closing their connections", SHUTDOWN_GRACE.as_secs());
                    Ok(())
                }
            };
            // Close the DuckDB workers while the mount is still there
            // (connections of clients that did not go away still hold the
            // engine itself).
            engine.close().await;
            served
        });
        Ok(LocalServer { addr, fs, stop, task, daemon })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn mountpoint(&self) -> &std::path::Path {
        self.daemon.mountpoint()
    }

    /// Stop serving, close the workers, then unmount (waits for open files).
    pub async fn shutdown(self) -> QueryResult<()> {
        let _ = self.stop.send(());
        let served = self.task.await?;
        self.daemon.stop().await.map_err(|e| QueryError::Storage(format!("unmount: {e}")))?;
        served
    }
}
