//! Statements are classified by DuckDB's own parser and binder (prepared on
//! the worker database, never run): exactly one per request, and what kind.

use query::error::QueryError;
use query::sandbox::{WorkerDb, WorkerLimits};
use query::statement::Kind;

fn worker() -> (tempfile::TempDir, WorkerDb) {
    let dir = tempfile::tempdir().unwrap();
    let limits = WorkerLimits { memory_limit: "256MB".into(), threads: 1, ..WorkerLimits::new(dir.path().join("tmp")) };
    let db = WorkerDb::open(&dir.path().join("w.duckdb"), false, &limits, "t", &[]).unwrap();
    db.connect().unwrap().conn.execute_batch("CREATE TABLE t (i INTEGER)").unwrap();
    (dir, db)
}

#[test]
fn duckdb_tells_the_kind_of_each_statement() {
    let (_dir, db) = worker();
    for (sql, want) in [
        ("SELECT * FROM t", Kind::Read),
        ("  -- a comment\n SELECT 1", Kind::Read),
        ("EXPLAIN SELECT * FROM t", Kind::Read),
        ("INSERT INTO t VALUES (1)", Kind::Dml),
        ("UPDATE t SET i = 2", Kind::Dml),
        ("DELETE FROM t", Kind::Dml),
        ("CREATE TABLE u (x INTEGER)", Kind::Ddl),
        ("CREATE TABLE u AS SELECT 1 AS x", Kind::Ddl),
        ("DROP TABLE t", Kind::Ddl),
        ("ALTER TABLE t ADD COLUMN j INTEGER", Kind::Ddl),
        ("CHECKPOINT", Kind::Checkpoint),
        ("FORCE CHECKPOINT", Kind::Checkpoint),
        ("BEGIN TRANSACTION", Kind::Begin),
        ("COMMIT", Kind::Commit),
        ("ROLLBACK", Kind::Rollback),
        // names a table that does not exist yet (e.g. made earlier in a transaction)
        ("INSERT INTO made_in_this_transaction VALUES (1)", Kind::Dml),
        ("WITH x AS (SELECT 1) INSERT INTO made_in_this_transaction SELECT * FROM x", Kind::Unknown),
    ] {
        assert_eq!(db.classify(sql, None).unwrap(), want, "{sql}");
    }
}

#[test]
fn what_would_change_server_state_is_refused_by_name() {
    let (_dir, db) = worker();
    for (sql, name) in [
        ("ATTACH ':memory:' AS m", "ATTACH"),
        ("DETACH m", "DETACH"),
        ("USE memory", "USE"),
        ("SET threads = 1", "SET"),
        ("RESET threads", "SET"),
        ("SET search_path = 'memory'", "SET"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
    ] {
        let kind = db.classify(sql, None).unwrap();
        match kind.check_allowed() {
            Err(QueryError::Sandbox(m)) => assert!(m.contains(name), "{sql}: {m}"),
            other => panic!("{sql} was not refused: {kind:?} {other:?}"),
        }
    }
}

#[test]
fn exactly_one_statement_per_request() {
    let (_dir, db) = worker();
    match db.classify("SELECT 1; DROP TABLE t", None) {
        Err(QueryError::Invalid(m)) => assert!(m.contains("exactly one SQL statement") && m.contains("2"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(db.classify("SELEC 1", None), Err(QueryError::Sql(_))));
    assert!(db.classify("", None).is_err());
    assert!(db.classify("-- only a comment", None).is_err());
    // Nothing ran: the table is still there.
    assert_eq!(db.classify("SELECT * FROM t", None).unwrap(), Kind::Read);
}

#[test]
fn the_plan_that_classified_a_statement_runs_it() {
    use arrow::array::{Array, Int64Array};
    let (_dir, db) = worker();
    let mut c = db.checkout().unwrap();
    let insert = "INSERT INTO t SELECT range FROM range(5000)";
    assert_eq!(c.conn.kind(insert).unwrap(), Kind::Dml);
    let mut rows = c.conn.run(insert).unwrap();
    let count = rows.next_batch().unwrap().unwrap();
    assert_eq!(count.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 5000);
    assert!(rows.next_batch().unwrap().is_none());
    drop(rows);
    // A long result dropped mid-way stops; the connection goes on.
    let mut rows = c.conn.run("SELECT i, i::VARCHAR AS s, [i, NULL] AS l FROM t, range(1000)").unwrap();
    let first = rows.next_batch().unwrap().unwrap();
    assert_eq!(first.num_columns(), 3);
    assert_eq!(first.schema().field(1).name(), "s");
    drop(rows);
    let mut rows = c.conn.run("SELECT count(*) FROM t").unwrap();
    let n = rows.next_batch().unwrap().unwrap();
    assert_eq!(n.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 5000);
    drop(rows);
    // DuckDB's own errors, at planning and while running.
    match c.conn.run("SELECT * FROM missing_table") {
        Err(QueryError::Sql(m)) => assert!(m.contains("missing_table"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a missing table ran"),
    }
    let mut rows = c.conn.run("SELECT CAST('x' || i AS INTEGER) FROM t").unwrap();
    let err = loop {
        match rows.next_batch() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a failing cast finished"),
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("Conversion"), "{err}");
}
