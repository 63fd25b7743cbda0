//! The sandbox: one DuckDB database of a worker, opened through DuckDB's C API.
//!
//! Statements run on duckdb-rs connections made from it (one per request or
//! per transaction). Besides those, the database keeps a raw connection of
//! its own on which every statement is first parsed and prepared (never
//! run): that is how the server knows, from DuckDB's own parser and binder
//! and not from string matching, that a request holds exactly one statement
//! and what kind of statement it is (see [`crate::statement`]).
//!
//! The sandbox (remote SQL must not reach the server's files, network,
//! extensions or settings): external access off (no file readers/writers,
//! COPY, httpfs), extension install/load off, and the configuration locked,
//! so `SET` and setting `PRAGMA`s fail too. Spill files go to a directory
//! outside the mount.

use std::ffi::{c_char, CStr, CString};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Mutex;

use duckdb::ffi;
use duckdb::Connection;
use lru::LruCache;

use crate::error::{QueryError, QueryResult};
use crate::ingest_scan::IngestSlot;
use crate::statement::{self, Kind};

#[derive(Clone, Debug)]
pub struct WorkerLimits {
    /// Spill directory (must not be inside the mount).
    pub temp_dir: PathBuf,
    /// DuckDB `memory_limit` per worker database, e.g. "2GB".
    pub memory_limit: String,
    /// DuckDB threads per worker database.
    pub threads: i64,
}

/// Statement kinds remembered per database.
const KIND_CACHE: NonZeroUsize = NonZeroUsize::new(1024).expect("non-zero");

/// Idle connections kept per database.
const IDLE_CONNECTIONS: usize = 16;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;

/// A connection to a worker database, and the slot through which a
/// statement on it reads the rows uploaded with it.
pub struct DbConn {
    pub conn: Connection,
    pub ingest: IngestSlot,
}

/// A raw `duckdb_connection`, used only to parse and prepare.
struct RawConnection(ffi::duckdb_connection);

// SAFETY: a DuckDB connection may be used from any thread, one at a time
// (guarded by the Mutex in WorkerDb).
unsafe impl Send for RawConnection {}

impl Drop for RawConnection {
    fn drop(&mut self) {
        // SAFETY: the connection was opened by duckdb_connect and is closed once.
        unsafe { ffi::duckdb_disconnect(&mut self.0) };
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
    classifier: Mutex<RawConnection>,
    /// Kinds of statements seen before, by their text (a statement's kind
    /// depends on its text alone; clients repeat statements, e.g. every
    /// INSERT through ATTACH has the same text): parsing and binding once.
    kinds: Mutex<LruCache<String, Kind>>,
    /// Connections between requests, with their cached prepared statements.
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
            let mut con: ffi::duckdb_connection = ptr::null_mut();
            if ffi::duckdb_connect(db.0, &mut con) != ffi::DuckDBSuccess {
                return Err(QueryError::Internal(format!("connecting to {}", path.display())));
            }
            let classifier = RawConnection(con);
            let root = Connection::open_from_raw(db.0).map_err(QueryError::from_duckdb)?;
            Ok(WorkerDb {
                root: Mutex::new(root),
                classifier: Mutex::new(classifier),
                kinds: Mutex::new(LruCache::new(KIND_CACHE)),
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
        let conn = lock(&self.root).try_clone().map_err(QueryError::from_duckdb)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(DbConn { conn, ingest: IngestSlot::default() })
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

    /// Parse and prepare `sql` (without running it): exactly one statement,
    /// and of which kind.
    pub fn classify(&self, sql: &str) -> QueryResult<Kind> {
        if let Some(kind) = lock(&self.kinds).get(sql) {
            return Ok(*kind);
        }
        let c_sql = cstring(sql)?;
        let con = lock(&self.classifier);
        // SAFETY: the extracted statements and the prepared statement are
        // destroyed on every path; `con` is held for the whole call.
        unsafe {
            let mut extracted: ffi::duckdb_extracted_statements = ptr::null_mut();
            let n = ffi::duckdb_extract_statements(con.0, c_sql.as_ptr(), &mut extracted);
            let outcome = if n == 0 {
                let err = ffi::duckdb_extract_statements_error(extracted);
                let msg = if err.is_null() { String::new() } else { CStr::from_ptr(err).to_string_lossy().into_owned() };
                if msg.is_empty() {
                    Err(QueryError::Invalid("the request holds no SQL statement".into()))
                } else {
                    Err(QueryError::Sql(msg))
                }
            } else if n > 1 {
                Err(QueryError::Invalid(format!(
                    "a request runs exactly one SQL statement, this one holds {n}: send them one by one (in a session for one transaction)"
                )))
            } else {
                let mut stmt: ffi::duckdb_prepared_statement = ptr::null_mut();
                let rc = ffi::duckdb_prepare_extracted_statement(con.0, extracted, 0, &mut stmt);
                let ty = (rc == ffi::DuckDBSuccess).then(|| ffi::duckdb_prepared_statement_type(stmt));
                ffi::duckdb_destroy_prepare(&mut stmt);
                let kind = statement::kind_of(ty, sql);
                if ty.is_some() {
                    // Not when it failed to bind: it may bind later (a table created meanwhile).
                    lock(&self.kinds).put(sql.to_string(), kind);
                }
                Ok(kind)
            };
            ffi::duckdb_destroy_extracted(&mut extracted);
            outcome
        }
    }
}
