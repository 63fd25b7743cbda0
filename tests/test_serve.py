"""End-to-end: `openduck serve` as a user runs it (real FUSE mount, real gRPC
on loopback, real DuckDB workers), driven through the `openduck sql` client."""
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Serve


@pytest.fixture
def serve(od, tmp_path):
    s = Serve(od, tmp_path, "--db", "mydb").wait_healthy()
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_refuses_to_start_without_a_token(od, tmp_path):
    s = Serve(od, tmp_path, token=None)
    assert s.proc.wait(timeout=30) != 0
    assert "refusing to start without a token" in s.log.read_text()
    p = od.run("serve", "--insecure-no-token", "--listen", "0.0.0.0:0", check=False)
    assert p.returncode != 0 and "only allowed on a loopback address" in p.stderr
    # On loopback, running open is allowed when asked for explicitly.
    Serve(od, tmp_path, "--insecure-no-token", token=None).wait_healthy().stop()


def test_a_bad_tokens_file_stops_startup_naming_the_line(od, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# ok so far\nreader-token-0123456789 admin mydb\n")
    p = od.run("serve", "--tokens-file", str(tokens), "--listen", "127.0.0.1:0", check=False)
    assert p.returncode != 0 and f"{tokens}:2: access must be `read` or `write`" in p.stderr, p.stderr
    # A tokens file alone is enough to start (no --token needed).
    tokens.write_text("reader-token-0123456789 read mydb\n")
    s = Serve(od, tmp_path, "--db", "mydb", "--tokens-file", str(tokens), token=None).wait_healthy()
    try:
        assert "42" in s.sql("mydb", "SELECT 42 AS answer", token="reader-token-0123456789").stdout
        denied = s.sql("mydb", "CREATE TABLE t (a INT)", token="reader-token-0123456789", check=False)
        assert denied.returncode != 0 and "read-only" in denied.stderr, denied.stderr
    finally:
        s.stop()


def test_create_insert_read_time_travel_and_cli_alongside(serve, od):
    out = serve.sql("mydb", "CREATE TABLE t AS SELECT range AS i FROM range(100)").stdout
    assert "100 rows affected" in out
    first = int(serve.sql("mydb", "CHECKPOINT").stdout.split("snapshot ")[1])
    assert "50 rows affected" in serve.sql("mydb", "INSERT INTO t SELECT range FROM range(50)").stdout
    assert "150" in serve.sql("mydb", "SELECT count(*) AS n FROM t").stdout
    assert "100" in serve.sql("mydb", "SELECT count(*) AS n FROM t", "--snapshot", str(first)).stdout
    # Storage commands work while the server runs.
    snaps = json.loads(od.run("snapshots", "mydb", "--json").stdout)
    assert snaps and snaps[-1]["id"] == first
    # `openduck seal` checkpoints the server's writer: the INSERT reaches a new snapshot.
    assert f"latest checkpoint is snapshot {first + 1}" in od.run("seal", "mydb").stdout
    od.run("compact", "mydb")
    od.run("gc")
    assert "150" in serve.sql("mydb", "SELECT count(*) AS n FROM t").stdout


def test_bad_requests_get_clear_errors_and_the_server_stays_up(serve):
    cases = [
        (("mydb", "SELECT 1"), {"token": "wrong"}, "wrong token"),
        (("mydb", "SELECT 1"), {"token": None}, "missing token"),
        (("nope", "SELECT 1"), {}, "unknown database 'nope'"),
        (("mydb", "SELECT * FROM read_csv('/etc/passwd')"), {}, "sandbox"),
    ]
    serve.sql("mydb", "CREATE TABLE t AS SELECT 1 AS x")
    for args, kw, needle in cases:
        p = serve.sql(*args, check=False, **kw)
        assert p.returncode != 0 and needle in p.stderr, (args, p.stderr)
    assert "1" in serve.sql("mydb", "SELECT x FROM t").stdout


def test_concurrent_writers_and_readers_while_health_answers(serve):
    """Several client processes write (each write a checkpoint and a snapshot)
    and read at once; the server keeps answering /health throughout."""

    def client(n):
        for r in range(1, 6):
            serve.sql("mydb", f"CREATE OR REPLACE TABLE c{n} AS SELECT range AS i FROM range({r * 10})")
            out = serve.sql("mydb", f"SELECT count(*) AS n FROM c{n}").stdout
            assert f"{r * 10}" in out, out

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client, n) for n in range(4)]
        deadline = time.time() + 300
        while not all(f.done() for f in futures):
            assert time.time() < deadline, "concurrent clients did not finish"
            with urllib.request.urlopen(f"{serve.endpoint}/health", timeout=10) as r:
                assert r.read().strip() == b"ok"
            time.sleep(0.2)
        for f in futures:
            f.result()
    tables = serve.sql("mydb", "SELECT count(*) AS n FROM duckdb_tables() WHERE table_name LIKE 'c%'").stdout
    assert "4" in tables, tables


def test_kill_9_at_any_moment_leaves_a_machine_that_restarts(od, tmp_path, extension_path):
    """SIGKILL while a worker DuckDB reads the mount (a long query), while clients write, and while
    idle: each time the process must really die (without the mount guard it stays a zombie waiting
    on its own FUSE mount, holding the port and the mount), the client gets an error at once, and
    `openduck serve` restarts at once on the same port and data dir with every acknowledged write."""
    import signal
    import threading

    import duckdb

    from conftest import rows, wait_for

    s = Serve(od, tmp_path, "--db", "mydb").wait_healthy()
    addr, acked = s.addr, 3000

    def attach(server):
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{extension_path}'")
        con.execute(f"ATTACH '{server.url()}' AS cloud")
        return con

    con = attach(s)
    con.execute("CREATE TABLE cloud.t AS SELECT range AS i FROM range(3000)")
    for moment in ("mid-query", "mid-writes", "idle"):
        outcome = {}

        def work():
            try:
                if moment == "mid-query":
                    con.execute("SELECT count(*) FROM cloud.t a, cloud.t b, cloud.t c WHERE (a.i * 7 + b.i * 3 + c.i) % 1000003 = 17").fetchall()
                elif moment == "mid-writes":
                    for i in range(100_000):
                        con.execute("INSERT INTO cloud.t VALUES (?)", [-1 - i])
                        outcome["acked"] = i + 1
                outcome["error"] = None
            except duckdb.Error as e:
                outcome["error"] = str(e)

        t = threading.Thread(target=work)
        t.start()
        time.sleep(2)
        s.proc.send_signal(signal.SIGKILL)
        t.join(timeout=30)
        assert not t.is_alive(), f"{moment}: the client still waits on a killed server"
        if moment != "idle":
            assert "retry" in outcome["error"], outcome
        acked += outcome.get("acked", 0)
        s.proc.wait(timeout=30)
        mnt = str(od.data_dir / "mnt")
        wait_for(lambda: mnt not in open("/proc/mounts").read(), timeout=10, what=f"{moment}: the mount to go")
        # Restart at once on the very same port and data dir: nothing left over holds them.
        s = Serve(od, tmp_path, "--db", "mydb", addr=addr).wait_healthy()
        con = attach(s)
        n = rows(con, "SELECT count(*) FROM cloud.t")[0][0]
        # (a write whose answer the kill cut off may be there too)
        assert acked <= n <= acked + 1, f"{moment}: {n} rows, {acked} acknowledged"
        acked = n
    s.stop()
