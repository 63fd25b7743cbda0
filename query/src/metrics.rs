//! Prometheus metrics of a worker or a gateway (`GET /metrics`, text
//! format): requests by RPC and outcome, their latency, bytes moved, and
//! the calls a gateway routed to each worker.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tonic::{Code, Status};

use crate::pb::FetchResponse;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    rpc: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rpc {
    rpc: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Db {
    db: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLookup {
    cache: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    worker: String,
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~100 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Outcome, Counter>,
    latency: Family<Rpc, Histogram, fn() -> Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    in_flight: Gauge,
    routed: Family<Route, Counter>,
    seal_lag: Family<Db, Gauge<f64, std::sync::atomic::AtomicU64>>,
    cache_lookups: Family<CacheLookup, Counter>,
}

impl Metrics {
    /// Metrics named `<prefix>_...` (`openduck_worker`, `openduck_gateway`).
    pub fn new(prefix: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix(prefix);
        let requests = Family::<Outcome, Counter>::default();
        registry.register("requests", "RPCs answered, by RPC and gRPC status code", requests.clone());
        let latency = Family::<Rpc, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("request_seconds", "Time to answer an RPC (Execute: until the answer; Fetch: until the stream ended)", latency.clone());
        let bytes_in = Counter::default();
        registry.register("received_bytes", "Arrow IPC bytes received from clients (ingest)", bytes_in.clone());
        let bytes_out = Counter::default();
        registry.register("sent_bytes", "Arrow IPC bytes sent to clients (results)", bytes_out.clone());
        let in_flight = Gauge::default();
        registry.register("in_flight", "RPCs being answered now", in_flight.clone());
        let routed = Family::<Route, Counter>::default();
        registry.register("routed", "Calls a gateway sent to each worker, by outcome (ok, refused, failed: the worker could not be reached or died)", routed.clone());
        let seal_lag = Family::<Db, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "seal_lag_seconds",
            "Per database this worker writes: age of its oldest commit not yet in a sealed snapshot (0: all sealed)",
            seal_lag.clone(),
        );
        let cache_lookups = Family::<CacheLookup, Counter>::default();
        registry.register(
            "cache_lookups",
            "Lookups in the storage caches (pages and layer indexes in memory, the disk cache of a remote store), by outcome (hit, miss)",
            cache_lookups.clone(),
        );
        Arc::new(Metrics { registry, requests, latency, bytes_in, bytes_out, in_flight, routed, seal_lag, cache_lookups })
    }

    /// One RPC starts; the returned guard counts it as in flight until dropped.
    pub fn start(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.inc();
        InFlightGuard(self.clone())
    }

    pub fn finished(&self, rpc: &'static str, code: Code, elapsed: Duration) {
        self.requests.get_or_create(&Outcome { rpc, code: format!("{code:?}") }).inc();
        self.latency.get_or_create(&Rpc { rpc }).observe(elapsed.as_secs_f64());
    }

    pub fn received(&self, bytes: usize) {
        self.bytes_in.inc_by(bytes as u64);
    }

    pub fn sent(&self, bytes: usize) {
        self.bytes_out.inc_by(bytes as u64);
    }

    pub fn routed(&self, worker: &str, outcome: &'static str) {
        self.routed.get_or_create(&Route { worker: worker.to_string(), outcome }).inc();
    }

    pub fn set_seal_lag(&self, db: &str, lag: Option<Duration>) {
        self.seal_lag.get_or_create(&Db { db: db.to_string() }).set(lag.map_or(0.0, |l| l.as_secs_f64()));
    }

    /// Bring the cache counters up to the totals `(cache, hits, misses)`.
    pub fn set_cache_lookups(&self, totals: &[(&'static str, u64, u64)]) {
        for &(cache, hits, misses) in totals {
            for (outcome, total) in [("hit", hits), ("miss", misses)] {
                let c = self.cache_lookups.get_or_create(&CacheLookup { cache, outcome });
                c.inc_by(total.saturating_sub(c.get()));
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

pub struct InFlightGuard(Arc<Metrics>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// A Fetch's stream of result chunks.
pub type FetchStream = Pin<Box<dyn Stream<Item = Result<FetchResponse, Status>> + Send>>;

/// Records a Fetch when its stream ends or the client drops it.
struct Timed<S> {
    inner: S,
    metrics: Arc<Metrics>,
    started: Instant,
    code: Code,
    _guard: InFlightGuard,
}

impl<S: Stream<Item = Result<FetchResponse, Status>> + Unpin> Stream for Timed<S> {
    type Item = Result<FetchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        match &polled {
            std::task::Poll::Ready(None) => self.code = Code::Ok,
            std::task::Poll::Ready(Some(Err(s))) => self.code = s.code(),
            _ => {}
        }
        polled
    }
}

impl<S> Drop for Timed<S> {
    fn drop(&mut self) {
        self.metrics.finished("Fetch", self.code, self.started.elapsed());
    }
}

/// Wrap a Fetch result stream so it is counted in the metrics.
pub fn timed_fetch(metrics: &Arc<Metrics>, inner: FetchStream) -> FetchStream {
    Box::pin(Timed { inner, metrics: metrics.clone(), started: Instant::now(), code: Code::Cancelled, _guard: metrics.start() })
}

