"""`auth: { mode: sigv4 }` and `tls:` against the real clients: boto3 and the aws CLI v1 and v2 sign
with the configured keys and succeed; a wrong secret, an unknown key, a request signed 20 minutes
ago, an unsigned request and a key outside its stream allow-list get AWS's error types. boto3
reaches an HTTPS Hydrant whose certificate (from a CA made here) it verifies, and the server still
shuts down cleanly on SIGTERM with a TLS connection open. Secrets never show up in the log."""

import datetime as dt
import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid
from unittest import mock

import botocore.exceptions
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    b64,
    client_error,
    firehose_client,
    make_records,
    s3_store_yaml,
    stream_yaml,
    wait_delivered,
)

ADMIN_KEY, ADMIN_SECRET = "AKIAHYDRANTADMIN01", "admin-" + uuid.uuid4().hex
CLICKS_KEY, CLICKS_SECRET = "AKIAHYDRANTCLICKS1", "clicks-" + uuid.uuid4().hex
SECRETS = (ADMIN_SECRET, CLICKS_SECRET)
JSON11 = "application/x-amz-json-1.1"


def auth_yaml():
    # Secrets come from the environment, as the docs recommend.
    return (
        "auth:\n  mode: sigv4\n  credentials:\n"
        f"    - {{ access_key_id: {ADMIN_KEY}, secret_access_key: \"${{HYD_TEST_ADMIN_SECRET}}\" }}\n"
        f"    - {{ access_key_id: {CLICKS_KEY}, secret_access_key: \"${{HYD_TEST_CLICKS_SECRET}}\", "
        "streams: [clicks] }\n"
    )


@pytest.fixture
def secrets_env(monkeypatch):
    monkeypatch.setenv("HYD_TEST_ADMIN_SECRET", ADMIN_SECRET)
    monkeypatch.setenv("HYD_TEST_CLICKS_SECRET", CLICKS_SECRET)


@pytest.fixture
def server(s3, bucket, hydrant_factory, secrets_env):
    streams = stream_yaml("clicks", bucket, prefix="clicks/") + stream_yaml("orders", bucket, prefix="orders/")
    h = hydrant_factory(s3_store_yaml(s3) + auth_yaml() + "delivery_streams:\n" + streams)
    h.bucket = bucket
    yield h
    assert_no_panic(h)
    log = h.log_path.read_text(errors="replace")
    for secret in SECRETS:
        assert secret not in log, "a secret access key was written to the log"


def auth_failures(h, reason):
    text = h.urlopen(h.endpoint + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(f'hydrant_auth_failures_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def botocore_signed(h, operation, body, key, secret, when=None, region="us-east-1"):
    """Headers of a request botocore's SigV4 signer signs with its clock set to `when`."""
    request = AWSRequest(method="POST", url=h.endpoint + "/", data=body, headers={
        "X-Amz-Target": f"Firehose_20150804.{operation}", "Content-Type": JSON11,
    })
    when = when or dt.datetime.now(dt.timezone.utc)

    class Clock(dt.datetime):
        @classmethod
        def utcnow(cls):
            return when.replace(tzinfo=None)

        @classmethod
        def now(cls, tz=None):
            return when if tz else when.replace(tzinfo=None)

    with mock.patch("botocore.auth.datetime.datetime", Clock):
        SigV4Auth(Credentials(key, secret), "firehose", region).add_auth(request)
    return dict(request.headers.items())


def send(h, body, headers):
    """POSTs body with exactly these headers (plus Host, which botocore signed as urllib sends it)."""
    req = urllib.request.Request(h.endpoint + "/", data=body, method="POST", headers=headers)
    try:
        with h.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# --- boto3 ---------------------------------------------------------------------------------------

def test_boto3_with_a_configured_key_can_put_list_and_describe(server, s3):
    fh = server.firehose(key=ADMIN_KEY, secret=ADMIN_SECRET)
    batch = make_records(20, tag="sigv4-batch")
    single = make_records(1, tag="sigv4-single")
    out = fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": r} for r in batch])
    assert out["FailedPutCount"] == 0, out
    fh.put_record(DeliveryStreamName="clicks", Record={"Data": single[0]})
    names = fh.list_delivery_streams()["DeliveryStreamNames"]
    assert names == ["clicks", "orders"], names
    d = fh.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]
    assert d["DeliveryStreamName"] == "orders"
    counts = wait_delivered(s3, server.bucket, batch + single, prefix="clicks/")
    assert_exactly_once(counts, batch + single)


def test_a_wrong_secret_is_an_invalid_signature(server):
    before = auth_failures(server, "signature_mismatch")
    fh = server.firehose(key=ADMIN_KEY, secret="not-" + ADMIN_SECRET)
    code, status, msg = client_error(fh.list_delivery_streams)
    assert (code, status) == ("InvalidSignatureException", 400), msg
    assert msg.startswith("The request signature we calculated does not match the signature you provided."), msg
    assert auth_failures(server, "signature_mismatch") == before + 1


def test_an_unknown_access_key_is_an_unrecognized_client(server):
    fh = server.firehose(key="AKIANOTCONFIGURED1", secret=ADMIN_SECRET)
    code, status, msg = client_error(fh.put_record, DeliveryStreamName="clicks", Record={"Data": b"x\n"})
    assert (code, status, msg) == (
        "UnrecognizedClientException", 400, "The security token included in the request is invalid."
    )


def test_a_client_configured_for_another_region_is_told_which_region_to_use(server):
    fh = server.firehose(key=ADMIN_KEY, secret=ADMIN_SECRET, region="eu-west-1")
    code, status, msg = client_error(fh.list_delivery_streams)
    assert (code, status) == ("InvalidSignatureException", 400), msg
    assert "'eu-west-1'" in msg and "us-east-1" in msg, msg


def test_an_unsigned_request_is_missing_its_authentication_token(server):
    fh = server.firehose(signature_version=UNSIGNED)
    code, status, msg = client_error(fh.list_delivery_streams)
    assert (code, status) == ("MissingAuthenticationTokenException", 403), msg
    # The same for a hand-made request, and nothing of it is looked at (not even the target).
    status, body = send(server, b"{}", {"X-Amz-Target": "Firehose_20150804.Nope", "Content-Type": JSON11})
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException"), body
    assert auth_failures(server, "missing") >= 2


def test_a_request_signed_20_minutes_ago_has_an_expired_signature(server):
    body = json.dumps({"DeliveryStreamName": "clicks", "Records": [{"Data": b64(b"late\n")}]}).encode()
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)
    headers = botocore_signed(server, "PutRecordBatch", body, ADMIN_KEY, ADMIN_SECRET, when=old)
    status, answer = send(server, body, headers)
    assert status == 400, answer
    assert answer["__type"] == "InvalidSignatureException", answer
    assert answer["message"].startswith(f"Signature expired: {old.strftime('%Y%m%dT%H%M%SZ')} is now earlier than"), answer
    # The same request signed 5 minutes ago is inside AWS's 15-minute window.
    recent = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    status, answer = send(server, body, botocore_signed(server, "PutRecordBatch", body, ADMIN_KEY, ADMIN_SECRET, when=recent))
    assert (status, answer["FailedPutCount"]) == (200, 0), answer


def test_a_signed_request_whose_body_was_changed_is_rejected(server):
    body = json.dumps({"DeliveryStreamName": "clicks", "Records": [{"Data": b64(b"a\n")}]}).encode()
    headers = botocore_signed(server, "PutRecordBatch", body, ADMIN_KEY, ADMIN_SECRET)
    tampered = body.replace(b'"clicks"', b'"orders"')
    status, answer = send(server, tampered, headers)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException"), answer


def test_boto3_signs_the_target_and_a_request_that_does_not_is_refused(server):
    """X-Amz-Target names the operation: signed without it, a captured PutRecord could be sent
    again as a DeleteDeliveryStream. boto3 signs it (the aws CLI v1 and v2 too: their tests below
    pass against this server, which refuses requests that do not)."""
    fh = server.firehose(key=ADMIN_KEY, secret=ADMIN_SECRET)
    seen = []
    fh.meta.events.register("before-send.firehose", lambda request, **_: seen.append(
        request.headers["Authorization"].decode() if isinstance(request.headers["Authorization"], bytes)
        else request.headers["Authorization"]))
    fh.list_delivery_streams()
    signed = seen[0].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "x-amz-target" in signed, seen[0]

    body = json.dumps({"DeliveryStreamName": "clicks", "Records": [{"Data": b64(b"x\n")}]}).encode()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={"Content-Type": JSON11})
    SigV4Auth(Credentials(ADMIN_KEY, ADMIN_SECRET), "firehose", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    assert "x-amz-target" not in headers["Authorization"]
    headers["X-Amz-Target"] = "Firehose_20150804.PutRecordBatch"   # added after signing
    status, answer = send(server, body, headers)
    assert (status, answer["__type"]) == (400, "IncompleteSignatureException"), answer
    assert "'X-Amz-Target' must be a 'SignedHeader'" in answer["message"], answer


def test_a_key_limited_to_some_streams_is_denied_the_others(server):
    fh = server.firehose(key=CLICKS_KEY, secret=CLICKS_SECRET)
    assert fh.put_record(DeliveryStreamName="clicks", Record={"Data": b"ok\n"})["RecordId"]
    for call, kw in [
        (fh.put_record, {"DeliveryStreamName": "orders", "Record": {"Data": b"x\n"}}),
        (fh.put_record_batch, {"DeliveryStreamName": "orders", "Records": [{"Data": b"x\n"}]}),
        (fh.describe_delivery_stream, {"DeliveryStreamName": "orders"}),
    ]:
        code, status, msg = client_error(call, **kw)
        assert (code, status) == ("AccessDeniedException", 400), (call.__name__, msg)
        assert CLICKS_KEY in msg and '"orders"' in msg, msg
        assert msg.startswith(f"User: {CLICKS_KEY} is not authorized to perform: firehose:"), msg
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == ["clicks"]
    assert fh.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"]
    assert auth_failures(server, "access_denied") >= 3


# --- aws CLI v1 and v2 ---------------------------------------------------------------------------

def test_the_aws_cli_with_a_configured_key_can_put_list_and_describe(server, s3, aws_cli):
    records = make_records(3, tag="cli-sigv4")
    ep, admin = server.endpoint, dict(key=ADMIN_KEY, secret=ADMIN_SECRET)
    out = aws_cli(ep, "put-record", "--delivery-stream-name", "clicks",
                  "--record", json.dumps({"Data": aws_cli.data(records[0])}), **admin)
    assert out["RecordId"], out
    out = aws_cli(ep, "put-record-batch", "--delivery-stream-name", "clicks",
                  "--records", json.dumps([{"Data": aws_cli.data(r)} for r in records[1:]]), **admin)
    assert out["FailedPutCount"] == 0, out
    assert aws_cli(ep, "list-delivery-streams", **admin)["DeliveryStreamNames"] == ["clicks", "orders"]
    d = aws_cli(ep, "describe-delivery-stream", "--delivery-stream-name", "clicks", **admin)
    assert d["DeliveryStreamDescription"]["DeliveryStreamName"] == "clicks"
    assert_exactly_once(wait_delivered(s3, server.bucket, records, prefix="clicks/"), records)


def test_the_aws_cli_reports_a_wrong_secret_and_an_unknown_key(server, aws_cli):
    for key, secret, args, error in [
        (ADMIN_KEY, "wrong", ["list-delivery-streams"], "InvalidSignatureException"),
        ("AKIANOTCONFIGURED1", ADMIN_SECRET, ["list-delivery-streams"], "UnrecognizedClientException"),
        (CLICKS_KEY, CLICKS_SECRET, ["describe-delivery-stream", "--delivery-stream-name", "orders"],
         "AccessDeniedException"),
    ]:
        p = aws_cli(server.endpoint, *args, key=key, secret=secret, ok=False)
        assert p.returncode != 0 and error in p.stderr, p.stderr


# --- TLS -----------------------------------------------------------------------------------------

def make_ca_and_server_cert(directory):
    """A CA, and a server certificate for 127.0.0.1 and localhost that it signed (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hydrant test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_server(s3, bucket, hydrant_factory, secrets_env, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    paths = make_ca_and_server_cert(certs)
    body = (
        s3_store_yaml(s3) + auth_yaml()
        + f"tls: {{ cert: {paths['cert']}, key: {paths['key']} }}\n"
        + "delivery_streams:\n" + stream_yaml("clicks", bucket, prefix="tls/")
    )
    h = hydrant_factory(body, tls_ca=paths["ca"])
    h.bucket = bucket
    yield h
    assert_no_panic(h)


def test_boto3_over_https_verifies_the_server_certificate_and_delivers(tls_server, s3):
    assert tls_server.endpoint.startswith("https://")
    fh = tls_server.firehose(key=ADMIN_KEY, secret=ADMIN_SECRET)
    records = make_records(5, tag="tls")
    out = fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == ["clicks"]
    assert_exactly_once(wait_delivered(s3, tls_server.bucket, records, prefix="tls/"), records)
    # Signatures are still checked over TLS.
    code, _, _ = client_error(tls_server.firehose(key=ADMIN_KEY, secret="wrong").list_delivery_streams)
    assert code == "InvalidSignatureException"


def test_a_client_that_does_not_trust_the_ca_is_refused_and_plain_http_gets_no_answer(tls_server):
    untrusting = firehose_client(tls_server.endpoint, ADMIN_KEY, ADMIN_SECRET)  # the system's CAs
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.list_delivery_streams()
    plain = tls_server.endpoint.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(plain + "/healthz", timeout=5).read()
    # The server is unharmed by both.
    assert tls_server.urlopen(tls_server.endpoint + "/healthz", timeout=5).read() == b"ok\n"


def test_sigterm_stops_an_https_server_cleanly_with_a_connection_open(tls_server):
    context = ssl.create_default_context(cafile=tls_server.tls_ca)
    conn = http.client.HTTPSConnection("127.0.0.1", tls_server.port, context=context, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok\n"  # the keep-alive connection stays open
    started = time.monotonic()
    assert tls_server.stop(timeout=20) == 0, tls_server.log()
    assert time.monotonic() - started < 15
    assert "stopped" in tls_server.log()
    conn.close()
