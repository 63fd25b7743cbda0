//! The write path: transactions across requests, checkpoints by policy,
//! and what happens to acknowledged commits when the object store or the
//! metadata store fails. Real mount, real DuckDB, real gRPC.

mod common;

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use common::{ints, manual_checkpoints, server, server_with, ReadOnlyDir};
use query::client::{new_session_id, Client, ClientError, Statement};
use query::writer::CheckpointPolicy;

async fn count(c: &mut Client, sql: &str) -> i64 {
    ints(&c.query("mydb", sql, None).await.unwrap().1, 0)[0]
}

async fn in_txn(c: &mut Client, id: &str, start: bool, sql: &str) -> Result<query::client::Executed, ClientError> {
    c.run(&Statement::new("mydb", sql).in_session(id, start)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_are_atomic_and_isolated() {
    let s = server().await;
    let (mut a, mut b) = (s.client().await, s.client().await);
    a.execute("mydb", "CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT)", None).await.unwrap();
    a.execute("mydb", "INSERT INTO t VALUES (1, 10), (2, 20)", None).await.unwrap();

    // Uncommitted rows are the transaction's own.
    let tx = new_session_id();
    in_txn(&mut a, &tx, true, "INSERT INTO t VALUES (3, 30)").await.unwrap();
    in_txn(&mut a, &tx, false, "UPDATE t SET v = v + 1 WHERE k = 1").await.unwrap();
    in_txn(&mut a, &tx, false, "DELETE FROM t WHERE k = 2").await.unwrap();
    let mine = a.run(&Statement::new("mydb", "SELECT sum(v)::BIGINT FROM t").in_session(&tx, false)).await.unwrap();
    let mine: Vec<_> = a.rows(&mine).await.unwrap().try_collect().await.unwrap();
    assert_eq!(ints(&mine, 0), [41], "the transaction sees its own writes");
    assert_eq!(count(&mut b, "SELECT sum(v)::BIGINT FROM t").await, 30, "others do not");

    // ROLLBACK undoes all of it.
    in_txn(&mut a, &tx, false, "ROLLBACK").await.unwrap();
    assert_eq!(count(&mut b, "SELECT sum(v)::BIGINT FROM t").await, 30);
    // The transaction is gone: a late statement is refused, not run on its own.
    match in_txn(&mut a, &tx, false, "INSERT INTO t VALUES (9, 90)").await {
        Err(ClientError::Conflict(m)) => assert!(m.contains("no longer exists"), "{m}"),
        other => panic!("{other:?}"),
    }

    // COMMIT makes all of it visible at once.
    let tx = new_session_id();
    in_txn(&mut a, &tx, true, "INSERT INTO t VALUES (3, 30)").await.unwrap();
    in_txn(&mut a, &tx, false, "DELETE FROM t WHERE k = 2").await.unwrap();
    assert_eq!(count(&mut b, "SELECT count(*)::BIGINT FROM t").await, 2);
    in_txn(&mut a, &tx, false, "COMMIT").await.unwrap();
    assert_eq!(count(&mut b, "SELECT sum(v)::BIGINT FROM t").await, 40);

    // Two transactions writing the same row: the second writer gets a conflict.
    let (t1, t2) = (new_session_id(), new_session_id());
    in_txn(&mut a, &t1, true, "UPDATE t SET v = 11 WHERE k = 1").await.unwrap();
    match in_txn(&mut b, &t2, true, "UPDATE t SET v = 12 WHERE k = 1").await {
        Err(ClientError::Conflict(m)) => assert!(m.to_lowercase().contains("conflict"), "{m}"),
        other => panic!("expected a write-write conflict, got {other:?}"),
    }
    in_txn(&mut b, &t2, false, "ROLLBACK").await.unwrap();
    in_txn(&mut a, &t1, false, "COMMIT").await.unwrap();
    assert_eq!(count(&mut b, "SELECT v FROM t WHERE k = 1").await, 11);

    // DDL in a transaction is invisible to others until COMMIT, and bumps the catalog version then.
    let before = b.execute("mydb", "SELECT 1", None).await.unwrap().catalog_version;
    let tx = new_session_id();
    in_txn(&mut a, &tx, true, "CREATE TABLE u AS SELECT 1::BIGINT AS x").await.unwrap();
    assert_eq!(count(&mut a, "SELECT count(*)::BIGINT FROM duckdb_tables() WHERE table_name = 'u'").await, 0);
    let committed = in_txn(&mut a, &tx, false, "COMMIT").await.unwrap();
    assert_ne!(committed.catalog_version, before);
    assert_eq!(count(&mut b, "SELECT x FROM u").await, 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_transactions_are_rolled_back() {
    let policy = CheckpointPolicy { session_idle: Duration::from_millis(500), ..manual_checkpoints() };
    let s = server_with(policy, |_| {}).await;
    let mut c = s.client().await;
    c.execute("mydb", "CREATE TABLE t (i BIGINT)", None).await.unwrap();
    let tx = new_session_id();
    in_txn(&mut c, &tx, true, "INSERT INTO t VALUES (1)").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(matches!(in_txn(&mut c, &tx, false, "COMMIT").await, Err(ClientError::Conflict(_))));
    assert_eq!(count(&mut c, "SELECT count(*)::BIGINT FROM t").await, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_checkpoints_quiet_databases() {
    let policy = CheckpointPolicy { idle: Duration::from_millis(300), ..CheckpointPolicy::default() };
    let s = server_with(policy, |_| {}).await;
    let mut c = s.client().await;
    let w = c.execute("mydb", "CREATE TABLE t AS SELECT range::BIGINT AS i FROM range(100)", None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.execute("mydb", "SELECT 1", None).await.unwrap();
        if r.snapshot_id > w.snapshot_id {
            // A snapshot newer than the answer may still be one cut before
            // the commit (the new file's own header, sealing while the
            // CREATE ran): the policy's later snapshot must hold the commit.
            if let Ok((_, b)) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", Some(r.snapshot_id)).await {
                assert_eq!(ints(&b, 0), [100], "the policy's snapshot holds the whole commit");
                break;
            }
        }
        assert!(Instant::now() < deadline, "no checkpoint after the database went quiet");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}

/// With the object store refusing writes, commits are still acknowledged and
/// readable (they are durable in the WAL and the head), a CHECKPOINT says its
/// seal failed with a retryable status, and once the store is back every
/// acknowledged row reaches a snapshot. (A metadata store that fails after
/// committing is covered in layerd's safety tests: the seal adopts it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_loses_no_acknowledged_commit() {
    for outage in ["objects"] {
        let s = server().await;
        let mut c = s.client().await;
        c.execute("mydb", "CREATE TABLE t (i BIGINT)", None).await.unwrap();
        let before = c.execute("mydb", "CHECKPOINT", None).await.unwrap().snapshot_id;
        let down = ReadOnlyDir::new(s.path(outage));
        let mut acked = 0;
        for i in 0..200 {
            c.execute("mydb", &format!("INSERT INTO t VALUES ({i})"), None).await.unwrap();
            acked += 1;
        }
        assert_eq!(count(&mut c, "SELECT count(*)::BIGINT FROM t").await, acked, "{outage}: acknowledged writes are readable");
        match c.execute("mydb", "CHECKPOINT", None).await {
            Err(ClientError::Unavailable(m)) => assert!(m.contains("sealing it into a snapshot failed"), "{outage}: {m}"),
            other => panic!("{outage}: expected UNAVAILABLE, got {other:?}"),
        }
        // Still writable and readable during the outage.
        c.execute("mydb", "INSERT INTO t VALUES (-1)", None).await.unwrap();
        acked += 1;
        assert_eq!(count(&mut c, "SELECT count(*)::BIGINT FROM t").await, acked);
        drop(down);
        // Back: the next checkpoint seals everything (the retry may have done so already).
        let deadline = Instant::now() + Duration::from_secs(30);
        let sealed = loop {
            match c.execute("mydb", "CHECKPOINT", None).await {
                Ok(r) => break r.snapshot_id,
                Err(e) => assert!(Instant::now() < deadline, "{outage}: the seal never recovered: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(sealed > before, "{outage}");
        let (_, b) = c.query("mydb", "SELECT count(*)::BIGINT FROM t", Some(sealed)).await.unwrap();
        assert_eq!(ints(&b, 0), [acked], "{outage}: every acknowledged row is in the snapshot");
        s.shutdown().await;
    }
}
