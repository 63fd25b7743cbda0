//! Client rows sent up with a statement (`INSERT INTO remote SELECT … FROM
//! local`): the Arrow IPC stream is spooled to a local file as it arrives
//! (memory stays bounded, and the database's single writer is not held
//! while a slow client uploads), then the writer loads it batch by batch into
//! a temp table the statement reads.

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

/// An Arrow IPC stream on local disk, deleted when dropped.
pub struct Spool {
    file: tempfile::NamedTempFile,
    writer: tokio::fs::File,
    bytes: u64,
}

impl Spool {
    pub fn new(dir: &Path) -> QueryResult<Self> {
        let internal = |e: std::io::Error| QueryError::Internal(format!("ingest spool in {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(internal)?;
        let file = tempfile::Builder::new().prefix("ingest-").suffix(".arrows").tempfile_in(dir).map_err(internal)?;
        let writer = tokio::fs::File::from_std(file.reopen().map_err(internal)?);
        Ok(Spool { file, writer, bytes: 0 })
    }

    pub async fn append(&mut self, data: &[u8]) -> QueryResult<()> {
        self.bytes += data.len() as u64;
        if self.bytes > MAX_INGEST_BYTES {
            return Err(QueryError::TooLarge(format!("ingest larger than {} GiB: split it into several statements", MAX_INGEST_BYTES >> 30)));
        }
        self.writer.write_all(data).await.map_err(|e| QueryError::Internal(format!("writing the ingest spool: {e}")))
    }

    pub async fn finish(&mut self) -> QueryResult<()> {
        self.writer.flush().await.map_err(|e| QueryError::Internal(format!("writing the ingest spool: {e}")))
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
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
    let file = ingest.spool.file.reopen().map_err(|e| QueryError::Internal(format!("reading the ingest spool: {e}")))?;
    let reader = StreamReader::try_new(BufReader::with_capacity(1 << 20, file), None).map_err(bad_ipc)?;
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
