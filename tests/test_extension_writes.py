"""Remote writes through the extension that DuckDB plans locally: UPDATE and
DELETE that join local tables (applied on the server by rowid, conditional on
the snapshot the scan read), checked against the same statements on plain
local DuckDB; and the refusal of remote writes inside BEGIN ... COMMIT."""
import duckdb
import pytest

from conftest import attach, rows

ACCOUNTS = """SELECT range AS id, (range * 37) % 1000 AS balance,
                     CASE WHEN range % 9 = 0 THEN NULL ELSE 'n' || range END AS note,
                     DATE '2024-01-01' + (range % 30)::INTEGER AS opened
              FROM range(3000)"""

STATEMENTS = [
    # joins with local tables: planned locally, applied remotely by rowid
    "UPDATE {t} AS acc SET balance = acc.balance + a.delta, note = 'adjusted' FROM adjust a WHERE acc.id = a.id",
    "DELETE FROM {t} WHERE id IN (SELECT id FROM drop_ids)",
    "UPDATE {t} SET opened = opened + 1 WHERE id IN (SELECT id FROM adjust WHERE delta < 0)",
    "DELETE FROM {t} AS acc USING drop_ids d WHERE acc.id = d.id + 1",
    # remote-only statements (pushed down whole) in between
    "UPDATE {t} SET note = NULL WHERE id % 11 = 0",
    "DELETE FROM {t} WHERE balance > 990",
    # a join that matches nothing changes nothing
    "DELETE FROM {t} WHERE id IN (SELECT id + 1000000 FROM drop_ids)",
]


@pytest.mark.parametrize("options", ["", "(PUSHDOWN false)"])
def test_update_and_delete_joined_with_local_tables_match_local_duckdb(con, server, options):
    table = "acct_pushdown" if not options else "acct_scan"
    con.execute(f"CREATE TABLE accounts AS {ACCOUNTS}")
    con.execute("CREATE TABLE adjust AS SELECT range * 7 AS id, (range % 5) - 2 AS delta FROM range(400)")
    con.execute("CREATE TABLE drop_ids AS SELECT range * 13 AS id FROM range(150)")
    attach(con, server, options=options)
    con.execute(f"CREATE OR REPLACE TABLE cloud.{table} AS SELECT * FROM accounts")
    for statement in STATEMENTS:
        local = rows(con, statement.format(t="accounts"))
        remote = rows(con, statement.format(t=f"cloud.{table}"))
        assert remote == local, statement
        assert rows(con, f"SELECT * FROM cloud.{table} ORDER BY id") == rows(con, "SELECT * FROM accounts ORDER BY id"), statement
    # the joined forms really were planned locally and sent by rowid
    plan = rows(con, "EXPLAIN " + STATEMENTS[0].format(t=f"cloud.{table}"))[0][1]
    assert "Openduck Update" in plan and "rowid" in plan and "Remote SQL" in plan, plan


def test_remote_writes_inside_a_transaction_are_refused_and_reads_work(con, server):
    attach(con, server)
    con.execute("CREATE OR REPLACE TABLE cloud.tx AS SELECT range AS i FROM range(5)")
    con.execute("BEGIN")
    assert rows(con, "SELECT count(*) FROM cloud.tx") == [(5,)]
    for statement in [
        "INSERT INTO cloud.tx VALUES (99)",
        "CREATE TABLE cloud.tx2 (a INTEGER)",
        "DELETE FROM cloud.tx",
        "UPDATE cloud.tx SET i = i + 1",
        "DROP TABLE cloud.tx",
    ]:
        with pytest.raises(duckdb.TransactionException) as err:
            con.execute(statement)
        assert "BEGIN ... COMMIT" in str(err.value) and "autocommit" in str(err.value), statement
        con.execute("ROLLBACK")
        con.execute("BEGIN")
    con.execute("ROLLBACK")
    # nothing reached the server
    assert rows(con, "SELECT count(*), sum(i) FROM cloud.tx") == [(5, 10)]
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'cloud' AND table_name = 'tx2'") == [(0,)]
