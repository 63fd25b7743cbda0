//! A real `openduck serve` in the test process: FUSE mount, DuckDB workers,
//! gRPC on loopback; and helpers to read results.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array};
use arrow::record_batch::RecordBatch;
use layerd::{Layerd, LayerdConfig};
use query::client::Client;
use query::local::{LocalServer, LocalServerConfig};
use query::sandbox::WorkerLimits;
use query::writer::CheckpointPolicy;

pub const TOKEN: &str = "test-token";

pub struct Server {
    pub inner: LocalServer,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
}

/// A policy that never checkpoints on its own (tests say when).
pub fn manual_checkpoints() -> CheckpointPolicy {
    CheckpointPolicy { idle: Duration::from_secs(3600), max_delay: Duration::from_secs(3600), ..CheckpointPolicy::default() }
}

pub async fn server() -> Server {
    server_with(manual_checkpoints(), |_| {}).await
}

/// A server whose metadata lives in `<dir>/meta/` and objects in
/// `<dir>/objects/` (so a test can take either away), with `policy`.
pub async fn server_with(policy: CheckpointPolicy, tune: impl FnOnce(&mut LayerdConfig)) -> Server {
    start(policy, tune, |_| {}).await
}

/// A server that accepts [`TOKEN`] (every right) and the tokens of `file`
/// (the `--tokens-file` format).
pub async fn server_with_tokens(file: &str) -> Server {
    start_with(manual_checkpoints(), |_| {}, |_| {}, file).await
}

/// A server with its worker limits tuned.
pub async fn server_limited(tune: impl FnOnce(&mut WorkerLimits)) -> Server {
    start(manual_checkpoints(), |_| {}, tune).await
}

async fn start(policy: CheckpointPolicy, tune: impl FnOnce(&mut LayerdConfig), tune_limits: impl FnOnce(&mut WorkerLimits)) -> Server {
    start_with(policy, tune, tune_limits, "").await
}

async fn start_with(
    policy: CheckpointPolicy,
    tune: impl FnOnce(&mut LayerdConfig),
    tune_limits: impl FnOnce(&mut WorkerLimits),
    tokens_file: &str,
) -> Server {
    let mut tokens = query::auth::Tokens::single(TOKEN.into());
    tokens.add_file(tokens_file, "tokens").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let mut cfg = LayerdConfig::new(dir.path().join("data"));
    cfg.metadata_url = Some(format!("sqlite://{}?mode=rwc", dir.path().join("meta/metadata.sqlite").display()));
    cfg.store_url = Some(format!("file://{}/", dir.path().join("objects").display()));
    tune(&mut cfg);
    let od = Arc::new(Layerd::open(cfg).await.unwrap());
    od.create_database("mydb").await.unwrap();
    let mut limits = WorkerLimits { memory_limit: "1GB".into(), ..WorkerLimits::new(dir.path().join("tmp")) };
    tune_limits(&mut limits);
    let cfg = LocalServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        access: query::service::Access { tokens: Some(tokens), tls: None },
        mountpoint: dir.path().join("mnt"),
        fuse_threads: 4,
        hydrate_bytes: 1 << 30,
        limits,
        policy,
        advertise: None,
    };
    let inner = LocalServer::start(od, cfg).await.unwrap();
    Server { endpoint: inner.endpoint(), inner, dir }
}

impl Server {
    pub async fn client(&self) -> Client {
        Client::connect(&self.endpoint, Some(TOKEN)).await.unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub async fn shutdown(self) {
        self.inner.shutdown().await.unwrap();
    }
}

pub fn ints(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_any().downcast_ref::<Int64Array>().expect("int64 column").clone();
            (0..a.len()).map(move |i| a.value(i))
        })
        .collect()
}

/// A directory made read-only for this process (root included) by a
/// read-only bind mount of itself, until dropped: an outage of the object
/// store or the metadata database, as the server sees it.
pub struct ReadOnlyDir(PathBuf);

impl ReadOnlyDir {
    pub fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let st = std::process::Command::new("mount").args(args).status().expect("mount(8) is needed for this test");
            assert!(st.success(), "mount {args:?} failed (this test needs root)");
        };
        let d = dir.to_str().unwrap();
        run(&["--bind", d, d]);
        run(&["-o", "remount,bind,ro", d]);
        ReadOnlyDir(dir)
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
