"""`admin_listen` moves `/metrics` and `/readyz` off the producers' port: the API port keeps
`POST /` and `/healthz`, the admin port (plain HTTP, also next to `tls:`) serves `/metrics`,
`/readyz` and `/healthz`, and SIGTERM stops both."""

import json
import urllib.error
import urllib.request

import pytest

from conftest import assert_no_panic, config_yaml, free_port, make_records, s3_stream


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def check_split(h, admin):
    out = h.firehose().put_record_batch(DeliveryStreamName="clicks",
                                        Records=[{"Data": r} for r in make_records(3, tag="admin")])
    assert out["FailedPutCount"] == 0, out
    assert h.urlopen(h.endpoint + "/healthz", timeout=5).read() == b"ok\n"
    for path in ("/metrics", "/readyz"):
        try:
            h.urlopen(h.endpoint + path, timeout=5).read()
            raise AssertionError(f"{path} is still served on the API port")
        except urllib.error.HTTPError as e:
            assert e.code == 400 and json.loads(e.read())["__type"] == "UnknownOperationException"
    assert get(admin + "/healthz") == (200, "ok\n")
    assert get(admin + "/readyz") == (200, "ready\n")
    status, text = get(admin + "/metrics")
    assert status == 200
    assert 'hydrant_incoming_records_total{stream="clicks"} 3' in text, text[:2000]
    assert 'hydrant_http_connections_open{listener="admin"}' in text


@pytest.fixture
def body(s3, bucket):
    return config_yaml(s3_stream("clicks", bucket, prefix="admin/"), s3=s3)


def test_admin_listen_serves_metrics_and_readiness_on_their_own_port(body, hydrant_factory):
    port = free_port()
    h = hydrant_factory(f"admin_listen: 127.0.0.1:{port}\n" + body)
    admin = f"http://127.0.0.1:{port}"
    check_split(h, admin)
    assert "admin listener: /metrics and /readyz are served on http://127.0.0.1:" in h.log()
    assert h.stop(timeout=30) == 0, h.log()
    with pytest.raises(OSError):
        urllib.request.urlopen(admin + "/healthz", timeout=2).read()
    assert_no_panic(h)


def test_the_admin_listener_stays_plain_http_next_to_tls(body, hydrant_factory, tmp_path):
    from test_sigv4 import make_ca_and_server_cert

    certs = tmp_path / "certs"
    certs.mkdir()
    paths = make_ca_and_server_cert(certs)
    port = free_port()
    h = hydrant_factory(f"admin_listen: 127.0.0.1:{port}\n"
                        f"tls: {{ cert: {paths['cert']}, key: {paths['key']} }}\n" + body,
                        tls_ca=paths["ca"])
    assert h.endpoint.startswith("https://")
    check_split(h, f"http://127.0.0.1:{port}")
    assert h.stop(timeout=30) == 0, h.log()
    assert_no_panic(h)


def test_without_admin_listen_everything_stays_on_the_api_port(body, hydrant_factory):
    h = hydrant_factory(body)
    for path, want in (("/healthz", "ok"), ("/readyz", "ready"), ("/metrics", "hydrant_")):
        assert want in h.urlopen(h.endpoint + path, timeout=5).read().decode()
