//! The metadata store as shared by several processes: schema set-up when
//! they start together, and the worker registry gateways route by.

mod common;

use common::{available, env, Backend};
use layerd::catalog::{Catalog, WorkerRecord};

/// Processes starting at once on a fresh metadata store (a cluster coming
/// up) all get a working schema: on Postgres, concurrent CREATE TABLEs used
/// to fail one of them with a unique violation in pg_type.
async fn concurrent_first_start(backend: Backend) {
    if !available(backend) {
        return;
    }
    let env = env(backend).await;
    let url = env.cfg.resolved_metadata_url().unwrap();
    let starts = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { Catalog::connect(&url).await })
    });
    for started in futures::future::join_all(starts).await {
        let catalog = started.unwrap().expect("every process starts");
        assert!(catalog.live_workers(60_000).await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_start_postgres() {
    concurrent_first_start(Backend::PostgresLocal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_start_sqlite() {
    concurrent_first_start(Backend::SqliteLocal).await;
}

async fn registry(backend: Backend) {
    if !available(backend) {
        return;
    }
    let env = env(backend).await;
    let catalog = Catalog::connect(&env.cfg.resolved_metadata_url().unwrap()).await.unwrap();
    let worker = |id: &str, port: u16| WorkerRecord {
        id: id.into(),
        endpoint: format!("http://127.0.0.1:{port}"),
        started_at: 1,
        heartbeat_at: 0,
        in_flight: 2,
        status: "{}".into(),
    };
    catalog.heartbeat_worker(&worker("a", 1)).await.unwrap();
    catalog.heartbeat_worker(&worker("b", 2)).await.unwrap();
    // A heartbeat refreshes the row (a restarted worker may move to another port).
    catalog.heartbeat_worker(&worker("a", 3)).await.unwrap();
    let live = catalog.live_workers(60_000).await.unwrap();
    assert_eq!(live.iter().map(|w| (w.id.as_str(), w.endpoint.as_str())).collect::<Vec<_>>(), [("a", "http://127.0.0.1:3"), ("b", "http://127.0.0.1:2")]);
    assert!(live.iter().all(|w| w.heartbeat_at > 0 && w.in_flight == 2));
    // Rows that stopped heartbeating are not live.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    catalog.heartbeat_worker(&worker("b", 2)).await.unwrap();
    assert_eq!(catalog.live_workers(20).await.unwrap().iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["b"]);
    catalog.remove_worker("b").await.unwrap();
    assert_eq!(catalog.live_workers(60_000).await.unwrap().len(), 1);
    // Writers are the holders of unexpired leases.
    catalog.create_database("d1").await.unwrap();
    catalog.acquire_lease("d1", "a", 60_000).await.unwrap();
    catalog.acquire_lease("d2", "b", -1).await.unwrap(); // expired at once
    let writers = catalog.current_writers().await.unwrap();
    assert_eq!(writers.len(), 1);
    assert_eq!(writers.get("d1").map(String::as_str), Some("a"));
}

#[tokio::test]
async fn registry_sqlite() {
    registry(Backend::SqliteLocal).await;
}

#[tokio::test]
async fn registry_postgres() {
    registry(Backend::PostgresLocal).await;
}
