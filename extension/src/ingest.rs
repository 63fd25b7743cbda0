//! Streaming ingest: `Execute` with the client's rows sent as Arrow IPC
//! chunks while they are read, so the extension never holds the whole upload
//! in memory (`query::Client::execute_with_ingest` takes a finished slice of
//! batches). Uses the protocol's generated client directly, on its own lazily
//! connected channel to the same endpoint.

use arrow::record_batch::RecordBatchReader;
use query::client::{ClientError, Executed};
use query::ipc::ChunkEncoder;
use query::pb::execution_client::ExecutionClient;
use query::pb::ExecuteRequest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::error::{ExtensionError, ExtensionResult};
use crate::runtime;

/// Requests buffered between the reading thread and the upload.
const QUEUED_CHUNKS: usize = 4;
/// Largest `arrow_ipc` payload per request.
const CHUNK_BYTES: usize = 4 << 20;

#[derive(Clone)]
struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

#[derive(Clone)]
pub struct Ingester {
    inner: ExecutionClient<InterceptedService<Channel, BearerToken>>,
}

impl Ingester {
    /// A lazily connected client (call after `Client::connect` validated the endpoint).
    pub fn new(endpoint: &str, token: Option<&str>) -> ExtensionResult<Ingester> {
        let channel = runtime::block_on(async {
            Endpoint::from_shared(endpoint.to_string()).map(|e| e.connect_lazy())
        })?
        .map_err(|_| ClientError::BadEndpoint(endpoint.to_string()))?;
        let header = match token {
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| {
                ExtensionError::InvalidInput("the token contains characters not allowed in a header".into())
            })?),
            None => None,
        };
        let inner = ExecutionClient::with_interceptor(channel, BearerToken(header))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        Ok(Ingester { inner })
    }

    /// Run `sql` on `db` with the rows of `input` readable as `table`. The
    /// batches are read on this (non-runtime) thread and uploaded as they come.
    pub fn execute(&self, db: &str, sql: &str, table: &str, input: impl RecordBatchReader) -> ExtensionResult<Executed> {
        let (tx, rx) = mpsc::channel::<ExecuteRequest>(QUEUED_CHUNKS);
        let first = ExecuteRequest { database: db.into(), sql: sql.into(), ingest_table: table.into(), ..Default::default() };
        tx.blocking_send(first).map_err(|_| ExtensionError::Internal("upload queue closed".into()))?;
        let mut client = self.inner.clone();
        let upload = runtime::runtime()?.spawn(async move { client.execute(ReceiverStream::new(rx)).await });

        let sent = send_batches(&tx, input);
        drop(tx); // ends the request stream
        let response = runtime::block_on(upload)?.map_err(|e| ExtensionError::Internal(format!("upload task: {e}")))?;
        // A local read error explains a failed upload better than the server's view of it.
        sent?;
        let r = response.map_err(ClientError::from)?.into_inner();
        let schema = query::ipc::schema_from_bytes(&r.arrow_schema).map_err(|e| ClientError::Arrow(e.to_string()))?;
        Ok(Executed { handle: r.handle, schema, snapshot_id: r.snapshot_id, is_write: r.is_write, rows_affected: r.rows_affected })
    }
}

/// Encode `input` as one IPC stream, cut into requests.
fn send_batches(tx: &mpsc::Sender<ExecuteRequest>, input: impl RecordBatchReader) -> ExtensionResult<()> {
    let arrow = |e: query::QueryError| ExtensionError::Internal(format!("encoding rows: {e}"));
    let mut encoder = ChunkEncoder::new(&input.schema()).map_err(arrow)?;
    send(tx, encoder.header())?;
    for batch in input {
        send(tx, encoder.batch(&batch?).map_err(arrow)?)?;
    }
    send(tx, encoder.finish().map_err(arrow)?)
}

fn send(tx: &mpsc::Sender<ExecuteRequest>, bytes: Vec<u8>) -> ExtensionResult<()> {
    let chunks: Vec<Vec<u8>> =
        if bytes.len() <= CHUNK_BYTES { vec![bytes] } else { bytes.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect() };
    for arrow_ipc in chunks {
        if tx.blocking_send(ExecuteRequest { arrow_ipc, ..Default::default() }).is_err() {
            // The server ended the call early; its answer (awaited by the caller) says why.
            return Ok(());
        }
    }
    Ok(())
}
