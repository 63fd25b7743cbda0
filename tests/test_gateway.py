"""Scale-out as it runs in production, on one machine: `openduck gateway` in
front of two or three `openduck worker` processes (each its own data dir and
FUSE mount) that share one Postgres database and one S3 prefix (each test
its own: the worker registry is one per metadata store); stock DuckDB
clients attach to the gateway only. Workers are killed with SIGKILL, as
machines die.
"""
import json
import signal
import threading
import time

import duckdb
import pytest

from conftest import OpenDuck, Serve, rows, wait_for
from test_write_path import shared_storage


class Cluster:
    def __init__(self, tmp_path, extension_path, workers=2, gateway_args=()):
        self.shared = shared_storage()
        self.gateway_args = list(gateway_args)
        self.db = "analytics"
        self.extension_path = extension_path
        self.workers = []
        self.gateway = None
        try:
            self.start(tmp_path, workers)
        except BaseException:
            self.stop()
            raise

    def start(self, tmp_path, workers):
        self.tmp_path = tmp_path
        for name in [f"w{i}" for i in range(workers)]:
            (tmp_path / name).mkdir()
            w = Serve(OpenDuck(tmp_path / name / "data"), tmp_path / name, *self.shared, "--db", self.db, cmd="worker")
            self.workers.append(w)
        for w in self.workers:
            w.wait_healthy()
        (tmp_path / "gw").mkdir()
        self.gateway = Serve(OpenDuck(tmp_path / "gw" / "data"), tmp_path / "gw", "--metadata", self.shared[1], *self.gateway_args, cmd="gateway").wait_healthy()
        self.wait_workers(workers)

    def health(self):
        return json.loads(self.gateway.get("/health"))

    def wait_workers(self, n, timeout=20):
        deadline = time.time() + timeout
        while len(self.health()["workers"]) != n:
            assert time.time() < deadline, f"the gateway never saw {n} workers: {self.health()}"
            time.sleep(0.1)

    def worker_at(self, endpoint):
        return next(w for w in self.workers if w.endpoint == endpoint)

    def writer(self):
        """The worker holding the database's writer lease (as the gateway sees it)."""
        wait_for(lambda: self.db in self.health()["writers"], timeout=15, what="a writer lease")
        h = self.health()
        owner = h["writers"][self.db]
        return self.worker_at(next(w["endpoint"] for w in h["workers"] if w["id"] == owner))

    def client(self, **params):
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{self.extension_path}'")
        con.execute(f"ATTACH '{self.gateway.url(self.db, **params)}' AS cloud")
        return con

    def stop(self):
        for s in [self.gateway, *self.workers]:
            if s is not None and s.proc.poll() is None:
                s.stop()


@pytest.fixture
def cluster(tmp_path, extension_path):
    c = Cluster(tmp_path, extension_path)
    yield c
    c.stop()


def retry(fn, timeout, what):
    """Call fn until it stops raising duckdb.Error; how long that took."""
    started = time.time()
    while True:
        try:
            fn()
            return time.time() - started
        except duckdb.Error as e:
            assert time.time() - started < timeout, f"{what}: still failing after {timeout} s: {e}"
            time.sleep(0.2)


def test_gateway_routes_writes_reads_fetches_and_time_travel(cluster):
    con = cluster.client()
    con.execute("CREATE TABLE cloud.t AS SELECT range AS i, 'row ' || range AS s FROM range(300000)")
    con.execute("INSERT INTO cloud.t VALUES (-1, 'mine')")
    # Read-your-writes on the next statement, through the gateway (no seal in between).
    assert rows(con, "SELECT s FROM cloud.t WHERE i = -1") == [("mine",)]
    # A result too large to come inline is fetched by handle through the gateway.
    assert rows(con, "SELECT count(*), sum(i) FROM (SELECT * FROM cloud.t)") == [(300001, 44999849999)]
    big = con.sql("SELECT * FROM cloud.t").to_arrow_table()
    assert big.num_rows == 300001
    # A second client (its own connection to the gateway) sees the same state.
    other = cluster.client()
    assert rows(other, "SELECT count(*) FROM cloud.t") == [(300001,)]
    # Transactions go to the writer and stay there.
    other.execute("BEGIN")
    other.execute("INSERT INTO cloud.t VALUES (-2, 'in tx')")
    assert rows(other, "SELECT count(*) FROM cloud.t WHERE i < 0") == [(2,)]
    assert rows(con, "SELECT count(*) FROM cloud.t WHERE i < 0") == [(1,)]
    other.execute("COMMIT")
    assert rows(con, "SELECT count(*) FROM cloud.t WHERE i < 0") == [(2,)]

    # Time travel: a sealed snapshot is read through the gateway from any worker.
    con.execute("CHECKPOINT cloud")
    snap = rows(con, "SELECT max(id) FROM openduck_snapshots('cloud')")[0][0]
    con.execute("DELETE FROM cloud.t WHERE i < 0")
    old = cluster.client(snapshot=snap)
    assert rows(old, "SELECT count(*) FROM cloud.t WHERE i < 0") == [(2,)]
    assert old.sql("SELECT * FROM cloud.t").to_arrow_table().num_rows == 300002
    assert rows(con, "SELECT count(*) FROM cloud.t WHERE i < 0") == [(0,)]

    # Operability: the registry, who writes, and Prometheus metrics.
    h = cluster.health()
    assert sorted(w["endpoint"] for w in h["workers"]) == sorted(w.endpoint for w in cluster.workers)
    writer = cluster.writer()

    def writing():  # as of the worker's last heartbeat; with the age of its oldest unsealed commit
        me = [w for w in cluster.health()["workers"] if w["endpoint"] == writer.endpoint]
        return [w["writing"] for w in me] == [[cluster.db]] and isinstance(me[0]["seal_lag_ms"].get(cluster.db), int)

    wait_for(writing, timeout=10, what="the writer to report its database")
    listed = json.loads(writer.od.run("--metadata", cluster.shared[1], "workers", "--json").stdout)
    assert {w["endpoint"] for w in listed["workers"]} == {w.endpoint for w in cluster.workers}
    # A second gateway side by side (gateways keep no state): what one client wrote through the
    # first is read through the second.
    second = Serve(cluster.gateway.od, cluster.tmp_path / "gw", "--metadata", cluster.shared[1], cmd="gateway").wait_healthy()
    try:
        via_second = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        via_second.execute(f"LOAD '{cluster.extension_path}'")
        via_second.execute(f"ATTACH '{second.url(cluster.db)}' AS cloud")
        con.execute("INSERT INTO cloud.t VALUES (-3, 'through the first gateway')")
        assert rows(via_second, "SELECT s FROM cloud.t WHERE i = -3") == [("through the first gateway",)]
    finally:
        second.stop()

    metrics = cluster.gateway.get("/metrics")
    assert 'openduck_gateway_requests_total{rpc="Execute",code="Ok"}' in metrics, metrics
    assert 'openduck_gateway_requests_total{rpc="Fetch",code="Ok"}' in metrics, metrics
    assert "openduck_gateway_request_seconds_bucket" in metrics
    worker_metrics = writer.get("/metrics")
    assert 'openduck_worker_requests_total{rpc="Execute",code="Ok"}' in worker_metrics
    wait_for(lambda: f'openduck_worker_seal_lag_seconds{{db="{cluster.db}"}}' in writer.get("/metrics"), timeout=10, what="the seal lag gauge")
    # Cache hit rates: the workers read layers from S3 through their caches.
    def cache_lookups():
        total = {}
        for w in cluster.workers:
            for line in w.get("/metrics").splitlines():
                if line.startswith("openduck_worker_cache_lookups_total{"):
                    labels, value = line.rsplit(" ", 1)
                    total[labels] = total.get(labels, 0) + float(value)
        return total
    wait_for(lambda: sum(cache_lookups().values()) > 0, timeout=10, what="cache lookups on the workers' /metrics")
    lookups = cache_lookups()
    for cache in ["pages", "layer_indexes", "disk"]:
        assert any(f'cache="{cache}"' in k for k in lookups), lookups

    # The gateway restarts (same address): attached clients carry on after at most a retry.
    cluster.gateway.stop()
    cluster.gateway = Serve(cluster.gateway.od, cluster.tmp_path / "gw", "--metadata", cluster.shared[1], cmd="gateway", addr=cluster.gateway.addr).wait_healthy()
    took = retry(lambda: con.execute("SELECT count(*) FROM cloud.t").fetchall(), 10, "a query after the gateway restarted")
    assert rows(con, "SELECT count(*) FROM cloud.t WHERE i = -3") == [(1,)], f"after {took:.1f} s"


def test_gateway_refuses_bad_tokens_and_unknown_handles(cluster):
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{cluster.extension_path}'")
    with pytest.raises(duckdb.Error, match="wrong token"):
        con.execute(f"ATTACH '{cluster.gateway.url(cluster.db, token='nope')}' AS cloud")
    out = cluster.gateway.sql(cluster.db, "SELECT 42 AS answer").stdout
    assert "42" in out
    bad = cluster.gateway.sql("no_such_db", "SELECT 1", check=False)
    assert bad.returncode != 0 and "no_such_db" in bad.stderr, bad.stderr


READER = "reader-token-0123456789abcdef"
ELSEWHERE = "elsewhere-token-0123456789abcdef"


def test_gateway_enforces_scoped_tokens(tmp_path, extension_path):
    """--tokens-file on the gateway: a read-only token reads through any
    worker and its writes are refused by the writer (the gateway marks its
    statements read-only); a token for another database gets nothing."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may do what\n{READER} read analytics\n{ELSEWHERE} write elsewhere\n")
    c = Cluster(tmp_path, extension_path, gateway_args=["--tokens-file", str(tokens)])
    try:
        admin = c.client()
        admin.execute("CREATE TABLE cloud.t AS SELECT range AS x FROM range(5)")
        reader = c.client(token=READER)
        assert rows(reader, "SELECT count(*) FROM cloud.t") == [(5,)]
        for sql in ["INSERT INTO cloud.t VALUES (99)", "DELETE FROM cloud.t", "CREATE TABLE cloud.u (a INT)"]:
            with pytest.raises(duckdb.Error, match="read-only"):
                reader.execute(sql)
        reader.execute("BEGIN")
        with pytest.raises(duckdb.Error, match="read-only"):
            reader.execute("UPDATE cloud.t SET x = 0")
        reader.execute("ROLLBACK")
        with pytest.raises(duckdb.Error, match="may not use database 'analytics'"):
            c.client(token=ELSEWHERE)
        assert rows(admin, "SELECT count(*), sum(x)::BIGINT FROM cloud.t") == [(5, 10)]
    finally:
        c.stop()


def test_gateway_survives_worker_deaths(tmp_path, extension_path):
    cluster = Cluster(tmp_path, extension_path, workers=3)
    try:
        survive_worker_deaths(cluster)
    finally:
        cluster.stop()


def survive_worker_deaths(cluster):
    con = cluster.client()
    con.execute("CREATE TABLE cloud.t AS SELECT range AS i FROM range(3000)")
    con.execute("CHECKPOINT cloud")  # sealed: survives the writer's machine
    snap = rows(con, "SELECT max(id) FROM openduck_snapshots('cloud')")[0][0]
    reader = cluster.client(snapshot=snap)

    # The worker running a query dies: that query fails with a clear, retryable error ...
    outcome = {}

    def slow():
        try:
            reader.execute("SELECT count(*) FROM cloud.t a, cloud.t b, cloud.t c WHERE (a.i * 7 + b.i * 3 + c.i) % 1000003 = 17").fetchall()
            outcome["error"] = None
        except duckdb.Error as e:
            outcome["error"] = str(e)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.time() + 30
    while True:
        busy = [w for w in cluster.health()["workers"] if w["in_flight_from_this_gateway"] > 0]
        if busy:
            break
        assert time.time() < deadline, "the slow query never started"
        time.sleep(0.05)
    writer = cluster.writer()
    victim = cluster.worker_at(busy[0]["endpoint"])
    victim.proc.send_signal(signal.SIGKILL)
    t.join(timeout=60)
    assert not t.is_alive()
    assert outcome["error"] and "run the statement again" in outcome["error"], outcome
    # ... and the next one succeeds at once, on another worker.
    assert rows(reader, "SELECT count(*) FROM cloud.t") == [(3000,)]
    cluster.workers.remove(victim)

    # The writer dies (unless it just did): another worker takes its lease over within a bounded
    # time, and writes resume from the latest sealed snapshot.
    if writer is not victim:
        writer.proc.send_signal(signal.SIGKILL)
        cluster.workers.remove(writer)
    took = retry(lambda: con.execute("INSERT INTO cloud.t VALUES (-1)"), 30, "writes after the writer died")
    print(f"writes resumed {took:.1f} s after the writer died (victim was the writer: {writer is victim})")
    assert took < 20, f"the takeover took {took:.1f} s"
    assert rows(con, "SELECT count(*) FROM cloud.t") == [(3001,)]
    assert cluster.writer() in cluster.workers
    assert rows(reader, "SELECT count(*) FROM cloud.t") == [(3000,)], "the snapshot still reads as it was sealed"
