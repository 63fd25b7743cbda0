//! The query service end to end over loopback: a real FUSE mount, real DuckDB
//! workers, real gRPC, the Rust client.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use layerd::{Layerd, LayerdConfig};
use query::client::{Client, ClientError};
use query::local::{LocalServer, LocalServerConfig};
use query::sandbox::WorkerLimits;

const TOKEN: &str = "test-token";

struct Server {
    inner: LocalServer,
    endpoint: String,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let od = Arc::new(Layerd::open(LayerdConfig::new(dir.path().join("data"))).await.unwrap());
    od.create_database("mydb").await.unwrap();
    let cfg = LocalServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        mountpoint: dir.path().join("mnt"),
        fuse_threads: 4,
        hydrate_bytes: 1 << 30,
        limits: WorkerLimits { temp_dir: dir.path().join("tmp"), memory_limit: "1GB".into(), threads: 2 },
    };
    let inner = LocalServer::start(od, cfg).await.unwrap();
    Server { endpoint: inner.endpoint(), inner, _dir: dir }
}

impl Server {
    async fn client(&self) -> Client {
        Client::connect(&self.endpoint, Some(TOKEN)).await.unwrap()
    }

    async fn shutdown(self) {
        self.inner.shutdown().await.unwrap();
    }
}

fn ints(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_any().downcast_ref::<Int64Array>().expect("int64 column").clone();
            (0..a.len()).map(move |i| a.value(i))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_insert_read_latest_and_older_snapshots() {
    let s = server().await;
    let mut c = s.client().await;
    // A new database reads as an empty DuckDB database (its first snapshot).
    let (empty, tables) = c.query("mydb", "SELECT count(*)::BIGINT FROM duckdb_tables()", None).await.unwrap();
    assert!(!empty.is_write && empty.snapshot_id > 0);
    assert_eq!(ints(&tables, 0), [0]);
    let w = c.execute("mydb", "CREATE TABLE t AS SELECT range::BIGINT AS i FROM range(1000)", None).await.unwrap();
    assert!(w.is_write);
    let first = w.snapshot_id;
    assert!(first > 0);
    let (r, batches) = c.query("mydb", "SELECT count(*)::BIGINT, sum(i)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(r.snapshot_id, first, "reads run on the latest snapshot");
    assert_eq!(ints(&batches, 0), [1000]);
    let w2 = c.execute("mydb", "INSERT INTO t SELECT range + 1000 FROM range(500)", None).await.unwrap();
    assert_eq!(w2.rows_affected, 500);
    assert!(w2.snapshot_id > first);
    let (_, now) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&now, 0), [1500], "read-your-writes");
    let (old, then) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", Some(first)).await.unwrap();
    assert_eq!(ints(&then, 0), [1000], "time travel");
    assert_eq!(old.snapshot_id, first);
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
    // The server is still up and unchanged.
    let (_, b) = c.query("mydb", "SELECT x::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&b, 0), [1]);
    s.shutdown().await;
}

/// Several clients writing and reading at once (each write a checkpoint and
/// a snapshot). On a runtime with only 2 threads, as on a 2-core machine:
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
                let (r, b) = c.query("mydb", &format!("SELECT count(*)::BIGINT FROM t{n}"), None).await.unwrap();
                assert!(r.snapshot_id >= w.snapshot_id, "read-your-writes");
                assert_eq!(ints(&b, 0), [100 * (round + 1)]);
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
async fn conditional_writes_and_the_snapshot_list() {
    use query::client::Statement;
    let s = server().await;
    let mut c = s.client().await;
    let first = c.execute("mydb", "CREATE TABLE t AS SELECT 1::BIGINT AS x", None).await.unwrap().snapshot_id;
    // A write that expects the latest snapshot runs...
    let ok = c.run(&Statement { expected_snapshot: Some(first), ..Statement::new("mydb", "INSERT INTO t VALUES (2)") }).await.unwrap();
    assert!(ok.snapshot_id > first);
    // ... one based on an older read is refused, and changes nothing.
    let stale = Statement { expected_snapshot: Some(first), ..Statement::new("mydb", "DELETE FROM t") };
    match c.run(&stale).await {
        Err(ClientError::Conflict(m)) => assert!(m.contains(&format!("snapshot {first}")) && m.contains("again"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&b, 0), [2]);
    // Snapshots are listed by plain SQL, on any snapshot, oldest first.
    let sql = "SELECT id, parent FROM openduck_snapshots() ORDER BY id";
    let (_, b) = c.query("mydb", sql, None).await.unwrap();
    let ids = ints(&b, 0);
    assert_eq!(ids.last(), Some(&ok.snapshot_id));
    assert!(ids.contains(&first));
    let (_, old) = c.query("mydb", sql, Some(first)).await.unwrap();
    assert_eq!(ints(&old, 0), ids, "the list is the database's, whatever snapshot reads it");
    let (_, cols) = c.query("mydb", "SELECT * FROM openduck_snapshots()", None).await.unwrap();
    let names: Vec<_> = cols[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id", "parent", "created_at", "size", "stored_bytes", "pinned"]);
    s.shutdown().await;
}
