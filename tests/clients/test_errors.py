"""Bad input gets Firehose's error answers: the `__type` (what botocore turns into the error code),
the HTTP status, a message that names the problem, and x-amzn-RequestId. Calls boto3 refuses to
send (it validates required members and minimums) go out as raw HTTP. Nothing from a rejected
call is stored, and after all of it the server is healthy and a good put still works."""

import re
import urllib.request

import pytest

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    b64,
    client_error,
    config_yaml,
    make_records,
    raw_call,
    s3_stream,
    wait_delivered,
    wait_for,
)

STREAM = "errs"
PRB = "Firehose_20150804.PutRecordBatch"
PR = "Firehose_20150804.PutRecord"


@pytest.fixture
def server(s3, bucket, hydrant_factory):
    h = hydrant_factory(config_yaml(s3_stream(STREAM, bucket, prefix="p/"), s3=s3))
    h.bucket = bucket
    h.good = []  # every record a test put successfully
    return h


def check_raw(answer, want_type, want_status=400, message=None):
    status, headers, body = answer
    assert status == want_status, (status, body)
    assert isinstance(body, dict), f"error body is not JSON: {body!r}"
    assert body.get("__type") == want_type, body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert headers.get("x-amzn-RequestId"), dict(headers)
    assert headers.get("Content-Type", "").startswith("application/x-amz-json-1.1"), dict(headers)
    if message:
        assert re.search(message, body["message"]), f"message {body['message']!r} does not match {message!r}"
    return body


# --- errors boto3 can provoke -------------------------------------------------------------------

def test_unknown_stream_is_resource_not_found(server):
    fh = server.firehose()
    for call, kw in [
        (fh.put_record, {"DeliveryStreamName": "nope", "Record": {"Data": b"x\n"}}),
        (fh.put_record_batch, {"DeliveryStreamName": "nope", "Records": [{"Data": b"x\n"}]}),
        (fh.describe_delivery_stream, {"DeliveryStreamName": "nope"}),
    ]:
        code, status, msg = client_error(call, **kw)
        assert (code, status) == ("ResourceNotFoundException", 400), (call.__name__, code, status, msg)
        assert "nope" in msg, msg


@pytest.mark.parametrize("name", ["bad name!", "x" * 65, "slash/name"])
def test_invalid_stream_name_is_a_validation_error(server, name):
    fh = server.firehose()
    for call, kw in [
        (fh.put_record, {"DeliveryStreamName": name, "Record": {"Data": b"x\n"}}),
        (fh.put_record_batch, {"DeliveryStreamName": name, "Records": [{"Data": b"x\n"}]}),
        (fh.describe_delivery_stream, {"DeliveryStreamName": name}),
    ]:
        code, status, msg = client_error(call, **kw)
        assert (code, status) == ("ValidationException", 400), (call.__name__, code, status, msg)
        assert re.search(r"(?i)deliveryStreamName", msg), msg


def test_501_records_from_boto3_are_a_validation_error(server):
    code, status, msg = client_error(server.firehose().put_record_batch, DeliveryStreamName=STREAM,
                                     Records=[{"Data": r} for r in make_records(501, tag="too-many")])
    assert (code, status) == ("ValidationException", 400), msg
    assert "500" in msg, msg


def test_a_record_over_1024000_bytes_is_a_validation_error_naming_its_index(server):
    fh = server.firehose(read_timeout=60)
    ok = make_records(3, tag="small")
    big = b"y" * 1_024_001
    code, status, msg = client_error(fh.put_record_batch, DeliveryStreamName=STREAM,
                                     Records=[{"Data": ok[0]}, {"Data": ok[1]}, {"Data": big}, {"Data": ok[2]}])
    assert (code, status) == ("ValidationException", 400), msg
    # Index 2 (0-based) is the 3rd record: AWS spells it records.3.member.data.
    assert re.search(r"records\.3\.member\.data|Records\[2\]", msg), msg
    assert "1024000" in msg.replace(",", ""), msg

    code, status, msg = client_error(fh.put_record, DeliveryStreamName=STREAM, Record={"Data": big})
    assert (code, status) == ("ValidationException", 400), msg


def test_more_than_4_mib_in_one_call_is_an_invalid_argument_and_exactly_4_mib_is_accepted(server, s3):
    fh = server.firehose(read_timeout=60)
    five = make_records(5, tag="five-mb", size=1_000_000)
    code, status, msg = client_error(fh.put_record_batch, DeliveryStreamName=STREAM,
                                     Records=[{"Data": r} for r in five])
    assert (code, status) == ("InvalidArgumentException", 400), msg
    assert re.search(r"4 ?MiB|4194304", msg), msg

    # 4 x 1,000,000 + 194,304 = 4,194,304 bytes: the largest legal call.
    exact = make_records(4, tag="four-mib", size=1_000_000) + make_records(1, tag="four-mib-tail", size=194_304)
    assert sum(map(len, exact)) == 4 * 1024 * 1024
    out = fh.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": r} for r in exact])
    assert out["FailedPutCount"] == 0
    server.good.extend(exact)
    assert_exactly_once(wait_delivered(s3, server.bucket, exact, prefix="p/"), exact)


def test_a_call_far_over_4_mib_is_a_request_entity_too_large(server):
    """9 MB of data (a 12 MB body, over the server's 8 MiB body limit) is refused from its
    Content-Length, and boto3, which sends the whole body before reading, still gets the answer."""
    fh = server.firehose(read_timeout=60)
    code, status, msg = client_error(fh.put_record_batch, DeliveryStreamName=STREAM,
                                     Records=[{"Data": r} for r in make_records(9, tag="nine-mb", size=1_000_000)])
    assert (code, status) == ("RequestEntityTooLargeException", 413), msg
    assert "4 MiB" in msg and "split" in msg, msg


def test_list_limit_over_10000_is_a_validation_error(server):
    code, status, msg = client_error(server.firehose().list_delivery_streams, Limit=10001)
    assert (code, status) == ("ValidationException", 400), msg


# --- errors only raw HTTP can send ---------------------------------------------------------------

def test_malformed_json_is_a_serialization_error(server):
    for body in [b"", b"{not json", b"{} trailing", b'{"DeliveryStreamName": "errs", "Records": [', b"[1,2]", b'"str"',
                 b'{"DeliveryStreamName": "errs", "Records": "YQo="}',
                 b'{"DeliveryStreamName": "errs", "Records": [{"Data": 5}]}',
                 b'{"DeliveryStreamName": 7, "Records": [{"Data": "YQo="}]}']:
        check_raw(raw_call(server.endpoint, PRB, body), "SerializationException")
    check_raw(raw_call(server.endpoint, PR, b"{"), "SerializationException")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_a_serialization_error(server, content_type):
    body = {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(b"ct\n")}]}
    check_raw(raw_call(server.endpoint, PRB, body, content_type=content_type), "SerializationException",
              message=r"Content-Type")


@pytest.mark.parametrize("target", ["Firehose_20150804.Nope", "Kinesis_20131202.RegisterStreamConsumer", "DynamoDB_20120810.PutItem", "Firehose_20150804.",
                                    "PutRecordBatch", None])
def test_unknown_or_missing_target_is_an_unknown_operation(server, target):
    body = {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(b"t\n")}]}
    check_raw(raw_call(server.endpoint, target, body), "UnknownOperationException")


@pytest.mark.parametrize("bad", ["not base64!!", "YQo=YQo=", "Y", "YQ\u00e9="])
def test_bad_base64_is_a_serialization_error_naming_the_record(server, bad):
    body = {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(b"fine\n")}, {"Data": bad}]}
    check_raw(raw_call(server.endpoint, PRB, body), "SerializationException", message=r"Records\[1\]|records\.2")
    check_raw(raw_call(server.endpoint, PR, {"DeliveryStreamName": STREAM, "Record": {"Data": bad}}),
              "SerializationException")


def test_zero_records_and_missing_members_are_validation_errors(server):
    cases = [
        (PRB, {"DeliveryStreamName": STREAM, "Records": []}, r"(?i)records"),
        (PRB, {"DeliveryStreamName": STREAM}, r"(?i)records"),
        (PRB, {"Records": [{"Data": b64(b"a\n")}]}, r"(?i)deliveryStreamName"),
        (PRB, {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(b"a\n")}, {}]}, r"records\.2|Records\[1\]"),
        (PR, {"DeliveryStreamName": STREAM}, r"(?i)record"),
        (PR, {"Record": {"Data": b64(b"a\n")}}, r"(?i)deliveryStreamName"),
        (PR, {"DeliveryStreamName": STREAM, "Record": {}}, r"(?i)data"),
        ("Firehose_20150804.DescribeDeliveryStream", {}, r"(?i)deliveryStreamName"),
        ("Firehose_20150804.ListDeliveryStreams", {"Limit": 0}, r"(?i)limit"),
    ]
    for target, body, message in cases:
        check_raw(raw_call(server.endpoint, target, body), "ValidationException", message=message)


def test_501_records_over_raw_http_are_a_validation_error(server):
    body = {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(r)} for r in make_records(501, tag="raw501")]}
    check_raw(raw_call(server.endpoint, PRB, body), "ValidationException", message=r"500")
    # 500 is fine.
    good = make_records(500, tag="raw500")
    status, _, out = raw_call(server.endpoint, PRB,
                              {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(r)} for r in good]})
    assert status == 200 and out["FailedPutCount"] == 0 and len(out["RequestResponses"]) == 500, out
    server.good.extend(good)


def test_after_all_the_bad_input_the_server_is_healthy_and_stored_nothing_from_rejected_calls(server, s3):
    """Runs every bad call above against one server, then checks only the good records exist."""
    fh = server.firehose(read_timeout=60)
    test_unknown_stream_is_resource_not_found(server)
    for name in ["bad name!", "x" * 65]:
        test_invalid_stream_name_is_a_validation_error(server, name)
    test_501_records_from_boto3_are_a_validation_error(server)
    test_a_record_over_1024000_bytes_is_a_validation_error_naming_its_index(server)
    code, status, _ = client_error(fh.put_record_batch, DeliveryStreamName=STREAM,
                                   Records=[{"Data": r} for r in make_records(5, tag="over", size=1_000_000)])
    assert (code, status) == ("InvalidArgumentException", 400)
    test_malformed_json_is_a_serialization_error(server)
    for ct in ["text/plain", None]:
        test_wrong_content_type_is_a_serialization_error(server, ct)
    for t in ["Firehose_20150804.Nope", None]:
        test_unknown_or_missing_target_is_an_unknown_operation(server, t)
    for bad in ["not base64!!", "YQo=YQo="]:
        test_bad_base64_is_a_serialization_error_naming_the_record(server, bad)
    test_zero_records_and_missing_members_are_validation_errors(server)
    body = {"DeliveryStreamName": STREAM, "Records": [{"Data": b64(r)} for r in make_records(501, tag="raw501")]}
    check_raw(raw_call(server.endpoint, PRB, body), "ValidationException")
    test_a_call_far_over_4_mib_is_a_request_entity_too_large(server)
    assert urllib.request.urlopen(server.endpoint + "/healthz", timeout=5).status == 200
    good = make_records(20, tag="after")
    out = fh.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": r} for r in good])
    assert out["FailedPutCount"] == 0
    assert fh.put_record(DeliveryStreamName=STREAM, Record={"Data": good[0].replace(b"after", b"after1")})["RecordId"]
    good.append(good[0].replace(b"after", b"after1"))
    server.good.extend(good)

    counts = wait_delivered(s3, server.bucket, server.good, prefix="p/")
    assert_exactly_once(counts, server.good)
    wait_for(lambda: server.metric("hydrant_incoming_records_total", STREAM) == len(server.good), timeout=5,
             what="incoming records == good records only")
    assert_no_panic(server)
