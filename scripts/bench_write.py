"""Write-path benchmark: single-row autocommit commits through ATTACH (1 and
8 clients), their latency, the latency of small statements through ATTACH
(issue #12's one-round-trip goals), a bulk INSERT ... SELECT from local data, and what
one small write costs in a small and in a large database (time, local disk
bytes the server writes, bytes stored in the object store), side by side
with native DuckDB on a local file in the same run.

Usage: python scripts/bench_write.py  (scripts/bench write does the set-up)
Env: OPENDUCK_BIN, OPENDUCK_EXTENSION_PATH, BENCH_DIR, BENCH_COMMITS (2000),
     BENCH_BIG_MIB (1024), BENCH_BULK_ROWS (5_000_000).
"""
import os
import shutil
import threading
import time
from pathlib import Path

import duckdb

from benchlib import OpenDuckProcess

BIN = os.environ["OPENDUCK_BIN"]
EXT = os.environ["OPENDUCK_EXTENSION_PATH"]
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/openduck-bench-write"))
COMMITS = int(os.environ.get("BENCH_COMMITS", "2000"))
BIG_MIB = int(os.environ.get("BENCH_BIG_MIB", "1024"))
BULK_ROWS = int(os.environ.get("BENCH_BULK_ROWS", "5000000"))
TOKEN = "bench"


class Server(OpenDuckProcess):
    def __init__(self):
        self.data = WORK / "data"
        env = dict(os.environ, OPENDUCK_TOKEN=TOKEN, RUST_LOG="warn")
        super().__init__(BIN, self.data, ["serve", "--db", "small", "--db", "big"], WORK / "serve.log", env=env)

    def url(self, db):
        return f"openduck:{db}?endpoint=http://127.0.0.1:{self.port}&token={TOKEN}"

    def written_bytes(self):
        """Bytes the server process wrote to storage so far (/proc/<pid>/io)."""
        for line in Path(f"/proc/{self.proc.pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        return 0

    def stored_bytes(self):
        return sum(p.stat().st_size for p in (self.data / "objects").rglob("*") if p.is_file())


def client(server=None, db="small"):
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    if server:
        con.execute(f"ATTACH '{server.url(db)}' AS cloud")
    return con


def commit_loop(con, table, n, params, offset=0):
    """n single-row autocommit INSERTs; per-commit latencies in seconds."""
    lat = []
    for i in range(offset, offset + n):
        t0 = time.perf_counter()
        if params:
            con.execute(f"INSERT INTO {table} VALUES (?, ?)", [i, "row"])
        else:
            con.execute(f"INSERT INTO {table} VALUES ({i}, 'row')")
        lat.append(time.perf_counter() - t0)
    return lat


def parallel(make_con, table, clients, per_client, params):
    cons = [make_con() for _ in range(clients)]
    lats = [[] for _ in range(clients)]

    def run(k):
        lats[k] = commit_loop(cons[k], table, per_client, params, offset=1_000_000 * (k + 1))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return clients * per_client / elapsed, [x for l in lats for x in l]


def pct(lat, p):
    s = sorted(lat)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000


def row(name, value, base, unit, higher_is_better=True):
    ratio = value / base if base else float("nan")
    print(f"| {name} | {value:,.1f} {unit} | {base:,.1f} {unit} | {ratio:.2f}x |")


def latencies(con, sql, n):
    for _ in range(20):
        con.execute(sql).fetchall()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        lat.append(time.perf_counter() - t0)
    return lat


def statement_latency(con, native):
    """Small statements through ATTACH against the same on the local file."""
    n = max(200, COMMITS // 2)
    for name, remote, local in (
        ("`SELECT 1` through openduck_query", "SELECT * FROM openduck_query('cloud', 'SELECT 1')", "SELECT 1"),
        ("`SELECT count(*)` of a table", "SELECT count(*) FROM cloud.t", "SELECT count(*) FROM t"),
        ("`SELECT 1 FROM t LIMIT 1`", "SELECT 1 FROM cloud.t LIMIT 1", "SELECT 1 FROM t LIMIT 1"),
    ):
        lat_o, lat_n = latencies(con, remote, n), latencies(native, local, n)
        row(f"{name}, p50 latency", pct(lat_o, 0.5), pct(lat_n, 0.5), "ms")
        row(f"{name}, p99 latency", pct(lat_o, 0.99), pct(lat_n, 0.99), "ms")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    native_path = WORK / "native.duckdb"
    native = duckdb.connect(str(native_path))
    native.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
    server = Server()
    try:
        con = client(server)
        con.execute("CREATE TABLE cloud.t (i BIGINT, s VARCHAR)")
        # warm up both
        commit_loop(native, "t", 50, True)
        commit_loop(con, "cloud.t", 50, True)

        print("| what | OpenDuck (ATTACH) | native DuckDB file | ratio |")
        print("|---|---|---|---|")
        results = {}
        for params in (True, False):
            label = "parameters" if params else "literal SQL"
            t0 = time.perf_counter()
            lat_n = commit_loop(native, "t", COMMITS, params, offset=10_000_000)
            native_rate = COMMITS / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            lat_o = commit_loop(con, "cloud.t", COMMITS, params, offset=20_000_000 if params else 30_000_000)
            od_rate = COMMITS / (time.perf_counter() - t0)
            results[label] = (od_rate, native_rate)
            row(f"1 client, single-row INSERT ({label}), commits/s", od_rate, native_rate, "/s")
            row(f"1 client ({label}), p50 latency", pct(lat_o, 0.5), pct(lat_n, 0.5), "ms")
            row(f"1 client ({label}), p99 latency", pct(lat_o, 0.99), pct(lat_n, 0.99), "ms")

        per = max(50, COMMITS // 8)
        od8, lat8 = parallel(lambda: client(server), "cloud.t", 8, per, True)
        nat8, natlat8 = parallel(lambda: native.cursor(), "t", 8, per, True)
        row("8 clients, single-row INSERT, total commits/s", od8, nat8, "/s")
        row("8 clients, p99 latency", pct(lat8, 0.99), pct(natlat8, 0.99), "ms")

        statement_latency(con, native)

        # bulk INSERT ... SELECT from local data
        con.execute(f"CREATE TABLE local_rows AS SELECT range AS i, 'r' || range AS s FROM range({BULK_ROWS})")
        native.execute(f"CREATE TABLE local_rows AS SELECT range AS i, 'r' || range AS s FROM range({BULK_ROWS})")
        t0 = time.perf_counter()
        con.execute("INSERT INTO cloud.t SELECT * FROM local_rows")
        od_bulk = BULK_ROWS / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        native.execute("INSERT INTO t SELECT * FROM local_rows")
        nat_bulk = BULK_ROWS / (time.perf_counter() - t0)
        row("bulk INSERT ... SELECT from local data, M rows/s", od_bulk / 1e6, nat_bulk / 1e6, "M/s")

        # one small write into a small and into a big database
        print()
        print(f"| one-row write (200 commits, then CHECKPOINT) | 10 MB database | {BIG_MIB} MB database | ratio big/small |")
        print("|---|---|---|---|")
        costs = {}
        for db, mib in (("small", 10), ("big", BIG_MIB)):
            c = client(server, db)
            rows_needed = mib * (1 << 20) // 16
            c.execute(f"CREATE TABLE cloud.filler AS SELECT range AS i, hash(range) AS h FROM range({rows_needed})")
            c.execute("CREATE TABLE cloud.w (i BIGINT, s VARCHAR)")
            c.execute("CHECKPOINT cloud")
            time.sleep(1)
            disk0, stored0 = server.written_bytes(), server.stored_bytes()
            lat = commit_loop(c, "cloud.w", 200, True)
            c.execute("CHECKPOINT cloud")
            costs[db] = (pct(lat, 0.5), (server.written_bytes() - disk0) / 200, (server.stored_bytes() - stored0) / 200)
            c.close()
        (sl, sd, ss), (bl, bd, bs) = costs["small"], costs["big"]
        print(f"| p50 commit latency | {sl:.2f} ms | {bl:.2f} ms | {bl / sl:.2f}x |")
        print(f"| local disk written per write (incl. its share of the checkpoint) | {sd / 1024:.1f} KiB | {bd / 1024:.1f} KiB | {bd / max(sd, 1):.2f}x |")
        print(f"| bytes stored per write (incl. its share of the snapshot) | {ss / 1024:.1f} KiB | {bs / 1024:.1f} KiB | {bs / max(ss, 1):.2f}x |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
