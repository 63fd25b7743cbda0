//! The query service end to end over loopback: a real FUSE mount, real DuckDB
//! workers, real gRPC, the Rust client.

mod common;

use std::sync::Arc;

use arrow::array::{Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use common::{ints, server};
use futures::StreamExt;
use query::client::{Client, ClientError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_are_read_at_once_and_checkpoints_are_snapshots() {
    let s = server().await;
    let mut c = s.client().await;
    // A new database reads as an empty DuckDB database.
    let (empty, tables) = c.query("mydb", "SELECT count(*)::BIGINT FROM duckdb_tables()", None).await.unwrap();
    assert!(!empty.is_write && empty.inline.is_some(), "a small result comes with the answer");
    assert_eq!(ints(&tables, 0), [0]);
    let w = c.execute("mydb", "CREATE TABLE t AS SELECT range::BIGINT AS i FROM range(1000)", None).await.unwrap();
    assert!(w.is_write);
    assert_ne!(w.catalog_version, empty.catalog_version, "DDL changes the catalog version");
    let (r, batches) = c.query("mydb", "SELECT count(*)::BIGINT, sum(i)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&batches, 0), [1000], "read-your-writes without a checkpoint");
    assert_eq!(r.catalog_version, w.catalog_version, "reads and DML keep the catalog version");
    // CHECKPOINT seals a snapshot and names it.
    let cp = c.execute("mydb", "CHECKPOINT", None).await.unwrap();
    let first = cp.snapshot_id;
    assert!(first > 0);
    let w2 = c.execute("mydb", "INSERT INTO t SELECT range + 1000 FROM range(500)", None).await.unwrap();
    assert_eq!(w2.rows_affected, 500);
    assert_eq!(w2.snapshot_id, first, "a commit is not a snapshot");
    assert_eq!(w2.catalog_version, w.catalog_version);
    let (_, now) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&now, 0), [1500], "read-your-writes");
    let (old, then) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", Some(first)).await.unwrap();
    assert_eq!(ints(&then, 0), [1000], "time travel");
    assert_eq!(old.snapshot_id, first);
    let second = c.execute("mydb", "CHECKPOINT", None).await.unwrap().snapshot_id;
    assert!(second > first);
    let (_, sealed) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", Some(second)).await.unwrap();
    assert_eq!(ints(&sealed, 0), [1500]);
    let (_, again) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", Some(first)).await.unwrap();
    assert_eq!(ints(&again, 0), [1000], "a snapshot never changes");
    // A checkpoint with nothing new seals nothing.
    assert_eq!(c.execute("mydb", "CHECKPOINT", None).await.unwrap().snapshot_id, second);
    // Catalog discovery is plain SQL.
    let (_, tables) = c.query("mydb", "SELECT table_name FROM duckdb_tables()", None).await.unwrap();
    let names = tables[0].column(0).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(names.value(0), "t");
    // Writes against a snapshot are refused.
    assert!(matches!(c.execute("mydb", "DELETE FROM t", Some(first)).await, Err(ClientError::FailedPrecondition(_))));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_client_rows_and_stream_large_results() {
    let s = server().await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TABLE t (i BIGINT, s VARCHAR)", None).await.unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
    let batch = |from: i64| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from((from..from + 1000).collect::<Vec<_>>())),
                Arc::new(StringArray::from((from..from + 1000).map(|i| Some(format!("r{i}"))).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    };
    let w = c.execute_with_ingest("mydb", "INSERT INTO t SELECT * FROM up", "up", &schema, &[batch(0), batch(1000)]).await.unwrap();
    assert_eq!(w.rows_affected, 2000);
    let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT, count(DISTINCT s)::BIGINT FROM t", None).await.unwrap();
    assert_eq!((ints(&b, 0), ints(&b, 1)), (vec![2000], vec![2000]));
    // A big result streams in many batches; dropping the stream early is fine.
    let ex = c.execute("mydb", "SELECT range::BIGINT AS x FROM range(5000000)", None).await.unwrap();
    assert!(ex.inline.is_none(), "a large result waits for Fetch");
    let mut stream = c.fetch(&ex.handle).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.num_rows() > 0 && first.num_rows() < 5_000_000);
    drop(stream);
    let (_, all) = c.query("mydb", "SELECT range::BIGINT AS x FROM range(3000000)", None).await.unwrap();
    assert!(all.len() > 10);
    assert_eq!(all.iter().map(|b| b.num_rows()).sum::<usize>(), 3_000_000);
    // A handle is fetched once.
    assert!(matches!(c.fetch(&ex.handle).await.map(|_| ()), Err(ClientError::NotFound(_))));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_tokens_unknown_names_and_hostile_sql_are_refused() {
    let s = server().await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TABLE t AS SELECT 1 AS x", None).await.unwrap();
    for token in [None, Some("wrong")] {
        let mut bad = Client::connect(&s.endpoint, token).await.unwrap();
        match bad.execute("mydb", "SELECT 1", None).await {
            Err(ClientError::Unauthenticated(m)) => assert!(m.contains("token"), "{m}"),
            other => panic!("expected Unauthenticated, got {other:?}"),
        }
    }
    assert!(matches!(c.execute("nope", "SELECT 1", None).await, Err(ClientError::NotFound(m)) if m.contains("unknown database 'nope'")));
    assert!(matches!(c.execute("mydb", "SELECT 1", Some(999)).await, Err(ClientError::NotFound(m)) if m.contains("unknown snapshot 999")));
    assert!(matches!(c.execute("../etc", "SELECT 1", None).await, Err(ClientError::InvalidArgument(_))));
    assert!(matches!(c.execute("mydb", "SELEC 1", None).await, Err(ClientError::InvalidArgument(_))));
    let hostile = [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "COPY t TO '/tmp/openduck-stolen.csv'",
        "ATTACH '/tmp/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET memory_limit = '100GB'",
        "PRAGMA memory_limit = '100GB'",
        "SELECT * FROM read_parquet('http://127.0.0.1:1/x.parquet')",
        "ATTACH ':memory:' AS scratch",
        "DETACH \"writer-mydb\"",
        "USE memory",
        "SET search_path = 'memory'",
        "RESET search_path",
        "EXPORT DATABASE '/tmp/openduck-export'",
        "SELECT 1; DROP TABLE t",
        "BEGIN TRANSACTION",
    ];
    for sql in hostile {
        match c.execute("mydb", sql, None).await {
            Err(ClientError::PermissionDenied(m)) | Err(ClientError::InvalidArgument(m)) => {
                assert!(!m.is_empty(), "{sql}");
            }
            other => panic!("hostile SQL was not refused: {sql}: {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/openduck-stolen.csv").exists());
    // Refusals name the statement; several statements are never run.
    match c.execute("mydb", "ATTACH ':memory:' AS scratch", None).await {
        Err(ClientError::PermissionDenied(m)) => assert!(m.contains("ATTACH"), "{m}"),
        other => panic!("{other:?}"),
    }
    match c.execute("mydb", "SELECT 1; DROP TABLE t", None).await {
        Err(ClientError::InvalidArgument(m)) => assert!(m.contains("exactly one SQL statement"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A statement DuckDB would plan for hours (uninterruptibly) is refused
    // before planning, on any path: latest state and snapshots.
    let huge = vec!["SELECT 1"; 20_000].join(" UNION ALL ");
    for snapshot in [None, Some(1)] {
        match c.execute("mydb", &huge, snapshot).await {
            Err(ClientError::InvalidArgument(m)) => assert!(m.contains("too complex") && m.contains("19999 UNION"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // The server is still up and unchanged.
    let (_, b) = c.query("mydb", "SELECT x::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&b, 0), [1]);
    s.shutdown().await;
}

/// Several clients writing, checkpointing and reading at once. On a runtime
/// with only 2 threads, as on a 2-core machine:
/// DuckDB work must never block the threads the mount's handlers need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_make_progress() {
    const CLIENTS: i64 = 4;
    const ROUNDS: i64 = 6;
    let s = server().await;
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let mut c = s.client().await;
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let sql = format!("CREATE OR REPLACE TABLE t{n} AS SELECT range::BIGINT AS i FROM range({})", 100 * (round + 1));
                let w = c.execute("mydb", &sql, None).await.unwrap();
                assert!(w.is_write);
                if round % 2 == 1 {
                    c.execute("mydb", "CHECKPOINT", None).await.unwrap();
                }
                let (_, b) = c.query("mydb", &format!("SELECT count(*)::BIGINT FROM t{n}"), None).await.unwrap();
                assert_eq!(ints(&b, 0), [100 * (round + 1)], "read-your-writes");
            }
        }));
    }
    // A watchdog outside the runtime: a deadlock would also stop the runtime's timers.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if finished.recv_timeout(std::time::Duration::from_secs(300)).is_err() {
            eprintln!("concurrent_writers_and_readers_make_progress: the clients hung (deadlock?)");
            std::process::exit(101);
        }
    });
    for t in tasks {
        t.await.unwrap();
    }
    let _ = done.send(());
    // Still serving, and every write is there.
    let mut c = s.client().await;
    let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT FROM duckdb_tables()", None).await.unwrap();
    assert_eq!(ints(&b, 0), [CLIENTS]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_list_is_sql() {
    let s = server().await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TABLE t AS SELECT 1::BIGINT AS x", None).await.unwrap();
    let first = c.execute("mydb", "CHECKPOINT", None).await.unwrap().snapshot_id;
    c.execute("mydb", "INSERT INTO t VALUES (2)", None).await.unwrap();
    let second = c.execute("mydb", "CHECKPOINT", None).await.unwrap().snapshot_id;
    // Snapshots are listed by plain SQL, on any snapshot, oldest first.
    let sql = "SELECT id, parent FROM openduck_snapshots() ORDER BY id";
    let (_, b) = c.query("mydb", sql, None).await.unwrap();
    let ids = ints(&b, 0);
    assert_eq!(ids.last(), Some(&second));
    assert!(ids.contains(&first));
    let (_, old) = c.query("mydb", sql, Some(first)).await.unwrap();
    assert_eq!(ints(&old, 0), ids, "the list is the database's, whatever snapshot reads it");
    let (_, cols) = c.query("mydb", "SELECT * FROM openduck_snapshots()", None).await.unwrap();
    let names: Vec<_> = cols[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id", "parent", "created_at", "size", "stored_bytes", "pinned"]);
    s.shutdown().await;
}
