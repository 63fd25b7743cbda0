//! `openduck gateway`: the same two RPCs as a worker (clients and the
//! extension do not change), in front of the workers in the registry.
//! It checks the client's token, routes each Execute by the rules in
//! [`registry`], forwards uploads as they arrive, and names the worker in
//! every result handle, so a Fetch reaches the worker that holds the rows
//! through any gateway. It keeps no state of its own: two gateways can run
//! side by side.

pub mod registry;

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::metrics::Metrics;
use crate::pb::execution_server::{Execution, ExecutionServer};
use crate::pb::{ExecuteRequest, ExecuteResponse, FetchRequest};
use registry::{Registry, Worker};

/// Messages of an upload buffered between the client and the worker.
const QUEUED_MESSAGES: usize = 4;

pub struct Gateway {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
}

use crate::metrics::FetchStream;

/// A failure to reach the worker or a connection that broke mid-call (as
/// opposed to an answer the worker gave): tonic sets the cause only then.
fn is_transport_failure(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
}

impl Gateway {
    pub fn new(registry: Arc<Registry>, metrics: Arc<Metrics>) -> Self {
        Gateway { registry, metrics }
    }

    /// What the client gets when the call to `worker` failed.
    fn worker_failed(&self, worker: &Worker, status: Status, what: &str) -> Status {
        if !is_transport_failure(&status) {
            self.metrics.routed(&worker.record.endpoint, "refused");
            return status;
        }
        tracing::warn!(worker = %worker.record.endpoint, error = %status.message(), "worker failed a call: skipping it for a while");
        self.registry.mark_down(worker);
        self.metrics.routed(&worker.record.endpoint, "failed");
        Status::unavailable(format!(
            "the OpenDuck worker at {} failed {what} ({}): run the statement again, the gateway routes it to another worker \
             (a write that was cut off may or may not have been applied)",
            worker.record.endpoint,
            status.message()
        ))
    }

    async fn forward_execute(&self, request: Request<Streaming<ExecuteRequest>>) -> Result<Response<ExecuteResponse>, Status> {
        let grant = crate::auth::Grant::of(&request)?;
        let mut incoming = request.into_inner();
        let first = incoming.message().await?.ok_or_else(|| Status::invalid_argument("empty Execute stream: send the statement first"))?;
        grant.check_database(&first.database)?;
        if !first.ingest_table.is_empty() {
            grant.check_upload()?;
        }
        let worker = match first.snapshot_id {
            Some(id) if first.session_id.is_empty() => self.registry.reader_for(&first.database, id)?,
            _ => self.registry.writer_for(&first.database)?,
        };
        tracing::trace!(db = %first.database, worker = %worker.record.endpoint, "execute");
        let _call = worker.call();
        self.metrics.received(first.arrow_ipc.len());
        // The rest of an upload is forwarded as it arrives. An upload the
        // client breaks off must not end cleanly upstream (the worker would
        // run the statement on part of the rows): the call is dropped
        // instead, which resets its stream, and the sender is kept until then.
        let (tx, rx) = mpsc::channel::<ExecuteRequest>(QUEUED_MESSAGES);
        let (broken_tx, broken_rx) = oneshot::channel::<(Status, mpsc::Sender<ExecuteRequest>)>();
        let _ = tx.try_send(first);
        let metrics = self.metrics.clone();
        let pump = tokio::spawn(async move {
            loop {
                match incoming.message().await {
                    Ok(Some(m)) => {
                        metrics.received(m.arrow_ipc.len());
                        if tx.send(m).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        let _ = broken_tx.send((status, tx));
                        return;
                    }
                }
            }
        });
        let mut client = worker.client.clone();
        // A read-only client's statements reach the worker marked so: the
        // worker, which classifies statements, refuses its writes.
        let mut upstream = Request::new(ReceiverStream::new(rx));
        if !grant.write {
            upstream.metadata_mut().insert(crate::auth::ACCESS_HEADER, tonic::metadata::MetadataValue::from_static("read"));
        }
        let answer = tokio::select! {
            answer = client.execute(upstream) => answer,
            Ok((status, _kept_open)) = broken_rx => {
                pump.abort();
                return Err(Status::cancelled(format!("the client's upload broke off ({}): the statement was not run", status.message())));
            }
        };
        pump.abort();
        let mut answer = answer.map_err(|s| self.worker_failed(&worker, s, "during the statement"))?.into_inner();
        if !answer.handle.is_empty() {
            answer.handle = format!("{}.{}", worker.key, answer.handle);
        }
        self.metrics.sent(answer.result_ipc.len());
        self.metrics.routed(&worker.record.endpoint, "ok");
        Ok(Response::new(answer))
    }

    async fn forward_fetch(&self, request: Request<FetchRequest>) -> Result<FetchStream, Status> {
        let handle = request.into_inner().handle;
        let (key, inner) = handle.split_once('.').ok_or_else(|| Status::not_found("unknown result handle: not one an OpenDuck gateway handed out"))?;
        let worker = self.registry.by_key(key)?;
        let call = worker.call();
        let mut client = worker.client.clone();
        let upstream = client
            .fetch(FetchRequest { handle: inner.to_string() })
            .await
            .map_err(|s| self.worker_failed(&worker, s, "before sending the result"))?
            .into_inner();
        let (metrics, registry) = (self.metrics.clone(), self.registry.clone());
        let out = upstream.map(move |item| {
            let _still_in_flight = &call;
            match item {
                Ok(chunk) => {
                    metrics.sent(chunk.arrow_ipc.len());
                    Ok(chunk)
                }
                Err(s) if is_transport_failure(&s) => {
                    registry.mark_down(&worker);
                    metrics.routed(&worker.record.endpoint, "failed");
                    Err(Status::unavailable(format!(
                        "the OpenDuck worker at {} failed while sending the result ({}): run the query again",
                        worker.record.endpoint,
                        s.message()
                    )))
                }
                Err(s) => Err(s),
            }
        });
        Ok(Box::pin(out))
    }
}

#[tonic::async_trait]
impl Execution for Gateway {
    async fn execute(&self, request: Request<Streaming<ExecuteRequest>>) -> Result<Response<ExecuteResponse>, Status> {
        let (started, _guard) = (Instant::now(), self.metrics.start());
        let answer = self.forward_execute(request).await;
        self.metrics.finished("Execute", answer.as_ref().err().map_or(Code::Ok, |s| s.code()), started.elapsed());
        answer
    }

    type FetchStream = FetchStream;

    async fn fetch(&self, request: Request<FetchRequest>) -> Result<Response<FetchStream>, Status> {
        let started = Instant::now();
        match self.forward_fetch(request).await {
            Ok(stream) => Ok(Response::new(crate::metrics::timed_fetch(&self.metrics, stream))),
            Err(s) => {
                self.metrics.finished("Fetch", s.code(), started.elapsed());
                Err(s)
            }
        }
    }
}

/// Serve the gateway (gRPC, `GET /health` as JSON, `GET /metrics`) on
/// `listener` until `shutdown` resolves.
pub async fn serve(
    registry: Arc<Registry>,
    access: crate::service::Access,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), crate::error::QueryError> {
    let metrics = Metrics::new("openduck_gateway");
    let health = registry.clone();
    let http = axum::Router::new().route(
        "/health",
        axum::routing::get(move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], format!("{:#}\n", health.health())) }),
    );
    let gateway = Gateway::new(registry, metrics.clone());
    crate::service::serve_with(ExecutionServer::new(gateway), metrics, http, access, listener, shutdown).await
}
