"""difffs benchmark: the same DuckDB queries on a native database file and on
the same database as a mounted OpenDuck snapshot, cold and warm, plus a bulk
load through the head vs a native file. Every number is a ratio against the
native run in the same process run.

Usage: python scripts/bench_mount.py  (scripts/bench mount does the set-up)
Env: BENCH_ROWS (default 45_000_000, ~1.1 GB), BENCH_DIR, OPENDUCK_BIN, BENCH_REPEAT (3).
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROWS = int(os.environ.get("BENCH_ROWS", "45000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/openduck-bench-mount"))
BIN = os.environ["OPENDUCK_BIN"]
PY = sys.executable

QUERIES = {
    "full scan": "SELECT sum(x), sum(k) FROM t",
    "group by": "SELECT k % 100 AS g, count(*), avg(x) FROM t GROUP BY g ORDER BY g",
    "selective filter": "SELECT count(*), min(s) FROM t WHERE s LIKE 'ab%'",
    "point lookup": "SELECT * FROM t WHERE id = 12345678",
}

RUN_QUERY = r"""
import sys, time, duckdb
t0 = time.perf_counter()
con = duckdb.connect(sys.argv[1], read_only=True, config={"temp_directory": sys.argv[3]})
con.execute("SET enable_progress_bar = false")
con.execute(sys.argv[2]).fetchall()
con.close()
print(time.perf_counter() - t0)
"""


def drop_caches():
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3")


def run_query(path, sql):
    out = subprocess.run([PY, "-c", RUN_QUERY, str(path), sql, str(WORK / "spill")], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def od(*args):
    return subprocess.run([BIN, "--data-dir", str(WORK / "data"), *args], capture_output=True, text=True, check=True).stdout


class Mount:
    def __init__(self, hydrate_mib):
        self.hydrate_mib = hydrate_mib
        self.path = WORK / "mnt"

    def __enter__(self):
        log = open(WORK / "mount.log", "a")
        self.proc = subprocess.Popen([BIN, "--data-dir", str(WORK / "data"), "mount", str(self.path), "--hydrate-mib", str(self.hydrate_mib)], stderr=log)
        deadline = time.time() + 30
        while not os.path.ismount(self.path):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("mount failed, see mount.log")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def measure(label, path_fn, cold_setup):
    """Median seconds per query, cold (caches dropped, fresh daemon) and warm."""
    res = {}
    for name, sql in QUERIES.items():
        cold, warm = [], []
        for _ in range(REPEAT):
            with cold_setup() as ctx:
                drop_caches()
                cold.append(run_query(path_fn(ctx), sql))
                warm.append(run_query(path_fn(ctx), sql))
        res[name] = (statistics.median(cold), statistics.median(warm))
        print(f"  {label:<22} {name:<17} cold {res[name][0]:.3f}s warm {res[name][1]:.3f}s", file=sys.stderr)
    return res


class Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        pass


def main():
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    native = WORK / "native.duckdb"
    import duckdb

    print(f"==> generating {ROWS:,} rows natively", file=sys.stderr)
    con = duckdb.connect(str(native))
    con.execute(f"CREATE TABLE t AS SELECT range AS id, range % 1000 AS k, random() AS x, md5(range::VARCHAR) AS s FROM range({ROWS})")
    con.close()
    size = native.stat().st_size
    print(f"==> database: {size / 2**30:.2f} GiB; importing into OpenDuck", file=sys.stderr)
    od("import", "bench", str(native))
    snap = WORK / "mnt" / "bench" / "snapshots" / "1.duckdb"

    results = {"native": measure("native file", lambda _: native, Nothing)}
    results["assembled"] = measure("snapshot from layers", lambda _: snap, lambda: Mount(0))
    # Hydrate once, then measure passthrough.
    with Mount(1 << 20):
        run_query(snap, "SELECT 1")
        hydrated = WORK / "data" / "hydrated" / "bench" / "1.duckdb"
        deadline = time.time() + 600
        while not hydrated.exists() and time.time() < deadline:
            time.sleep(0.2)
    results["hydrated"] = measure("snapshot hydrated", lambda _: snap, lambda: Mount(1 << 20))

    # Bulk load: native file vs the head.
    load = f"CREATE TABLE u AS SELECT range AS id, random() AS x, md5(range::VARCHAR) AS s FROM range({ROWS // 3}); CHECKPOINT;"
    script = "import sys, time, duckdb\nt0=time.perf_counter()\nc=duckdb.connect(sys.argv[1], config={'temp_directory': sys.argv[2]})\nc.execute('SET enable_progress_bar = false')\nc.execute(sys.argv[3])\nc.close()\nprint(time.perf_counter()-t0)"
    t_native = float(subprocess.run([PY, "-c", script, str(WORK / "load.duckdb"), str(WORK / "spill"), load], capture_output=True, text=True, check=True).stdout.split()[-1])
    od("db", "create", "load")
    with Mount(0):
        t_head = float(subprocess.run([PY, "-c", script, str(WORK / "mnt" / "load" / "head.duckdb"), str(WORK / "spill"), load], capture_output=True, text=True, check=True).stdout.split()[-1])
    loaded = (WORK / "load.duckdb").stat().st_size

    print()
    print(f"database {size / 2**30:.2f} GiB ({ROWS:,} rows), median of {REPEAT}; ratio = time / native time (lower is better)")
    print()
    print("| query | native cold | hydrated cold | hydrated warm | from layers cold | from layers warm |")
    print("|---|---|---|---|---|---|")
    for name in QUERIES:
        nc, nw = results["native"][name]
        hc, hw = results["hydrated"][name]
        ac, aw = results["assembled"][name]
        print(f"| {name} | {nc:.3f} s | {hc / nc:.2f}x | {hw / nw:.2f}x | {ac / nc:.2f}x | {aw / nw:.2f}x |")
    print()
    print("goals: hydrated <= 1.02x warm and <= 1.05x cold; from layers <= 1.3x cold")
    print()
    print(f"| bulk load + checkpoint ({loaded / 2**20:.0f} MiB) | native {t_native:.2f} s | head {t_head:.2f} s | ratio {t_head / t_native:.2f}x |")
    print("|---|---|---|---|")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
