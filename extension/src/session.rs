//! One attached remote database: a gRPC client plus the database name.
//! Every method may be called from any DuckDB thread at the same time (the
//! tonic client is cloned per call; clones share one HTTP/2 connection).

use arrow::record_batch::{RecordBatch, RecordBatchReader};
use futures::TryStreamExt;
use openduck_proto::client::{Executed, Statement};
use openduck_proto::Client;

use crate::batch_reader::RemoteBatchReader;
use crate::error::{ExtensionError, ExtensionResult};
use crate::ingest;
use crate::runtime;

pub struct Session {
    client: Client,
    database: String,
}

/// What a statement did (the C struct `openduck_result`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub snapshot_id: i64,
    pub is_write: bool,
    pub rows_affected: i64,
    pub catalog_version: u64,
}

impl From<&Executed> for Outcome {
    fn from(e: &Executed) -> Self {
        Outcome { snapshot_id: e.snapshot_id, is_write: e.is_write, rows_affected: e.rows_affected, catalog_version: e.catalog_version }
    }
}

impl Session {
    pub fn connect(endpoint: &str, token: Option<&str>, database: &str) -> ExtensionResult<Session> {
        if database.is_empty() {
            return Err(ExtensionError::InvalidInput("missing database name: use ATTACH 'openduck:<database>?...'".into()));
        }
        let client = runtime::block_on(Client::connect(endpoint, token))??;
        Ok(Session { client, database: database.to_string() })
    }

    /// Start a statement; its rows come with the answer (small results) or
    /// are pulled lazily by the returned reader.
    pub fn query(&self, stmt: Statement) -> ExtensionResult<(Outcome, RemoteBatchReader)> {
        let mut client = self.client.clone();
        let (executed, stream) = runtime::block_on(async move {
            let executed = client.run(&stmt).await?;
            let stream = client.rows(&executed).await?;
            Ok::<_, ExtensionError>((executed, stream))
        })??;
        let outcome = Outcome::from(&executed);
        Ok((outcome, RemoteBatchReader::new(executed.schema, stream)))
    }

    /// Run a statement and drop its rows (DDL, writes, COMMIT).
    pub fn execute(&self, stmt: Statement) -> ExtensionResult<Outcome> {
        let mut client = self.client.clone();
        runtime::block_on(async move {
            let executed = client.run(&stmt).await?;
            Self::release(&mut client, &executed).await?;
            Ok(Outcome::from(&executed))
        })?
    }

    /// Run a statement with the rows of `input` readable as table `table`;
    /// the rows are uploaded while they are read.
    pub fn execute_ingest(&self, stmt: Statement, table: &str, input: impl RecordBatchReader) -> ExtensionResult<Outcome> {
        let executed = ingest::execute(&self.client, &stmt, table, input)?;
        let mut client = self.client.clone();
        runtime::block_on(async move {
            Self::release(&mut client, &executed).await?;
            Ok(Outcome::from(&executed))
        })?
    }

    /// A result left on the server (too large to come inline) is fetched
    /// and dropped, which releases it; inline ones need nothing.
    async fn release(client: &mut Client, executed: &Executed) -> ExtensionResult<()> {
        if executed.inline.is_none() {
            let _rows: Vec<RecordBatch> = client.fetch(&executed.handle).await?.try_collect().await?;
        }
        Ok(())
    }

    /// A statement on this session's database.
    pub fn statement(&self, sql: &str) -> Statement {
        Statement::new(&self.database, sql)
    }

    pub fn stats(&self) -> &openduck_proto::client::WireStats {
        self.client.stats()
    }
}
