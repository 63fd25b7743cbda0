//! Admission control through the real service: a server at its statement
//! limit makes the next statement wait, then refuses it with
//! RESOURCE_EXHAUSTED (a status a client can back off on), and admits
//! statements again as soon as a slot frees, including the slot of a
//! statement whose client went away.

mod common;

use std::time::{Duration, Instant};

use query::client::{ClientError, Statement};
use tonic::Code;

/// Runs until stopped (10^15 row triples) and yields no row until the end.
const RUNAWAY: &str = "SELECT count(*) FROM t a, t b, t c WHERE hash(a.i + b.i + c.i) = 42";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_server_refuses_with_resource_exhausted_and_recovers() {
    let s = common::server_limited(|l| {
        l.max_statements = 1;
        l.admission_wait = Duration::from_millis(300);
    })
    .await;
    let mut c = s.client().await;
    c.run(&Statement::new("mydb", "CREATE TABLE t AS SELECT range AS i FROM range(100000)")).await.unwrap();

    // One statement holds the only slot ...
    let mut hog = s.client().await;
    let running = tokio::spawn(async move { hog.run(&Statement::new("mydb", RUNAWAY)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!running.is_finished());

    // ... so the next one waits for the admission wait, then is refused.
    let started = Instant::now();
    match c.run(&Statement::new("mydb", "SELECT 42")).await {
        Err(ClientError::Server { code: Code::ResourceExhausted, message }) => {
            assert!(message.contains("limit of 1 statements") && message.contains("retry"), "{message}")
        }
        other => panic!("expected RESOURCE_EXHAUSTED, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(250), "refused without waiting: {:?}", started.elapsed());

    // The hog's client goes away: its statement stops and its slot frees.
    running.abort();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.run(&Statement::new("mydb", "SELECT count(*) FROM t")).await {
            Ok(ex) => {
                assert!(ex.inline.is_some());
                break;
            }
            Err(ClientError::Server { code: Code::ResourceExhausted, .. }) if Instant::now() < deadline => {}
            Err(e) => panic!("after the hog went away: {e:?}"),
        }
    }
    s.shutdown().await;
}
