"""TLS to the warehouse (`sslmode`, `sslrootcert` in `ClusterJDBCURL`) against the test
PostgreSQL, which scripts/services.sh starts with a certificate for the name `localhost` signed
by a throw-away CA (FH_TEST_PG_CA). What loads, what is refused and why, and that the load
really ran over TLS (pg_stat_ssl of Hydrant's connection)."""

import subprocess
import time
import uuid
from urllib.parse import urlsplit

import pytest

from conftest import assert_no_panic, config_yaml, require_env, wait_for
from test_warehouse import db, new_table, put, warehouse_stream  # noqa: F401 - db is a fixture


@pytest.fixture
def pg():
    url, ca = require_env("FH_TEST_DATABASE_URL", "FH_TEST_PG_CA")
    parts = urlsplit(url)
    return {"port": parts.port, "db": parts.path.lstrip("/"), "ca": ca}


def jdbc(pg, host, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"jdbc:postgresql://{host}:{pg['port']}/{pg['db']}" + (f"?{query}" if query else "")


def other_ca(tmp_path):
    """A CA that did not sign the server's certificate."""
    key, crt = tmp_path / "other.key", tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return str(crt)


def load(hydrant_factory, s3, bucket, db, url):
    """Starts a warehouse stream on `url`, puts two records; returns (server, stream, table)."""
    table = new_table(db, "id int PRIMARY KEY, name text")
    name = "tls-" + uuid.uuid4().hex[:6]
    stream = warehouse_stream(url, name, bucket, table, retry_seconds=5)
    h = hydrant_factory(config_yaml(stream, s3=s3))
    put(h, name, [b'{"id":1,"name":"a"}\n', b'{"id":2,"name":"b"}\n'])
    return h, name, table


def loaded(db, table):
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 2


@pytest.mark.parametrize("mode, host", [("verify-full", "localhost"), ("verify-ca", "127.0.0.1"),
                                        ("require", "127.0.0.1")])
def test_a_load_over_tls_in_each_sslmode_lands_and_runs_encrypted(mode, host, pg, s3, bucket, db, hydrant_factory):
    params = {"sslmode": mode, "ApplicationName": f"hydrant-{mode}"}
    if mode != "require":
        params["sslrootcert"] = pg["ca"]
    h, _, table = load(hydrant_factory, s3, bucket, db, jdbc(pg, host, **params))
    wait_for(lambda: loaded(db, table), timeout=30, what=f"the rows loaded with sslmode={mode}")
    ssl = db.execute("SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                     "WHERE a.application_name = %s", (f"hydrant-{mode}",)).fetchall()
    assert ssl and all(row[0] for row in ssl), f"Hydrant's connection is not encrypted: {ssl}"
    assert_no_panic(h)


def test_certificates_that_do_not_verify_are_refused_and_nothing_loads(pg, s3, bucket, db, hydrant_factory, tmp_path):
    # verify-full through 127.0.0.1: the certificate names only localhost.
    h, _, table = load(hydrant_factory, s3, bucket, db, jdbc(pg, "127.0.0.1", sslmode="verify-full", sslrootcert=pg["ca"]))
    # verify-ca with a CA that did not sign it.
    h2, _, table2 = load(hydrant_factory, s3, bucket, db, jdbc(pg, "localhost", sslmode="verify-ca",
                                                               sslrootcert=other_ca(tmp_path)))
    wait_for(lambda: "NotValidForName" in h.log_path.read_text(errors="replace")
             or "not valid for name" in h.log_path.read_text(errors="replace").lower(),
             timeout=30, what="the host-name refusal in the log")
    wait_for(lambda: "UnknownIssuer" in h2.log_path.read_text(errors="replace")
             or "unknown issuer" in h2.log_path.read_text(errors="replace").lower(),
             timeout=30, what="the unknown-issuer refusal in the log")
    time.sleep(1)
    assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert db.execute(f"SELECT count(*) FROM {table2}").fetchone()[0] == 0


def test_an_unreadable_sslrootcert_is_refused_at_validation_with_the_field(tmp_path, hydrant_factory, pg):
    config = tmp_path / "h.yaml"
    config.write_text(config_yaml(warehouse_stream(jdbc(pg, "localhost", sslmode="verify-full",
                                                        sslrootcert="/nonexistent/ca.pem"), "w", "b", "t")))
    from conftest import hydrant_bin
    p = subprocess.run([hydrant_bin(), "validate", str(config)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "RedshiftDestinationConfiguration.ClusterJDBCURL" in p.stderr and "/nonexistent/ca.pem" in p.stderr, p.stderr
