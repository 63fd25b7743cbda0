//! The single writer of one database: a read-write DuckDB on the mounted
//! head file (`<mount>/<db>/head.duckdb`).
//!
//! It serves the latest state of its database: every statement without a
//! snapshot id runs on a (pooled) connection to this one DuckDB, so a
//! commit is visible to the very next statement of every client (MVCC)
//! without any checkpoint. A commit is durable when DuckDB has appended it
//! to its WAL (a real local file beside the head) and `fdatasync`ed it.
//!
//! Snapshots are cut at DuckDB checkpoints (difffs seals each one), by a
//! [`CheckpointPolicy`]: when the WAL passes a size (DuckDB's own
//! `checkpoint_threshold`), when the database has been quiet for a while
//! after a commit, at the latest some time after the first unsealed commit,
//! and whenever a client sends `CHECKPOINT`.
//!
//! Transactions that span requests are [`Session`]s: a connection with an
//! open DuckDB transaction, ended by COMMIT/ROLLBACK or rolled back when
//! idle past a timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};



use crate::error::{QueryError, QueryResult};
use crate::sandbox::{DbConn, WorkerDb};
use crate::statement::Kind;

/// When the writer checkpoints on its own.
#[derive(Clone, Debug)]
pub struct CheckpointPolicy {
    /// Checkpoint once no commit came for this long.
    pub idle: Duration,
    /// ... or once the oldest unsealed commit is this old, however busy.
    pub max_delay: Duration,
    /// ... or once the WAL is this large (DuckDB's `checkpoint_threshold`).
    pub wal_bytes: u64,
    /// Roll back a transaction whose client sent nothing for this long.
    pub session_idle: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            idle: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            wal_bytes: 16 << 20,
            session_idle: Duration::from_secs(60),
        }
    }
}

/// How long a CHECKPOINT waits for open write transactions to finish.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A transaction spanning several requests.
pub struct Session {
    pub conn: Mutex<DbConn>,
    last_used: Mutex<Instant>,
    /// A statement in it may have changed the schema.
    ddl: AtomicBool,
    /// A statement in it may have changed data.
    wrote: AtomicBool,
}

impl Session {
    pub fn touch(&self, kind: Kind) {
        *lock(&self.last_used) = Instant::now();
        if kind.may_change_catalog() {
            self.ddl.store(true, Ordering::SeqCst);
        }
        if kind.is_write() {
            self.wrote.store(true, Ordering::SeqCst);
        }
    }
}

/// Commits not yet in a checkpoint.
#[derive(Default)]
struct Unsealed {
    first: Option<Instant>,
    last: Option<Instant>,
}

pub struct Writer {
    pub name: String,
    pub db: Arc<WorkerDb>,
    catalog_version: AtomicU64,
    unsealed: Mutex<Unsealed>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Held while a checkpoint runs (policy and clients alike).
    checkpointing: tokio::sync::Mutex<()>,
}

impl Writer {
    pub fn new(name: &str, db: WorkerDb) -> Self {
        // A fresh value per writer instance: after a restart, clients reload
        // their catalog caches.
        let mut first = [0u8; 8];
        first.copy_from_slice(&crate::ids::random_bytes()[..8]);
        Writer {
            name: name.to_string(),
            db: Arc::new(db),
            catalog_version: AtomicU64::new(u64::from_le_bytes(first)),
            unsealed: Mutex::default(),
            sessions: Mutex::default(),
            checkpointing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn catalog_version(&self) -> u64 {
        self.catalog_version.load(Ordering::SeqCst)
    }

    /// A statement of `kind` committed.
    pub fn committed(&self, kind: Kind) {
        if kind.may_change_catalog() {
            self.catalog_version.fetch_add(1, Ordering::SeqCst);
        }
        if kind.is_write() {
            let now = Instant::now();
            let mut u = lock(&self.unsealed);
            u.first.get_or_insert(now);
            u.last = Some(now);
        }
    }

    /// How long the oldest commit not yet in a snapshot has waited (the
    /// seal lag: what the loss of this machine's disk would lose).
    pub fn seal_lag(&self) -> Option<Duration> {
        lock(&self.unsealed).first.map(|first| first.elapsed())
    }

    /// Whether the policy wants a checkpoint now.
    pub fn checkpoint_due(&self, policy: &CheckpointPolicy) -> bool {
        let u = lock(&self.unsealed);
        match (u.first, u.last) {
            (Some(first), Some(last)) => last.elapsed() >= policy.idle || first.elapsed() >= policy.max_delay,
            _ => false,
        }
    }

    /// Run `CHECKPOINT` (on a blocking thread); `sql` is the client's own
    /// statement (e.g. `FORCE CHECKPOINT`) or the policy's.
    pub async fn checkpoint(self: &Arc<Self>, sql: &str) -> QueryResult<()> {
        let _one = self.checkpointing.lock().await;
        let started = Instant::now();
        let (me, sql) = (self.clone(), sql.to_string());
        tokio::task::spawn_blocking(move || {
            let mut conn = me.db.connect()?;
            // DuckDB refuses to checkpoint while another write transaction is
            // open: such transactions are short (autocommit), so try again.
            let deadline = Instant::now() + CHECKPOINT_WAIT;
            loop {
                match conn.conn.execute_batch(&sql) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.to_string().contains("other write transactions") && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) if e.to_string().contains("other write transactions") => {
                        return Err(QueryError::Busy(format!("CHECKPOINT waited {CHECKPOINT_WAIT:?} for open write transactions: {e}")))
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .await??;
        // Commits that raced the checkpoint may be in it or in the WAL: only
        // those before it started are surely sealed.
        let mut u = lock(&self.unsealed);
        if u.last.is_some_and(|l| l <= started) {
            *u = Unsealed::default();
        } else if u.first.is_some() {
            u.first = u.last;
        }
        Ok(())
    }

    /// The transaction `id`, opened now unless it is open already (a client
    /// says `start` until one of its statements succeeded).
    pub async fn begin_session(self: &Arc<Self>, id: &str) -> QueryResult<Arc<Session>> {
        if id.len() < 16 || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(QueryError::Invalid("session_id must be 16-128 characters [A-Za-z0-9_-] (random, chosen by the client)".into()));
        }
        if let Some(open) = lock(&self.sessions).get(id) {
            return Ok(open.clone());
        }
        let me = self.clone();
        let conn = tokio::task::spawn_blocking(move || -> QueryResult<DbConn> {
            let mut conn = me.db.connect()?;
            conn.conn.execute_batch("BEGIN TRANSACTION")?;
            Ok(conn)
        })
        .await??;
        let session = Arc::new(Session { conn: Mutex::new(conn), last_used: Mutex::new(Instant::now()), ddl: AtomicBool::new(false), wrote: AtomicBool::new(false) });
        lock(&self.sessions).insert(id.to_string(), session.clone());
        Ok(session)
    }

    pub fn session(&self, id: &str) -> QueryResult<Arc<Session>> {
        lock(&self.sessions).get(id).cloned().ok_or_else(|| QueryError::SessionGone(id.to_string()))
    }

    /// End a transaction with `COMMIT` or `ROLLBACK` (`sql`, as the client sent it).
    pub async fn end_session(self: &Arc<Self>, id: &str, sql: &str, commit: bool) -> QueryResult<()> {
        let session = match lock(&self.sessions).remove(id) {
            Some(s) => s,
            // Rolling back what is gone already is what the client wanted.
            None if !commit => return Ok(()),
            None => return Err(QueryError::SessionGone(id.to_string())),
        };
        let sql = sql.to_string();
        let s = session.clone();
        tokio::task::spawn_blocking(move || lock(&s.conn).conn.execute_batch(&sql)).await??;
        if commit {
            if session.ddl.load(Ordering::SeqCst) {
                self.committed(Kind::Ddl);
            }
            if session.wrote.load(Ordering::SeqCst) {
                self.committed(Kind::Dml);
            }
        }
        Ok(())
    }

    /// Roll back transactions idle past `timeout` (dropping the connection
    /// rolls its transaction back; done on a blocking thread).
    pub fn expire_sessions(&self, timeout: Duration) {
        let mut expired = Vec::new();
        lock(&self.sessions).retain(|id, s| {
            let keep = lock(&s.last_used).elapsed() < timeout;
            if !keep {
                tracing::info!(db = %self.name, session = %id, "rolling back a transaction idle for {timeout:?}");
                expired.push(s.clone());
            }
            keep
        });
        if !expired.is_empty() {
            tokio::task::spawn_blocking(move || drop(expired));
        }
    }
}
