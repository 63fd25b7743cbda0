//! A small control socket of the running daemon (`<data dir>/run/difffs.sock`),
//! so that CLI commands which need the head (held by the daemon) can run
//! through it. Protocol: one JSON request line, one JSON response line.
//!
//! `{"op":"seal","db":"mydb"}` → `{"ok":true,"snapshot":{…},"pending_wal_bytes":N}`:
//! every completed checkpoint of an attached writer is already a snapshot.
//! When the writer runs in this process (`openduck serve`), a seal first has
//! it checkpoint (so commits still in DuckDB's WAL are sealed too); then it
//! waits for the seal in flight and reports the newest snapshot. With an
//! outside writer, commits still only in its WAL are reported, not sealed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::fs::DiffFs;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("difffs.sock")
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no daemon is listening on {0}")]
    NoDaemon(PathBuf),
    #[error("daemon control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("daemon: {0}")]
    Remote(String),
}

/// What a seal through the daemon returns.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SealReply {
    /// The newest snapshot (none if the writer never completed a checkpoint).
    pub snapshot: Option<i64>,
    pub size: u64,
    /// Bytes of commits still only in DuckDB's WAL.
    pub pending_wal_bytes: u64,
}

async fn handle(fs: &DiffFs, line: &str) -> serde_json::Value {
    let req: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let result: Result<serde_json::Value, String> = match (req["op"].as_str(), req["db"].as_str()) {
        (Some("seal"), Some(db)) => {
            let head = fs.open_heads().into_iter().find(|h| h.head.db() == db);
            match head {
                None => Err(format!("the daemon does not hold the head of '{db}'")),
                Some(h) => match checkpoint(fs, db).await.and(h.latest_checkpoint(fs.layerd()).await.map_err(|e| e.to_string())) {
                    Ok(s) => {
                        let wal = std::fs::metadata(fs.side_file(db, "head.duckdb.wal")).map(|m| m.len()).unwrap_or(0);
                        Ok(serde_json::json!({
                            "snapshot": s.as_ref().map(|s| s.id),
                            "size": s.as_ref().map(|s| s.size).unwrap_or(0),
                            "pending_wal_bytes": wal,
                        }))
                    }
                    Err(e) => Err(e),
                },
            }
        }
        _ => Err(format!("unknown request: {line}")),
    };
    match result {
        Ok(v) => serde_json::json!({ "ok": true, "result": v }),
        Err(e) => serde_json::json!({ "ok": false, "error": e }),
    }
}

/// Checkpoint `db`'s writer if it runs in this process.
async fn checkpoint(fs: &DiffFs, db: &str) -> Result<(), String> {
    match fs.checkpoint_hook() {
        Some(hook) => hook(db.to_string()).await,
        None => Ok(()),
    }
}

/// Serve the control socket until the task is dropped.
pub fn serve(fs: Arc<DiffFs>, data_dir: &Path) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(data_dir);
    std::fs::create_dir_all(path.parent().unwrap_or(data_dir))?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let fs = fs.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply = handle(&fs, &line).await;
                    if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    }))
}

/// Ask the daemon for a seal of `db`.
pub async fn seal_via_daemon(data_dir: &Path, db: &str) -> Result<SealReply, ControlError> {
    let path = socket_path(data_dir);
    let stream = UnixStream::connect(&path).await.map_err(|_| ControlError::NoDaemon(path.clone()))?;
    let (r, mut w) = stream.into_split();
    w.write_all(format!("{}\n", serde_json::json!({ "op": "seal", "db": db })).as_bytes()).await?;
    let line = BufReader::new(r).lines().next_line().await?.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| ControlError::Remote(e.to_string()))?;
    if v["ok"].as_bool() != Some(true) {
        return Err(ControlError::Remote(v["error"].as_str().unwrap_or("malformed reply").to_string()));
    }
    serde_json::from_value(v["result"].clone()).map_err(|e| ControlError::Remote(e.to_string()))
}
