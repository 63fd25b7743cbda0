//! Streaming ingest: the rows of a local `RecordBatchReader` are encoded as
//! one Arrow IPC stream and uploaded with the statement. A small upload
//! (under one chunk) travels in the statement's own request message; a
//! larger one is uploaded while it is read, so the extension never holds
//! the whole upload in memory.

use arrow::record_batch::RecordBatchReader;
use openduck_proto::client::{Executed, Statement, INGEST_CHUNK_BYTES};
use openduck_proto::ipc::ChunkEncoder;
use openduck_proto::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ExtensionError, ExtensionResult};
use crate::runtime;

/// Chunks buffered between the reading thread and the upload.
const QUEUED_CHUNKS: usize = 4;

type Upload = JoinHandle<Result<Executed, openduck_proto::client::ClientError>>;

/// Where encoded bytes go: held until a whole chunk is ready, then streamed
/// by an upload started with the first full chunk.
struct Uploader<'a> {
    client: &'a Client,
    stmt: &'a Statement,
    table: &'a str,
    pending: Vec<u8>,
    streaming: Option<(mpsc::Sender<Vec<u8>>, Upload)>,
}

impl Uploader<'_> {
    /// Queue `bytes`; false once the server ended the call early (its
    /// answer, awaited at the end, says why).
    fn push(&mut self, bytes: &[u8]) -> ExtensionResult<bool> {
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= INGEST_CHUNK_BYTES {
            let rest = self.pending.split_off(INGEST_CHUNK_BYTES);
            let chunk = std::mem::replace(&mut self.pending, rest);
            if !self.send(chunk)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn send(&mut self, chunk: Vec<u8>) -> ExtensionResult<bool> {
        if self.streaming.is_none() {
            let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUED_CHUNKS);
            let (mut client, stmt, table) = (self.client.clone(), self.stmt.clone(), self.table.to_string());
            let upload = runtime::runtime()?.spawn(async move { client.run_with_ingest(&stmt, &table, ReceiverStream::new(rx)).await });
            self.streaming = Some((tx, upload));
        }
        let Some((tx, _)) = &self.streaming else { return Ok(false) };
        // Waiting for room in the queue drives the runtime, which sends.
        Ok(runtime::block_on(tx.send(chunk))?.is_ok())
    }

    /// Give up: a started upload is cancelled before its stream ends, so
    /// the server refuses the statement instead of running it on a part of
    /// the rows.
    fn abort(self) {
        if let Some((tx, upload)) = self.streaming {
            upload.abort();
            drop(tx);
        }
    }

    /// Send what is left and wait for the server's answer.
    fn finish(self) -> ExtensionResult<Executed> {
        let Uploader { client, stmt, table, pending, streaming } = self;
        match streaming {
            None => {
                let mut client = client.clone();
                Ok(runtime::block_on(async move { client.run_with_ingest(stmt, table, futures::stream::iter([pending])).await })??)
            }
            Some((tx, upload)) => {
                if !pending.is_empty() {
                    let _ended_early = runtime::block_on(tx.send(pending))?.is_err();
                }
                drop(tx); // ends the request stream
                let answer = runtime::block_on(upload)?.map_err(|e| ExtensionError::Internal(format!("upload task: {e}")))?;
                Ok(answer?)
            }
        }
    }
}

/// Run `stmt` with the rows of `input` readable as `table`. The batches are
/// read on this (non-runtime) thread.
pub fn execute(client: &Client, stmt: &Statement, table: &str, input: impl RecordBatchReader) -> ExtensionResult<Executed> {
    let mut up = Uploader { client, stmt, table, pending: Vec::new(), streaming: None };
    if let Err(e) = encode(&mut up, input) {
        up.abort();
        return Err(e);
    }
    up.finish()
}

/// Encode `input` as one IPC stream into `up`.
fn encode(up: &mut Uploader<'_>, input: impl RecordBatchReader) -> ExtensionResult<()> {
    let arrow = |e: openduck_proto::ipc::IpcError| ExtensionError::Internal(format!("encoding rows: {e}"));
    let mut encoder = ChunkEncoder::new(&input.schema()).map_err(arrow)?;
    if !up.push(&encoder.take())? {
        return Ok(());
    }
    for batch in input {
        if !up.push(&encoder.batch(&batch?).map_err(arrow)?)? {
            return Ok(());
        }
    }
    up.push(&encoder.finish().map_err(arrow)?)?;
    Ok(())
}
