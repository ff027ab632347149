"""The Kinesis Data Streams API (issue 14, first part: streams with a fixed shard count on the
embedded core), through boto3's `kinesis` client and the aws CLI against the real binary:
streams are created, described, listed and deleted as Kinesis does it; records put with
partition keys (or explicit hash keys) land in the shard whose hash-key range holds the key and
are read back by shard iterators exactly once, in order, with their keys and sequence numbers;
streams and records survive kill -9; errors are Kinesis' errors. moto is the shape oracle for
the calls where it agrees with AWS."""

import base64
import collections
import hashlib
import json
import time
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import assert_no_panic, config_yaml, raw_call

SHARDS = 4


def kinesis_client(endpoint):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def server(hydrant_factory):
    h = hydrant_factory("")
    h.kinesis = kinesis_client(h.endpoint)
    yield h
    assert_no_panic(h)


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(**kw)
    e = info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def md5_key(partition_key):
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def shards_of(kinesis, stream):
    return kinesis.list_shards(StreamName=stream)["Shards"]


def read_shard(kinesis, stream, shard_id, iterator_type="TRIM_HORIZON", **kw):
    """Every record of a shard from the iterator until a read comes back empty at the end of the
    shard (`MillisBehindLatest` 0) or at a closed shard's end (no next iterator), as the Kinesis
    Client Library reads; and the next iterator."""
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType=iterator_type,
                                    **kw)["ShardIterator"]
    records = []
    while True:
        out = kinesis.get_records(ShardIterator=it, Limit=300)
        records += out["Records"]
        it = out.get("NextShardIterator")
        if it is None or (not out["Records"] and out["MillisBehindLatest"] == 0):
            return records, it


def put_all(kinesis, stream, records):
    """Puts (partition key, data) pairs in calls of 250; returns {data: (shard, sequence)}."""
    stored = {}
    for i in range(0, len(records), 250):
        chunk = records[i:i + 250]
        out = kinesis.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": k} for k, d in chunk])
        assert out["FailedRecordCount"] == 0, out
        for (_, data), entry in zip(chunk, out["Records"]):
            stored[data] = (entry["ShardId"], entry["SequenceNumber"])
    return stored


def test_a_stream_is_created_described_listed_and_deleted_as_kinesis_does(server, moto_endpoint):
    k = server.kinesis
    k.create_stream(StreamName="clicks", ShardCount=SHARDS, Tags={"team": "web"})
    k.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    summary = k.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE" and summary["OpenShardCount"] == SHARDS
    assert summary["StreamARN"] == "arn:aws:kinesis:us-east-1:123456789012:stream/clicks" or \
        summary["StreamARN"].endswith(":stream/clicks"), summary
    assert summary["RetentionPeriodHours"] == 24
    assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    shards = shards_of(k, "clicks")
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(SHARDS)]
    # The open shards cover the 128-bit hash-key space exactly once, in order.
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards]
    assert ranges[0][0] == 0 and ranges[-1][1] == 2**128 - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:])), ranges
    # moto, as the shape oracle: the same calls answer with the same members (and, for a power
    # of two shards, the same hash-key ranges).
    moto = kinesis_client(moto_endpoint)
    moto_name = f"clicks-{time.time_ns()}"
    moto.create_stream(StreamName=moto_name, ShardCount=SHARDS)
    try:
        theirs = moto.describe_stream_summary(StreamName=moto_name)["StreamDescriptionSummary"]
        assert set(theirs) - set(summary) <= {"KeyId"}, set(theirs) ^ set(summary)
        their_shards = moto.list_shards(StreamName=moto_name)["Shards"]
        assert [s["HashKeyRange"] for s in their_shards] == [s["HashKeyRange"] for s in shards]
        assert set(their_shards[0]) == set(shards[0])
    finally:
        moto.delete_stream(StreamName=moto_name)
    described = k.describe_stream(StreamName="clicks", Limit=3)["StreamDescription"]
    assert len(described["Shards"]) == 3 and described["HasMoreShards"] is True
    page = k.list_shards(StreamName="clicks", MaxResults=3)
    rest = k.list_shards(NextToken=page["NextToken"])
    assert [s["ShardId"] for s in page["Shards"] + rest["Shards"]] == [s["ShardId"] for s in shards]
    assert "NextToken" not in rest
    assert k.list_tags_for_stream(StreamName="clicks")["Tags"] == [{"Key": "team", "Value": "web"}]
    k.create_stream(StreamName="views", ShardCount=1)
    assert k.list_streams()["StreamNames"] == ["clicks", "views"]
    first = k.list_streams(Limit=1)
    assert first["StreamNames"] == ["clicks"] and first["HasMoreStreams"] is True
    assert k.list_streams(NextToken=first["NextToken"])["StreamNames"] == ["views"]
    k.delete_stream(StreamName="clicks")
    assert k.list_streams()["StreamNames"] == ["views"]
    code, status, message = error_of(k.describe_stream_summary, StreamName="clicks")
    assert (code, status) == ("ResourceNotFoundException", 400) and "clicks" in message


def test_records_are_read_back_once_in_order_with_their_keys_from_every_iterator(server):
    k = server.kinesis
    k.create_stream(StreamName="events", ShardCount=SHARDS)
    keys = [f"user-{i}" for i in range(40)]
    records = [(keys[i % len(keys)], f"{i:05d}".encode()) for i in range(2000)]
    before = time.time()
    stored = put_all(k, "events", records)
    shards = {s["ShardId"]: s for s in shards_of(k, "events")}
    # Each record is in the shard whose range holds the MD5 of its partition key.
    for key, data in records:
        r = shards[stored[data][0]]["HashKeyRange"]
        assert int(r["StartingHashKey"]) <= md5_key(key) <= int(r["EndingHashKey"]), (key, stored[data])
    read = {}
    for shard_id in shards:
        got, _ = read_shard(k, "events", shard_id)
        numbers = [int(r["SequenceNumber"]) for r in got]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), "sequence numbers increase"
        for r in got:
            assert r["Data"] not in read, f"{r['Data']} read twice"
            read[r["Data"]] = r
            assert stored[r["Data"]] == (shard_id, r["SequenceNumber"])
            assert before - 5 <= r["ApproximateArrivalTimestamp"].timestamp() <= time.time() + 5
    assert set(read) == {d for _, d in records}, "every record read once"
    per_key = collections.defaultdict(list)
    for shard_id in shards:
        for r in read_shard(k, "events", shard_id)[0]:
            per_key[r["PartitionKey"]].append(r["Data"])
    for key in keys:
        assert per_key[key] == [d for k_, d in records if k_ == key], f"order of {key}"

    # AT_ and AFTER_SEQUENCE_NUMBER start at (after) a record; LATEST sees only later ones.
    shard_id = stored[records[0][1]][0]
    everything, _ = read_shard(k, "events", shard_id)
    middle = everything[len(everything) // 2]
    at, _ = read_shard(k, "events", shard_id, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=middle["SequenceNumber"])
    after, _ = read_shard(k, "events", shard_id, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=middle["SequenceNumber"])
    assert at == everything[len(everything) // 2:] and after == at[1:]
    latest, it = read_shard(k, "events", shard_id, "LATEST")
    assert latest == []
    time.sleep(0.05)
    cut = time.time()
    key = next(key for key, data in records if stored[data][0] == shard_id)
    new = k.put_record(StreamName="events", PartitionKey=key, Data=b"after-latest")
    assert new["ShardId"] == shard_id
    out = k.get_records(ShardIterator=it)
    assert [r["Data"] for r in out["Records"]] == [b"after-latest"]
    assert out["MillisBehindLatest"] == 0
    at_time, _ = read_shard(k, "events", shard_id, "AT_TIMESTAMP", Timestamp=cut)
    assert [r["Data"] for r in at_time] == [b"after-latest"]
    # ExplicitHashKey overrides the partition key's hash.
    last_shard = list(shards)[-1]
    pinned = k.put_record(StreamName="events", PartitionKey="user-0", Data=b"pinned",
                          ExplicitHashKey=str(2**128 - 1))
    assert pinned["ShardId"] == last_shard
    # Prometheus counts what was put and read.
    assert server.metric("hydrant_kinesis_incoming_records_total", "events") == len(records) + 2
    assert server.metric("hydrant_kinesis_outgoing_records_total", "events") >= 2 * len(records)


def test_a_shard_takes_1000_records_and_1_mib_a_second_with_a_burst_allowance(server):
    """Kinesis' per-shard write limits: a burst past the saved allowance (2 s) is refused in
    part with ProvisionedThroughputExceededException, record by record; a steady load under
    the limits (500 records/s) is never refused; a call of 5 MiB into one shard stores at most
    the 2 MiB burst."""
    k = server.kinesis
    k.create_stream(StreamName="hot", ShardCount=1)
    answers = collections.Counter()
    began = time.monotonic()
    for call in range(8):  # 4,000 small records as fast as one client sends them
        out = k.put_records(StreamName="hot", Records=[{"Data": b"x", "PartitionKey": f"{call}-{i}"} for i in range(500)])
        for entry in out["Records"]:
            answers[entry.get("ErrorCode", "stored")] += 1
    elapsed = time.monotonic() - began
    assert set(answers) == {"stored", "ProvisionedThroughputExceededException"}, answers
    assert 2000 <= answers["stored"] <= 2000 + 1000 * elapsed + 1, (answers, elapsed)
    assert server.metric("hydrant_kinesis_throttled_records_total", "hot") == answers["ProvisionedThroughputExceededException"]

    time.sleep(2.5)  # the allowance refills
    for _ in range(6):
        out = k.put_records(StreamName="hot", Records=[{"Data": b"y", "PartitionKey": "p"}] * 250)
        assert out["FailedRecordCount"] == 0, out["Records"][-1]
        time.sleep(0.5)

    time.sleep(2.5)
    big = [{"Data": b"z" * ((1 << 20) - 8), "PartitionKey": "big"}] * 5
    out = k.put_records(StreamName="hot", Records=big)
    stored = [e for e in out["Records"] if "SequenceNumber" in e]
    assert 1 <= len(stored) <= 2 and out["FailedRecordCount"] == 5 - len(stored), out["FailedRecordCount"]
    # A single PutRecord over the limit is refused as a whole call.
    code, _, message = error_of(k.put_record, StreamName="hot", PartitionKey="k", Data=b"z" * ((1 << 20) - 8))
    assert code == "ProvisionedThroughputExceededException" and "shardId-000000000000" in message, message


def test_streams_and_records_survive_kill_9(server):
    k = server.kinesis
    k.create_stream(StreamName="durable", ShardCount=2)
    records = [(f"k{i % 7}", f"d{i}".encode()) for i in range(500)]
    stored = put_all(k, "durable", records)
    server.kill()
    server.start()
    k = kinesis_client(server.endpoint)
    assert k.list_streams()["StreamNames"] == ["durable"]
    read = {}
    for shard in shards_of(k, "durable"):
        for r in read_shard(k, "durable", shard["ShardId"])[0]:
            read[r["Data"]] = (shard["ShardId"], r["SequenceNumber"])
    assert read == stored, "every acknowledged record, once, under the sequence number it was given"
    # New records get higher sequence numbers than any before the kill.
    again = k.put_record(StreamName="durable", PartitionKey="k0", Data=b"later")
    before = max(int(seq) for shard, seq in stored.values() if shard == again["ShardId"])
    assert int(again["SequenceNumber"]) > before
    # A deleted stream's records do not come back under its name after a restart.
    k.delete_stream(StreamName="durable")
    server.kill()
    server.start()
    k = kinesis_client(server.endpoint)
    assert k.list_streams()["StreamNames"] == []
    k.create_stream(StreamName="durable", ShardCount=2)
    assert all(read_shard(k, "durable", s["ShardId"])[0] == [] for s in shards_of(k, "durable"))


def test_bad_calls_get_kinesis_errors(server):
    k = server.kinesis
    k.create_stream(StreamName="s", ShardCount=1)
    assert error_of(k.create_stream, StreamName="s", ShardCount=1)[:2] == ("ResourceInUseException", 400)
    code, _, message = error_of(k.create_stream, StreamName="big", ShardCount=17)
    assert code == "LimitExceededException" and "limits.max_shards_per_stream" in message, message
    code, _, message = error_of(k.create_stream, StreamName="p", StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert code == "InvalidArgumentException" and "ShardCount is required" in message, message
    assert error_of(k.put_record, StreamName="nope", PartitionKey="a", Data=b"x")[0] == "ResourceNotFoundException"
    assert error_of(k.put_record, StreamName="s", PartitionKey="a" * 257, Data=b"x")[0] == "ValidationException"
    code, _, message = error_of(k.put_record, StreamName="s", PartitionKey="a", Data=b"x", ExplicitHashKey="-1")
    assert code == "InvalidArgumentException" and "explicitHashKey" in message
    assert error_of(k.put_records, StreamName="s",
                    Records=[{"Data": b"x", "PartitionKey": "a"}] * 501)[0] == "ValidationException"
    code, _, message = error_of(k.put_record, StreamName="s", PartitionKey="a", Data=b"x" * (1 << 20))
    assert code == "ValidationException" and "1048576" in message
    code, _, message = error_of(k.get_shard_iterator, StreamName="s", ShardId="shardId-000000000009",
                                ShardIteratorType="TRIM_HORIZON")
    assert code == "ResourceNotFoundException" and "shardId-000000000009" in message
    code, _, message = error_of(k.get_shard_iterator, StreamName="s", ShardId="shardId-000000000000",
                                ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="12345")
    assert code == "InvalidArgumentException" and "12345" in message
    assert error_of(k.get_records, ShardIterator="not-an-iterator")[0] == "InvalidArgumentException"
    # An iterator past its 5 minutes: the token is base64 of JSON with its expiry in "e".
    token = k.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    fields["e"] -= 6 * 60 * 1000
    expired = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    code, _, message = error_of(k.get_records, ShardIterator=expired)
    assert code == "ExpiredIteratorException" and "GetShardIterator" in message
    # An iterator of a deleted stream does not read a new stream of the same name.
    k.delete_stream(StreamName="s")
    k.create_stream(StreamName="s", ShardCount=1)
    assert error_of(k.get_records, ShardIterator=token)[0] == "ResourceNotFoundException"
    status, _, body = raw_call(server.endpoint, "Kinesis_20131202.RegisterStreamConsumer", {"StreamName": "s"})
    assert status == 400 and body["__type"] == "UnknownOperationException" and "RegisterStreamConsumer" in body["message"]


def test_the_aws_cli_puts_and_gets_records(server, aws_cli):
    cli = lambda *args: aws_cli(server.endpoint, *args, service="kinesis")  # noqa: E731
    cli("create-stream", "--stream-name", "cli", "--shard-count", "1")
    put = cli("put-record", "--stream-name", "cli", "--partition-key", "p", "--data", aws_cli.data(b"hello"))
    assert put["ShardId"] == "shardId-000000000000"
    it = cli("get-shard-iterator", "--stream-name", "cli", "--shard-id", put["ShardId"],
             "--shard-iterator-type", "AT_SEQUENCE_NUMBER", "--starting-sequence-number", put["SequenceNumber"])
    out = cli("get-records", "--shard-iterator", it["ShardIterator"])
    assert [base64.b64decode(r["Data"]) for r in out["Records"]] == [b"hello"]
    assert out["Records"][0]["PartitionKey"] == "p"


def signed_kinesis(endpoint, key):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=f"{key}-secret",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def test_with_sigv4_keys_get_the_kinesis_actions_and_streams_they_are_granted(hydrant_factory):
    """Kinesis calls are signed for service `kinesis` and authorised like Firehose's: a key
    without `actions` may put and look up but not read; `kinesis:Get*` grants reading;
    `streams` limits a key to its streams (by name, ARN, iterator or paging token) and
    ListStreams lists only those. A CBOR call is verified over the bytes as sent."""
    h = hydrant_factory(config_yaml(auth={"mode": "sigv4", "credentials": [
        {"access_key_id": "ADMIN", "secret_access_key": "ADMIN-secret", "actions": ["firehose:*", "kinesis:*"]},
        {"access_key_id": "PRODUCER", "secret_access_key": "PRODUCER-secret"},
        {"access_key_id": "READER", "secret_access_key": "READER-secret",
         "actions": ["kinesis:Get*", "kinesis:List*", "kinesis:Describe*"], "streams": ["open"]},
    ]}))
    admin, producer, reader = (signed_kinesis(h.endpoint, k) for k in ("ADMIN", "PRODUCER", "READER"))
    admin.create_stream(StreamName="open", ShardCount=1)
    admin.create_stream(StreamName="closed", ShardCount=1)
    assert producer.put_records(StreamName="open", Records=[{"Data": b"a", "PartitionKey": "k"}])["FailedRecordCount"] == 0
    assert producer.put_record(StreamName="closed", PartitionKey="k", Data=b"b")["ShardId"]
    code, status, message = error_of(producer.get_shard_iterator, StreamName="open",
                                     ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")
    assert (code, status) == ("AccessDeniedException", 400), message
    for needle in ("kinesis:GetShardIterator", "arn:aws:kinesis:", ":stream/open", "auth.credentials[].actions"):
        assert needle in message, (needle, message)
    assert error_of(producer.delete_stream, StreamName="open")[0] == "AccessDeniedException"

    assert reader.list_streams()["StreamNames"] == ["open"]
    records, _ = read_shard(reader, "open", "shardId-000000000000")
    assert [r["Data"] for r in records] == [b"a"]
    code, _, message = error_of(reader.describe_stream_summary, StreamName="closed")
    assert code == "AccessDeniedException" and "auth.credentials[].streams" in message, message
    # An iterator of a stream the key may not use is refused, though the key never named it.
    theirs = admin.get_shard_iterator(StreamName="closed", ShardId="shardId-000000000000",
                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert error_of(reader.get_records, ShardIterator=theirs)[0] == "AccessDeniedException"
    assert error_of(reader.put_record, StreamName="open", PartitionKey="k", Data=b"x")[0] == "AccessDeniedException"
    # Firehose's actions do not grant Kinesis' (nor the other way round).
    fh = boto3.client("firehose", endpoint_url=h.endpoint, region_name="us-east-1",
                      aws_access_key_id="READER", aws_secret_access_key="READER-secret",
                      config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    assert error_of(fh.list_delivery_streams)[0] == "AccessDeniedException"

    # CBOR, signed over the bytes as sent (botocore's signer, as an SDK signs).
    import cbor2
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    body = cbor2.dumps({"StreamName": "open", "PartitionKey": "k", "Data": b"\x01cbor"})
    request = AWSRequest(method="POST", url=h.endpoint + "/", data=body, headers={
        "X-Amz-Target": "Kinesis_20131202.PutRecord", "Content-Type": "application/x-amz-cbor-1.1"})
    SigV4Auth(Credentials("PRODUCER", "PRODUCER-secret"), "kinesis", "us-east-1").add_auth(request)
    req = urllib.request.Request(h.endpoint + "/", data=body, method="POST", headers=dict(request.headers))
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert cbor2.loads(resp.read())["ShardId"] == "shardId-000000000000"
    assert_no_panic(h)


def cbor_call(endpoint, operation, request):
    """A Kinesis call in CBOR, built as the AWS SDKs for Java build it (blobs as byte strings,
    timestamps as tag 1 epoch milliseconds); returns (status, content type, decoded answer), with
    tag 1 values decoded as ("epoch-ms", n)."""
    import cbor2  # the services' venv has it (scripts/services.sh)
    req = urllib.request.Request(endpoint + "/", data=cbor2.dumps(request), method="POST")
    req.add_header("X-Amz-Target", f"Kinesis_20131202.{operation}")
    req.add_header("Content-Type", "application/x-amz-cbor-1.1")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, ctype, data = resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as e:
        status, ctype, data = e.code, e.headers["Content-Type"], e.read()
    return status, ctype, cbor2.loads(data, semantic_decoders={1: lambda value, *_: ("epoch-ms", value)})


def test_cbor_requests_as_the_java_sdks_send_them_put_and_get(server):
    import cbor2
    server.kinesis.create_stream(StreamName="java", ShardCount=1)
    status, ctype, out = cbor_call(server.endpoint, "PutRecord",
                                   {"StreamName": "java", "PartitionKey": "k", "Data": b"\x00binary\xff"})
    assert (status, ctype) == (200, "application/x-amz-cbor-1.1"), out
    assert out["ShardId"] == "shardId-000000000000" and len(out["SequenceNumber"]) == 56
    before_ms = int(time.time() * 1000) - 60_000
    status, _, out = cbor_call(server.endpoint, "GetShardIterator", {
        "StreamName": "java", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP",
        "Timestamp": cbor2.CBORTag(1, before_ms)})
    assert status == 200, out
    status, _, out = cbor_call(server.endpoint, "GetRecords", {"ShardIterator": out["ShardIterator"]})
    assert status == 200, out
    (record,) = out["Records"]
    assert record["Data"] == b"\x00binary\xff" and record["PartitionKey"] == "k"
    kind, millis = record["ApproximateArrivalTimestamp"]
    assert kind == "epoch-ms" and abs(millis - time.time() * 1000) < 60_000, record
    # Errors come back in CBOR too.
    status, ctype, out = cbor_call(server.endpoint, "DescribeStreamSummary", {"StreamName": "nope"})
    assert (status, ctype) == (400, "application/x-amz-cbor-1.1")
    assert out["__type"] == "ResourceNotFoundException" and "nope" in out["message"]
    status, _, out = cbor_call(server.endpoint, "PutRecord", {"StreamName": "java", "PartitionKey": "k"})
    assert status == 400 and out["__type"] == "ValidationException", out


def test_stream_encryption_at_rest_starts_stops_and_survives_kill_9(hydrant_factory):
    """StartStreamEncryption / StopStreamEncryption on the log's encryption at rest with the
    server's storage.encryption keys: records stored while it is on are not in plaintext on disk,
    every record reads back whatever mode it was stored in, also after kill -9."""
    from test_control_plane import log_key_yaml
    server = hydrant_factory(log_key_yaml(("k1", "k2")))
    k = kinesis_client(server.endpoint)
    k.create_stream(StreamName="s", ShardCount=1)
    summary = lambda: k.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]
    assert summary()["EncryptionType"] == "NONE"
    k.put_record(StreamName="s", PartitionKey="a", Data=b"plain-before")
    k.start_stream_encryption(StreamName="s", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert (summary()["EncryptionType"], summary()["KeyId"]) == ("KMS", "k1")
    k.put_record(StreamName="s", PartitionKey="a", Data=b"secret-during")
    k.stop_stream_encryption(StreamName="s", EncryptionType="KMS", KeyId="k1")
    assert summary()["EncryptionType"] == "NONE"
    k.put_record(StreamName="s", PartitionKey="a", Data=b"plain-after")
    k.start_stream_encryption(StreamName="s", EncryptionType="KMS", KeyId="arn:aws:kms:us-east-1:1:key/k2")
    k.put_record(StreamName="s", PartitionKey="a", Data=b"secret-later")
    on_disk = b"".join(p.read_bytes() for p in (server.data_dir / "streams" / "kinesis%3As").glob("shard-*/*.seg"))
    assert b"plain-before" in on_disk and b"plain-after" in on_disk, "the test reads the right files"
    assert b"secret-during" not in on_disk and b"secret-later" not in on_disk
    code, _, message = error_of(k.start_stream_encryption, StreamName="s", EncryptionType="KMS", KeyId="k9")
    assert code == "InvalidArgumentException" and "storage.encryption" in message, message
    server.kill()
    server.start()
    k = kinesis_client(server.endpoint)
    assert (summary()["EncryptionType"], summary()["KeyId"]) == ("KMS", "k2")
    records, _ = read_shard(k, "s", "shardId-000000000000")
    assert [r["Data"] for r in records] == [b"plain-before", b"secret-during", b"plain-after", b"secret-later"]


def test_stream_encryption_needs_the_servers_keys(server):
    server.kinesis.create_stream(StreamName="s", ShardCount=1)
    code, _, message = error_of(server.kinesis.start_stream_encryption, StreamName="s", EncryptionType="KMS",
                                KeyId="alias/aws/kinesis")
    assert code == "InvalidArgumentException" and "storage.encryption" in message, message
