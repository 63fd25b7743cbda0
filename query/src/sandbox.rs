//! How workers open DuckDB: remote SQL must not reach the server's files,
//! network, extensions or settings. Every worker database is opened with
//! external access off (no file readers/writers, COPY, ATTACH, httpfs),
//! extension install/load off, and its configuration locked, so `SET` and
//! setting `PRAGMA`s fail too. Spill files go to a directory outside the
//! mount.

use std::path::{Path, PathBuf};

use duckdb::{AccessMode, Config, Connection};

use crate::error::{QueryError, QueryResult};

#[derive(Clone, Debug)]
pub struct WorkerLimits {
    /// Spill directory (must not be inside the mount).
    pub temp_dir: PathBuf,
    /// DuckDB `memory_limit` per worker database, e.g. "2GB".
    pub memory_limit: String,
    /// DuckDB threads per worker database.
    pub threads: i64,
}

fn config(limits: &WorkerLimits, read_only: bool, temp: &Path) -> duckdb::Result<Config> {
    let mode = if read_only { AccessMode::ReadOnly } else { AccessMode::ReadWrite };
    // Order matters: paths and limits first, then access off, then the lock.
    Config::default()
        .access_mode(mode)?
        .with("temp_directory", temp.to_string_lossy())?
        .max_memory(&limits.memory_limit)?
        .threads(limits.threads)?
        .enable_autoload_extension(false)?
        .with("autoinstall_known_extensions", "false")?
        .with("allow_community_extensions", "false")?
        .enable_external_access(false)?
        .with("lock_configuration", "true")
}

/// Open a sandboxed DuckDB database on `path`.
pub fn open(path: &Path, read_only: bool, limits: &WorkerLimits, temp_name: &str) -> QueryResult<Connection> {
    let temp = limits.temp_dir.join(temp_name);
    std::fs::create_dir_all(&temp).map_err(|e| QueryError::Internal(format!("temp dir {}: {e}", temp.display())))?;
    let cfg = config(limits, read_only, &temp).map_err(QueryError::from_duckdb)?;
    Connection::open_with_flags(path, cfg).map_err(|e| QueryError::Storage(format!("opening {}: {e}", path.display())))
}

/// True when DuckDB refused a statement only because the database is
/// read-only (the statement is a write: run it on the writer).
pub fn is_read_only_refusal(e: &duckdb::Error) -> bool {
    let m = e.to_string();
    m.contains("read-only mode") || m.contains("read only mode") || m.contains("in read-only")
}
