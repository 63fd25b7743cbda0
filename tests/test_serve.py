"""End-to-end: `openduck serve` as a user runs it (real FUSE mount, real gRPC
on loopback, real DuckDB workers), driven through the `openduck sql` client."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

TOKEN = "e2e-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Serve:
    def __init__(self, od, tmp_path, *extra, token=TOKEN):
        self.od = od
        self.addr = f"127.0.0.1:{free_port()}"
        self.log = tmp_path / "serve.log"
        env = {k: v for k, v in os.environ.items() if k != "OPENDUCK_TOKEN"}
        args = [od.bin, "--data-dir", str(od.data_dir), "serve", "--listen", self.addr, *extra]
        if token:
            args += ["--token", token]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(args, stderr=log, env={**env, "OPENDUCK_LOG": "info"})

    def wait_healthy(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://{self.addr}/health", timeout=1) as r:
                    if r.read().strip() == b"ok":
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve never became healthy")

    def sql(self, db, sql, *extra, check=True, token=TOKEN):
        args = ["sql", db, sql, "--endpoint", f"http://{self.addr}", *extra]
        if token:
            args += ["--token", token]
        return self.od.run(*args, check=check)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0, self.log.read_text()
        assert not os.path.ismount(self.od.data_dir / "mnt")


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


def test_create_insert_read_time_travel_and_cli_alongside(serve, od):
    out = serve.sql("mydb", "CREATE TABLE t AS SELECT range AS i FROM range(100)").stdout
    assert "100 rows affected" in out
    first = int(out.split("snapshot ")[1])
    assert "50 rows affected" in serve.sql("mydb", "INSERT INTO t SELECT range FROM range(50)").stdout
    assert "150" in serve.sql("mydb", "SELECT count(*) AS n FROM t").stdout
    assert "100" in serve.sql("mydb", "SELECT count(*) AS n FROM t", "--snapshot", str(first)).stdout
    # Storage commands work while the server runs.
    snaps = json.loads(od.run("snapshots", "mydb", "--json").stdout)
    assert snaps and snaps[-1]["id"] > first
    assert "latest checkpoint is snapshot" in od.run("seal", "mydb").stdout
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
