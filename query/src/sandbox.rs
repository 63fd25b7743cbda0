//! The sandbox: one DuckDB database of a worker, opened through DuckDB's C API.
//!
//! Statements run on connections of it (pooled between requests, or held
//! by a transaction), each planned once per connection
//! ([`crate::prepared`]): the plan tells, from DuckDB's own parser and
//! binder and not from string matching, that a request holds exactly one
//! statement and what kind of statement it is (see [`crate::statement`]),
//! before it runs.
//!
//! The sandbox (remote SQL must not reach the server's files, network,
//! extensions or settings): external access off (no file readers/writers,
//! COPY, httpfs), extension install/load off, and the configuration locked,
//! so `SET` and setting `PRAGMA`s fail too. Spill files go to a directory
//! outside the mount.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex};

use duckdb::ffi;
use duckdb::Connection;

use crate::error::{QueryError, QueryResult};
use crate::ingest::Ingest;
use crate::ingest_scan::{IngestScope, IngestSlot};
use crate::prepared;
use crate::statement::Kind;

#[derive(Clone, Debug)]
pub struct WorkerLimits {
    /// Spill directory (must not be inside the mount).
    pub temp_dir: PathBuf,
    /// DuckDB `memory_limit` per worker database, e.g. "2GB".
    pub memory_limit: String,
    /// DuckDB threads per worker database.
    pub threads: i64,
    /// Longest a statement may run (its result streamed included).
    pub statement_timeout: std::time::Duration,
    /// Statements running (or streaming results) at once in the whole server.
    pub max_statements: usize,
    /// How long a statement waits for one of those slots before it is refused.
    pub admission_wait: std::time::Duration,
    /// Set operations (UNION, INTERSECT, EXCEPT) allowed in one statement:
    /// planning them takes quadratic time and cannot be interrupted.
    pub max_set_operations: usize,
}

impl WorkerLimits {
    /// Defaults for everything but the spill directory.
    pub fn new(temp_dir: PathBuf) -> Self {
        WorkerLimits {
            temp_dir,
            memory_limit: "2GB".into(),
            threads: 2,
            statement_timeout: std::time::Duration::from_secs(15 * 60),
            max_statements: 32,
            admission_wait: std::time::Duration::from_secs(30),
            max_set_operations: crate::shape::DEFAULT_MAX_SET_OPERATIONS,
        }
    }
}

/// Idle connections kept per database.
const IDLE_CONNECTIONS: usize = 16;

/// A connection to a worker database, and the slot through which a
/// statement on it reads the rows uploaded with it.
pub struct DbConn {
    pub conn: prepared::Connection,
    pub ingest: IngestSlot,
}

impl DbConn {
    /// The kind of `sql` run with `ingest` (planned on this connection).
    pub fn kind(&mut self, sql: &str, ingest: Option<&Arc<Ingest>>) -> QueryResult<Kind> {
        let _scope = ingest.map(|i| IngestScope::enter(&self.ingest, i));
        self.conn.kind(&statement_text(sql, ingest))
    }
}

/// The text a statement is planned and cached under: one planned for an
/// upload of other columns must not be reused for this one.
pub fn statement_text(sql: &str, ingest: Option<&Arc<Ingest>>) -> String {
    match ingest {
        Some(i) => format!("{sql}\n-- upload {}", i.fingerprint),
        None => sql.to_string(),
    }
}

struct RawDatabase(ffi::duckdb_database);

// SAFETY: a DuckDB database handle is thread-safe.
unsafe impl Send for RawDatabase {}
unsafe impl Sync for RawDatabase {}

impl Drop for RawDatabase {
    fn drop(&mut self) {
        // SAFETY: opened by duckdb_open_ext; connections keep the instance
        // alive on their own, so closing the handle first is safe.
        unsafe { ffi::duckdb_close(&mut self.0) };
    }
}

/// A sandboxed DuckDB database (fields drop in order: connections first).
pub struct WorkerDb {
    root: Mutex<Connection>,
    /// Connections between requests, with their cached plans.
    idle: Mutex<Vec<DbConn>>,
    _db: RawDatabase,
    path: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cstring(s: &str) -> QueryResult<CString> {
    CString::new(s).map_err(|_| QueryError::Invalid("a NUL byte in the statement or a setting".into()))
}

/// The settings of a worker database, in the order they must be applied:
/// paths and limits first, then access off, then the lock.
fn settings(limits: &WorkerLimits, read_only: bool, temp: &Path, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut s: Vec<(String, String)> = vec![
        ("access_mode".into(), if read_only { "READ_ONLY" } else { "READ_WRITE" }.into()),
        ("temp_directory".into(), temp.to_string_lossy().into_owned()),
        ("max_memory".into(), limits.memory_limit.clone()),
        ("threads".into(), limits.threads.to_string()),
    ];
    s.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    for (k, v) in [
        ("autoinstall_known_extensions", "false"),
        ("autoload_known_extensions", "false"),
        ("allow_community_extensions", "false"),
        ("enable_external_access", "false"),
        ("lock_configuration", "true"),
    ] {
        s.push((k.into(), v.into()));
    }
    s
}

impl WorkerDb {
    /// Open a sandboxed database on `path`. `extra` settings (e.g. the
    /// writer's `checkpoint_threshold`) are applied before the lock.
    pub fn open(path: &Path, read_only: bool, limits: &WorkerLimits, temp_name: &str, extra: &[(&str, String)]) -> QueryResult<WorkerDb> {
        let temp = limits.temp_dir.join(temp_name);
        std::fs::create_dir_all(&temp).map_err(|e| QueryError::Internal(format!("temp dir {}: {e}", temp.display())))?;
        let c_path = cstring(&path.to_string_lossy())?;
        let settings = settings(limits, read_only, &temp, extra);
        // SAFETY: plain use of DuckDB's C API; every handle is released on
        // every path (config here, database/connections by their wrappers).
        unsafe {
            let mut config: ffi::duckdb_config = ptr::null_mut();
            if ffi::duckdb_create_config(&mut config) != ffi::DuckDBSuccess {
                return Err(QueryError::Internal("duckdb_create_config failed".into()));
            }
            for (k, v) in &settings {
                let (ck, cv) = (cstring(k)?, cstring(v)?);
                if ffi::duckdb_set_config(config, ck.as_ptr(), cv.as_ptr()) != ffi::DuckDBSuccess {
                    ffi::duckdb_destroy_config(&mut config);
                    return Err(QueryError::Internal(format!("DuckDB setting {k}={v} refused")));
                }
            }
            let mut db: ffi::duckdb_database = ptr::null_mut();
            let mut err: *mut c_char = ptr::null_mut();
            let rc = ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, config, &mut err);
            ffi::duckdb_destroy_config(&mut config);
            if rc != ffi::DuckDBSuccess {
                let msg = if err.is_null() { "unknown error".to_string() } else { CStr::from_ptr(err).to_string_lossy().into_owned() };
                if !err.is_null() {
                    ffi::duckdb_free(err.cast());
                }
                return Err(QueryError::Storage(format!("opening {}: {msg}", path.display())));
            }
            let db = RawDatabase(db);
            let root = Connection::open_from_raw(db.0).map_err(QueryError::from_duckdb)?;
            Ok(WorkerDb {
                root: Mutex::new(root),
                idle: Mutex::new(Vec::new()),
                _db: db,
                path: path.to_path_buf(),
            })
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection functions and tables are registered on (they are
    /// visible to every connection of the database).
    pub fn with_root<T>(&self, f: impl FnOnce(&Connection) -> QueryResult<T>) -> QueryResult<T> {
        f(&lock(&self.root))
    }

    /// Make rows uploaded with a statement readable by it (writers only).
    pub fn install_ingest_scan(&self) -> QueryResult<()> {
        let root = lock(&self.root);
        // SAFETY: `_db` is open for as long as `self` lives.
        unsafe { crate::ingest_scan::install(self._db.0, &root) }
    }

    /// A new connection of its own (its session state dies with it).
    pub fn connect(&self) -> QueryResult<DbConn> {
        Ok(DbConn { conn: prepared::Connection::connect(self._db.0)?, ingest: IngestSlot::default() })
    }

    /// A connection from the pool (or a new one). Hand it back with
    /// [`WorkerDb::release`] only after a statement that cannot have
    /// changed its state.
    pub fn checkout(&self) -> QueryResult<DbConn> {
        match lock(&self.idle).pop() {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    pub fn release(&self, conn: DbConn) {
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }

    /// Parse and plan `sql` (without running it) on a pooled connection:
    /// exactly one statement, and of which kind. The connection goes back
    /// to the pool with the plan, so a run that follows on it plans nothing.
    pub fn classify(&self, sql: &str, ingest: Option<&Arc<Ingest>>) -> QueryResult<Kind> {
        let mut conn = self.checkout()?;
        let kind = conn.kind(sql, ingest);
        self.release(conn);
        kind
    }
}
