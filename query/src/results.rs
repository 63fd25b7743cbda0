//! Running a statement on a DuckDB connection and turning its rows into
//! Arrow IPC chunks, and the registry of results waiting to be fetched.
//!
//! A result is one IPC stream (schema, batches, end marker) cut into chunks
//! of about [`CHUNK_BYTES`]. A result that fits in its first chunk is
//! answered inline by Execute (one round trip); a larger one waits behind a
//! handle for Fetch, the producer running at most a few chunks ahead of the
//! client (backpressure; a client that goes away stops the query).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, Int64Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};

use crate::error::{QueryError, QueryResult};
use crate::ingest::Ingest;
use crate::ingest_scan::IngestScope;
use crate::prepared::{Rows, Stopper};
use crate::sandbox::{statement_text, DbConn};
use crate::ipc;

/// Chunks the producer may run ahead of the consumer.
const CHANNEL_CHUNKS: usize = 4;
/// Bytes of encoded batches per chunk; a result up to this size is answered
/// inline by Execute.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Unfetched results are dropped (and their queries stopped) after this.
const HANDLE_TTL: Duration = Duration::from_secs(60);
/// Batches with fewer rows than this are merged before they are encoded.
const SPARSE_ROWS: usize = 1024;

/// One piece of a result's IPC stream; `last` ends it.
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub last: bool,
}

pub type ChunkRx = mpsc::Receiver<QueryResult<Chunk>>;

/// The chunks of a result still being produced, and what stops its
/// statement when they are dropped unread.
pub struct Rest {
    rx: ChunkRx,
    _guard: Option<StopGuard>,
}

/// A statement's result as Execute sees it: its schema and first chunk.
pub struct Produced {
    pub schema: SchemaRef,
    pub first: Chunk,
    /// The rest (None when `first.last`).
    pub rest: Option<Rest>,
}

impl Produced {
    /// The number in the `Count` column DuckDB returns for INSERT, UPDATE
    /// and DELETE (0 if the result is not such a count).
    pub fn count(&self) -> i64 {
        if !self.first.last || self.schema.fields().len() != 1 || self.schema.field(0).name() != "Count" {
            return 0;
        }
        let Ok((_, batches)) = ipc::decode_all(&self.first.bytes) else { return 0 };
        let Some(col) = batches.first().map(|b| b.column(0).clone()) else { return 0 };
        col.as_any().downcast_ref::<Int64Array>().filter(|a| !a.is_empty() && a.is_valid(0)).map(|a| a.value(0)).unwrap_or(0)
    }
}

/// Sparse batches waiting to be merged into one.
#[derive(Default)]
struct SparseBatches {
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl SparseBatches {
    fn push(&mut self, batch: RecordBatch, encoder: &mut ipc::ChunkEncoder) -> QueryResult<()> {
        if batch.num_rows() >= SPARSE_ROWS {
            self.flush(encoder)?;
            return Ok(encoder.append(&batch)?);
        }
        self.rows += batch.num_rows();
        self.batches.push(batch);
        if self.rows >= 2 * SPARSE_ROWS {
            self.flush(encoder)?;
        }
        Ok(())
    }

    fn flush(&mut self, encoder: &mut ipc::ChunkEncoder) -> QueryResult<()> {
        let Some(first) = self.batches.first() else { return Ok(()) };
        let merged = arrow::compute::concat_batches(&first.schema(), &self.batches).map_err(|e| QueryError::Internal(format!("merging batches: {e}")))?;
        self.batches.clear();
        self.rows = 0;
        Ok(encoder.append(&merged)?)
    }
}

/// Where a producer's chunks go: `false` when nobody wants more.
pub trait ChunkSink {
    fn send(&mut self, chunk: QueryResult<Chunk>) -> bool;
}

/// Streaming to Execute/Fetch through a bounded channel.
pub struct ChannelSink(pub mpsc::Sender<QueryResult<Chunk>>);

impl ChunkSink for ChannelSink {
    fn send(&mut self, chunk: QueryResult<Chunk>) -> bool {
        self.0.blocking_send(chunk).is_ok()
    }
}

/// Collecting a whole result in memory (inside a transaction, whose
/// connection must be free for the next statement), up to a limit.
pub struct CollectSink {
    pub chunks: Vec<QueryResult<Chunk>>,
    bytes: usize,
    limit: usize,
}

impl CollectSink {
    pub fn new(limit: usize) -> Self {
        CollectSink { chunks: Vec::new(), bytes: 0, limit }
    }
}

impl ChunkSink for CollectSink {
    fn send(&mut self, chunk: QueryResult<Chunk>) -> bool {
        if let Ok(c) = &chunk {
            self.bytes += c.bytes.len();
            if self.bytes > self.limit {
                self.chunks.push(Err(QueryError::TooLarge(format!(
                    "a result inside a transaction is held in the server's memory, and this one is larger than {} MiB: \
                     read it outside the transaction, or narrow it",
                    self.limit >> 20
                ))));
                return false;
            }
        }
        self.chunks.push(chunk);
        true
    }
}

/// Run `sql` on `conn` (a blocking thread), with the rows uploaded with it
/// readable under their ingest table name: report its schema (or error) on
/// `started`, then its chunks. `true` when the result was read to its end
/// (the connection is then free for another statement). `stop` interrupts
/// it while it runs.
pub fn produce(
    conn: &mut DbConn,
    sql: &str,
    ingest: Option<&Arc<Ingest>>,
    stop: &Stopper,
    started: oneshot::Sender<QueryResult<SchemaRef>>,
    sink: &mut dyn ChunkSink,
) -> bool {
    let _scope = ingest.map(|i| IngestScope::enter(&conn.ingest, i));
    let _armed = stop.arm(&conn.conn);
    // Planned once per connection and text: a statement sent again skips
    // DuckDB's parser, binder and optimizer (DuckDB binds it again if the
    // catalog changed).
    match conn.conn.run(&statement_text(sql, ingest)) {
        // A stop that came before the statement started.
        Ok(_) if stop.stopped() => {
            let _ = started.send(Err(stopped(stop, None)));
            false
        }
        // Dropped before its end, the result stops DuckDB.
        Ok(mut rows) => stream(&mut rows, stop, started, sink),
        Err(e) => {
            let _ = started.send(Err(stopped(stop, Some(e))));
            false
        }
    }
}

/// The error of a statement that `stop` may have interrupted.
fn stopped(stop: &Stopper, e: Option<QueryError>) -> QueryError {
    match (stop.timed_out(), stop.stopped(), e) {
        (true, _, _) => QueryError::Timeout,
        (false, true, _) => QueryError::Internal("the statement was stopped: its client went away".into()),
        (false, false, Some(e)) => e,
        (false, false, None) => QueryError::Internal("the statement stopped without an error".into()),
    }
}

/// Stream the rows of `rows` to `sink`; `true` if they all went.
fn stream(rows: &mut Rows, stop: &Stopper, started: oneshot::Sender<QueryResult<SchemaRef>>, sink: &mut dyn ChunkSink) -> bool {
    let schema = rows.schema();
    let mut encoder = match ipc::ChunkEncoder::new(&schema) {
        Ok(e) => e,
        Err(e) => {
            let _ = started.send(Err(e.into()));
            return false;
        }
    };
    if started.send(Ok(schema)).is_err() {
        return false;
    }
    // Full DuckDB chunks are encoded as they are (no copy); sparse ones (e.g.
    // after a selective filter) are merged first, so per-batch framing stays
    // small next to the data.
    let mut sparse = SparseBatches::default();
    loop {
        let batch = match rows.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                sink.send(Err(stopped(stop, Some(e))));
                return false;
            }
        };
        if let Err(e) = sparse.push(batch, &mut encoder) {
            sink.send(Err(e));
            return false;
        }
        if encoder.buffered() >= CHUNK_BYTES && !sink.send(Ok(Chunk { bytes: encoder.take(), last: false })) {
            return false; // client gone: dropping the result stops DuckDB
        }
    }
    // Read to its end, the statement is finished (an autocommit one
    // committed) before anyone is told the result is complete.
    let end = sparse.flush(&mut encoder).and_then(|()| Ok(encoder.finish()?)).map(|bytes| Chunk { bytes, last: true });
    let ok = end.is_ok();
    sink.send(end) && ok
}

/// Stops a statement when dropped (its client went away, or its result
/// was dropped unread); a statement that finished is disarmed already.
pub struct StopGuard(pub Stopper);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Start `work` on a blocking thread and wait for the schema and first
/// chunk. The statement is stopped as soon as nobody waits for it (this
/// future or the result's reader dropped), or by `stop`'s deadline.
pub async fn start(
    stop: Stopper,
    work: impl FnOnce(&Stopper, oneshot::Sender<QueryResult<SchemaRef>>, &mut dyn ChunkSink) + Send + 'static,
) -> QueryResult<Produced> {
    let (tx, mut rx) = mpsc::channel(CHANNEL_CHUNKS);
    let (started_tx, started_rx) = oneshot::channel();
    let guard = StopGuard(stop.clone());
    tokio::task::spawn_blocking(move || work(&stop, started_tx, &mut ChannelSink(tx)));
    let schema = started_rx.await.map_err(|_| QueryError::Internal("the query stopped before it started".into()))??;
    let first = rx.recv().await.ok_or_else(|| QueryError::Internal("the query stopped without a result".into()))??;
    let rest = (!first.last).then_some(Rest { rx, _guard: Some(guard) });
    Ok(Produced { schema, first, rest })
}

/// A result produced completely already (collected inside a transaction).
pub fn collected(schema: SchemaRef, chunks: Vec<QueryResult<Chunk>>) -> QueryResult<Produced> {
    let mut it = chunks.into_iter();
    let first = it.next().ok_or_else(|| QueryError::Internal("empty result".into()))??;
    if first.last {
        return Ok(Produced { schema, first, rest: None });
    }
    let rest: Vec<_> = it.collect();
    let (tx, rx) = mpsc::channel(rest.len().max(1));
    for c in rest {
        let _ = tx.try_send(c);
    }
    Ok(Produced { schema, first, rest: Some(Rest { rx, _guard: None }) })
}

/// The rows behind a handle: the first chunk (already produced), then the rest.
pub struct Fetching {
    first: Option<Vec<u8>>,
    rest: Rest,
}

impl Fetching {
    pub async fn next(&mut self) -> Option<QueryResult<Vec<u8>>> {
        if let Some(b) = self.first.take() {
            return Some(Ok(b));
        }
        self.rest.rx.recv().await.map(|c| c.map(|c| c.bytes))
    }
}



/// Results waiting for Fetch, by handle.
#[derive(Default)]
pub struct Handles {
    pending: Arc<Mutex<HashMap<String, Fetching>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Handles {
    /// Keep the rest of a result for Fetch; its handle. Unfetched after
    /// [`HANDLE_TTL`], it is dropped, which stops its statement. Needs a
    /// tokio runtime (for that timer).
    pub fn park(&self, first: Vec<u8>, rest: Rest) -> String {
        let handle = crate::ids::random_id();
        lock(&self.pending).insert(handle.clone(), Fetching { first: Some(first), rest });
        let (pending, expiring) = (Arc::downgrade(&self.pending), handle.clone());
        tokio::spawn(async move {
            tokio::time::sleep(HANDLE_TTL).await;
            if let Some(pending) = pending.upgrade() {
                let expired = lock(&pending).remove(&expiring);
                drop(expired); // outside the lock: dropping stops the statement
            }
        });
        handle
    }

    /// Drop every waiting result (their producers stop).
    pub fn clear(&self) {
        lock(&self.pending).clear();
    }

    pub fn take(&self, handle: &str) -> QueryResult<Fetching> {
        lock(&self.pending).remove(handle).ok_or_else(|| QueryError::UnknownHandle(handle.to_string()))
    }
}
