"""Shared fixtures for the end-to-end tests: the real `openduck` binary and
DuckDB's Python wheel, in a throwaway data directory."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
