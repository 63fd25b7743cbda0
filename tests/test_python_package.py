"""The `openduck` Python package (extension/python) against a live
`openduck serve`: the seed's `openduck.connect("mydb")` example as written,
with the token and endpoint taken from the environment."""
import importlib
from pathlib import Path

import pytest


def test_connect_finds_extension_token_and_endpoint(live):
    openduck = importlib.import_module("openduck")
    con = openduck.connect("mydb")
    assert con.sql("SELECT 1 AS x").fetchall() == [(1,)]
    con.execute("CREATE TABLE cloud.users AS SELECT range AS id, 'user' || range AS name FROM range(25)")
    assert len(con.sql("SELECT * FROM cloud.users LIMIT 10").fetchall()) == 10
    assert con.sql("SELECT max(id) FROM cloud.users").fetchall() == [(24,)]
    con.close()


def test_extension_lookup_order_and_clear_error(monkeypatch, tmp_path, extension_path):
    openduck = importlib.import_module("openduck")
    explicit = tmp_path / "mine.duckdb_extension"
    explicit.write_bytes(b"x")
    assert openduck.find_extension(str(explicit)) == str(explicit)
    monkeypatch.setenv("OPENDUCK_EXTENSION_PATH", extension_path)
    assert openduck.find_extension(str(tmp_path / "missing")) == extension_path
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    with pytest.raises(openduck.ExtensionNotFound) as e:
        openduck.find_extension()
    assert "extension/build.sh" in str(e.value) and "OPENDUCK_EXTENSION_PATH" in str(e.value)
