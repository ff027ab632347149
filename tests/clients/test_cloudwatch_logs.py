"""CloudWatch Logs records (`Decompression`, `CloudWatchLogProcessing`), built exactly as a
CloudWatch Logs subscription filter sends them to Firehose: gzip'd JSON documents with
`messageType`, `owner`, `logGroup`, `logStream`, `subscriptionFilters` and `logEvents`, several
log events per record, and the control message CloudWatch Logs sends first to check that the
destination is reachable."""

import gzip
import json
import uuid

import pytest

from conftest import (
    client_error, config_yaml, delivered_lines, list_objects, raw_of, s3_stream, wait_error_documents, wait_for,
)

CONTROL = {
    "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
    "subscriptionFilters": [],
    "logEvents": [{"id": "", "timestamp": 1765184400000,
                   "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}],
}


def data_message(messages, group="/aws/lambda/checkout"):
    return {
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group,
        "logStream": "2026/12/08/[$LATEST]0123456789abcdef", "subscriptionFilters": ["to-hydrant"],
        "logEvents": [{"id": str(36000000000000000000000000000000000000000000000000000000 + i),
                       "timestamp": 1765184400000 + i, "message": m} for i, m in enumerate(messages)],
    }


def record(document):
    """A record as CloudWatch Logs puts it: the JSON document, gzip'd (no base64 here: boto3
    base64-encodes Data on the wire)."""
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode())


def cwl_stream(name, bucket, extraction):
    return s3_stream(name, bucket, prefix=f"{name}/", error_prefix=f"{name}-errors/!{{firehose:error-output-type}}/",
                     interval=1, processors=[("Decompression", {"CompressionFormat": "GZIP"}),
                                             ("CloudWatchLogProcessing", {"DataMessageExtraction": str(extraction).lower()})])


@pytest.fixture
def server(s3, bucket, hydrant_factory):
    return hydrant_factory(config_yaml(cwl_stream("extracted", bucket, True), cwl_stream("whole", bucket, False), s3=s3))


def test_message_extraction_delivers_each_log_event_as_its_message_and_drops_control_messages(server, s3, bucket):
    fh = server.firehose()
    run = uuid.uuid4().hex[:8]
    messages = [f"{run} START RequestId: {i}" for i in range(3)] + [json.dumps({"run": run, "level": "error", "n": i})
                                                                     for i in range(200)]
    batches = [messages[:3], messages[3:103], messages[103:]]
    answer = fh.put_record_batch(DeliveryStreamName="extracted",
                                 Records=[{"Data": record(CONTROL)}] + [{"Data": record(data_message(b))} for b in batches])
    assert answer["FailedPutCount"] == 0, answer

    def delivered():
        lines = [line for line, _ in delivered_lines(s3, bucket, "extracted/")]
        return lines if len(lines) >= len(messages) else None

    lines = wait_for(delivered, timeout=30, what="every log event's message")
    assert sorted(lines) == sorted(messages), "each message once, nothing else (no metadata, no control message)"


def test_without_extraction_each_data_message_is_delivered_as_its_decompressed_document(server, s3, bucket):
    fh = server.firehose()
    documents = [data_message([f"line {i}-{j}" for j in range(5)], group=f"/g/{uuid.uuid4().hex[:6]}") for i in range(4)]
    fh.put_record_batch(DeliveryStreamName="whole", Records=[{"Data": record(CONTROL)}] + [{"Data": record(d)} for d in documents])

    def delivered():
        body = b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in list_objects(s3, bucket, "whole/"))
        found = [d for d in documents if json.dumps(d, separators=(",", ":")).encode() in body]
        return body if len(found) == len(documents) else None

    body = wait_for(delivered, timeout=30, what="the four decompressed documents")
    assert b"CONTROL_MESSAGE" not in body


def test_a_record_that_does_not_decompress_goes_to_decompression_failed_as_it_came_and_others_are_refused(
        server, s3, bucket):
    fh = server.firehose()
    good = record(data_message(["kept"]))
    broken = good[: len(good) // 2]  # gzip's magic number, then a truncated stream
    not_cwl = gzip.compress(b'{"hello": "not a CloudWatch Logs document"}')
    fh.put_record_batch(DeliveryStreamName="extracted", Records=[{"Data": broken}, {"Data": not_cwl}, {"Data": good}])
    docs = wait_error_documents(s3, bucket, "extracted-errors/", 2)
    by_type = {key.split("/")[1]: doc for key, doc in docs}
    assert set(by_type) == {"decompression-failed", "processing-failed"}, [k for k, _ in docs]
    assert by_type["decompression-failed"]["errorCode"] == "Decompression.Failed"
    assert raw_of(by_type["decompression-failed"]) == broken
    assert by_type["processing-failed"]["errorCode"] == "CloudWatchLogProcessing.MalformedMessage"
    assert raw_of(by_type["processing-failed"]) == not_cwl
    wait_for(lambda: "kept" in [line for line, _ in delivered_lines(s3, bucket, "extracted/")],
             timeout=30, what="the good record of the same call")

    # Not gzip'd at all: not from CloudWatch Logs, refused at the API as Firehose does.
    code, status, message = client_error(fh.put_record, DeliveryStreamName="extracted", Record={"Data": b"plain text"})
    assert (code, status) == ("InvalidSourceException", 400), message
    assert "Decompression" in message
