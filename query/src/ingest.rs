//! Client rows sent up with a statement (`INSERT INTO remote SELECT … FROM
//! local`): the Arrow IPC stream is kept as it arrives (in memory while
//! small, else spooled to a local file: memory stays bounded, and nothing
//! of the writer is held while a slow client uploads), then loaded batch by
//! batch into a temp table the statement reads.

use std::io::BufReader;
use std::path::Path;

use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use duckdb::vtab::arrow::ArrowBatchRegistration;
use duckdb::Connection;
use tokio::io::AsyncWriteExt;

use crate::error::{QueryError, QueryResult};

/// Largest ingest stream accepted in one Execute.
pub const MAX_INGEST_BYTES: u64 = 32 << 30;

/// Rows to ingest, readable by the statement as `table`.
pub struct Ingest {
    pub table: String,
    pub spool: Spool,
}

/// Uploads up to this size stay in memory; larger ones go to a file.
const IN_MEMORY_BYTES: usize = 4 << 20;

/// An Arrow IPC stream as it arrived: in memory while small, else in a file
/// on local disk (deleted when dropped).
pub struct Spool {
    dir: std::path::PathBuf,
    memory: Vec<u8>,
    file: Option<(tempfile::NamedTempFile, tokio::fs::File)>,
    bytes: u64,
}

impl Spool {
    pub fn new(dir: &Path) -> QueryResult<Self> {
        Ok(Spool { dir: dir.to_path_buf(), memory: Vec::new(), file: None, bytes: 0 })
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
        match self.file.as_mut() {
            Some((_, writer)) => writer.flush().await.map_err(|e| QueryError::Internal(format!("writing the ingest spool: {e}"))),
            None => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The bytes, from the start.
    fn reader(&self) -> QueryResult<Box<dyn std::io::Read + '_>> {
        match &self.file {
            Some((file, _)) => Ok(Box::new(BufReader::with_capacity(1 << 20, file.reopen().map_err(|e| self.internal(e))?))),
            None => Ok(Box::new(self.memory.as_slice())),
        }
    }
}

fn bad_ipc(e: impl std::fmt::Display) -> QueryError {
    QueryError::Invalid(format!("bad Arrow IPC data to ingest: {e}"))
}

/// Load the spooled rows into the temp table `ingest.table` of `conn` (the
/// writer). Returns the table name.
pub fn load(conn: &Connection, ingest: &Ingest) -> QueryResult<String> {
    let name = &ingest.table;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(QueryError::Invalid(format!("ingest table name '{name}' must be [A-Za-z0-9_]+")));
    }
    let reader = StreamReader::try_new(ingest.spool.reader()?, None).map_err(bad_ipc)?;
    let schema = reader.schema();
    let create = format!("CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM arrow(?)");
    let insert = format!("INSERT INTO temp.main.{name} SELECT * FROM arrow(?)");
    let mut created = false;
    for batch in reader {
        let batch = batch.map_err(bad_ipc)?;
        append(conn, if created { &insert } else { &create }, batch)?;
        created = true;
    }
    if !created {
        append(conn, &create, RecordBatch::new_empty(schema))?;
    }
    Ok(name.to_string())
}

fn append(conn: &Connection, sql: &str, batch: RecordBatch) -> QueryResult<()> {
    let reg = ArrowBatchRegistration::new(batch);
    conn.prepare(sql).and_then(|mut s| s.execute([&reg])).map(drop).map_err(QueryError::from_duckdb)
}
