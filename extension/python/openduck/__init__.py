"""OpenDuck for Python: `openduck.connect("mydb")` returns a stock DuckDB
connection with the openduck extension loaded and the remote database
attached (as `cloud` by default), so local and remote tables mix in one query.
Local tables live in an in-memory database called `local` (the default
catalog, `USE local`), so `local.products JOIN cloud.sales` works as written.

- extension: `extension_path=`, else $OPENDUCK_EXTENSION_PATH, else the build
  tree (`$CARGO_TARGET_DIR` or /var/cache/openduck/target, then `target/`
  next to this checkout), `debug/openduck.duckdb_extension`;
- token: `token=`, else $OPENDUCK_TOKEN;
- endpoint: `endpoint=`, else $OPENDUCK_ENDPOINT, else http://localhost:7878.
"""
import os
from pathlib import Path
from typing import Optional

import duckdb

__all__ = ["connect", "find_extension", "ExtensionNotFound"]

_FILE = "openduck.duckdb_extension"


class ExtensionNotFound(FileNotFoundError):
    pass


def find_extension(explicit: Optional[str] = None) -> str:
    """The path of openduck.duckdb_extension, or a clear error saying how to get one."""
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    env = os.environ.get("OPENDUCK_EXTENSION_PATH")
    if env:
        candidates.append(Path(env))
    for target in (os.environ.get("CARGO_TARGET_DIR"), "/var/cache/openduck/target"):
        if target:
            candidates.append(Path(target) / "debug" / _FILE)
    checkout = Path(__file__).resolve().parents[3]
    candidates.append(checkout / "target" / "debug" / _FILE)
    for c in candidates:
        if c.is_file():
            return str(c)
    tried = ", ".join(str(c) for c in candidates)
    raise ExtensionNotFound(
        f"openduck.duckdb_extension not found (tried {tried}): build it with extension/build.sh "
        "or set OPENDUCK_EXTENSION_PATH to the file"
    )


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def connect(
    database: str,
    *,
    alias: str = "cloud",
    endpoint: Optional[str] = None,
    token: Optional[str] = None,
    snapshot: Optional[int] = None,
    extension_path: Optional[str] = None,
    config: Optional[dict] = None,
    local: Optional[str] = "local",
) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB connection with `database` attached as `alias`
    and, unless `local` is None, an in-memory database of that name as the
    default catalog for local tables."""
    cfg = {"allow_unsigned_extensions": "true", **(config or {})}
    con = duckdb.connect(config=cfg)
    if local:
        con.execute(f'ATTACH \':memory:\' AS "{local}"')
        con.execute(f'USE "{local}"')
    con.execute(f"LOAD {_quote(find_extension(extension_path))}")
    endpoint = endpoint or os.environ.get("OPENDUCK_ENDPOINT") or "http://localhost:7878"
    token = token if token is not None else os.environ.get("OPENDUCK_TOKEN")
    url = f"openduck:{database}"
    options = [f"ENDPOINT {_quote(endpoint)}"]
    if token:
        options.append(f"TOKEN {_quote(token)}")
    if snapshot is not None:
        options.append(f"SNAPSHOT {int(snapshot)}")
    con.execute(f'ATTACH {_quote(url)} AS "{alias}" ({", ".join(options)})')
    return con
