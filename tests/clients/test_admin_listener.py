"""`admin_listen` moves `/metrics` and `/readyz` off the producers' port: the API port keeps
`POST /` and `/healthz`, the admin port (plain HTTP, also next to `tls:`) serves `/metrics`,
`/readyz` and `/healthz`, and SIGTERM stops both. Without it, on an address other machines can
reach, `/readyz` on the producers' port answers only its headline."""

import json
import urllib.error
import urllib.request

import pytest

from conftest import (
    assert_no_panic,
    config_yaml,
    free_port,
    make_records,
    s3_stream,
    stream_yaml,
    wait_for,
)


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


def test_readyz_on_a_reachable_api_port_names_no_stream_and_quotes_no_destination_error(bucket, hydrant_factory):
    down = free_port()  # nothing listens there: delivery is held back
    body = (
        f"object_stores:\n  down: {{ type: s3, endpoint: \"http://127.0.0.1:{down}\", region: us-east-1, "
        "access_key_id: k, secret_access_key: s, allow_http: true }\n"
        "delivery_streams:\n" + stream_yaml("secret-stream", bucket, shards=1, store="down")
    )
    h = hydrant_factory(body, start=False)
    # Every address, loopback included, so the test reaches it on 127.0.0.1.
    h.config_path.write_text(h.config_path.read_text().replace("listen: 127.0.0.1:", "listen: 0.0.0.0:", 1))
    h.start()
    out = h.firehose().put_record_batch(DeliveryStreamName="secret-stream",
                                        Records=[{"Data": r} for r in make_records(3, tag="held")])
    assert out["FailedPutCount"] == 0, out

    def held_back():
        status, text = get(h.endpoint + "/readyz")
        return (status, text) if "held back" in text else None

    status, text = wait_for(held_back, timeout=30, what="/readyz reporting the held-back shard")
    # Kubernetes probes read the status; producers learn nothing about streams or destinations.
    assert (status, text) == (200, "ready, delivery held back on 1 shard (records wait in the log)\n")
    assert get(h.endpoint + "/healthz") == (200, "ok\n")
    # /metrics stays whole for Prometheus (docs/security.md says it names every stream).
    status, text = get(h.endpoint + "/metrics")
    assert status == 200 and 'stream="secret-stream"' in text
    assert "/readyz without its detail lines" in h.log()
    assert h.proc.poll() is None
    assert_no_panic(h)
