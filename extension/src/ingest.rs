//! Streaming ingest: the rows of a local `RecordBatchReader` are encoded as
//! one Arrow IPC stream and uploaded with the statement while they are read,
//! so the extension never holds the whole upload in memory.

use arrow::record_batch::RecordBatchReader;
use query::client::{Executed, Statement, INGEST_CHUNK_BYTES};
use query::ipc::ChunkEncoder;
use query::Client;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ExtensionError, ExtensionResult};
use crate::runtime;

/// Chunks buffered between the reading thread and the upload.
const QUEUED_CHUNKS: usize = 4;

/// Run `stmt` with the rows of `input` readable as `table`. The batches are
/// read on this (non-runtime) thread and uploaded as they come.
pub fn execute(client: &Client, stmt: &Statement, table: &str, input: impl RecordBatchReader) -> ExtensionResult<Executed> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUED_CHUNKS);
    let (mut client, stmt, table) = (client.clone(), stmt.clone(), table.to_string());
    let upload = runtime::runtime()?.spawn(async move { client.run_with_ingest(&stmt, &table, ReceiverStream::new(rx)).await });
    let sent = send_batches(&tx, input);
    drop(tx); // ends the request stream
    let response = runtime::block_on(upload)?.map_err(|e| ExtensionError::Internal(format!("upload task: {e}")))?;
    // A local read error explains a failed upload better than the server's view of it.
    sent?;
    Ok(response?)
}

/// Encode `input` as one IPC stream, cut into chunks.
fn send_batches(tx: &mpsc::Sender<Vec<u8>>, input: impl RecordBatchReader) -> ExtensionResult<()> {
    let arrow = |e: query::QueryError| ExtensionError::Internal(format!("encoding rows: {e}"));
    let mut encoder = ChunkEncoder::new(&input.schema()).map_err(arrow)?;
    if !send(tx, encoder.take()) {
        return Ok(());
    }
    for batch in input {
        if !send(tx, encoder.batch(&batch?).map_err(arrow)?) {
            return Ok(());
        }
    }
    send(tx, encoder.finish().map_err(arrow)?);
    Ok(())
}

/// False once the server ended the call early (its answer, awaited by the
/// caller, says why).
fn send(tx: &mpsc::Sender<Vec<u8>>, bytes: Vec<u8>) -> bool {
    bytes.chunks(INGEST_CHUNK_BYTES).all(|chunk| tx.blocking_send(chunk.to_vec()).is_ok())
}
