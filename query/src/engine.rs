//! The query engine: stock DuckDB workers over the mounted database files.
//!
//! - The latest state of a database is served by its single [`Writer`] (a
//!   read-write DuckDB on `<mount>/<db>/head.duckdb`): reads and writes
//!   alike, each request on a pooled connection, transactions
//!   ([`crate::writer::Session`]) on one connection across requests.
//! - Sealed snapshots (`snapshot_id`, time travel) are served by read-only
//!   DuckDBs on `<mount>/<db>/snapshots/<id>.duckdb`, pooled per snapshot.
//! - A database whose head another process holds (another server is its
//!   writer) is served read-only from its newest sealed snapshot.
//!
//! Every statement is parsed and classified by DuckDB first
//! ([`crate::statement`]): exactly one per request, nothing that changes
//! the server's state. Every DuckDB call (open, query, close) runs on a
//! blocking thread, never on a runtime thread: the files live on this
//! process's own FUSE mount, whose handlers need the runtime to answer.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use lru::LruCache;

use crate::admission::Admission;
use crate::error::{QueryError, QueryResult};
use crate::ingest::{Ingest, Spool};
use crate::prepared::{InFlight, Stopper};
use crate::results::{self, CollectSink, Fetching, Handles, Produced, StopGuard};
use crate::sandbox::{WorkerDb, WorkerLimits};
use crate::snapshots_fn::{self, SnapshotSource};
use crate::statement::{self, Kind};
use crate::storage::Storage;
use crate::writer::{CheckpointPolicy, Writer};

/// Largest result held in memory for a statement inside a transaction.
const SESSION_RESULT_BYTES: usize = 256 << 20;
/// How often statements are checked against their timeout.
const TIMEOUT_TICK: Duration = Duration::from_millis(100);
/// How often the writer's policy (checkpoints, idle transactions) runs.
const POLICY_TICK: Duration = Duration::from_millis(200);
/// How long a database whose head another process holds is served
/// read-only before this server tries to become its writer again.
const NOT_WRITER_RETRY: Duration = Duration::from_secs(2);

/// One statement to run.
#[derive(Default)]
pub struct Request {
    pub db: String,
    pub sql: String,
    /// Read this sealed snapshot instead of the latest state.
    pub snapshot: Option<i64>,
    /// Client rows readable by the statement.
    pub ingest: Option<Arc<Ingest>>,
    /// Run inside this transaction (empty: autocommit).
    pub session: String,
    /// This statement opens the transaction `session`.
    pub session_start: bool,
    /// The client's statement timeout (it can only lower the server's).
    pub timeout: Option<Duration>,
    /// The caller's token is read-only: statements that may change the
    /// database are refused (`PERMISSION_DENIED`).
    pub read_only: bool,
}

/// An executed statement: its result inline, or behind a handle.
pub struct Executed {
    pub schema: SchemaRef,
    /// The whole result (an IPC stream) when it fit in one chunk.
    pub inline: Option<Vec<u8>>,
    /// Otherwise the handle to Fetch it with.
    pub handle: Option<String>,
    pub snapshot_id: i64,
    pub is_write: bool,
    pub rows_affected: i64,
    pub catalog_version: u64,
}

type Reader = Arc<WorkerDb>;

enum WriterSlot {
    Open(Arc<Writer>),
    /// Another process holds the head (since, why).
    Elsewhere(Instant, String),
}

pub struct Engine {
    storage: Arc<Storage>,
    limits: WorkerLimits,
    policy: CheckpointPolicy,
    readers: Mutex<LruCache<(String, i64), Reader>>,
    writers: tokio::sync::Mutex<HashMap<String, WriterSlot>>,
    handles: Handles,
    in_flight: Arc<InFlight>,
    admission: Admission,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run DuckDB work on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> QueryResult<T> + Send + 'static) -> QueryResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// The registry of statements in flight, with its watchdog: one task that
/// times out statements past their deadline (needs a tokio runtime).
fn watched_in_flight() -> Arc<InFlight> {
    let in_flight = Arc::new(InFlight::default());
    let watched = Arc::downgrade(&in_flight);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TIMEOUT_TICK).await;
            let Some(in_flight) = watched.upgrade() else { return };
            in_flight.expire();
        }
    });
    in_flight
}

/// Close DuckDB databases on a blocking thread (closing touches the mount).
fn close_later<T: Send + 'static>(dbs: T) {
    tokio::task::spawn_blocking(move || drop(dbs));
}

impl Engine {
    pub fn new(storage: Storage, limits: WorkerLimits, policy: CheckpointPolicy) -> Self {
        let admission = Admission::new(limits.max_statements, limits.admission_wait);
        Engine {
            storage: Arc::new(storage),
            limits,
            policy,
            readers: Mutex::new(LruCache::new(NonZeroUsize::new(16).expect("non-zero"))),
            writers: tokio::sync::Mutex::default(),
            handles: Handles::default(),
            in_flight: watched_in_flight(),
            admission,
        }
    }

    /// Statements running now (the load a worker reports to gateways).
    pub fn in_flight(&self) -> usize {
        self.in_flight.count()
    }

    /// Hits and misses of the storage caches so far (see `LayerStore::cache_lookups`).
    pub fn cache_lookups(&self) -> Vec<(&'static str, u64, u64)> {
        self.storage.layerd().store().cache_lookups()
    }

    /// The databases this engine is the writer of now, with their seal lag
    /// (how long their oldest unsealed commit has waited).
    pub async fn writing(&self) -> Vec<(String, Option<Duration>)> {
        let writers = self.writers.lock().await;
        let mut dbs: Vec<(String, Option<Duration>)> = writers
            .iter()
            .filter_map(|(db, w)| match w {
                WriterSlot::Open(w) => Some((db.clone(), w.seal_lag())),
                WriterSlot::Elsewhere(..) => None,
            })
            .collect();
        dbs.sort();
        dbs
    }

    /// A new spool for rows a client uploads with a statement.
    pub fn new_spool(&self) -> QueryResult<Spool> {
        Spool::new(&self.limits.temp_dir.join("ingest"))
    }

    fn snapshot_source(&self, db: &str) -> SnapshotSource {
        SnapshotSource { od: self.storage.layerd().clone(), rt: tokio::runtime::Handle::current(), db: db.to_string() }
    }

    /// The pooled read-only database of snapshot `id`.
    async fn reader(&self, db: &str, id: i64) -> QueryResult<Reader> {
        let key = (db.to_string(), id);
        if let Some(s) = lock(&self.readers).get(&key).cloned() {
            return Ok(s);
        }
        let (path, limits, source) = (self.storage.snapshot_path(db, id), self.limits.clone(), self.snapshot_source(db));
        let opened = blocking(move || {
            let wdb = WorkerDb::open(&path, true, &limits, "readers", &[])?;
            wdb.with_root(|c| snapshots_fn::register(c, &source))?;
            Ok(Arc::new(wdb))
        })
        .await?;
        let mut readers = lock(&self.readers);
        if let Some(raced) = readers.get(&key).cloned() {
            drop(readers);
            close_later(opened);
            return Ok(raced);
        }
        if let Some(evicted) = readers.push(key, opened.clone()) {
            close_later(evicted);
        }
        Ok(opened)
    }

    /// The writer of `db`, opened on first use; `None` while another
    /// process holds its head. Opened under the writers lock: two DuckDB
    /// instances on one file in one process would not see each other's
    /// (process-local) file locks.
    async fn writer(&self, db: &str) -> QueryResult<Option<Arc<Writer>>> {
        let mut writers = self.writers.lock().await;
        if matches!(writers.get(db), Some(WriterSlot::Open(_))) && self.storage.is_fenced(db) {
            // Another process took this database's writer lease over: this
            // DuckDB can never commit a snapshot again. Close it.
            tracing::error!(db, "this server lost the writer lease: closing its writer");
            if let Some(WriterSlot::Open(w)) = writers.remove(db) {
                close_later(w);
            }
        }
        match writers.get(db) {
            Some(WriterSlot::Open(w)) => return Ok(Some(w.clone())),
            Some(WriterSlot::Elsewhere(since, _)) if since.elapsed() < NOT_WRITER_RETRY => return Ok(None),
            _ => {}
        }
        // Unknown databases are errors that say so (the head would create one).
        self.storage.require_database(db).await?;
        let (path, limits, source, name) = (self.storage.head_path(db), self.limits.clone(), self.snapshot_source(db), format!("writer-{db}"));
        let extra = [("checkpoint_threshold", format!("{}b", self.policy.wal_bytes))];
        let (storage, head_db) = (self.storage.clone(), db.to_string());
        let opened = blocking(move || {
            if !storage.hold_head(&head_db)? {
                return Ok(None);
            }
            let wdb = WorkerDb::open(&path, false, &limits, &name, &extra)?;
            wdb.install_ingest_scan()?;
            wdb.with_root(|c| snapshots_fn::register(c, &source))?;
            Ok(Some(wdb))
        })
        .await?;
        let Some(wdb) = opened else {
            tracing::info!(db, "another process holds the writer lease: serving sealed snapshots read-only");
            let why = "another server holds its writer lease".to_string();
            writers.insert(db.to_string(), WriterSlot::Elsewhere(Instant::now(), why));
            return Ok(None);
        };
        let w = Arc::new(Writer::new(db, wdb));
        writers.insert(db.to_string(), WriterSlot::Open(w.clone()));
        self.start_policy(&w);
        Ok(Some(w))
    }

    /// The writer's background duties: checkpoints by policy, rolling back
    /// idle transactions, sealing again what failed to seal.
    fn start_policy(&self, writer: &Arc<Writer>) {
        let (weak, policy, storage): (Weak<Writer>, _, _) = (Arc::downgrade(writer), self.policy.clone(), self.storage.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLICY_TICK).await;
                let Some(w) = weak.upgrade() else { return };
                w.expire_sessions(policy.session_idle);
                if w.checkpoint_due(&policy) {
                    if let Err(e) = w.checkpoint("CHECKPOINT").await {
                        tracing::warn!(db = %w.name, error = %e, "policy checkpoint failed; retrying later");
                    }
                }
                storage.retry_failed_seal(&w.name).await;
            }
        });
    }

    /// Run one statement.
    pub async fn execute(&self, req: Request) -> QueryResult<Executed> {
        crate::shape::check(&req.sql, self.limits.max_set_operations)?;
        if req.snapshot.is_some() && !req.session.is_empty() {
            return Err(QueryError::Invalid("a transaction (session_id) reads the latest state: it cannot also name a snapshot".into()));
        }
        if let Some(id) = req.snapshot {
            let id = self.storage.resolve(&req.db, Some(id)).await?;
            return self.read_snapshot(req, id, id as u64).await;
        }
        let Some(writer) = self.writer(&req.db).await? else {
            if !req.session.is_empty() {
                return Err(self.not_writer(&req.db).await);
            }
            let latest = self.storage.resolve(&req.db, None).await?;
            return self.read_snapshot(req, latest, latest as u64).await;
        };
        if !req.session.is_empty() {
            self.check_lease(&req.db)?;
            return self.in_session(&writer, req).await;
        }
        // Classified and run in one go on one pooled connection: writes only
        // while this server surely holds the lease; transaction control and
        // CHECKPOINT are answered here instead.
        let (storage, db, read_only) = (self.storage.clone(), req.db.clone(), req.read_only);
        let gate = move |kind: Kind| -> QueryResult<bool> {
            refuse_if_read_only(read_only, kind)?;
            if kind.is_write() && !storage.lease_valid(&db) {
                return Err(QueryError::LeaseUncertain(db.clone()));
            }
            Ok(!matches!(kind, Kind::Begin | Kind::Commit | Kind::Rollback | Kind::Checkpoint))
        };
        let timeout = self.timeout(&req);
        let Request { sql, ingest, .. } = req;
        match run_pooled(writer.db.clone(), sql.clone(), ingest, self.admit(timeout).await?, gate).await? {
            Pooled::Deferred(Kind::Checkpoint) => self.checkpoint(&writer, &sql).await,
            Pooled::Deferred(_) => Err(QueryError::Invalid(
                "transaction control outside a session: a transaction spans several requests, so send its statements with one session_id \
                 (the extension does this for BEGIN ... COMMIT)"
                    .into(),
            )),
            Pooled::Ran(kind, produced) => {
                // A statement is committed when its (autocommit) result is complete.
                if produced.rest.is_none() {
                    writer.committed(kind);
                }
                self.executed(&writer, kind, produced)
            }
        }
    }

    /// Writes are acknowledged only while this server surely is the writer.
    fn check_lease(&self, db: &str) -> QueryResult<()> {
        if self.storage.lease_valid(db) {
            return Ok(());
        }
        Err(QueryError::LeaseUncertain(db.to_string()))
    }

    async fn classify(&self, db: &Arc<WorkerDb>, sql: &str, ingest: Option<&Arc<Ingest>>) -> QueryResult<Kind> {
        let (db, sql, ingest) = (db.clone(), sql.to_string(), ingest.cloned());
        blocking(move || db.classify(&sql, ingest.as_ref())?.check_allowed()).await
    }

    /// Why writes to `db` are refused here.
    async fn not_writer(&self, db: &str) -> QueryError {
        let why = match self.writers.lock().await.get(db) {
            Some(WriterSlot::Elsewhere(_, why)) => why.clone(),
            _ => String::new(),
        };
        QueryError::NotWriter { db: db.to_string(), why }
    }

    async fn read_snapshot(&self, req: Request, id: i64, catalog_version: u64) -> QueryResult<Executed> {
        if req.ingest.is_some() || !req.session.is_empty() {
            return Err(QueryError::WriteToSnapshot(id));
        }
        let reader = self.reader(&req.db, id).await?;
        let timeout = self.timeout(&req);
        let read_only = req.read_only;
        let gate = move |kind: Kind| -> QueryResult<bool> {
            refuse_if_read_only(read_only, kind)?;
            Ok(!kind.is_write())
        };
        let produced = match run_pooled(reader, req.sql, None, self.admit(timeout).await?, gate).await? {
            Pooled::Ran(_, produced) => produced,
            Pooled::Deferred(_) => return Err(if req.snapshot.is_some() { QueryError::WriteToSnapshot(id) } else { self.not_writer(&req.db).await }),
        };
        let (inline, handle) = self.deliver(produced.first.bytes, produced.rest);
        Ok(Executed { schema: produced.schema, inline, handle, snapshot_id: id, is_write: false, rows_affected: 0, catalog_version })
    }

    /// A statement inside the transaction `req.session`.
    async fn in_session(&self, writer: &Arc<Writer>, req: Request) -> QueryResult<Executed> {
        // Planned on the transaction's own connection (which sees the tables
        // it created); its first statement on a pooled one.
        let kind = if req.session_start {
            self.classify(&writer.db, &req.sql, req.ingest.as_ref()).await?
        } else {
            let (s, sql, ingest) = (writer.session(&req.session)?, req.sql.clone(), req.ingest.clone());
            blocking(move || lock(&s.conn).kind(&sql, ingest.as_ref())?.check_allowed()).await?
        };
        refuse_if_read_only(req.read_only, kind)?;
        match kind {
            Kind::Commit | Kind::Rollback => {
                writer.end_session(&req.session, &req.sql, kind == Kind::Commit).await?;
                let produced = results::collected(crate::ipc::empty_schema(), vec![Ok(empty_result()?)])?;
                return self.executed(writer, kind, produced);
            }
            Kind::Begin if !req.session_start => return Err(QueryError::Invalid(format!("session '{}' is already in a transaction", req.session))),
            Kind::Checkpoint => return Err(QueryError::Invalid("CHECKPOINT runs outside transactions".into())),
            _ => {}
        }
        let session = if req.session_start { writer.begin_session(&req.session).await? } else { writer.session(&req.session)? };
        if kind == Kind::Begin {
            // BEGIN opened the session: nothing else to run.
            let produced = results::collected(crate::ipc::empty_schema(), vec![Ok(empty_result()?)])?;
            return self.executed(writer, kind, produced);
        }
        session.touch(kind);
        let stop = self.admit(self.timeout(&req)).await?;
        let _stop_guard = StopGuard(stop.clone());
        let Request { sql, ingest, .. } = req;
        let s = session.clone();
        let (schema, chunks) = blocking(move || {
            let mut conn = lock(&s.conn);
            let (tx, mut rx) = tokio::sync::oneshot::channel();
            let mut sink = CollectSink::new(SESSION_RESULT_BYTES);
            results::produce(&mut conn, &sql, ingest.as_ref(), &stop, tx, &mut sink);
            let schema = rx.try_recv().map_err(|_| QueryError::Internal("the statement did not start".into()))??;
            Ok((schema, sink.chunks))
        })
        .await?;
        session.touch(kind);
        let produced = results::collected(schema, chunks)?;
        self.executed(writer, kind, produced)
    }

    /// `CHECKPOINT`: seal a snapshot now; the response names it.
    async fn checkpoint(&self, writer: &Arc<Writer>, sql: &str) -> QueryResult<Executed> {
        writer.checkpoint(sql).await?;
        self.storage.settle(&writer.name).await?;
        let produced = results::collected(crate::ipc::empty_schema(), vec![Ok(empty_result()?)])?;
        self.executed(writer, Kind::Checkpoint, produced)
    }

    fn executed(&self, writer: &Writer, kind: Kind, produced: Produced) -> QueryResult<Executed> {
        let rows_affected = if kind.is_write() { produced.count() } else { 0 };
        let schema = produced.schema.clone();
        let (inline, handle) = self.deliver(produced.first.bytes, produced.rest);
        Ok(Executed {
            schema,
            inline,
            handle,
            snapshot_id: self.storage.sealed_snapshot(&writer.name).unwrap_or(0),
            is_write: kind.is_write(),
            rows_affected,
            catalog_version: writer.catalog_version(),
        })
    }

    /// A complete result goes inline; the rest of a longer one waits for Fetch.
    /// A statement's timeout: the server's, or the client's if shorter.
    /// Wait for an admission slot; the statement's stopper holds it.
    async fn admit(&self, timeout: Duration) -> QueryResult<Stopper> {
        let slot = self.admission.admit().await?;
        Ok(self.in_flight.stopper(timeout, Some(slot)))
    }

    fn timeout(&self, req: &Request) -> Duration {
        req.timeout.map_or(self.limits.statement_timeout, |t| t.min(self.limits.statement_timeout))
    }

    fn deliver(&self, first: Vec<u8>, rest: Option<results::Rest>) -> (Option<Vec<u8>>, Option<String>) {
        match rest {
            None => (Some(first), None),
            Some(rx) => (None, Some(self.handles.park(first, rx))),
        }
    }

    /// Close every DuckDB this engine opened (at shutdown): results waiting
    /// for Fetch are dropped (stopping their queries) and the databases are
    /// closed as soon as no running statement holds them, even while
    /// clients still hold connections to the service.
    pub async fn close(&self) {
        self.in_flight.stop_all();
        self.handles.clear();
        let writers: Vec<WriterSlot> = self.writers.lock().await.drain().map(|(_, w)| w).collect();
        let mut readers = Vec::new();
        {
            let mut cache = lock(&self.readers);
            while let Some((_, r)) = cache.pop_lru() {
                readers.push(r);
            }
        }
        let _ = tokio::task::spawn_blocking(move || drop((writers, readers))).await;
    }

    /// The rest of a result, by handle (once).
    pub fn fetch(&self, handle: &str) -> QueryResult<Fetching> {
        self.handles.take(handle)
    }

    /// Run `CHECKPOINT` on `db`'s writer if this engine has it open (for
    /// `openduck seal` through the daemon).
    pub async fn checkpoint_db(&self, db: &str) -> QueryResult<()> {
        let writer = match self.writers.lock().await.get(db) {
            Some(WriterSlot::Open(w)) => w.clone(),
            _ => return Ok(()),
        };
        writer.checkpoint("CHECKPOINT").await
    }
}

/// What [`run_pooled`] did with a statement.
enum Pooled {
    Ran(Kind, Produced),
    /// Its kind is not run on a pooled connection (the gate said so).
    Deferred(Kind),
}

/// Classify `sql` and, if `gate` lets its kind run here, run it, all on one
/// pooled connection of `db` in one blocking task (its plan is made once
/// and serves both); the connection goes back to the pool if the statement
/// left it clean. What the sandbox refuses is refused before anything runs.
/// A read-only token may run reads and transaction control, nothing else.
fn refuse_if_read_only(read_only: bool, kind: Kind) -> QueryResult<()> {
    if !read_only || !kind.is_write() {
        return Ok(());
    }
    Err(QueryError::ReadOnlyToken(match kind {
        Kind::Dml => "INSERT/UPDATE/DELETE",
        Kind::Ddl => "CREATE/ALTER/DROP",
        Kind::Checkpoint => "CHECKPOINT",
        _ => "these",
    }))
}

async fn run_pooled(
    db: Arc<WorkerDb>,
    sql: String,
    ingest: Option<Arc<Ingest>>,
    stop: Stopper,
    gate: impl FnOnce(Kind) -> QueryResult<bool> + Send + 'static,
) -> QueryResult<Pooled> {
    let (kind_tx, kind_rx) = tokio::sync::oneshot::channel::<(Kind, bool)>();
    let produced = results::start(stop, move |stop, started, sink| {
        let mut conn = match db.checkout() {
            Ok(c) => c,
            Err(e) => return drop(started.send(Err(e))),
        };
        let decided = conn.kind(&sql, ingest.as_ref()).and_then(|k| k.check_allowed()).and_then(|k| Ok((k, gate(k)?)));
        let kind = match decided {
            Ok((kind, true)) => kind,
            Ok((kind, false)) => {
                db.release(conn);
                let _ = kind_tx.send((kind, false));
                return;
            }
            Err(e) => {
                db.release(conn);
                return drop(started.send(Err(e)));
            }
        };
        let _ = kind_tx.send((kind, true));
        let completed = results::produce(&mut conn, &sql, ingest.as_ref(), stop, started, sink);
        if completed && statement::leaves_connection_clean(kind, &sql) {
            db.release(conn);
        }
    })
    .await;
    match kind_rx.await {
        Ok((kind, false)) => Ok(Pooled::Deferred(kind)),
        Ok((kind, true)) => Ok(Pooled::Ran(kind, produced?)),
        Err(_) => Err(produced.err().unwrap_or_else(|| QueryError::Internal("a statement ran without a kind".into()))),
    }
}

/// The result of a statement that returns nothing.
fn empty_result() -> QueryResult<results::Chunk> {
    let schema = crate::ipc::empty_schema();
    Ok(results::Chunk { bytes: crate::ipc::encode_all(&schema, &[])?, last: true })
}
