"""What an API client can make the server do, against the real binary with boto3:

- a Lambda processor's LambdaArn that is a file:// URL or a path (/proc/self/environ,
  /etc/passwd, ../x.wasm, a relative path) is refused, and the answer quotes neither the file
  nor a server path; a `functions:` ARN (qualified too) still transforms records end to end, and
  a `functions:` module that does not compile is reported without its text;
- a key without `actions:` may put, describe and list only: a key limited to one stream can
  neither re-point that stream at an endpoint of its own (and so receive the stored AccessKey)
  nor delete it; an operator key with `firehose:*` can;
- UpdateDestination to a new endpoint URL drops the stored AccessKey unless it sends one again;
- streams created through the API reach only the hosts and object stores of `api_streams:`;
- `auth: { mode: none }` on an address other machines can reach logs a warning.
"""

import json
import uuid

import pytest

from conftest import (
    ROLE,
    TESTDATA_WAT,
    client_error,
    dump_yaml,
    make_records,
    raw_call,
    reconfigure,
    s3_store,
    s3_store_yaml,
    wait_delivered,
    wait_for,
)
from stubs import Receiver

DEST = "destinationId-000000000001"
UPPER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:upper"
BROKEN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:broken"
ADMIN_KEY, ADMIN_SECRET = "AKIAHYDRANTOPS0001", "ops-" + uuid.uuid4().hex
PRODUCER_KEY, PRODUCER_SECRET = "AKIAHYDRANTPROD001", "prod-" + uuid.uuid4().hex


def s3_destination(bucket, prefix="p/", processors=None):
    out = {
        "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": prefix,
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
    }
    if processors is not None:
        out["ProcessingConfiguration"] = {"Enabled": True, "Processors": processors}
    return out


def lambda_processor(arn):
    return [{"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": arn},
        {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "1"},
    ]}]


def http_destination(url, bucket, access_key=None):
    endpoint = {"Url": url, "Name": "receiver"}
    if access_key is not None:
        endpoint["AccessKey"] = access_key
    return {
        "EndpointConfiguration": endpoint,
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": "failed/"},
    }


def records_at(receiver):
    return [r for _, recs in receiver.records() for r in recs]


# --- transforms and the server's files -----------------------------------------------------------

BROKEN_WAT = "(module SECRET_IN_A_BROKEN_MODULE\n"


@pytest.fixture
def transform_server(s3, bucket, hydrant_factory, monkeypatch):
    marker = "env-marker-" + uuid.uuid4().hex
    monkeypatch.setenv("HYD_TEST_ENV_MARKER", marker)   # in the server's /proc/self/environ
    h = hydrant_factory(
        s3_store_yaml(s3, name="default")
        + "functions:\n"
        + f"  \"{UPPER_ARN}\": {TESTDATA_WAT / 'upper.wat'}\n"
        + f"  \"{BROKEN_ARN}\": broken.wat\n",
        start=False,
    )
    # Files next to the config (relative paths) and one above it (../x.wasm), each a module
    # that does not compile and quotes a marker in the compiler's error.
    file_marker = "file-marker-" + uuid.uuid4().hex
    (h.workdir / "broken.wat").write_text(BROKEN_WAT)
    (h.workdir / "leak.wat").write_text(f"(module {file_marker}\n")
    (h.workdir.parent / "x.wasm").write_text(f"(module {file_marker}\n")
    h.start()
    h.bucket, h.markers = bucket, (marker, file_marker, "SECRET_IN_A_BROKEN_MODULE", "root:x:0:0")
    return h


@pytest.mark.parametrize("arn", ["file:///proc/self/environ", "/etc/passwd", "../x.wasm", "leak.wat"])
def test_a_lambda_arn_naming_a_server_file_is_refused_without_quoting_it(transform_server, arn):
    h = transform_server
    fh = h.firehose()
    code, _, message = client_error(
        fh.create_delivery_stream, DeliveryStreamName="t1",
        ExtendedS3DestinationConfiguration=s3_destination(h.bucket, processors=lambda_processor(arn)))
    assert code == "InvalidArgumentException", message
    assert "`functions:`" in message and "LambdaArn" in message, message
    for marker in h.markers:
        assert marker not in message, f"the answer quotes a server file: {message}"
    assert str(h.workdir.parent) not in message, f"the answer names a server path: {message}"
    assert client_error(fh.describe_delivery_stream, DeliveryStreamName="t1")[0] == "ResourceNotFoundException"

    # The same through UpdateDestination of a stream that exists.
    fh.create_delivery_stream(DeliveryStreamName="t2", ExtendedS3DestinationConfiguration=s3_destination(h.bucket))
    code, _, message = client_error(fh.update_destination, DeliveryStreamName="t2", CurrentDeliveryStreamVersionId="1",
                                    DestinationId=DEST,
                                    ExtendedS3DestinationUpdate={"ProcessingConfiguration": {
                                        "Enabled": True, "Processors": lambda_processor(arn)}})
    assert code == "InvalidArgumentException", message
    assert "`functions:`" in message, message
    for marker in h.markers:
        assert marker not in message, f"the answer quotes a server file: {message}"
    d = fh.describe_delivery_stream(DeliveryStreamName="t2")["DeliveryStreamDescription"]
    assert d["VersionId"] == "1"


def test_a_functions_arn_still_transforms_records_and_a_broken_one_is_reported_without_its_text(transform_server, s3):
    h = transform_server
    fh = h.firehose()
    # A qualified ARN (:live) finds the unqualified functions: entry.
    fh.create_delivery_stream(DeliveryStreamName="upper", ExtendedS3DestinationConfiguration=s3_destination(
        h.bucket, prefix="upper/", processors=lambda_processor(UPPER_ARN + ":live")))
    records = [f"record {i} of {uuid.uuid4().hex[:6]}\n".encode() for i in range(5)]
    out = fh.put_record_batch(DeliveryStreamName="upper", Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    wait_delivered(s3, h.bucket, [r.upper() for r in records], prefix="upper/")

    code, _, message = client_error(fh.create_delivery_stream, DeliveryStreamName="broken",
                                    ExtendedS3DestinationConfiguration=s3_destination(
                                        h.bucket, prefix="broken/", processors=lambda_processor(BROKEN_ARN)))
    assert code == "InvalidArgumentException", message
    assert BROKEN_ARN in message and "server log" in message, message
    assert "SECRET_IN_A_BROKEN_MODULE" not in message and "broken.wat" not in message, message
    assert str(h.workdir) not in message, message
    # The operator finds the details in the log.
    assert "broken.wat" in h.log(), h.log()


# --- permissions and secrets --------------------------------------------------------------------

@pytest.fixture
def keyed_server(s3, bucket, hydrant_factory, monkeypatch):
    monkeypatch.setenv("HYD_TEST_OPS_SECRET", ADMIN_SECRET)
    monkeypatch.setenv("HYD_TEST_PRODUCER_SECRET", PRODUCER_SECRET)
    h = hydrant_factory(
        s3_store_yaml(s3, name="default")
        + "auth:\n  mode: sigv4\n  credentials:\n"
        + f"    - {{ access_key_id: {ADMIN_KEY}, secret_access_key: \"${{HYD_TEST_OPS_SECRET}}\", "
          "actions: [\"firehose:*\"] }\n"
        + f"    - {{ access_key_id: {PRODUCER_KEY}, secret_access_key: \"${{HYD_TEST_PRODUCER_SECRET}}\", "
          "streams: [hooks] }\n"
        + "api_streams: { hosts: [\"127.0.0.1\"] }\n"
    )
    h.bucket = bucket
    yield h
    log = h.log_path.read_text(errors="replace")
    assert ADMIN_SECRET not in log and PRODUCER_SECRET not in log


def test_a_key_limited_to_its_stream_cannot_repoint_or_delete_it_and_learns_no_access_key(keyed_server):
    h = keyed_server
    ops = h.firehose(key=ADMIN_KEY, secret=ADMIN_SECRET)
    producer = h.firehose(key=PRODUCER_KEY, secret=PRODUCER_SECRET)
    stored_key = "stored-key-" + uuid.uuid4().hex
    url_password = "url-pw-" + uuid.uuid4().hex
    with Receiver() as owner, Receiver() as attacker:
        # The owner's URL carries a password too (sent as basic authentication).
        owner_url = owner.url.replace("://", f"://hook:{url_password}@", 1) + "/in"
        ops.create_delivery_stream(DeliveryStreamName="hooks",
                                   HttpEndpointDestinationConfiguration=http_destination(owner_url, h.bucket, stored_key))
        # Describe is a data-plane call: the producer's answer holds neither secret anywhere.
        for client in (producer, ops):
            described = json.dumps(client.describe_delivery_stream(DeliveryStreamName="hooks"), default=str)
            assert stored_key not in described and url_password not in described, described
            assert "hook:<redacted>@" in described, described
        first = make_records(3, tag="owner")
        assert producer.put_record_batch(DeliveryStreamName="hooks", Records=[{"Data": r} for r in first])["FailedPutCount"] == 0

        denied = [
            ("UpdateDestination", producer.update_destination, dict(
                DeliveryStreamName="hooks", CurrentDeliveryStreamVersionId="1", DestinationId=DEST,
                HttpEndpointDestinationUpdate={"EndpointConfiguration": {"Url": attacker.url + "/steal"}})),
            ("DeleteDeliveryStream", producer.delete_delivery_stream, dict(DeliveryStreamName="hooks")),
            ("CreateDeliveryStream", producer.create_delivery_stream, dict(
                DeliveryStreamName="hooks2",
                HttpEndpointDestinationConfiguration=http_destination(attacker.url + "/x", h.bucket))),
            ("TagDeliveryStream", producer.tag_delivery_stream, dict(
                DeliveryStreamName="hooks", Tags=[{"Key": "k", "Value": "v"}])),
        ]
        for operation, call, kw in denied:
            code, _, message = client_error(call, **kw)
            assert code == "AccessDeniedException", (operation, message)
            assert message.startswith(
                f"User: {PRODUCER_KEY} is not authorized to perform: firehose:{operation} on resource: "
                "arn:aws:firehose:us-east-1:000000000000:deliverystream/hooks"), message
            assert f'add "firehose:{operation}"' in message and "actions" in message, message

        # The stream is untouched: still version 1, still delivering to its owner with its key.
        d = producer.describe_delivery_stream(DeliveryStreamName="hooks")["DeliveryStreamDescription"]
        assert (d["VersionId"], d["DeliveryStreamStatus"]) == ("1", "ACTIVE"), d
        more = make_records(3, tag="owner-2")
        producer.put_record_batch(DeliveryStreamName="hooks", Records=[{"Data": r} for r in more])
        wait_for(lambda: {r.rstrip(b"\n") for r in first + more} <= {r.rstrip(b"\n") for r in records_at(owner)},
                 what="records at the owner's endpoint")
        assert {r.header("X-Amz-Firehose-Access-Key") for r in owner.snapshot()} == {stored_key}
        assert attacker.snapshot() == [], "the attacker's endpoint was called"
        assert "hooks2" not in ops.list_delivery_streams()["DeliveryStreamNames"]


def test_a_new_endpoint_url_does_not_inherit_the_stored_access_key(keyed_server):
    h = keyed_server
    ops = h.firehose(key=ADMIN_KEY, secret=ADMIN_SECRET)
    stored_key = "stored-key-" + uuid.uuid4().hex
    with Receiver() as first, Receiver() as second:
        ops.create_delivery_stream(DeliveryStreamName="hooks",
                                   HttpEndpointDestinationConfiguration=http_destination(first.url + "/in", h.bucket, stored_key))
        ops.update_destination(DeliveryStreamName="hooks", CurrentDeliveryStreamVersionId="1", DestinationId=DEST,
                               HttpEndpointDestinationUpdate={"EndpointConfiguration": {"Url": second.url + "/in"}})
        records = make_records(3, tag="moved")
        ops.put_record_batch(DeliveryStreamName="hooks", Records=[{"Data": r} for r in records])
        wait_for(lambda: len(records_at(second)) >= 3, what="records at the new endpoint")
        assert [r.header("X-Amz-Firehose-Access-Key") for r in second.snapshot()] == [None] * len(second.snapshot())
        assert first.snapshot() == []

        # Sent again with the new URL, a key is used.
        new_key = "new-key-" + uuid.uuid4().hex
        ops.update_destination(DeliveryStreamName="hooks", CurrentDeliveryStreamVersionId="2", DestinationId=DEST,
                               HttpEndpointDestinationUpdate={"EndpointConfiguration": {
                                   "Url": first.url + "/in", "AccessKey": new_key}})
        again = make_records(2, tag="back")
        ops.put_record_batch(DeliveryStreamName="hooks", Records=[{"Data": r} for r in again])
        wait_for(lambda: len(records_at(first)) >= 2, what="records back at the first endpoint")
        assert {r.header("X-Amz-Firehose-Access-Key") for r in first.snapshot()} == {new_key}
        # The key is never echoed by Describe.
        d = ops.describe_delivery_stream(DeliveryStreamName="hooks")["DeliveryStreamDescription"]
        assert new_key not in json.dumps(d, default=str) and stored_key not in json.dumps(d, default=str)


# --- server-side request forgery -----------------------------------------------------------------

def two_stores(s3):
    """object_stores `default` and `other`, both the test S3 server."""
    return dump_yaml({"object_stores": {"default": s3_store(s3), "other": s3_store(s3)}})


def test_api_streams_reach_only_the_hosts_and_stores_the_operator_lists(s3, bucket, hydrant_factory):
    h = hydrant_factory(two_stores(s3))
    fh = h.firehose()
    with Receiver() as receiver:
        code, _, message = client_error(
            fh.create_delivery_stream, DeliveryStreamName="ssrf",
            HttpEndpointDestinationConfiguration=http_destination(receiver.url + "/in", bucket, "k"))
        assert code == "InvalidArgumentException", message
        assert "EndpointConfiguration.Url" in message and "api_streams.hosts" in message, message
        assert '"127.0.0.1"' in message, message
    code, _, message = client_error(fh.create_delivery_stream, DeliveryStreamName="ssrf", RedshiftDestinationConfiguration={
        "RoleARN": ROLE, "ClusterJDBCURL": "jdbc:postgresql://127.0.0.1:5432/postgres",
        "CopyCommand": {"DataTableName": "t"}, "Username": "loader", "Password": "password",
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}"}})
    assert code == "InvalidArgumentException" and "ClusterJDBCURL" in message and "api_streams.hosts" in message, message
    code, _, message = client_error(fh.create_delivery_stream, DeliveryStreamName="ssrf",
                                    AmazonopensearchserviceDestinationConfiguration={
        "RoleARN": ROLE, "ClusterEndpoint": "http://169.254.169.254:80", "IndexName": "i",
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}"}})
    assert code == "InvalidArgumentException" and "ClusterEndpoint" in message and "api_streams.hosts" in message, message

    # Object stores: `default` only, unless listed (a raw call: boto3 cannot send Hydrant's block).
    body = {"DeliveryStreamName": "ssrf", "ExtendedS3DestinationConfiguration": s3_destination(bucket),
            "hydrant": {"object_store": "other"}}
    status, _, answer = raw_call(h.endpoint, "Firehose_20150804.CreateDeliveryStream", body)
    assert (status, answer["__type"]) == (400, "InvalidArgumentException"), answer
    assert "hydrant.object_store" in answer["message"] and "api_streams.object_stores" in answer["message"], answer
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == []

    # Listed by the operator, both work.
    h.stop()
    reconfigure(h, two_stores(s3)
                + "api_streams: { object_stores: [default, other], hosts: [\"127.0.0.1\"] }\n")
    h.start()
    status, _, answer = raw_call(h.endpoint, "Firehose_20150804.CreateDeliveryStream", body)
    assert status == 200, answer
    with Receiver() as receiver:
        h.firehose().create_delivery_stream(DeliveryStreamName="hooks",
                                            HttpEndpointDestinationConfiguration=http_destination(receiver.url + "/in", bucket))
        records = make_records(2, tag="allowed")
        h.firehose().put_record_batch(DeliveryStreamName="hooks", Records=[{"Data": r} for r in records])
        wait_for(lambda: len(records_at(receiver)) >= 2, what="records at an allowed endpoint")


# --- an open control plane ------------------------------------------------------------------------

def test_auth_none_on_a_reachable_address_logs_a_warning(s3, hydrant_factory):
    warning = "auth mode is none on an address other machines can reach"
    loopback = hydrant_factory("")
    assert warning not in loopback.log()
    h = hydrant_factory("", start=False)
    h.config_path.write_text(h.config_path.read_text().replace("listen: 127.0.0.1:", "listen: 0.0.0.0:"))
    h.start()
    assert warning in h.log(), h.log()
    assert "sigv4" in h.log()
