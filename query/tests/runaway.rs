//! Runaway statements stop: at their timeout (DEADLINE_EXCEEDED, the server
//! answers the next statement), and as soon as their client goes away even
//! while they produce no rows yet (DuckDB interrupt). Its own test binary:
//! it measures this process's CPU time, which other tests would disturb.

mod common;

use std::time::{Duration, Instant};

use query::client::{ClientError, Statement};
use tonic::Code;

/// Never ends on its own (10^15 row pairs), and yields no row until the end.
const RUNAWAY: &str = "SELECT count(*) FROM t a, t b, t c WHERE hash(a.i + b.i + c.i) = 42";

/// CPU seconds this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // utime and stime are in USER_HZ, which Linux fixes at 100 for /proc.
    ticks / 100.0
}

async fn cpu_over(window: Duration) -> f64 {
    let start = cpu_seconds();
    tokio::time::sleep(window).await;
    cpu_seconds() - start
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runaway_statements_stop_at_their_timeout_and_when_their_client_goes() {
    let s = common::server().await;
    let mut c = s.client().await;
    c.run(&Statement::new("mydb", "CREATE TABLE t AS SELECT range AS i FROM range(100000)")).await.unwrap();

    // A client's timeout (lower than the server's) stops it.
    let mut stmt = Statement::new("mydb", RUNAWAY);
    stmt.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    match c.run(&stmt).await {
        Err(ClientError::Server { code: Code::DeadlineExceeded, message }) => assert!(message.contains("timeout"), "{message}"),
        other => panic!("expected DEADLINE_EXCEEDED, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout took {:?}", started.elapsed());
    assert!(cpu_over(Duration::from_millis(700)).await < 0.3, "the timed-out statement kept running");

    // A client that goes away mid-statement stops it.
    let mut gone = s.client().await;
    let task = tokio::spawn(async move { gone.run(&Statement::new("mydb", RUNAWAY)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cpu_over(Duration::from_millis(500)).await > 0.3, "the runaway statement did not run");
    task.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = cpu_over(Duration::from_secs(1)).await;
    assert!(after < 0.3, "the statement kept running after its client went away ({after:.2} s of CPU in 1 s)");

    // The server goes on.
    let rows = c.run(&Statement::new("mydb", "SELECT count(*) FROM t")).await.unwrap();
    assert!(rows.inline.is_some());
    s.shutdown().await;
}
