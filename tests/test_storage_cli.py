"""End-to-end: real DuckDB files through `openduck import/seal/export`."""
import filecmp
import json
from pathlib import Path

import duckdb

QUERIES = [
    "SELECT count(*), sum(i), min(s), max(s) FROM t",
    "SELECT i % 7 AS k, count(*), avg(i) FROM t GROUP BY k ORDER BY k",
    "SELECT * FROM t WHERE i = 123456",
]


def make_db(path: Path, rows: int) -> None:
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range({rows})")
    con.close()


def results(path: Path) -> list:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [con.execute(q).fetchall() for q in QUERIES]
    finally:
        con.close()


def test_import_export_round_trip_is_byte_identical(od, tmp_path):
    src = tmp_path / "src.duckdb"
    make_db(src, 1_000_000)
    expected = results(src)
    od.run("import", "mydb", str(src))
    od.run("seal", "mydb")  # nothing changed: must not create a snapshot
    snaps = json.loads(od.run("snapshots", "mydb", "--json").stdout)
    assert [s["id"] for s in snaps] == [1]
    assert snaps[0]["size"] == src.stat().st_size and snaps[0]["parent"] is None
    out = tmp_path / "out.duckdb"
    od.run("export", "mydb", str(out))
    assert filecmp.cmp(src, out, shallow=False)
    assert results(out) == expected


def test_clone_and_time_travel_by_snapshot_id(od, tmp_path):
    v1 = tmp_path / "v1.duckdb"
    make_db(v1, 200_000)
    od.run("import", "a", str(v1))
    od.run("db", "clone", "a", "b")
    listed = json.loads(od.run("db", "list", "--json").stdout)
    assert sorted(d["name"] for d in listed) == ["a", "b"]
    out = tmp_path / "b.duckdb"
    od.run("export", "b", str(out), "--snapshot", "1")
    assert filecmp.cmp(v1, out, shallow=False)


def test_store_grows_by_changed_pages_only(od, tmp_path):
    src = tmp_path / "big.duckdb"
    make_db(src, 3_000_000)
    od.run("import", "big", str(src))
    objects = od.data_dir / "objects"
    before = sum(f.stat().st_size for f in objects.rglob("*") if f.is_file())
    # Importing the very same file again stores nothing new (dedupe by hash).
    od.run("import", "big2", str(src))
    after = sum(f.stat().st_size for f in objects.rglob("*") if f.is_file())
    assert after - before < 64 * 1024, after - before


def test_clear_errors(od, tmp_path):
    od.run("db", "create", "x")
    cases = [
        (["snapshots", "nope"], "unknown database 'nope'"),
        (["export", "x", str(tmp_path / "o.duckdb")], "has no snapshot yet"),
        (["db", "create", "x"], "already exists"),
        (["db", "create", "../evil"], "invalid database name"),
        (["import", "y", str(tmp_path / "missing.duckdb")], "missing.duckdb"),
        (["--store", "ftp://h/x", "db", "list"], "unsupported scheme"),
        (["--metadata", "postgres://127.0.0.1:1/x", "db", "list"], "Connection refused"),
        (["gc", "--keep-within", "3y"], "invalid duration"),
        (["gc", "--grace", "0s"], "shorter than 1m"),
    ]
    for args, needle in cases:
        proc = od.run(*args, check=False)
        assert proc.returncode != 0, args
        assert needle in proc.stderr, (args, proc.stderr)
    od.run("import", "y", str(tmp_path / "missing.duckdb"), check=False)
    assert "y" not in od.run("db", "list").stdout.split()
