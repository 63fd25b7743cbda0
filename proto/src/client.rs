//! A small Rust client of the OpenDuck protocol: connect, execute, fetch as a
//! stream of `RecordBatch`es, ingest client rows. Used by the extension.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;
use arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt, TryStreamExt};
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
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("server error ({code:?}): {message}")]
    Server { code: Code, message: String },
    #[error("bad Arrow data: {0}")]
    Arrow(String),
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        let message = s.message().to_string();
        if std::error::Error::source(&s).is_some() {
            // Not an answer: the connection failed or broke mid-call.
            return ClientError::Unavailable(format!("the connection to the OpenDuck server broke ({message}): retry when it is back"));
        }
        match s.code() {
            Code::Unauthenticated => ClientError::Unauthenticated(message),
            Code::NotFound => ClientError::NotFound(message),
            Code::InvalidArgument => ClientError::InvalidArgument(message),
            Code::PermissionDenied => ClientError::PermissionDenied(message),
            Code::FailedPrecondition => ClientError::FailedPrecondition(message),
            Code::Aborted => ClientError::Conflict(message),
            Code::Unavailable => ClientError::Unavailable(message),
            code => ClientError::Server { code, message },
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// HTTP/2 flow-control windows (both ends use these).
pub const HTTP2_STREAM_WINDOW: u32 = 16 << 20;
pub const HTTP2_CONNECTION_WINDOW: u32 = 32 << 20;

/// Largest Arrow IPC payload per ingest message.
pub const INGEST_CHUNK_BYTES: usize = 4 << 20;

#[derive(Clone)]
pub struct TokenInterceptor(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        req.metadata_mut().insert(crate::PROTOCOL_HEADER, MetadataValue::from(crate::PROTOCOL_VERSION));
        Ok(req)
    }
}

/// What Execute returned.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The whole result (one Arrow IPC stream) when the server sent it
    /// inline; otherwise it is fetched with `handle`.
    pub inline: Option<Vec<u8>>,
    pub handle: String,
    pub schema: SchemaRef,
    pub snapshot_id: i64,
    pub is_write: bool,
    pub rows_affected: i64,
    /// Changes whenever the database's schema may have changed.
    pub catalog_version: u64,
}

/// One statement to run.
#[derive(Clone, Debug, Default)]
pub struct Statement {
    pub db: String,
    pub sql: String,
    /// Read this snapshot instead of the latest.
    pub snapshot: Option<i64>,
    /// Run inside this transaction (see [`new_session_id`]).
    pub session: Option<String>,
    /// This statement opens the transaction `session`.
    pub session_start: bool,
    /// Stop it after this long (only lowers the server's timeout).
    pub timeout: Option<std::time::Duration>,
}

impl Statement {
    pub fn new(db: &str, sql: &str) -> Self {
        Statement { db: db.into(), sql: sql.into(), ..Default::default() }
    }

    /// This statement inside the transaction `id` (`start`: it opens it).
    pub fn in_session(mut self, id: &str, start: bool) -> Self {
        self.session = Some(id.to_string());
        self.session_start = start;
        self
    }

    fn first_message(&self, ingest_table: &str) -> ExecuteRequest {
        ExecuteRequest {
            database: self.db.clone(),
            sql: self.sql.clone(),
            snapshot_id: self.snapshot,
            session_id: self.session.clone().unwrap_or_default(),
            session_start: self.session_start,
            timeout_ms: self.timeout.map_or(0, |t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1)),
            ingest_table: ingest_table.into(),
            ..Default::default()
        }
    }
}

/// A new random transaction id (32 hex digits).
pub fn new_session_id() -> String {
    crate::ids::random_id()
}

/// Payload bytes this client (and its clones) moved: SQL and Arrow IPC sent,
/// Arrow IPC received.
#[derive(Debug, Default)]
pub struct WireStats {
    pub requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
}

pub type RecordBatchStream = Pin<Box<dyn Stream<Item = ClientResult<RecordBatch>> + Send>>;

#[derive(Clone)]
pub struct Client {
    inner: ExecutionClient<InterceptedService<Channel, TokenInterceptor>>,
    stats: Arc<WireStats>,
}

/// The generated gRPC client with the token and protocol headers on every call.
pub type RawClient = ExecutionClient<InterceptedService<Channel, TokenInterceptor>>;

/// A client's HTTP/2 pings: a server that stops answering them (its machine
/// died, or a partition) fails the calls in flight instead of hanging them.
const CLIENT_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
/// A gateway watches its workers closely: a dead one fails its calls within
/// about two of these.
const GATEWAY_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// A PEM file of extra CA certificates to trust for `https://` endpoints
/// (besides the system's roots), e.g. a private CA.
pub const CA_FILE_ENV: &str = "OPENDUCK_CA_FILE";

/// Choose rustls' crypto provider for this process (ring), once. Both
/// providers may be compiled in, and rustls then refuses to guess.
pub fn install_tls_provider() {
    let _already = rustls::crypto::ring::default_provider().install_default();
}

/// TLS for an `https://` endpoint: the system's roots plus `$OPENDUCK_CA_FILE`.
fn client_tls() -> ClientResult<tonic::transport::ClientTlsConfig> {
    install_tls_provider();
    let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
    if let Some(path) = std::env::var_os(CA_FILE_ENV).filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path)
            .map_err(|e| ClientError::InvalidArgument(format!("{CA_FILE_ENV}={}: cannot read the CA certificates: {e}", path.to_string_lossy())))?;
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
    }
    Ok(tls)
}

fn endpoint_of(endpoint: &str, keep_alive: std::time::Duration) -> ClientResult<Endpoint> {
    let mut ep = Endpoint::from_shared(endpoint.to_string()).map_err(|_| ClientError::BadEndpoint(endpoint.to_string()))?;
    if endpoint.starts_with("https://") {
        // TLS was asked for: never fall back to plaintext.
        ep = ep.tls_config(client_tls()?).map_err(|e| ClientError::BadEndpoint(format!("{endpoint} ({e})")))?;
    } else if !endpoint.starts_with("http://") {
        return Err(ClientError::BadEndpoint(endpoint.to_string()));
    }
    Ok(ep
        .http2_keep_alive_interval(keep_alive)
        .keep_alive_timeout(keep_alive * 2)
        .connect_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true)
        // Results arrive in MiB-sized messages: HTTP/2 windows large enough not to stall them.
        .initial_stream_window_size(Some(HTTP2_STREAM_WINDOW))
        .initial_connection_window_size(Some(HTTP2_CONNECTION_WINDOW)))
}

fn raw(channel: Channel, token: Option<&str>) -> ClientResult<RawClient> {
    let header = match token {
        Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| ClientError::InvalidArgument("the token contains characters not allowed in a header".into()))?),
        None => None,
    };
    Ok(ExecutionClient::with_interceptor(channel, TokenInterceptor(header)).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20))
}

/// A raw client that connects on first use (and reconnects after a
/// failure): what a gateway keeps per worker.
pub fn lazy_raw_client(endpoint: &str, token: Option<&str>) -> ClientResult<RawClient> {
    raw(endpoint_of(endpoint, GATEWAY_KEEP_ALIVE)?.connect_lazy(), token)
}

impl Client {
    pub async fn connect(endpoint: &str, token: Option<&str>) -> ClientResult<Self> {
        let channel = endpoint_of(endpoint, CLIENT_KEEP_ALIVE)?
            .connect()
            .await
            .map_err(|e| ClientError::Unreachable { endpoint: endpoint.to_string(), reason: source_chain(&e) })?;
        Ok(Client { inner: raw(channel, token)?, stats: Arc::default() })
    }

    /// Bytes moved so far by this client and its clones.
    pub fn stats(&self) -> &WireStats {
        &self.stats
    }

    /// Run one statement.
    pub async fn execute(&mut self, db: &str, sql: &str, snapshot: Option<i64>) -> ClientResult<Executed> {
        self.run(&Statement { snapshot, ..Statement::new(db, sql) }).await
    }

    /// Run one statement.
    pub async fn run(&mut self, stmt: &Statement) -> ClientResult<Executed> {
        self.run_stream(stmt.first_message(""), futures::stream::empty()).await
    }

    /// Run one statement that reads `batches` as the table `table`.
    pub async fn execute_with_ingest(&mut self, db: &str, sql: &str, table: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> ClientResult<Executed> {
        let bytes = ipc::encode_all(schema, batches).map_err(|e| ClientError::Arrow(e.to_string()))?;
        let chunks: Vec<Vec<u8>> = bytes.chunks(INGEST_CHUNK_BYTES).map(<[u8]>::to_vec).collect();
        self.run_with_ingest(&Statement::new(db, sql), table, futures::stream::iter(chunks)).await
    }

    /// Run one statement that reads, as the table `table`, the rows of the
    /// Arrow IPC stream whose bytes `chunks` yields; they are uploaded as
    /// they are produced (at most [`INGEST_CHUNK_BYTES`] each).
    /// The first chunk travels in the statement's own message, so a small
    /// upload is one request message.
    pub async fn run_with_ingest(&mut self, stmt: &Statement, table: &str, chunks: impl Stream<Item = Vec<u8>> + Send + 'static) -> ClientResult<Executed> {
        let mut chunks = Box::pin(chunks);
        let mut first = stmt.first_message(table);
        first.arrow_ipc = chunks.next().await.unwrap_or_default();
        self.stats.bytes_sent.fetch_add(first.arrow_ipc.len() as u64, Ordering::Relaxed);
        let stats = self.stats.clone();
        let rest = chunks.map(move |arrow_ipc| {
            stats.bytes_sent.fetch_add(arrow_ipc.len() as u64, Ordering::Relaxed);
            ExecuteRequest { arrow_ipc, ..Default::default() }
        });
        self.run_stream(first, rest).await
    }

    async fn run_stream(&mut self, first: ExecuteRequest, rest: impl Stream<Item = ExecuteRequest> + Send + 'static) -> ClientResult<Executed> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_sent.fetch_add(first.sql.len() as u64, Ordering::Relaxed);
        let r = self.inner.execute(futures::stream::once(async { first }).chain(rest)).await?.into_inner();
        self.stats.bytes_received.fetch_add((r.arrow_schema.len() + r.result_ipc.len()) as u64, Ordering::Relaxed);
        let schema = ipc::schema_from_bytes(&r.arrow_schema).map_err(|e| ClientError::Arrow(e.to_string()))?;
        Ok(Executed {
            inline: r.complete.then_some(r.result_ipc),
            handle: r.handle,
            schema,
            snapshot_id: r.snapshot_id,
            is_write: r.is_write,
            rows_affected: r.rows_affected,
            catalog_version: r.catalog_version,
        })
    }

    /// The rows of an executed statement: decoded from the response when
    /// they came inline, else streamed by Fetch as they arrive.
    pub async fn rows(&mut self, ex: &Executed) -> ClientResult<RecordBatchStream> {
        match &ex.inline {
            Some(bytes) => {
                let (_, batches) = ipc::decode_all(bytes).map_err(|e| ClientError::Arrow(e.to_string()))?;
                Ok(Box::pin(futures::stream::iter(batches.into_iter().map(Ok))))
            }
            None => self.fetch(&ex.handle).await,
        }
    }

    /// Stream the rows behind a handle as they arrive.
    pub async fn fetch(&mut self, handle: &str) -> ClientResult<RecordBatchStream> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let chunks = self.inner.fetch(FetchRequest { handle: handle.into() }).await?.into_inner();
        let state = (chunks, StreamDecoder::new(), VecDeque::<RecordBatch>::new(), false, self.stats.clone());
        let s = futures::stream::try_unfold(state, |(mut chunks, mut dec, mut ready, mut done, stats)| async move {
            loop {
                if let Some(b) = ready.pop_front() {
                    return Ok(Some((b, (chunks, dec, ready, done, stats))));
                }
                if done {
                    return Ok(None);
                }
                match chunks.message().await? {
                    Some(c) => {
                        stats.bytes_received.fetch_add(c.arrow_ipc.len() as u64, Ordering::Relaxed);
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
        let batches = self.rows(&ex).await?.try_collect().await?;
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
