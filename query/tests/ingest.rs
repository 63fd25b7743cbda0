//! Rows uploaded with a statement (ingest), read straight from the upload by
//! the statement, on pooled connections with cached prepared statements.

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use common::{ints, server};
use query::client::{ClientError, Statement};

fn ints_batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from((from..from + n).collect::<Vec<_>>()))]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_sent_again_reads_its_own_upload_each_time() {
    let s = server().await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TABLE t (i BIGINT)", None).await.unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false)]));
    let sql = "INSERT INTO t SELECT i FROM up";
    for round in 0..20 {
        let w = c.execute_with_ingest("mydb", sql, "up", &schema, &[ints_batch(&schema, round * 100, 100)]).await.unwrap();
        assert_eq!(w.rows_affected, 100, "round {round}");
    }
    // A bulk upload bigger than a vector, in several batches.
    let big: Vec<_> = (0..5).map(|k| ints_batch(&schema, 10_000 + k * 5000, 5000)).collect();
    let w = c.execute_with_ingest("mydb", sql, "up", &schema, &big).await.unwrap();
    assert_eq!(w.rows_affected, 25_000);
    let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT, count(DISTINCT i)::BIGINT, sum(i)::BIGINT FROM t", None).await.unwrap();
    let expect_sum: i64 = (0..2000).sum::<i64>() + (10_000..35_000).sum::<i64>();
    assert_eq!((ints(&b, 0), ints(&b, 1), ints(&b, 2)), (vec![27_000], vec![27_000], vec![expect_sum]));
    // The same text with an upload of other columns is bound anew (not a
    // statement prepared for BIGINT reading strings): '5' casts, 'x' fails.
    let other = Arc::new(Schema::new(vec![Field::new("i", DataType::Utf8, false)]));
    let strings = |v: &str| RecordBatch::try_new(other.clone(), vec![Arc::new(StringArray::from(vec![v.to_string()]))]).unwrap();
    let w = c.execute_with_ingest("mydb", sql, "up", &other, &[strings("5")]).await.unwrap();
    assert_eq!(w.rows_affected, 1);
    match c.execute_with_ingest("mydb", sql, "up", &other, &[strings("x")]).await {
        Err(ClientError::InvalidArgument(m)) => assert!(m.contains("'x'"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let w = c.execute_with_ingest("mydb", sql, "up", &schema, &[ints_batch(&schema, -1, 1)]).await.unwrap();
    assert_eq!(w.rows_affected, 1);
    let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&b, 0), [27_002]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_cannot_be_read_by_other_statements_and_garbage_is_refused() {
    let s = server().await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TABLE t (i BIGINT)", None).await.unwrap();
    for sql in ["SELECT * FROM openduck_ingest()", "SELECT * FROM arrow(9223372036854775808)", "SELECT * FROM up"] {
        match c.execute("mydb", sql, None).await {
            Err(ClientError::InvalidArgument(m)) => assert!(!m.is_empty()),
            other => panic!("{sql}: expected InvalidArgument, got {other:?}"),
        }
    }
    // Not Arrow IPC at all, and a stream cut in the middle of a batch.
    let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false)]));
    let good = query::ipc::encode_all(&schema, &[ints_batch(&schema, 0, 1000)]).unwrap();
    let cut = good[..good.len() - 300].to_vec();
    for bytes in [b"definitely not arrow".to_vec(), cut] {
        let stmt = Statement::new("mydb", "INSERT INTO t SELECT i FROM up");
        match c.run_with_ingest(&stmt, "up", futures::stream::iter(vec![bytes])).await {
            Err(ClientError::InvalidArgument(m)) => assert!(m.contains("Arrow IPC"), "{m}"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
    let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&b, 0), [0], "a refused upload writes nothing");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pooled_connections_carry_no_state_from_one_request_to_the_next() {
    let s = server().await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TEMP TABLE scratch AS SELECT 42 AS x", None).await.unwrap();
    for _ in 0..20 {
        // Whatever connection serves it, the temp table died with its request.
        match c.execute("mydb", "SELECT * FROM scratch", None).await {
            Err(ClientError::InvalidArgument(m)) => assert!(m.contains("scratch"), "{m}"),
            other => panic!("a temp table leaked into another request: {other:?}"),
        }
        let (_, b) = c.query("mydb", "SELECT 7::BIGINT", None).await.unwrap();
        assert_eq!(ints(&b, 0), [7]);
    }
    s.shutdown().await;
}
