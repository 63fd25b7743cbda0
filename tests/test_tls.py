"""TLS as a deploying user sets it up: a CA made by the test, `openduck serve
--tls-cert --tls-key`, clients (the `openduck sql` Rust client and the
extension in the wheel) on `https://` endpoints trusting that CA through
OPENDUCK_CA_FILE; and no silent plaintext either way."""
import ssl
import subprocess
import time
import urllib.request

import duckdb
import pytest

from conftest import TOKEN, Serve, rows


def make_ca_and_server_cert(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=openduck test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "server.pem", d / "server.key"


@pytest.fixture
def tls_server(od, tmp_path):
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    s = Serve(od, tmp_path, "--db", "mydb", "--tls-cert", str(cert), "--tls-key", str(key))
    s.endpoint = f"https://{s.addr}"
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.time() + 60
    try:
        while True:
            assert s.proc.poll() is None, s.log.read_text()
            try:
                with urllib.request.urlopen(f"{s.endpoint}/health", timeout=1, context=context) as r:
                    assert r.read().strip() == b"ok"
                    break
            except OSError:
                assert time.time() < deadline, s.log.read_text()
                time.sleep(0.1)
    except BaseException:
        s.proc.terminate()
        s.proc.wait(timeout=60)
        raise
    yield s, ca
    s.stop()


def test_https_clients_trusting_the_ca_work_and_nothing_falls_back_to_plaintext(tls_server, monkeypatch, extension_path, tmp_path):
    s, ca = tls_server
    # The Rust client (`openduck sql`) with the CA.
    monkeypatch.setenv("OPENDUCK_CA_FILE", str(ca))
    assert "42" in s.sql("mydb", "SELECT 42 AS answer").stdout
    # The extension in the stock wheel, over https.
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension_path}'")
    con.execute(f"ATTACH '{s.url()}' AS cloud")
    con.execute("CREATE TABLE cloud.t AS SELECT range AS i FROM range(100000)")
    assert rows(con, "SELECT count(*), sum(i) FROM cloud.t") == [(100000, 4999950000)]
    assert con.sql("SELECT * FROM cloud.t").to_arrow_table().num_rows == 100000  # a Fetch too
    con.close()

    # Without the CA the certificate is not trusted: a clear refusal.
    monkeypatch.delenv("OPENDUCK_CA_FILE")
    untrusted = s.sql("mydb", "SELECT 1", check=False)
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr.lower(), untrusted.stderr
    # Plaintext to the TLS port does not work.
    plain = s.od.run("sql", "mydb", "SELECT 1", "--endpoint", f"http://{s.addr}", "--token", TOKEN, check=False)
    assert plain.returncode != 0, plain.stdout


def test_https_to_a_plaintext_server_is_refused_not_downgraded(od, tmp_path, monkeypatch):
    s = Serve(od, tmp_path, "--db", "mydb").wait_healthy()
    try:
        out = s.od.run("sql", "mydb", "SELECT 1", "--endpoint", f"https://{s.addr}", "--token", TOKEN, check=False)
        assert out.returncode != 0, out.stdout
        assert "1" not in out.stdout
    finally:
        s.stop()
