//! Scoped tokens (`--tokens-file`): a read-only token reads and cannot
//! change anything, a token scoped to some databases cannot touch others,
//! and every refusal is PERMISSION_DENIED saying why.

mod common;

use std::sync::Arc;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use common::{ints, server_with_tokens};
use query::client::{new_session_id, Client, ClientError, Statement};

const READER: &str = "reader-token-0123456789";
const OTHER: &str = "other-db-token-0123456789";

fn denied(r: Result<query::client::Executed, ClientError>, want: &str) {
    match r {
        Err(ClientError::PermissionDenied(m)) => assert!(m.contains(want), "{m}"),
        other => panic!("expected PermissionDenied ({want}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_database_scoped_tokens() {
    let s = server_with_tokens(&format!("{READER} read mydb\n{OTHER} write otherdb\n")).await;
    let mut admin = s.client().await;
    admin.execute("mydb", "CREATE TABLE t AS SELECT range AS x FROM range(3)", None).await.unwrap();
    let sealed = admin.execute("mydb", "CHECKPOINT", None).await.unwrap().snapshot_id;

    let mut reader = Client::connect(&s.endpoint, Some(READER)).await.unwrap();
    let (_, rows) = reader.query("mydb", "SELECT sum(x)::BIGINT FROM t", None).await.unwrap();
    assert_eq!(ints(&rows, 0), vec![3]);
    let (_, rows) = reader.query("mydb", "SELECT count(*) FROM t", Some(sealed)).await.unwrap();
    assert_eq!(ints(&rows, 0), vec![3], "reading a snapshot");
    denied(reader.execute("mydb", "INSERT INTO t VALUES (10)", None).await, "read-only");
    denied(reader.execute("mydb", "UPDATE t SET x = 0", None).await, "read-only");
    denied(reader.execute("mydb", "CREATE TABLE u (a INT)", None).await, "read-only");
    denied(reader.execute("mydb", "DROP TABLE t", None).await, "read-only");
    denied(reader.execute("mydb", "CHECKPOINT", None).await, "read-only");
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![7]))]).unwrap();
    denied(reader.execute_with_ingest("mydb", "INSERT INTO t SELECT * FROM rows", "rows", &schema, &[batch]).await, "read-only");
    // A transaction: reads and transaction control work, writes do not.
    let session = new_session_id();
    reader.run(&Statement::new("mydb", "BEGIN").in_session(&session, true)).await.unwrap();
    reader.run(&Statement::new("mydb", "SELECT count(*) FROM t").in_session(&session, false)).await.unwrap();
    denied(reader.run(&Statement::new("mydb", "DELETE FROM t").in_session(&session, false)).await, "read-only");
    reader.run(&Statement::new("mydb", "COMMIT").in_session(&session, false)).await.unwrap();

    let mut other = Client::connect(&s.endpoint, Some(OTHER)).await.unwrap();
    denied(other.execute("mydb", "SELECT 1", None).await, "scoped to 'otherdb'");
    denied(other.execute("mydb", "DROP TABLE t", None).await, "may not use database 'mydb'");

    // Nothing changed, and the full token still writes.
    let (_, rows) = admin.query("mydb", "SELECT count(*), sum(x)::BIGINT FROM t", None).await.unwrap();
    assert_eq!((ints(&rows, 0), ints(&rows, 1)), (vec![3], vec![3]));
    admin.execute("mydb", "INSERT INTO t VALUES (10)", None).await.unwrap();
    s.shutdown().await;
}
