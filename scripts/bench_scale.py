"""Scale-out benchmark: read throughput (queries/s) of a CPU-bound query mix
through `openduck gateway` with 1, 2 and 3 `openduck worker` processes on
shared Postgres + S3, each worker pinned to one CPU core (`taskset`: a
stand-in for one machine each), against native DuckDB pinned to one core on
a local file in the same run; and the delay from a seal (CHECKPOINT
answered) to the new snapshot being readable through the gateway.

Reads name a sealed snapshot (ATTACH ...&snapshot=<id>): those spread over
the workers. Reads of the latest state go to the database's writer.

Usage: python scripts/bench_scale.py  (scripts/bench scale does the set-up:
Postgres, an S3 server, the binaries)
Env: OPENDUCK_BIN, OPENDUCK_EXTENSION_PATH, OPENDUCK_TEST_POSTGRES_URL,
     OPENDUCK_TEST_S3_URL, BENCH_DIR, BENCH_ROWS (3_000_000), BENCH_SECONDS (15),
     BENCH_CLIENTS (6).
"""
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import duckdb

from benchlib import OpenDuckProcess

BIN = os.environ["OPENDUCK_BIN"]
EXT = os.environ["OPENDUCK_EXTENSION_PATH"]
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/openduck-bench-scale"))
ROWS = int(os.environ.get("BENCH_ROWS", "3000000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "6"))
TOKEN = "bench"
DB = "bench"

MIX = [
    "SELECT k % 100 AS g, count(*), sum(x), avg(y) FROM t GROUP BY g ORDER BY g",
    "SELECT count(DISTINCT s) FROM t",
    "SELECT quantile_cont(x, 0.5), stddev(y) FROM t WHERE k < 5000",
    "SELECT s, max(x) FROM t WHERE k % 7 = 3 GROUP BY s ORDER BY 2 DESC LIMIT 10",
]


def fresh_postgres_database():
    url = urllib.parse.urlparse(os.environ["OPENDUCK_TEST_POSTGRES_URL"])
    name = f"scale_{uuid.uuid4().hex[:8]}"
    createdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/createdb"))[-1]
    subprocess.run([createdb, "-h", url.hostname, "-p", str(url.port), "-U", url.username or "postgres", name], check=True)
    return url._replace(path=f"/{name}").geturl()


class Proc(OpenDuckProcess):
    def __init__(self, name, *args, core=None):
        data = WORK / name
        data.mkdir(parents=True, exist_ok=True)
        super().__init__(BIN, data / "data", list(args), data / "log", env=dict(os.environ, OPENDUCK_TOKEN=TOKEN), core=core)


def connect(endpoint, snapshot=None):
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    url = f"openduck:{DB}?endpoint={endpoint}&token={TOKEN}" + (f"&snapshot={snapshot}" if snapshot is not None else "")
    con.execute(f"ATTACH '{url}' AS cloud")
    con.execute("USE cloud")
    return con


def throughput(make_con):
    """Queries/s of CLIENTS concurrent clients running the mix for SECONDS."""
    cons = [make_con() for _ in range(CLIENTS)]
    for con in cons[:1]:
        for q in MIX:  # warm-up: the snapshot is opened and cached
            con.execute(q).fetchall()
    done = [0] * CLIENTS
    stop = time.time() + SECONDS

    def run(k):
        i = k
        while time.time() < stop:
            cons[k].execute(MIX[i % len(MIX)]).fetchall()
            done[k] += 1
            i += 1

    threads = [threading.Thread(target=run, args=(k,)) for k in range(CLIENTS)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.time() - t0)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def small_statements(con, gateway_pid, n=2000):
    """Sorted latencies of n `SELECT 1`, and the gateway's CPU seconds per call meanwhile."""
    sql = "SELECT * FROM openduck_query('cloud', 'SELECT 1')"
    for _ in range(100):
        con.execute(sql).fetchall()
    cpu0, lat = cpu_seconds(gateway_pid), []
    for _ in range(n):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        lat.append(time.perf_counter() - t0)
    return sorted(lat), (cpu_seconds(gateway_pid) - cpu0) / n


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    shared = ["--metadata", fresh_postgres_database(), "--store", f"{os.environ['OPENDUCK_TEST_S3_URL']}/scale-{uuid.uuid4().hex[:8]}"]
    worker_args = lambda: ["worker", "--threads", "1", "--memory-limit", "2GB", "--db", DB]  # noqa: E731
    create = (f"CREATE TABLE t AS SELECT range AS k, random() AS x, random() * 100 AS y, 'item-' || (range % 50000)::VARCHAR AS s "
              f"FROM range({ROWS})")

    # Baseline: one native DuckDB thread on a local file.
    native_path = WORK / "native.duckdb"
    native = duckdb.connect(str(native_path))
    native.execute(create)
    native.close()

    native = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--native", str(native_path)],
                            check=True, capture_output=True, text=True)
    base_qps = float(native.stdout.strip().splitlines()[-1])

    cores = os.cpu_count() or 1
    workers = [Proc("w0", *shared, *worker_args(), core=0)]
    gateway = Proc("gw", "--metadata", shared[1], "gateway")
    try:
        writer = connect(gateway.endpoint)
        writer.execute(create)
        writer.execute("CHECKPOINT cloud")
        snap = writer.execute("SELECT max(id) FROM openduck_snapshots('cloud')").fetchall()[0][0]

        print(f"CPU-bound query mix on {ROWS:,} rows, {CLIENTS} concurrent clients, {SECONDS:.0f} s per run, "
              f"{os.cpu_count()} cores on this machine")
        print("| workers (1 core each) | queries/s through the gateway | native DuckDB on 1 core | ratio |")
        print("|---|---|---|---|")
        for n in (1, 2, 3):
            while len(workers) < n:
                workers.append(Proc(f"w{len(workers)}", *shared, *worker_args(), core=len(workers) % cores))
            deadline = time.time() + 20
            while len(json.loads(urllib.request.urlopen(f"{gateway.endpoint}/health").read())["workers"]) < n:
                assert time.time() < deadline, "the gateway did not see every worker"
                time.sleep(0.1)
            qps = throughput(lambda: connect(gateway.endpoint, snapshot=snap))
            print(f"| {n} | {qps:,.1f} | {base_qps:,.1f} | {qps / base_qps:.2f}x |")

        # What the gateway adds to a small statement: latency, and its own CPU per call.
        print("\n| `SELECT 1` (openduck_query), 2000 calls | p50 | p99 | gateway CPU per call |")
        print("|---|---|---|---|")
        for name, endpoint in (("straight to a worker", workers[0].endpoint), ("through the gateway", gateway.endpoint)):
            lat, cpu = small_statements(connect(endpoint), gateway.proc.pid)
            print(f"| {name} | {lat[len(lat) // 2] * 1000:.2f} ms | {lat[int(len(lat) * 0.99)] * 1000:.2f} ms | {cpu * 1000:.3f} ms |")

        # Snapshot propagation: from CHECKPOINT answered to the new snapshot read through the gateway.
        delays = []
        for i in range(10):
            writer.execute(f"INSERT INTO t VALUES ({-1 - i}, 0, 0, 'new')")
            writer.execute("CHECKPOINT cloud")
            t0 = time.perf_counter()
            new = writer.execute("SELECT max(id) FROM openduck_snapshots('cloud')").fetchall()[0][0]
            reader = connect(gateway.endpoint, snapshot=new)
            assert reader.execute(f"SELECT count(*) FROM t WHERE k = {-1 - i}").fetchall() == [(1,)]
            delays.append(time.perf_counter() - t0)
            reader.close()
        print(f"\nsnapshot propagation (CHECKPOINT answered -> new snapshot read through the gateway, incl. ATTACH): "
              f"median {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
    finally:
        gateway.stop()
        for w in workers:
            w.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--native"]:
        # The baseline, in its own process pinned to one core by the caller.
        print(throughput(lambda: duckdb.connect(sys.argv[2], read_only=True, config={"threads": "1"})))
    else:
        main()
