"""TPC-H all remote (issue #12): the 22 queries through ATTACH with
`USE cloud` (the extension plans them; remote tables are scanned with
their filters pushed down), and each query run whole on the server through
`openduck_query`, side by side with native DuckDB on the same data in a local
file, in the same run. Answers are compared with the native ones.

Usage: python scripts/bench_tpch.py  (scripts/bench tpch does the set-up)
Env: OPENDUCK_BIN, OPENDUCK_EXTENSION_PATH, BENCH_SF (1), BENCH_REPEAT (3),
     SERVE_ARGS (extra `openduck serve` flags, e.g. "--threads 4"),
     BENCH_DIR (/var/tmp/openduck-bench-tpch; the generated data is kept
     there between runs, never in the checkout).
"""
import decimal
import math
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import duckdb

from benchlib import OpenDuckProcess

BIN = os.environ["OPENDUCK_BIN"]
EXT = os.environ["OPENDUCK_EXTENSION_PATH"]
SF = os.environ.get("BENCH_SF", "1")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/openduck-bench-tpch"))
QUERIES = Path(__file__).parent / "tpch" / "queries.sql"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
TOKEN = "bench-tpch"


def queries():
    text = QUERIES.read_text()
    parts = re.split(r"^-- (q\d\d)\n", text, flags=re.M)
    return [(parts[i], parts[i + 1].strip().rstrip(";")) for i in range(1, len(parts), 2)]


def native_file():
    """TPC-H at BENCH_SF in a DuckDB file (generated with tpchgen-cli once)."""
    db = WORK / f"tpch-sf{SF}.duckdb"
    if db.exists():
        return db
    parquet = WORK / f"sf{SF}"
    if not (parquet / "lineitem.parquet").exists():
        print(f"==> generating TPC-H SF{SF} with tpchgen-cli into {parquet}", flush=True)
        subprocess.run(["tpchgen-cli", "parquet", "-s", SF, f"--output-dir={parquet}"], check=True)
    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    for t in TABLES:
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{parquet / (t + '.parquet')}')")
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(db)
    return db


class Server(OpenDuckProcess):
    """`openduck serve` on a fresh data dir holding the file imported as database `tpch`."""

    def __init__(self, native):
        self.data = WORK / "od"
        shutil.rmtree(self.data, ignore_errors=True)
        subprocess.run([BIN, "--data-dir", str(self.data), "import", "tpch", str(native)], check=True, capture_output=True)
        env = dict(os.environ, OPENDUCK_TOKEN=TOKEN, OPENDUCK_LOG="warn")
        super().__init__(BIN, self.data, ["serve", *os.environ.get("SERVE_ARGS", "").split()], WORK / "serve.log", env=env)


def normalized(rows):
    def cell(v):
        if isinstance(v, (float, decimal.Decimal)):
            return round(float(v), 4)
        return v
    return sorted((tuple(cell(v) for v in r) for r in rows), key=repr)


def same(a, b):
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-3):
                    return False
            elif x != y:
                return False
    return True


def timed(run):
    run()  # warm-up (and the answer)
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    native = native_file()
    server = Server(native)
    try:
        local = duckdb.connect(str(native), read_only=True)
        remote = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        remote.execute(f"LOAD '{EXT}'")
        remote.execute(f"ATTACH 'openduck:tpch?endpoint=http://127.0.0.1:{server.port}&token={TOKEN}' AS cloud")
        remote.execute("USE cloud")
        print(f"TPC-H SF{SF}, median of {REPEAT} runs after a warm-up; native DuckDB {duckdb.__version__} on a local file "
              f"vs `openduck serve` on loopback through the extension")
        print("| query | native ms | ATTACH + USE cloud ms | ratio | whole query on the server (`openduck_query`) ms | ratio | answers |")
        print("|---|---|---|---|---|---|---|")
        attach_ratios, pushed_ratios, wrong = [], [], []
        for name, sql in queries():
            want = normalized(local.execute(sql).fetchall())
            got = normalized(remote.execute(sql).fetchall())
            pushed_sql = "SELECT * FROM openduck_query('cloud', '" + sql.replace("'", "''") + "')"
            got_pushed = normalized(remote.execute(pushed_sql).fetchall())
            ok = same(want, got) and same(want, got_pushed)
            if not ok:
                wrong.append(name)
            t_native = timed(lambda: local.execute(sql).fetchall())
            t_attach = timed(lambda: remote.execute(sql).fetchall())
            t_pushed = timed(lambda: remote.execute(pushed_sql).fetchall())
            attach_ratios.append(t_attach / t_native)
            pushed_ratios.append(t_pushed / t_native)
            print(f"| {name} | {t_native * 1e3:.1f} | {t_attach * 1e3:.1f} | {t_attach / t_native:.2f}x | "
                  f"{t_pushed * 1e3:.1f} | {t_pushed / t_native:.2f}x | {'equal' if ok else 'DIFFERENT'} |", flush=True)
        geo = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))
        print(f"| geomean | | | {geo(attach_ratios):.2f}x (max {max(attach_ratios):.2f}x) | | "
              f"{geo(pushed_ratios):.2f}x (max {max(pushed_ratios):.2f}x) | {22 - len(wrong)}/22 equal |")
        if wrong:
            print("different answers:", ", ".join(wrong))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
