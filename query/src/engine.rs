//! The query engine: stock DuckDB workers over the mounted snapshot files.
//!
//! Reads run on a read-only DuckDB opened on `<mount>/<db>/snapshots/<id>.duckdb`
//! (pooled per snapshot; each query gets its own connection). A statement the
//! read-only worker refuses as a write is run by the database's single writer
//! on `<mount>/<db>/head.duckdb`, followed by CHECKPOINT, which difffs turns
//! into a new snapshot: the next read of "latest" sees the write.
//! Results stream through a bounded channel (backpressure); dropping the
//! receiver stops the query.
//!
//! Every DuckDB call (open, query, close) runs on a blocking thread, never on
//! a runtime thread: the files live on this process's own FUSE mount, whose
//! handlers need the runtime to answer.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use duckdb::vtab::arrow::ArrowVTab;
use duckdb::Connection;
use lru::LruCache;
use tokio::sync::{mpsc, oneshot};

use crate::error::{QueryError, QueryResult};
use crate::ingest::{self, Ingest, Spool};
use crate::ipc;
use crate::sandbox::{self, WorkerLimits};
use crate::snapshots_fn::{self, SnapshotSource};
use crate::storage::Storage;

/// Batches the producer may run ahead of the consumer.
const CHANNEL_BATCHES: usize = 4;
/// Bytes of encoded batches per message to the client (DuckDB produces
/// 2048-row chunks; each is IPC-encoded as it comes, without copying them
/// into bigger batches first).
const CHUNK_BYTES: usize = 1 << 20;
/// Unfetched results are dropped (and their queries stopped) after this.
const HANDLE_TTL: Duration = Duration::from_secs(60);

/// A result as one Arrow IPC stream (schema, batches, end marker), cut into
/// chunks of about CHUNK_BYTES.
pub type ChunkStream = mpsc::Receiver<QueryResult<Vec<u8>>>;

/// One statement to run.
pub struct Request {
    pub db: String,
    pub sql: String,
    pub snapshot: Option<i64>,
    /// Client rows readable by the statement.
    pub ingest: Option<Ingest>,
    /// A write runs only if this is still the latest snapshot.
    pub expected_snapshot: Option<i64>,
}

/// An executed statement whose rows are waiting to be fetched.
pub struct Executed {
    pub handle: String,
    pub schema: SchemaRef,
    pub snapshot_id: i64,
    pub is_write: bool,
    pub rows_affected: i64,
}

struct Pending {
    rows: ChunkStream,
    created: Instant,
}

type Shared = Arc<Mutex<Connection>>;

pub struct Engine {
    storage: Arc<Storage>,
    limits: WorkerLimits,
    readers: Mutex<LruCache<(String, i64), Shared>>,
    writers: tokio::sync::Mutex<HashMap<String, Shared>>,
    results: Mutex<HashMap<String, Pending>>,
    counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run DuckDB work on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> QueryResult<T> + Send + 'static) -> QueryResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Close DuckDB databases on a blocking thread (closing touches the mount).
fn close_later<T: Send + 'static>(dbs: T) {
    tokio::task::spawn_blocking(move || drop(dbs));
}

enum ReadOutcome {
    Streaming(SchemaRef),
    IsWrite,
}

impl Engine {
    pub fn new(storage: Storage, limits: WorkerLimits) -> Self {
        Engine {
            storage: Arc::new(storage),
            limits,
            readers: Mutex::new(LruCache::new(NonZeroUsize::new(16).expect("non-zero"))),
            writers: tokio::sync::Mutex::default(),
            results: Mutex::default(),
            counter: AtomicU64::new(0),
        }
    }

    fn new_handle(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let seed = format!("{n}-{:?}-{}", std::time::SystemTime::now(), std::process::id());
        blake3::hash(seed.as_bytes()).to_hex()[..32].to_string()
    }

    /// A new spool for rows a client uploads with a statement.
    pub fn new_spool(&self) -> QueryResult<Spool> {
        Spool::new(&self.limits.temp_dir.join("ingest"))
    }

    fn snapshot_source(&self, db: &str) -> SnapshotSource {
        SnapshotSource { od: self.storage.layerd().clone(), rt: tokio::runtime::Handle::current(), db: db.to_string() }
    }

    /// The pooled read-only database of snapshot `id`.
    async fn reader(&self, db: &str, id: i64) -> QueryResult<Shared> {
        let key = (db.to_string(), id);
        if let Some(s) = lock(&self.readers).get(&key).cloned() {
            return Ok(s);
        }
        let (path, limits, source) = (self.storage.snapshot_path(db, id), self.limits.clone(), self.snapshot_source(db));
        let opened = blocking(move || {
            let conn = sandbox::open(&path, true, &limits, "readers")?;
            snapshots_fn::register(&conn, &source)?;
            Ok(Arc::new(Mutex::new(conn)))
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

    /// The single writer of `db`, on its head file. Opened under the
    /// writers lock: two DuckDB instances on one file in one process would
    /// not see each other's (process-local) file locks.
    async fn writer(&self, db: &str) -> QueryResult<Shared> {
        let mut writers = self.writers.lock().await;
        if let Some(w) = writers.get(db) {
            return Ok(w.clone());
        }
        let (path, limits, source, name) = (self.storage.head_path(db), self.limits.clone(), self.snapshot_source(db), format!("writer-{db}"));
        let opened = blocking(move || {
            let conn = sandbox::open(&path, false, &limits, &name)?;
            conn.register_table_function::<ArrowVTab>("arrow").map_err(QueryError::from_duckdb)?;
            snapshots_fn::register(&conn, &source)?;
            Ok(Arc::new(Mutex::new(conn)))
        })
        .await?;
        writers.insert(db.to_string(), opened.clone());
        Ok(opened)
    }

    /// Run one statement; its rows wait behind the returned handle.
    pub async fn execute(&self, req: Request) -> QueryResult<Executed> {
        self.expire();
        if req.snapshot.is_some() && req.expected_snapshot.is_some() {
            return Err(QueryError::Invalid("a request names either the snapshot to read or the snapshot a write expects, not both".into()));
        }
        if let Some(id) = req.snapshot {
            let id = self.storage.resolve(&req.db, Some(id)).await?;
            if req.ingest.is_some() {
                return Err(QueryError::WriteToSnapshot(id));
            }
            return match self.read(&req.db, id, &req.sql).await? {
                Some(ex) => Ok(ex),
                None => Err(QueryError::WriteToSnapshot(id)),
            };
        }
        let latest = match self.storage.resolve(&req.db, None).await {
            Ok(id) => id,
            Err(QueryError::EmptyDatabase(_)) => self.initialize(&req.db).await?,
            Err(e) => return Err(e),
        };
        if req.ingest.is_none() {
            if let Some(ex) = self.read(&req.db, latest, &req.sql).await? {
                return Ok(ex);
            }
        }
        self.write(req).await
    }

    /// A database without any snapshot gets its first one: an empty DuckDB
    /// database, created and checkpointed by the writer.
    async fn initialize(&self, db: &str) -> QueryResult<i64> {
        let writer = self.writer(db).await?;
        blocking(move || lock(&writer).execute_batch("CHECKPOINT").map_err(QueryError::from_duckdb)).await?;
        self.storage.after_write(db).await?.ok_or_else(|| QueryError::EmptyDatabase(db.to_string()))
    }

    /// Start a read; `None` if the statement turned out to be a write.
    async fn read(&self, db: &str, id: i64, sql: &str) -> QueryResult<Option<Executed>> {
        let shared = self.reader(db, id).await?;
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let (started_tx, started_rx) = oneshot::channel::<QueryResult<ReadOutcome>>();
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = match lock(&shared).try_clone() {
                Ok(c) => c,
                Err(e) => return drop(started_tx.send(Err(QueryError::from_duckdb(e)))),
            };
            drop(shared);
            stream_rows(&conn, &sql, started_tx, tx);
        });
        match started_rx.await.map_err(|_| QueryError::Internal("reader stopped".into()))?? {
            ReadOutcome::IsWrite => Ok(None),
            ReadOutcome::Streaming(schema) => {
                let handle = self.new_handle();
                lock(&self.results).insert(handle.clone(), Pending { rows: rx, created: Instant::now() });
                Ok(Some(Executed { handle, schema, snapshot_id: id, is_write: false, rows_affected: 0 }))
            }
        }
    }

    async fn write(&self, req: Request) -> QueryResult<Executed> {
        let writer = self.writer(&req.db).await?;
        let Request { db, sql, ingest, expected_snapshot, .. } = req;
        let (storage, rt, name) = (self.storage.clone(), tokio::runtime::Handle::current(), db.clone());
        let rows = blocking(move || -> QueryResult<i64> {
            let conn = lock(&writer);
            if let Some(read) = expected_snapshot {
                // Under the writer lock: no other write can move the database now.
                let latest = rt.block_on(storage.after_write(&name))?.unwrap_or(0);
                if latest != read {
                    return Err(QueryError::Conflict { read, latest });
                }
            }
            let table = match &ingest {
                Some(i) => Some(ingest::load(&conn, i)?),
                None => None,
            };
            let result = conn.prepare(&sql).and_then(|mut s| s.execute([])).map_err(QueryError::from_duckdb);
            if let Some(t) = table {
                let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS temp.main.{t}"));
            }
            let n = result?;
            conn.execute_batch("CHECKPOINT").map_err(QueryError::from_duckdb)?;
            Ok(n as i64)
        })
        .await?;
        let snapshot_id = self.storage.after_write(&db).await?.unwrap_or(0);
        let schema = Arc::new(Schema::new(vec![Field::new("rows_affected", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![rows]))])
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(ipc::encode_all(&schema, &[batch]));
        let handle = self.new_handle();
        lock(&self.results).insert(handle.clone(), Pending { rows: rx, created: Instant::now() });
        Ok(Executed { handle, schema, snapshot_id, is_write: true, rows_affected: rows })
    }

    /// The rows of an executed statement, encoded (once).
    pub fn fetch(&self, handle: &str) -> QueryResult<ChunkStream> {
        lock(&self.results).remove(handle).map(|p| p.rows).ok_or_else(|| QueryError::UnknownHandle(handle.to_string()))
    }

    fn expire(&self) {
        lock(&self.results).retain(|_, p| p.created.elapsed() < HANDLE_TTL);
    }
}

/// Batches with fewer rows than this are merged before they are encoded.
const SPARSE_ROWS: usize = 1024;

/// Sparse batches waiting to be merged into one.
#[derive(Default)]
struct SparseBatches {
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl SparseBatches {
    /// Encode `batch`, merged with earlier sparse ones where it is sparse
    /// itself (`now`: do not wait for more).
    fn push(&mut self, batch: RecordBatch, now: bool, encoder: &mut ipc::ChunkEncoder) -> QueryResult<()> {
        if batch.num_rows() >= SPARSE_ROWS {
            self.flush(encoder)?;
            return encoder.append(&batch);
        }
        self.rows += batch.num_rows();
        self.batches.push(batch);
        if self.rows >= 2 * SPARSE_ROWS || now {
            self.flush(encoder)?;
        }
        Ok(())
    }

    fn flush(&mut self, encoder: &mut ipc::ChunkEncoder) -> QueryResult<()> {
        let Some(first) = self.batches.first() else { return Ok(()) };
        let merged = arrow::compute::concat_batches(&first.schema(), &self.batches).map_err(|e| QueryError::Internal(format!("merging batches: {e}")))?;
        self.batches.clear();
        self.rows = 0;
        encoder.append(&merged)
    }
}

/// Run a read on `conn` (a blocking thread): report its schema (or that it
/// is a write) on `started`, then stream its rows into `tx` as IPC chunks.
fn stream_rows(conn: &Connection, sql: &str, started: oneshot::Sender<QueryResult<ReadOutcome>>, tx: mpsc::Sender<QueryResult<Vec<u8>>>) {
    let mut stmt = match conn.prepare(sql) {
        Ok(s) => s,
        Err(e) => return drop(started.send(Err(QueryError::from_duckdb(e)))),
    };
    let stream = match stmt.stream_arrow([]) {
        Ok(s) => s,
        Err(e) if sandbox::is_read_only_refusal(&e) => return drop(started.send(Ok(ReadOutcome::IsWrite))),
        Err(e) => return drop(started.send(Err(QueryError::from_duckdb(e)))),
    };
    let schema = stream.get_schema();
    let mut encoder = match ipc::ChunkEncoder::new(&schema) {
        Ok(e) => e,
        Err(e) => return drop(started.send(Err(e))),
    };
    if started.send(Ok(ReadOutcome::Streaming(schema))).is_err() {
        return;
    }
    // Many encoded batches per message, but never hold back the first one.
    // Full DuckDB chunks are encoded as they are (no copy); sparse ones (e.g.
    // after a selective filter) are merged first, so per-batch framing stays
    // small next to the data.
    let mut sparse = SparseBatches::default();
    let mut sent_first = false;
    for batch in stream {
        let appended = batch.map_err(QueryError::from_duckdb).and_then(|b| sparse.push(b, !sent_first, &mut encoder));
        if let Err(e) = appended {
            return drop(tx.blocking_send(Err(e)));
        }
        if encoder.buffered() >= CHUNK_BYTES || (!sent_first && encoder.buffered() > 0) {
            sent_first = true;
            if tx.blocking_send(Ok(encoder.take())).is_err() {
                return; // client gone: dropping the stream stops DuckDB
            }
        }
    }
    if let Err(e) = sparse.flush(&mut encoder) {
        return drop(tx.blocking_send(Err(e)));
    }
    let _ = tx.blocking_send(encoder.finish());
}
