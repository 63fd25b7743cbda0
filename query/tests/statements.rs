//! Statements are classified by DuckDB's own parser and binder (prepared on
//! the worker database, never run): exactly one per request, and what kind.

use query::error::QueryError;
use query::sandbox::{WorkerDb, WorkerLimits};
use query::statement::Kind;

fn worker() -> (tempfile::TempDir, WorkerDb) {
    let dir = tempfile::tempdir().unwrap();
    let limits = WorkerLimits { temp_dir: dir.path().join("tmp"), memory_limit: "256MB".into(), threads: 1 };
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
        assert_eq!(db.classify(sql).unwrap(), want, "{sql}");
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
        let kind = db.classify(sql).unwrap();
        match kind.check_allowed() {
            Err(QueryError::Sandbox(m)) => assert!(m.contains(name), "{sql}: {m}"),
            other => panic!("{sql} was not refused: {kind:?} {other:?}"),
        }
    }
}

#[test]
fn exactly_one_statement_per_request() {
    let (_dir, db) = worker();
    match db.classify("SELECT 1; DROP TABLE t") {
        Err(QueryError::Invalid(m)) => assert!(m.contains("exactly one SQL statement") && m.contains("2"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(db.classify("SELEC 1"), Err(QueryError::Sql(_))));
    assert!(db.classify("").is_err());
    assert!(db.classify("-- only a comment").is_err());
    // Nothing ran: the table is still there.
    assert_eq!(db.classify("SELECT * FROM t").unwrap(), Kind::Read);
}
