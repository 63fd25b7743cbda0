//! Client rows sent up with a statement (`INSERT INTO remote SELECT … FROM
//! local`): the Arrow IPC stream is kept as it arrives (in memory while
//! small, else spooled to a local file: memory stays bounded, and nothing
//! of the writer is held while a slow client uploads). The statement reads
//! it from there ([`crate::ingest_scan`]).

use std::io::{BufReader, Cursor};
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::{QueryError, QueryResult};

/// Largest ingest stream accepted in one Execute.
pub const MAX_INGEST_BYTES: u64 = 32 << 30;

/// Rows to ingest, readable by the statement as `table`.
pub struct Ingest {
    pub table: String,
    pub spool: Spool,
    /// The uploaded columns (read once, from the stream's header).
    pub schema: SchemaRef,
    /// Names and types of those columns as a short hash: a statement
    /// prepared for one upload is reused only for uploads of the same.
    pub fingerprint: String,
}

impl Ingest {
    /// A complete upload named `table`: the name is checked, the stream's
    /// schema read.
    pub fn new(table: String, spool: Spool) -> QueryResult<Ingest> {
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(QueryError::Invalid(format!("ingest table name '{table}' must be [A-Za-z0-9_]+")));
        }
        let reader = spool.open().map_err(|e| spool.internal(e))?;
        let schema = StreamReader::try_new(reader, None).map_err(|e| QueryError::Invalid(format!("bad Arrow IPC data to ingest: {e}")))?.schema();
        let fields: Vec<String> = schema.fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
        let fingerprint = blake3::hash(fields.join(",").as_bytes()).to_hex()[..16].to_string();
        Ok(Ingest { table, spool, schema, fingerprint })
    }
}

/// Uploads up to this size stay in memory; larger ones go to a file.
const IN_MEMORY_BYTES: usize = 4 << 20;

/// An Arrow IPC stream as it arrived: in memory while small, else in a file
/// on local disk (deleted when dropped).
pub struct Spool {
    dir: std::path::PathBuf,
    memory: Vec<u8>,
    /// `memory`, shared with readers once the upload is complete.
    finished: Option<Bytes>,
    file: Option<(tempfile::NamedTempFile, tokio::fs::File)>,
    bytes: u64,
}

impl Spool {
    pub fn new(dir: &Path) -> QueryResult<Self> {
        Ok(Spool { dir: dir.to_path_buf(), memory: Vec::new(), finished: None, file: None, bytes: 0 })
    }

    fn internal(&self, e: std::io::Error) -> QueryError {
        QueryError::Internal(format!("ingest spool in {}: {e}", self.dir.display()))
    }

    pub async fn append(&mut self, data: &[u8]) -> QueryResult<()> {
        self.bytes += data.len() as u64;
        if self.bytes > MAX_INGEST_BYTES {
            return Err(QueryError::TooLarge(format!("ingest larger than {} GiB: split it into several statements", MAX_INGEST_BYTES >> 30)));
        }
        if self.file.is_none() && self.memory.len() + data.len() <= IN_MEMORY_BYTES {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(|e| self.internal(e))?;
            let file = tempfile::Builder::new().prefix("ingest-").suffix(".arrows").tempfile_in(&self.dir).map_err(|e| self.internal(e))?;
            let mut writer = tokio::fs::File::from_std(file.reopen().map_err(|e| self.internal(e))?);
            let held = std::mem::take(&mut self.memory);
            writer.write_all(&held).await.map_err(|e| self.internal(e))?;
            self.file = Some((file, writer));
        }
        let Some((_, writer)) = self.file.as_mut() else { return Ok(()) };
        writer.write_all(data).await.map_err(|e| QueryError::Internal(format!("writing the ingest spool: {e}")))
    }

    pub async fn finish(&mut self) -> QueryResult<()> {
        self.finished = Some(Bytes::from(std::mem::take(&mut self.memory)));
        match self.file.as_mut() {
            Some((_, writer)) => writer.flush().await.map_err(|e| QueryError::Internal(format!("writing the ingest spool: {e}"))),
            None => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// A reader of the whole upload, from the start (call after `finish`).
    pub fn open(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        match (&self.file, &self.finished) {
            (Some((file, _)), _) => Ok(Box::new(BufReader::with_capacity(1 << 20, file.reopen()?))),
            (None, Some(bytes)) => Ok(Box::new(Cursor::new(bytes.clone()))),
            (None, None) => Err(std::io::Error::other("the upload is not complete")),
        }
    }
}
