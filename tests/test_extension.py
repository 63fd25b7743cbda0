"""End-to-end: the OpenDuck DuckDB extension in the stock duckdb==2.0.0 wheel,
against a real `openduck serve` (FUSE mount, gRPC on loopback, DuckDB workers).

Fixtures (server, con, extension_path) are in conftest.py."""
import json

import duckdb
import pytest

from conftest import TOKEN, attach, free_port, rows

def test_load_and_attach(con, server):
    attach(con, server)
    assert rows(con, "SELECT type FROM duckdb_databases() WHERE database_name = 'cloud'") == [("openduck",)]
    # A fresh connection sees the remote schema even before anything is written.
    assert ("main",) in rows(con, "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'cloud'")


def test_create_table_as_from_local_data_and_select_back(con, server):
    con.execute(
        "CREATE TABLE local_items AS SELECT range AS id, 'item ' || range AS name, range * 1.5 AS price,"
        " DATE '2024-01-01' + range::INTEGER AS day FROM range(3000)"
    )
    attach(con, server)
    assert rows(con, "CREATE TABLE cloud.items AS SELECT * FROM local_items") == [(3000,)]
    expected = rows(con, "SELECT * FROM local_items ORDER BY id")
    assert rows(con, "SELECT * FROM cloud.items ORDER BY id") == expected
    assert rows(con, "SELECT count(*) FROM cloud.items") == [(3000,)]
    assert rows(con, "SELECT name FROM cloud.items WHERE id = 42") == [("item 42",)]
    # Column names and types survive the trip (DECIMAL and DATE included).
    local_types = [(r[0], r[1]) for r in rows(con, "DESCRIBE local_items")]
    assert [(r[0], r[1]) for r in rows(con, "DESCRIBE cloud.items")] == local_types


def test_remote_tables_show_up_in_the_catalog(con, server):
    attach(con, server)
    con.execute("CREATE TABLE cloud.catalog_probe AS SELECT 1 AS x, 'a' AS y")
    shown = rows(con, "SELECT database, schema, name, column_names FROM (SHOW ALL TABLES) WHERE database = 'cloud'")
    assert ("cloud", "main", "catalog_probe", ["x", "y"]) in shown
    info = rows(
        con,
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'cloud'",
    )
    assert ("main", "catalog_probe") in info
    cols = rows(
        con,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_catalog = 'cloud' AND table_name = 'catalog_probe' ORDER BY ordinal_position",
    )
    assert cols == [("x", "INTEGER"), ("y", "VARCHAR")]
    assert rows(con, "SELECT table_name FROM duckdb_tables() WHERE database_name = 'cloud' AND table_name = 'catalog_probe'") == [
        ("catalog_probe",)
    ]


def test_join_of_local_and_remote_tables_equals_the_local_join(con, server):
    con.execute(
        "CREATE TABLE orders AS SELECT range AS order_id, range % 50 AS customer_id, (range * 7) % 100 AS amount"
        " FROM range(5000)"
    )
    con.execute("CREATE TABLE customers AS SELECT range AS customer_id, 'customer ' || range AS name FROM range(50)")
    attach(con, server)
    con.execute("CREATE TABLE cloud.orders AS SELECT * FROM orders")
    join = (
        "SELECT c.name, count(*) AS n, sum(o.amount) AS total FROM customers c JOIN {orders} o"
        " ON o.customer_id = c.customer_id WHERE o.amount > 10 GROUP BY c.name ORDER BY c.name"
    )
    local = rows(con, join.format(orders="orders"))
    remote = rows(con, join.format(orders="cloud.orders"))
    assert remote == local and len(local) == 50
    # only the needed columns and rows of the remote side cross the wire
    plan = rows(con, "EXPLAIN " + join.format(orders="cloud.orders"))[0][1]
    assert "Openduck Scan" in plan and "Remote Filters" in plan and "\"amount\" >" in plan, plan


def test_insert_from_local_parquet(con, server, tmp_path):
    parquet = tmp_path / "local.parquet"
    con.execute(f"COPY (SELECT range AS id, range::VARCHAR AS label FROM range(10000)) TO '{parquet}'")
    attach(con, server)
    con.execute("CREATE TABLE cloud.events (id BIGINT NOT NULL, label VARCHAR)")
    assert rows(con, f"INSERT INTO cloud.events SELECT * FROM read_parquet('{parquet}')") == [(10000,)]
    assert rows(con, "INSERT INTO cloud.events VALUES (-1, 'extra')") == [(1,)]
    assert rows(con, "SELECT count(*), sum(id), max(id) FROM cloud.events") == [(10001, 49995000 - 1, 9999)]
    assert rows(con, "SELECT label FROM cloud.events WHERE id = -1") == [("extra",)]
    nullable = "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_catalog = 'cloud'"
    nullable += " AND table_name = 'events' ORDER BY ordinal_position"
    assert rows(con, nullable) == [("id", "NO"), ("label", "YES")]


def test_create_insert_drop_in_one_session(con, server):
    attach(con, server)
    con.execute("CREATE TABLE cloud.scratch (a INTEGER, b VARCHAR)")
    con.execute("INSERT INTO cloud.scratch VALUES (1, 'one'), (2, 'two')")
    assert rows(con, "SELECT * FROM cloud.scratch ORDER BY a") == [(1, "one"), (2, "two")]
    con.execute("DROP TABLE cloud.scratch")
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'cloud' AND table_name = 'scratch'") == [
        (0,)
    ]
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM cloud.scratch")


def test_another_client_sees_writes(con, server, extension_path):
    attach(con, server)
    other = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    other.execute(f"LOAD '{extension_path}'")
    attach(other, server, alias="cloud2")
    con.execute("CREATE TABLE cloud.shared AS SELECT 7 AS v")
    assert rows(other, "SELECT v FROM cloud2.shared") == [(7,)]
    other.close()


def test_wrong_token_is_a_clear_error(con, server):
    with pytest.raises(duckdb.Error) as err:
        attach(con, server, token="not-the-token")
    message = str(err.value)
    assert "authentication failed" in message and "OPENDUCK_TOKEN" in message, message


def test_unknown_database_is_a_clear_error(con, server):
    with pytest.raises(duckdb.Error) as err:
        attach(con, server, db="nosuchdb")
    assert "unknown database 'nosuchdb'" in str(err.value), str(err.value)


def test_unknown_snapshot_is_a_clear_error(con, server):
    with pytest.raises(duckdb.Error) as err:
        attach(con, server, snapshot=987654)
    message = str(err.value)
    assert "unknown snapshot 987654" in message and "openduck snapshots mydb" in message, message


@pytest.mark.parametrize(
    "url, needle",
    [
        ("openduck:?token=x", "missing database name"),
        ("openduck:mydb?tokn=x", "unknown parameter 'tokn'"),
        ("openduck:mydb?snapshot=latest", "snapshot must be a snapshot id"),
        ("openduck:mydb?token", "not a key=value parameter"),
        ("openduck:mydb?endpoint=localhost:7878", "malformed endpoint"),
    ],
)
def test_malformed_url_is_a_clear_error(con, url, needle):
    with pytest.raises(duckdb.Error) as err:
        con.execute(f"ATTACH '{url}' AS bad")
    assert needle in str(err.value) and "openduck:" in str(err.value), str(err.value)


def test_unreachable_server_is_a_clear_error(con):
    with pytest.raises(duckdb.Error) as err:
        con.execute(f"ATTACH 'openduck:mydb?endpoint=http://127.0.0.1:{free_port()}&token=x' AS gone")
    assert "cannot reach the OpenDuck server" in str(err.value), str(err.value)


def test_od_alias_and_environment_defaults(con, server, monkeypatch):
    con.execute(f"ATTACH 'od:mydb?endpoint={server.endpoint}&token={TOKEN}' AS short")
    con.execute("CREATE TABLE short.alias_probe AS SELECT 42 AS answer")
    assert rows(con, "SELECT answer FROM short.alias_probe") == [(42,)]
    monkeypatch.setenv("OPENDUCK_ENDPOINT", server.endpoint)
    monkeypatch.setenv("OPENDUCK_TOKEN", TOKEN)
    con.execute("ATTACH 'od:mydb' AS from_env")
    assert rows(con, "SELECT answer FROM from_env.alias_probe") == [(42,)]


def test_read_only_and_snapshot_attachments_refuse_writes(con, server):
    attach(con, server)
    con.execute("CREATE TABLE cloud.versions AS SELECT 1 AS v")
    con.execute("CHECKPOINT cloud")  # seals a snapshot now
    snapshots = json.loads(server.od.run("snapshots", "mydb", "--json").stdout)
    then = snapshots[-1]["id"]
    con.execute("INSERT INTO cloud.versions VALUES (2)")
    attach(con, server, alias="past", snapshot=then)
    assert rows(con, "SELECT v FROM past.versions ORDER BY v") == [(1,)]
    assert rows(con, "SELECT v FROM cloud.versions ORDER BY v") == [(1,), (2,)]
    with pytest.raises(duckdb.Error) as err:
        con.execute("INSERT INTO past.versions VALUES (3)")
    assert "read-only" in str(err.value), str(err.value)
    attach(con, server, alias="ro", options="(READ_ONLY)")
    assert rows(con, "SELECT count(*) FROM ro.versions") == [(2,)]
    with pytest.raises(duckdb.Error) as err:
        con.execute("CREATE TABLE ro.nope (x INTEGER)")
    assert "read-only" in str(err.value), str(err.value)


FILTERS = [
    "i = 5",
    "i <> 5",
    "i >= 995",
    "i IN (1, 2, 3)",
    "i NOT IN (1, 2)",
    "i IS NULL",
    "i IS DISTINCT FROM 5",
    "s = 'it''s'",
    "s > 'b'",
    "d BETWEEN DATE '2024-01-01' AND DATE '2024-01-10'",
    "p < 10.5",
    "f = 0.1",
    "ts >= TIMESTAMP '2024-01-01 00:00:05'",
    "NOT b",
    "(i > 5 AND i < 20) OR i IS NULL",
    "u = '00000000-0000-0000-0000-000000000001'::UUID",
    "lower(s) = 'abc1'",
    "s LIKE 'a%'",
]


def test_filters_pushed_into_the_remote_scan_give_the_local_answer(con, server):
    con.execute(
        """CREATE TABLE typed AS SELECT
             CASE WHEN range % 7 = 0 THEN NULL ELSE range::INTEGER END AS i,
             CASE WHEN range % 5 = 0 THEN NULL WHEN range % 11 = 0 THEN 'it''s'
                  ELSE chr(97 + (range % 26)::INTEGER) || range END AS s,
             DATE '2024-01-01' + (range % 40)::INTEGER AS d,
             (range * 1.5)::DECIMAL(10, 1) AS p,
             range / 10.0 AS f,
             TIMESTAMP '2024-01-01' + INTERVAL (range) SECOND AS ts,
             range % 3 = 0 AS b,
             ('00000000-0000-0000-0000-' || lpad(range::VARCHAR, 12, '0'))::UUID AS u
           FROM range(1000)"""
    )
    attach(con, server)
    con.execute("CREATE OR REPLACE TABLE cloud.typed AS SELECT * FROM typed")
    # PUSHDOWN false: queries are not shipped whole, so the scan (and its filter pushdown) runs.
    attach(con, server, alias="scan", options="(PUSHDOWN false)")
    for where in FILTERS:
        local = rows(con, f"SELECT * FROM typed WHERE {where} ORDER BY ALL")
        assert rows(con, f"SELECT * FROM scan.typed WHERE {where} ORDER BY ALL") == local, where
        # the same through whole-query pushdown
        assert rows(con, f"SELECT * FROM cloud.typed WHERE {where} ORDER BY ALL") == local, where
    # The comparison is translated at plan time; the prefix match reaches the scan as DuckDB's own range
    # filter, which the scan applies itself (and sends the server as a range).
    plan = rows(con, "EXPLAIN SELECT i FROM scan.typed WHERE i < 10 AND s LIKE 'a%'")[0][1]
    assert "Remote Filters" in plan and "\"i\" < CAST('10' AS INTEGER)" in plan, plan
    assert "Filters: (s >= 'a') AND (s < 'b')" in plan.split("Openduck Scan")[1], plan


def test_scan_and_pushdown_paths_agree(con, server):
    con.execute("CREATE TABLE sales AS SELECT range % 10 AS region, range AS amount FROM range(20000)")
    attach(con, server)
    con.execute("CREATE OR REPLACE TABLE cloud.sales AS SELECT * FROM sales")
    attach(con, server, alias="scan", options="(PUSHDOWN false)")
    query = "SELECT region, count(*), sum(amount), avg(amount) FROM {t} WHERE amount % 3 = 0 GROUP BY region ORDER BY region"
    local = rows(con, query.format(t="sales"))
    assert rows(con, query.format(t="cloud.sales")) == local
    assert rows(con, query.format(t="scan.sales")) == local
    assert "Openduck Query" in rows(con, "EXPLAIN " + query.format(t="cloud.sales"))[0][1]
    assert "Openduck Scan" in rows(con, "EXPLAIN " + query.format(t="scan.sales"))[0][1]


def test_parameters_schemas_and_pushed_writes(con, server):
    attach(con, server)
    con.execute("CREATE SCHEMA cloud.staging")
    con.execute("CREATE TABLE cloud.staging.nums AS SELECT range AS n FROM range(10)")
    # a read in a transaction sees the snapshot the writes created
    con.execute("BEGIN")
    assert rows(con, "SELECT count(*) FROM cloud.staging.nums") == [(10,)]
    con.execute("COMMIT")
    # prepared-statement parameters stay local (the server has no values for them)
    assert rows(con, "SELECT n FROM cloud.staging.nums WHERE n = ?", [3]) == [(3,)]
    assert rows(con, "INSERT INTO cloud.staging.nums VALUES (?)", [100]) == [(1,)]
    # writes that only touch the remote database run there as a whole
    assert rows(con, "UPDATE cloud.staging.nums SET n = n + 1000 WHERE n >= 5") == [(6,)]
    assert rows(con, "DELETE FROM cloud.staging.nums WHERE n > 1000 AND n < 1008") == [(3,)]
    assert rows(con, "SELECT n FROM cloud.staging.nums ORDER BY n") == [(0,), (1,), (2,), (3,), (4,), (1008,), (1009,), (1100,)]
    assert ("staging",) in rows(con, "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'cloud'")
    con.execute("DROP TABLE cloud.staging.nums")
    con.execute("DROP SCHEMA cloud.staging")
    assert ("staging",) not in rows(con, "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'cloud'")


TYPED_COLUMNS = {
    "hi": "range::HUGEINT * 1000000000000",
    "ub": "range::UBIGINT",
    "fl": "range::FLOAT / 3",
    "dec38": "range::DECIMAL(38, 10)",
    "t": "TIME '10:00:00' + INTERVAL (range) MINUTE",
    "tstz": "TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (range) HOUR",
    "tsns": "(TIMESTAMP '2020-01-01' + INTERVAL (range) SECOND)::TIMESTAMP_NS",
    "iv": "INTERVAL (range) DAY",
    "bl": "('\\xAA' || range::VARCHAR)::BLOB",
    "lst": "[range, NULL, range + 1]",
    "st": "{'a': range, 'b': 'x' || range}",
    "mp": "MAP {'k': range}",
    "arr": "[range, range]::INTEGER[2]",
    # types Arrow cannot carry faithfully travel as text
    "en": "(['red', 'green'])[range % 2 + 1]::ENUM('red', 'green')",
    "ttz": "'10:00:00+02'::TIMETZ",
    "bits": "'0101'::BIT",
    "lenum": "[('red'::ENUM('red', 'green'))]",
}


def test_types_survive_create_insert_scan_and_pushdown(con, server):
    select = ", ".join(f"{expr} AS {name}" for name, expr in TYPED_COLUMNS.items())
    con.execute(f"CREATE TABLE alltypes AS SELECT {select} FROM range(50)")
    attach(con, server)
    attach(con, server, alias="scan", options="(PUSHDOWN false)")
    con.execute("CREATE OR REPLACE TABLE cloud.alltypes AS SELECT * FROM alltypes")
    con.execute("INSERT INTO scan.alltypes SELECT * FROM alltypes")  # the INSERT path too
    text = ", ".join(f"{name}::VARCHAR" for name in TYPED_COLUMNS)
    local = rows(con, f"SELECT {text} FROM (SELECT * FROM alltypes UNION ALL SELECT * FROM alltypes) ORDER BY ALL")
    assert rows(con, f"SELECT {text} FROM scan.alltypes ORDER BY ALL") == local
    assert rows(con, f"SELECT {text} FROM cloud.alltypes ORDER BY ALL") == local
    local_types = rows(con, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'alltypes'"
                       " AND table_catalog = 'memory' ORDER BY ordinal_position")
    remote_types = rows(con, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'alltypes'"
                        " AND table_catalog = 'cloud' ORDER BY ordinal_position")
    assert remote_types == local_types
