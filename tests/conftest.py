"""Shared fixtures for the end-to-end tests: the real `openduck` binary and
DuckDB's Python wheel, in a throwaway data directory."""
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-token"


def _binary() -> str:
    path = os.environ.get("OPENDUCK_BIN")
    if path:
        return path
    target = os.environ.get("CARGO_TARGET_DIR", "/var/cache/openduck/target")
    candidate = Path(target) / "debug" / "openduck"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("openduck")
    if not found:
        pytest.fail("openduck binary not found: run scripts/test (it builds it) or set OPENDUCK_BIN")
    return found


class OpenDuck:
    """Runs `openduck` subcommands against one data directory."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.bin = _binary()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "OPENDUCK_TOKEN"}
        proc = subprocess.run(
            [self.bin, "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"openduck {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc


@pytest.fixture
def od(tmp_path: Path) -> OpenDuck:
    return OpenDuck(tmp_path / "data")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Serve:
    """`openduck serve` on a free loopback port, as a user runs it."""

    def __init__(self, od: OpenDuck, log_dir: Path, *extra, token=TOKEN, cmd="serve", addr=None):
        self.od = od
        self.addr = addr or f"127.0.0.1:{free_port()}"
        self.endpoint = f"http://{self.addr}"
        self.log = log_dir / f"{cmd}.log"
        env = {k: v for k, v in os.environ.items() if k != "OPENDUCK_TOKEN"}
        args = [od.bin, "--data-dir", str(od.data_dir), cmd, "--listen", self.addr, *extra]
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
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"serve never became healthy: {self.log.read_text()}")

    def sql(self, db, sql, *extra, check=True, token=TOKEN):
        args = ["sql", db, sql, "--endpoint", self.endpoint, *extra]
        if token:
            args += ["--token", token]
        return self.od.run(*args, check=check)

    def url(self, db="mydb", prefix="openduck", **params) -> str:
        """An ATTACH URL for this server (a parameter set to None is left out)."""
        params = {"endpoint": self.endpoint, "token": TOKEN, **params}
        query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
        return f"{prefix}:{db}?{query}" if query else f"{prefix}:{db}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0, self.log.read_text()
        assert not os.path.ismount(self.od.data_dir / "mnt")

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.endpoint}{path}", timeout=5) as r:
            return r.read().decode()


@pytest.fixture(scope="session")
def extension_path() -> str:
    """The built extension: $OPENDUCK_EXTENSION_PATH, else extension/build.sh builds it."""
    path = os.environ.get("OPENDUCK_EXTENSION_PATH")
    if not path:
        build = subprocess.run([str(ROOT / "extension" / "build.sh")], capture_output=True, text=True, timeout=3600)
        assert build.returncode == 0, build.stderr[-5000:]
        path = build.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), path
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One `openduck serve` with database `mydb` for a test module."""
    root = tmp_path_factory.mktemp("serve")
    s = Serve(OpenDuck(root / "data"), root, "--db", "mydb").wait_healthy()
    yield s
    if s.proc.poll() is None:
        s.stop()


@pytest.fixture
def live(od, tmp_path, monkeypatch, extension_path):
    """`openduck serve` with database `mydb`, its token, endpoint and the extension in the environment
    (OPENDUCK_TOKEN, OPENDUCK_ENDPOINT, OPENDUCK_EXTENSION_PATH), as the seed's examples expect."""
    s = Serve(od, tmp_path, "--db", "mydb").wait_healthy()
    monkeypatch.setenv("OPENDUCK_TOKEN", TOKEN)
    monkeypatch.setenv("OPENDUCK_ENDPOINT", s.endpoint)
    monkeypatch.setenv("OPENDUCK_EXTENSION_PATH", extension_path)
    yield s
    s.stop()


@pytest.fixture
def con(extension_path):
    """A stock DuckDB connection (the PyPI wheel) with the extension loaded."""
    c = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    c.execute(f"LOAD '{extension_path}'")
    yield c
    c.close()


def wait_for(pred, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def attach(con, server, alias="cloud", options="", **params):
    con.execute(f"ATTACH '{server.url(**params)}' AS {alias} {options}")


def rows(con, sql, params=None):
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
