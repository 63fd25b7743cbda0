"""Remote writes through the extension, checked against the same statements
on plain local DuckDB: UPDATE and DELETE that join local tables (applied on
the server by rowid, in one server-side transaction with the scan), and
BEGIN ... COMMIT / ROLLBACK transactions: atomic, isolated from other
clients, conflicts as TransactionException, rolled back when the client
goes away."""
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


TRANSACTIONS = [
    ["BEGIN", "INSERT INTO {t} VALUES (100, 1)", "UPDATE {t} SET v = v * 2 WHERE k < 3",
     "DELETE FROM {t} WHERE k = 4", "SELECT count(*), sum(v) FROM {t}", "COMMIT"],
    ["BEGIN", "INSERT INTO {t} VALUES (101, 1)", "DELETE FROM {t} WHERE k < 50", "SELECT count(*) FROM {t}", "ROLLBACK"],
    ["BEGIN", "INSERT INTO {t} SELECT range + 200, range FROM range(50)", "SELECT count(*), sum(v) FROM {t}",
     "UPDATE {t} SET v = 0 WHERE k >= 220", "COMMIT"],
    ["BEGIN", "CREATE TABLE {t}_extra AS SELECT 1 AS x", "INSERT INTO {t}_extra VALUES (2)",
     "SELECT sum(x) FROM {t}_extra", "ROLLBACK"],
    ["BEGIN", "CREATE TABLE {t}_kept (x INTEGER)", "INSERT INTO {t}_kept VALUES (7)", "COMMIT"],
]


def test_transactions_match_local_duckdb_statement_by_statement(con, server):
    attach(con, server)
    con.execute("CREATE TABLE txl AS SELECT range AS k, range * 10 AS v FROM range(10)")
    con.execute("CREATE OR REPLACE TABLE cloud.txr AS SELECT * FROM txl")
    for script in TRANSACTIONS:
        local = [rows(con, statement.format(t="txl")) for statement in script]
        remote = [rows(con, statement.format(t="cloud.txr")) for statement in script]
        for statement, want, got in zip(script, local, remote):
            assert got == want, statement
        assert rows(con, "SELECT * FROM cloud.txr ORDER BY k") == rows(con, "SELECT * FROM txl ORDER BY k"), script
    assert rows(con, "SELECT x FROM cloud.txr_kept") == [(7,)]
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM cloud.txr_extra")
    # parameters inside a transaction (rows uploaded in the same server-side transaction)
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.txr VALUES (?, ?)", [500, 5])
    assert rows(con, "SELECT v FROM cloud.txr WHERE k = 500") == [(5,)]
    con.execute("ROLLBACK")
    assert rows(con, "SELECT count(*) FROM cloud.txr WHERE k = 500") == [(0,)]


def test_transactions_are_isolated_and_conflicts_are_transaction_errors(con, server, extension_path):
    other = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    other.execute(f"LOAD '{extension_path}'")
    attach(con, server)
    attach(other, server)
    con.execute("CREATE OR REPLACE TABLE cloud.iso AS SELECT range AS k, 0 AS v FROM range(5)")
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.iso VALUES (10, 1)")
    assert rows(con, "SELECT count(*) FROM cloud.iso") == [(6,)]
    assert rows(other, "SELECT count(*) FROM cloud.iso") == [(5,)], "uncommitted rows are invisible to others"
    con.execute("COMMIT")
    assert rows(other, "SELECT count(*) FROM cloud.iso") == [(6,)], "committed rows are visible to the next statement"
    # two transactions updating one row: the second is told of the conflict, as in local DuckDB
    con.execute("BEGIN")
    con.execute("UPDATE cloud.iso SET v = 1 WHERE k = 1")
    other.execute("BEGIN")
    with pytest.raises(duckdb.TransactionException) as err:
        other.execute("UPDATE cloud.iso SET v = 2 WHERE k = 1")
    assert "onflict" in str(err.value), str(err.value)
    other.execute("ROLLBACK")
    con.execute("COMMIT")
    assert rows(other, "SELECT v FROM cloud.iso WHERE k = 1") == [(1,)]
    # a client that goes away mid-transaction is rolled back
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.iso VALUES (99, 99)")
    con.close()
    assert rows(other, "SELECT count(*) FROM cloud.iso WHERE k = 99") == [(0,)]
    # a table created by another client is seen by the next statement (the catalog cache reloads)
    other.execute("CREATE TABLE cloud.made_elsewhere AS SELECT 5 AS five")
    fresh = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    fresh.execute(f"LOAD '{extension_path}'")
    attach(fresh, server)
    assert rows(fresh, "SELECT count(*) FROM cloud.iso") == [(6,)]
    other.execute("CREATE TABLE cloud.made_later AS SELECT 6 AS six")
    assert rows(fresh, "SELECT six FROM cloud.made_later") == [(6,)]


def test_a_statement_whose_catalog_is_cached_is_one_round_trip(con, server):
    attach(con, server)
    con.execute("CREATE OR REPLACE TABLE cloud.rt (i BIGINT, s VARCHAR)")

    def requests():
        return rows(con, "SELECT requests FROM openduck_stats('cloud')")[0][0]

    def cost(sql, params=None):
        before = requests()
        result = rows(con, sql, params)
        return requests() - before, result

    cost("INSERT INTO cloud.rt VALUES (0, 'warm')")  # loads the catalog once
    assert cost("INSERT INTO cloud.rt VALUES (1, 'a')")[0] == 1, "a pushed-down write"
    assert cost("INSERT INTO cloud.rt VALUES (?, ?)", [2, "b"])[0] == 1, "a write with parameters (rows uploaded)"
    cost("SELECT count(*) FROM cloud.rt")
    assert cost("SELECT count(*) FROM cloud.rt") == (1, [(3,)]), "a read run again"
    # another client's DDL: the next answer carries a new catalog version, and the cache reloads
    other = server.sql("mydb", "CREATE TABLE rt_other AS SELECT 1 AS x")
    assert other.returncode == 0
    assert rows(con, "SELECT x FROM cloud.rt_other") == [(1,)]
