"""The seed's user-facing Python examples (../shared/seed/), run as written
against a live `openduck serve` — only the endpoint (a free port instead of
7878), paths and tokens differ. Every result is checked against the same
query on plain local DuckDB."""
import importlib
import sys
import textwrap

import duckdb

from conftest import TOKEN

# The seed's data shapes: its two hybrid examples use products(product_id, name) with sales(total_sales)
# and products(id, category) with sales(amount).
PRODUCTS = """SELECT range AS id, range AS product_id, 'product ' || range AS name,
                     CASE WHEN range % 3 = 0 THEN 'toys' WHEN range % 3 = 1 THEN 'books' ELSE 'garden' END AS category
              FROM range(200)"""
SALES = """SELECT range AS sale_id, range % 250 AS product_id, (range * 7919) % 3000 AS total_sales,
                  (range * 31) % 500 AS amount
           FROM range(50000)"""
USERS = "SELECT range AS id, 'user' || range AS name FROM range(100)"

HYBRID_1 = """
SELECT l.product_id, l.name, r.total_sales
FROM local.products l
JOIN cloud.sales r ON l.product_id = r.product_id
WHERE r.total_sales > 1000
"""
HYBRID_2 = """
SELECT
p.category,
SUM(s.amount) AS revenue
FROM local.products p -- local table
JOIN cloud.sales s -- remote table
ON p.id = s.product_id
GROUP BY p.category
ORDER BY revenue DESC
"""


def reference():
    """The same data, all local, in a catalog named `local` and one named `cloud`."""
    ref = duckdb.connect()
    for name in ("local", "cloud"):
        ref.execute(f"ATTACH ':memory:' AS {name}")
    ref.execute(f"CREATE TABLE local.products AS {PRODUCTS}")
    ref.execute(f"CREATE TABLE cloud.sales AS {SALES}")
    return ref


def test_python_wrapper_and_hybrid_queries_as_in_the_seed(live, capsys):
    openduck = importlib.import_module("openduck")
    # "Via openduck wrapper (recommended)"
    con = openduck.connect("mydb")  # uses OPENDUCK_TOKEN env var
    con.execute(f"CREATE OR REPLACE TABLE cloud.users AS {USERS}")
    con.execute(f"CREATE OR REPLACE TABLE cloud.sales AS {SALES}")
    con.execute(f"CREATE TABLE local.products AS {PRODUCTS}")
    con.sql("SELECT 1 AS x").show()
    con.sql("SELECT * FROM cloud.users LIMIT 10").show()
    assert "user9" in capsys.readouterr().out
    # "Hybrid query — local table joined with remote table", both of the seed's forms
    ref = reference()
    con.sql(HYBRID_1).show()
    assert sorted(con.sql(HYBRID_1).fetchall()) == sorted(ref.sql(HYBRID_1).fetchall())
    con.sql(HYBRID_2).show()
    assert con.sql(HYBRID_2).fetchall() == ref.sql(HYBRID_2).fetchall()
    con.close()


def test_raw_duckdb_sdk_example_as_in_the_seed(live, capsys):
    openduck = importlib.import_module("openduck")
    setup = openduck.connect("mydb")
    setup.execute(f"CREATE OR REPLACE TABLE cloud.users AS {USERS}")
    setup.close()
    # "Via raw DuckDB SDK", verbatim but for the endpoint
    example = textwrap.dedent(
        '''
        import duckdb
        import os
        ext_path = os.environ["OPENDUCK_EXTENSION_PATH"]
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{ext_path}';")
        con.execute(
        "ATTACH 'openduck:mydb"
        "?endpoint=http://localhost:7878"
        f"&token={os.environ["OPENDUCK_TOKEN"]}' AS cloud;"
        )
        con.sql("SELECT * FROM cloud.users LIMIT 10").show()
        '''
    ).replace("http://localhost:7878", live.endpoint)
    if sys.version_info < (3, 12):
        # the seed nests "..." inside an f"..." string, which only Python 3.12+ parses (Debian 12 has 3.11)
        example = example.replace('os.environ["OPENDUCK_TOKEN"]', "os.environ['OPENDUCK_TOKEN']")
    scope = {}
    exec(compile(example, "seed-raw-sdk", "exec"), scope)
    assert "user9" in capsys.readouterr().out
    assert len(scope["con"].sql("SELECT * FROM cloud.users LIMIT 10").fetchall()) == 10
    # "ATTACH URL Reference": the endpoint defaults to OPENDUCK_ENDPOINT (localhost:7878 without it)
    con = scope["con"]
    con.execute(f"ATTACH 'openduck:mydb?token={TOKEN}' AS cloud2;")
    assert con.sql("SELECT count(*) FROM cloud2.users").fetchall() == [(100,)]
    con.execute(f"ATTACH 'openduck:mydb?endpoint={live.endpoint}&token={TOKEN}' AS cloud3;")
    con.execute("SHOW ALL TABLES")
    assert ("cloud3", "main", "users") in [(r[0], r[1], r[2]) for r in con.execute("SHOW ALL TABLES").fetchall()]
