//! The gRPC adapter: `openduck.v1.Execution` over the [`Engine`], plus the
//! server (auth interceptor, `GET /health` on the same port).

use std::sync::Arc;

use futures::FutureExt;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Auth, Tokens};
use crate::engine::Engine;
use crate::error::QueryError;
use crate::ingest::Ingest;
use crate::ipc;
use crate::metrics::Metrics;
use crate::pb::execution_server::{Execution, ExecutionServer};
use crate::pb::{ExecuteRequest, ExecuteResponse, FetchRequest, FetchResponse};

pub struct ExecutionService {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
}

impl ExecutionService {
    pub fn new(engine: Arc<Engine>, metrics: Arc<Metrics>) -> Self {
        ExecutionService { engine, metrics }
    }
}

use crate::metrics::FetchStream;

/// How long a stopping server waits for open connections to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[tonic::async_trait]
impl Execution for ExecutionService {
    async fn execute(&self, request: Request<Streaming<ExecuteRequest>>) -> Result<Response<ExecuteResponse>, Status> {
        let (started, _guard) = (std::time::Instant::now(), self.metrics.start());
        let answer = self.run_execute(request).await;
        self.metrics.finished("Execute", answer.as_ref().err().map_or(tonic::Code::Ok, |s| s.code()), started.elapsed());
        answer
    }

    type FetchStream = FetchStream;

    async fn fetch(&self, request: Request<FetchRequest>) -> Result<Response<FetchStream>, Status> {
        let started = std::time::Instant::now();
        match self.run_fetch(request) {
            Ok(stream) => Ok(Response::new(crate::metrics::timed_fetch(&self.metrics, stream))),
            Err(s) => {
                self.metrics.finished("Fetch", s.code(), started.elapsed());
                Err(s)
            }
        }
    }
}

impl ExecutionService {
    async fn run_execute(&self, request: Request<Streaming<ExecuteRequest>>) -> Result<Response<ExecuteResponse>, Status> {
        let grant = crate::auth::Grant::of(&request)?;
        let mut stream = request.into_inner();
        let first = stream.message().await?.ok_or_else(|| Status::invalid_argument("empty Execute stream: send the statement first"))?;
        grant.check_database(&first.database)?;
        let ingest = if first.ingest_table.is_empty() {
            if !first.arrow_ipc.is_empty() {
                return Err(Status::invalid_argument("Arrow data sent without ingest_table"));
            }
            while let Some(m) = stream.message().await? {
                if !m.arrow_ipc.is_empty() {
                    return Err(Status::invalid_argument("Arrow data sent without ingest_table"));
                }
            }
            None
        } else {
            grant.check_upload()?;
            // Spooled to disk as it arrives: bounded memory for any upload size.
            let mut spool = self.engine.new_spool().map_err(|e| e.status())?;
            spool.append(&first.arrow_ipc).await.map_err(|e| e.status())?;
            self.metrics.received(first.arrow_ipc.len());
            while let Some(m) = stream.message().await? {
                self.metrics.received(m.arrow_ipc.len());
                spool.append(&m.arrow_ipc).await.map_err(|e| e.status())?;
            }
            spool.finish().await.map_err(|e| e.status())?;
            if spool.is_empty() {
                return Err(Status::invalid_argument("ingest_table given but no Arrow IPC data sent"));
            }
            Some(std::sync::Arc::new(Ingest::new(first.ingest_table, spool).map_err(|e| e.status())?))
        };
        let req = crate::engine::Request {
            db: first.database,
            sql: first.sql,
            snapshot: first.snapshot_id,
            ingest,
            session: first.session_id,
            session_start: first.session_start,
            timeout: (first.timeout_ms > 0).then(|| std::time::Duration::from_millis(first.timeout_ms.into())),
            read_only: !grant.write,
        };
        let db = req.db.clone();
        tracing::trace!(db, sql = %req.sql, ingest = req.ingest.is_some(), session = %req.session, "execute");
        let ex = self.engine.execute(req).await.map_err(|e| {
            tracing::debug!(db, error = %e, "execute refused");
            e.status()
        })?;
        self.metrics.sent(ex.inline.as_ref().map_or(0, Vec::len));
        Ok(Response::new(ExecuteResponse {
            handle: ex.handle.unwrap_or_default(),
            arrow_schema: ipc::schema_bytes(&ex.schema).map_err(|e| QueryError::from(e).status())?,
            snapshot_id: ex.snapshot_id,
            is_write: ex.is_write,
            rows_affected: ex.rows_affected,
            complete: ex.inline.is_some(),
            result_ipc: ex.inline.unwrap_or_default(),
            catalog_version: ex.catalog_version,
        }))
    }

    fn run_fetch(&self, request: Request<FetchRequest>) -> Result<FetchStream, Status> {
        let chunks = self.engine.fetch(&request.into_inner().handle).map_err(|e| e.status())?;
        let metrics = self.metrics.clone();
        // The engine hands over the result already encoded as IPC chunks.
        let out = futures::stream::unfold(Some(chunks), move |chunks| {
            let metrics = metrics.clone();
            async move {
                let mut chunks = chunks?;
                match chunks.next().await? {
                    Ok(arrow_ipc) => {
                        metrics.sent(arrow_ipc.len());
                        Some((Ok(FetchResponse { arrow_ipc }), Some(chunks)))
                    }
                    Err(e) => Some((Err(e.status()), None)),
                }
            }
        });
        Ok(Box::pin(out))
    }
}

/// Serve gRPC (and `GET /health`, `GET /metrics`) on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    access: Access,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), QueryError> {
    let metrics = Metrics::new("openduck_worker");
    let http = axum::Router::new().route("/health", axum::routing::get(|| async { "ok\n" }));
    let gauges = tokio::spawn(update_gauges(Arc::downgrade(&engine), metrics.clone()));
    let served = serve_with(ExecutionServer::new(ExecutionService::new(engine, metrics.clone())), metrics, http, access, listener, shutdown).await;
    gauges.abort();
    served
}

/// Keep the gauges that describe the engine's state current (every second).
async fn update_gauges(engine: std::sync::Weak<Engine>, metrics: Arc<Metrics>) {
    let mut written = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let Some(engine) = engine.upgrade() else { return };
        metrics.set_cache_lookups(&engine.cache_lookups());
        let now: std::collections::HashSet<String> = engine.writing().await.into_iter().map(|(db, lag)| {
            metrics.set_seal_lag(&db, lag);
            db
        }).collect();
        for gone in written.difference(&now) {
            metrics.set_seal_lag(gone, None);
        }
        written = now;
    }
}

/// A server's TLS identity: certificate chain and private key, PEM.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Who may call a server and how: the tokens clients may send (each with
/// its rights; `None`: an open server), and TLS (rustls) when the server has
/// a certificate.
#[derive(Clone, Default)]
pub struct Access {
    pub tokens: Option<Tokens>,
    pub tls: Option<Tls>,
}

/// Serve an `Execution` service with the token check, plus the plain HTTP
/// routes in `http` and `GET /metrics`, until `shutdown` resolves.
pub async fn serve_with<S: Execution>(
    server: ExecutionServer<S>,
    metrics: Arc<Metrics>,
    http: axum::Router,
    access: Access,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), QueryError> {
    let stopped = shutdown.shared();
    let auth = Auth::new(access.tokens);
    let server = server.max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20);
    let svc = tonic::service::interceptor::InterceptedService::new(server, move |req| auth.check(req));
    let mut routes = tonic::service::Routes::new(svc);
    let http = http.route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    let router = std::mem::take(routes.axum_router_mut()).merge(http);
    *routes.axum_router_mut() = router;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = access.tls {
        crate::client::install_tls_provider();
        let identity = tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| QueryError::Invalid(format!("TLS certificate or key: {e}")))?;
    }
    let serving = builder
        .accept_http1(true)
        .initial_stream_window_size(Some(crate::client::HTTP2_STREAM_WINDOW))
        .initial_connection_window_size(Some(crate::client::HTTP2_CONNECTION_WINDOW))
        .add_routes(routes)
        // No Nagle: small responses (SELECT 1) must not wait for delayed ACKs.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stopped.clone());
    // Open connections get a grace period to finish their requests; a
    // client that never answers (an idle HTTP/2 connection nobody polls)
    // must not keep the server from stopping.
    tokio::select! {
        served = serving => served.map_err(|e| QueryError::Internal(format!("gRPC server: {e}"))),
        () = stopped.then(|()| tokio::time::sleep(SHUTDOWN_GRACE)) => {
            tracing::warn!("clients still connected {} s after shutdown began: closing their connections", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}
