//! A small Rust client of the OpenDuck protocol: connect, execute, fetch as a
//! stream of `RecordBatch`es, ingest client rows. Used by the extension.

use std::collections::VecDeque;
use std::pin::Pin;

use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;
use arrow::record_batch::RecordBatch;
use futures::{Stream, TryStreamExt};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::ipc;
use crate::pb::execution_client::ExecutionClient;
use crate::pb::{ExecuteRequest, FetchRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the OpenDuck server at {endpoint}: {reason} (is `openduck serve` running there? check the endpoint)")]
    Unreachable { endpoint: String, reason: String },
    #[error("invalid endpoint '{0}': expected e.g. http://localhost:7878")]
    BadEndpoint(String),
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("server error ({code:?}): {message}")]
    Server { code: Code, message: String },
    #[error("bad Arrow data: {0}")]
    Arrow(String),
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        let message = s.message().to_string();
        match s.code() {
            Code::Unauthenticated => ClientError::Unauthenticated(message),
            Code::NotFound => ClientError::NotFound(message),
            Code::InvalidArgument => ClientError::InvalidArgument(message),
            Code::PermissionDenied => ClientError::PermissionDenied(message),
            Code::FailedPrecondition => ClientError::FailedPrecondition(message),
            code => ClientError::Server { code, message },
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

#[derive(Clone)]
pub struct TokenInterceptor(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// What Execute returned.
#[derive(Clone, Debug)]
pub struct Executed {
    pub handle: String,
    pub schema: SchemaRef,
    pub snapshot_id: i64,
    pub is_write: bool,
    pub rows_affected: i64,
}

pub type RecordBatchStream = Pin<Box<dyn Stream<Item = ClientResult<RecordBatch>> + Send>>;

#[derive(Clone)]
pub struct Client {
    inner: ExecutionClient<InterceptedService<Channel, TokenInterceptor>>,
}

impl Client {
    pub async fn connect(endpoint: &str, token: Option<&str>) -> ClientResult<Self> {
        let ep = Endpoint::from_shared(endpoint.to_string()).map_err(|_| ClientError::BadEndpoint(endpoint.to_string()))?;
        let channel = ep
            .connect_timeout(std::time::Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| ClientError::Unreachable { endpoint: endpoint.to_string(), reason: source_chain(&e) })?;
        let header = match token {
            Some(t) => Some(
                format!("Bearer {t}").parse().map_err(|_| ClientError::InvalidArgument("the token contains characters not allowed in a header".into()))?,
            ),
            None => None,
        };
        let inner = ExecutionClient::with_interceptor(channel, TokenInterceptor(header))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        Ok(Client { inner })
    }

    /// Run one statement.
    pub async fn execute(&mut self, db: &str, sql: &str, snapshot: Option<i64>) -> ClientResult<Executed> {
        let first = ExecuteRequest { database: db.into(), sql: sql.into(), snapshot_id: snapshot, ..Default::default() };
        self.execute_stream(vec![first]).await
    }

    /// Run one statement that reads `batches` as the table `table`.
    pub async fn execute_with_ingest(&mut self, db: &str, sql: &str, table: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> ClientResult<Executed> {
        let bytes = ipc::encode_all(schema, batches).map_err(|e| ClientError::Arrow(e.to_string()))?;
        let mut msgs = vec![ExecuteRequest { database: db.into(), sql: sql.into(), ingest_table: table.into(), ..Default::default() }];
        msgs.extend(bytes.chunks(4 << 20).map(|c| ExecuteRequest { arrow_ipc: c.to_vec(), ..Default::default() }));
        self.execute_stream(msgs).await
    }

    async fn execute_stream(&mut self, msgs: Vec<ExecuteRequest>) -> ClientResult<Executed> {
        let r = self.inner.execute(futures::stream::iter(msgs)).await?.into_inner();
        let schema = ipc::schema_from_bytes(&r.arrow_schema).map_err(|e| ClientError::Arrow(e.to_string()))?;
        Ok(Executed { handle: r.handle, schema, snapshot_id: r.snapshot_id, is_write: r.is_write, rows_affected: r.rows_affected })
    }

    /// Stream the rows behind a handle as they arrive.
    pub async fn fetch(&mut self, handle: &str) -> ClientResult<RecordBatchStream> {
        let chunks = self.inner.fetch(FetchRequest { handle: handle.into() }).await?.into_inner();
        let state = (chunks, StreamDecoder::new(), VecDeque::<RecordBatch>::new(), false);
        let s = futures::stream::try_unfold(state, |(mut chunks, mut dec, mut ready, mut done)| async move {
            loop {
                if let Some(b) = ready.pop_front() {
                    return Ok(Some((b, (chunks, dec, ready, done))));
                }
                if done {
                    return Ok(None);
                }
                match chunks.message().await? {
                    Some(c) => {
                        let mut buf = Buffer::from(c.arrow_ipc);
                        while !buf.is_empty() {
                            if let Some(b) = dec.decode(&mut buf).map_err(|e| ClientError::Arrow(e.to_string()))? {
                                ready.push_back(b);
                            }
                        }
                    }
                    None => {
                        dec.finish().map_err(|e| ClientError::Arrow(e.to_string()))?;
                        done = true;
                    }
                }
            }
        });
        Ok(Box::pin(s))
    }

    /// Execute and collect every row.
    pub async fn query(&mut self, db: &str, sql: &str, snapshot: Option<i64>) -> ClientResult<(Executed, Vec<RecordBatch>)> {
        let ex = self.execute(db, sql, snapshot).await?;
        let batches = self.fetch(&ex.handle).await?.try_collect().await?;
        Ok((ex, batches))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
