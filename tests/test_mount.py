"""End-to-end through a real FUSE mount (`openduck mount`) with stock DuckDB
(the duckdb==2.0.0 wheel), in separate processes like real users."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from conftest import wait_for


class Mount:
    def __init__(self, od, mountpoint: Path, *extra):
        self.od = od
        self.path = mountpoint
        self.extra = list(extra)
        self.proc = None

    def start(self):
        self.log = self.path.parent / "mount.log"
        self.log_from = len(self.log.read_text()) if self.log.exists() else 0
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [self.od.bin, "--data-dir", str(self.od.data_dir), "mount", str(self.path), *self.extra],
                stderr=log,
                env={**os.environ, "OPENDUCK_LOG": "info"},
            )
        wait_for(lambda: "mounted OpenDuck at" in self.log.read_text()[self.log_from:] or self.proc.poll() is not None, what="mount")
        if self.proc.poll() is not None:
            raise AssertionError(f"mount failed: {self.log.read_text()}")
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(timeout=60) == 0, self.log.read_text()
            assert not os.path.ismount(self.path), "still mounted after SIGTERM"
        finally:
            self.force_cleanup()

    def force_cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if os.path.ismount(self.path):
            subprocess.run(["umount", "-l", str(self.path)], check=False)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def snapshot_ids(self, db):
        return sorted(int(p.stem) for p in (self.path / db / "snapshots").iterdir())


@pytest.fixture
def mount(od, tmp_path):
    m = Mount(od, tmp_path / "mnt")
    od.run("db", "create", "mydb")
    m.start()
    yield m
    if m.proc.poll() is None:
        m.stop()
    m.force_cleanup()


def connect(path, tmp_path, **kw):
    return duckdb.connect(str(path), config={"temp_directory": str(tmp_path / "spill")}, **kw)


def count(path, tmp_path):
    con = connect(path, tmp_path, read_only=True)
    try:
        return con.execute("SELECT count(*), coalesce(sum(v), 0) FROM t").fetchone()
    finally:
        con.close()


def count_or_none(path, tmp_path):
    """Like count(), but None while the snapshot predates table t."""
    try:
        return count(path, tmp_path)
    except (duckdb.CatalogException, duckdb.IOException):
        return None


def test_other_users_get_in_only_with_allow_other_and_only_to_read(od, tmp_path):
    # A mountpoint other users can reach (pytest's own tmp dirs are 0700).
    base = Path(tempfile.mkdtemp(prefix="openduck-allow-other-", dir="/tmp"))
    base.chmod(0o755)
    od.run("db", "create", "mydb")
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    try:
        for allow in [False, True]:
            m = Mount(od, base / "mnt", *(["--allow-other"] if allow else [])).start()
            try:
                head = m.path / "mydb" / "head.duckdb"
                if not allow:
                    con = connect(head, tmp_path)
                    con.execute("CREATE TABLE t AS SELECT range AS v FROM range(10)")
                    con.execute("CHECKPOINT")
                    con.close()
                    wait_for(lambda: len(m.snapshot_ids("mydb")) >= 1, what="a snapshot")
                snap = m.path / "mydb" / "snapshots" / f"{m.snapshot_ids('mydb')[-1]}.duckdb"
                read = subprocess.run([*nobody, "head", "-c", "16", str(snap)], capture_output=True)
                write = subprocess.run([*nobody, "sh", "-c", f"echo x >> '{head}'"], capture_output=True)
                assert write.returncode != 0, "another user wrote the head"
                if allow:
                    assert read.returncode == 0 and len(read.stdout) == 16, read.stderr
                else:
                    assert read.returncode != 0 and b"Permission denied" in read.stderr, read
            finally:
                m.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_head_crud_checkpoints_become_snapshots_and_time_travel(mount, tmp_path):
    head = mount.path / "mydb" / "head.duckdb"
    con = connect(head, tmp_path)
    con.execute("CREATE TABLE t (id INTEGER, v INTEGER, s VARCHAR)")
    con.execute("INSERT INTO t SELECT range, range % 10, 'row ' || range FROM range(200000)")
    con.execute("CHECKPOINT")
    expected = {}
    wait_for(lambda: len(mount.snapshot_ids("mydb")) >= 2, what="first snapshots")
    expected[mount.snapshot_ids("mydb")[-1]] = (200000, sum(i % 10 for i in range(200000)))
    con.execute("UPDATE t SET v = v + 1 WHERE id < 1000")
    con.execute("DELETE FROM t WHERE id >= 150000")
    con.execute("CHECKPOINT")
    wait_for(lambda: mount.snapshot_ids("mydb")[-1] > max(expected), what="snapshot after update")
    expected[mount.snapshot_ids("mydb")[-1]] = con.execute("SELECT count(*), sum(v) FROM t").fetchone()
    con.close()
    # Each checkpoint is a snapshot; old ones keep their content.
    for sid, want in expected.items():
        assert count(mount.path / "mydb" / "snapshots" / f"{sid}.duckdb", tmp_path) == want
    assert os.readlink(mount.path / "mydb" / "latest.duckdb") == f"snapshots/{max(expected)}.duckdb"
    assert count(mount.path / "mydb" / "latest.duckdb", tmp_path) == expected[max(expected)]
    # The head reopens with everything.
    assert count(head, tmp_path) == expected[max(expected)]
    # The CLI sees the same snapshots.
    listed = json.loads(mount.od.run("snapshots", "mydb", "--json").stdout)
    assert [s["id"] for s in listed] == mount.snapshot_ids("mydb")
    # Snapshots are read-only files.
    with pytest.raises(OSError) as e:
        open(mount.path / "mydb" / "snapshots" / f"{max(expected)}.duckdb", "r+b")
    assert e.value.errno == 30  # EROFS


def test_wal_only_commits_never_reach_a_snapshot(mount, tmp_path):
    head = mount.path / "mydb" / "head.duckdb"
    con = connect(head, tmp_path)
    con.execute("SET wal_autocheckpoint = '1TB'")
    con.execute("CREATE TABLE t (v INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    con.execute("CHECKPOINT")
    wait_for(lambda: count_or_none(mount.path / "mydb" / "latest.duckdb", tmp_path) == (1, 1), what="checkpoint")
    con.execute("INSERT INTO t VALUES (41)")  # committed, only in the WAL
    names = {p.name for p in (mount.path / "mydb" / "snapshots").iterdir()}
    assert all(n.endswith(".duckdb") and n[:-7].isdigit() for n in names), names
    assert (mount.path / "mydb" / "head.duckdb.wal").exists()
    assert count(mount.path / "mydb" / "latest.duckdb", tmp_path) == (1, 1)
    # `openduck seal` while the writer is attached goes through the daemon:
    # it reports the checkpoint-consistent snapshot and the WAL-only commits.
    out = mount.od.run("seal", "mydb").stdout
    assert f"latest checkpoint is snapshot {mount.snapshot_ids('mydb')[-1]}" in out, out
    assert "only in DuckDB's WAL" in out, out
    con.close()  # checkpoints on close
    wait_for(lambda: count(mount.path / "mydb" / "latest.duckdb", tmp_path) == (2, 42), what="close checkpoint")


READER = r"""
import json, random, sys, duckdb
mp, expected, spill = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
for _ in range(int(sys.argv[4])):
    sid, want = random.choice(list(expected.items()))
    con = duckdb.connect(f"{mp}/mydb/snapshots/{sid}.duckdb", read_only=True, config={"temp_directory": spill})
    got = list(con.execute("SELECT count(*), coalesce(sum(v), 0) FROM t").fetchone())
    con.close()
    assert got == want, (sid, got, want)
"""


def test_readers_query_old_snapshots_while_the_writer_goes_on(mount, tmp_path):
    head = mount.path / "mydb" / "head.duckdb"
    con = connect(head, tmp_path)
    con.execute("CREATE TABLE t (v INTEGER)")
    expected = {}
    for batch in range(3):
        con.execute(f"INSERT INTO t SELECT {batch} FROM range(50000)")
        con.execute("CHECKPOINT")
        want = list(con.execute("SELECT count(*), sum(v) FROM t").fetchone())
        wait_for(lambda: count_or_none(mount.path / "mydb" / "latest.duckdb", tmp_path) == tuple(want), what="snapshot")
        expected[mount.snapshot_ids("mydb")[-1]] = want
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(mount.path), json.dumps(expected), str(tmp_path / f"spill{i}"), "15"])
        for i in range(3)
    ]
    for batch in range(3, 8):
        con.execute(f"INSERT INTO t SELECT {batch} FROM range(50000)")
        con.execute("DELETE FROM t WHERE v = 0 AND random() < 0.1")
        con.execute("CHECKPOINT")
    con.close()
    for r in readers:
        assert r.wait(timeout=120) == 0
    # Snapshots opened repeatedly were hydrated and then read by passthrough.
    log = mount.log.read_text()
    assert "hydrated" in log and "kernel passthrough" in log


WRITER = r"""
import os, sys, duckdb
head, ack, spill = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect(head, config={"temp_directory": spill})
con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER, v INTEGER)")
start = con.execute("SELECT coalesce(max(id), -1) + 1 FROM t").fetchone()[0]
with open(ack, "a") as out:
    for i in range(start, start + 1_000_000):
        con.execute("INSERT INTO t SELECT ?, range FROM range(200)", [i])
        out.write(f"{i}\n"); out.flush(); os.fsync(out.fileno())
        if i % 25 == 0:
            con.execute("CHECKPOINT")
"""


def test_kill9_of_the_daemon_loses_no_acknowledged_write(od, tmp_path):
    od.run("db", "create", "crash")
    mnt = Mount(od, tmp_path / "mnt")
    ack = tmp_path / "acked.txt"
    ack.touch()
    rng = random.Random(7)
    for _ in range(3):
        mnt.start()
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(mnt.path / "crash" / "head.duckdb"), str(ack), str(tmp_path / "spill")],
            stderr=subprocess.DEVNULL,
        )
        before = len(ack.read_text().split())
        try:
            wait_for(lambda: len(ack.read_text().split()) > before + 30, timeout=60, what="writes")
        except AssertionError:
            print(mnt.log.read_text()[-5000:])
            raise
        time.sleep(rng.uniform(0.0, 1.5))
        mnt.kill9()  # the daemon dies mid-write
        writer.kill()
        writer.wait()
    mnt.start()
    try:
        acked = {int(x) for x in ack.read_text().split()}
        assert len(acked) > 90
        con = connect(mnt.path / "crash" / "head.duckdb", tmp_path)
        ids = {r[0] for r in con.execute("SELECT id FROM t GROUP BY id HAVING count(*) = 200").fetchall()}
        assert acked <= ids, f"lost acknowledged rows: {sorted(acked - ids)[:10]}"
        con.close()
        assert count(mnt.path / "crash" / "latest.duckdb", tmp_path)[0] > 0
    finally:
        mnt.stop()
        mnt.force_cleanup()
