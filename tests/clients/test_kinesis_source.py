"""Firehose delivery streams that read a Kinesis stream of the same server
(`DeliveryStreamType: KinesisStreamAsSource`, issue 14): created with boto3's `firehose` client as
on AWS, they deliver every record put through the Kinesis API to S3 exactly once, across a split
of the Kinesis stream and a kill -9; Firehose puts to them are refused as AWS refuses them; and
deleting one lets go of its checkpoints in the Kinesis stream."""

import random
import time

import pytest

from conftest import (assert_exactly_once, assert_no_panic, client_error, extended_s3, make_records,
                      s3_store_yaml, wait_delivered, wait_for)
from test_kinesis import kinesis_client
from test_kinesis_resharding import Writer, reshard_at_random

ROLE = "arn:aws:iam::123456789012:role/firehose"


@pytest.fixture
def server(s3, hydrant_factory):
    h = hydrant_factory(s3_store_yaml(s3, name="default"))
    yield h
    assert_no_panic(h)


def put(k, stream, records):
    """Puts records with random partition keys; returns the acknowledged ones."""
    acked = []
    for i in range(0, len(records), 100):
        chunk = records[i:i + 100]
        out = k.put_records(StreamName=stream, Records=[
            {"Data": r, "PartitionKey": f"user-{random.randrange(1000)}"} for r in chunk])
        acked += [r for r, e in zip(chunk, out["Records"]) if "SequenceNumber" in e]
    return acked


def kinesis_and_reader(server, bucket, stream):
    """A Kinesis stream of 2 shards and a delivery stream `<stream>-to-s3` reading it into
    `<stream>/`; the two clients and the stream's ARN."""
    k, fh = kinesis_client(server.endpoint), server.firehose()
    k.create_stream(StreamName=stream, ShardCount=2)
    arn = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    fh.create_delivery_stream(
        DeliveryStreamName=f"{stream}-to-s3", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix=f"{stream}/"))
    return k, fh, arn


def test_a_delivery_stream_reads_a_kinesis_stream_exactly_once_across_a_split_and_kill_9(server, s3, bucket):
    k, fh, arn = kinesis_and_reader(server, bucket, "clicks")
    described = fh.describe_delivery_stream(DeliveryStreamName="clicks-to-s3")["DeliveryStreamDescription"]
    assert described["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert described["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn
    listed = fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"]
    assert listed == ["clicks-to-s3"]
    assert fh.list_delivery_streams(DeliveryStreamType="DirectPut")["DeliveryStreamNames"] == []
    code, _, message = client_error(fh.put_record, DeliveryStreamName="clicks-to-s3", Record={"Data": b"x"})
    assert code == "InvalidArgumentException" and "KinesisStreamAsSource" in message, message

    acked = put(k, "clicks", make_records(300, tag="before"))
    k.split_shard(StreamName="clicks", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126))
    acked += put(k, "clicks", make_records(300, tag="split"))
    server.kill()
    server.start()
    k = kinesis_client(server.endpoint)
    acked += put(k, "clicks", make_records(300, tag="after"))
    assert len(acked) == 900
    assert_exactly_once(wait_delivered(s3, bucket, acked, prefix="clicks/"), acked)

    # The Kinesis stream cannot be deleted under its reader.
    code, _, message = client_error(k.delete_stream, StreamName="clicks")
    assert code == "ResourceInUseException" and "clicks-to-s3" in message, message
    # Deleting the delivery stream lets go of its checkpoints in the Kinesis stream's shards.
    shard_dir = server.data_dir / "streams" / "kinesis%3Aclicks" / "shard-0001"
    assert list(shard_dir.glob("checkpoint-firehose.clicks-to-s3.*")), list(shard_dir.iterdir())
    fh.delete_delivery_stream(DeliveryStreamName="clicks-to-s3")
    wait_for(lambda: not list(shard_dir.glob("checkpoint-firehose.clicks-to-s3.*")), timeout=30,
             what="the delivery stream's checkpoints to go")
    # The Kinesis stream itself is untouched, and once nothing reads it, it can be deleted.
    assert k.put_record(StreamName="clicks", PartitionKey="a", Data=b"still here")["SequenceNumber"]
    wait_for(lambda: "clicks-to-s3" not in fh.list_delivery_streams()["DeliveryStreamNames"], timeout=30,
             what="the delivery stream to be gone")
    wait_for(lambda: _deleted(k, "clicks"), timeout=30, what="DeleteStream once nothing reads the stream")


def test_a_kinesis_source_must_exist_and_be_named_by_a_kinesis_arn(server, bucket):
    fh = server.firehose()
    code, _, message = client_error(
        fh.create_delivery_stream, DeliveryStreamName="orphan", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/none",
                                          "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=extended_s3(bucket))
    assert code == "InvalidArgumentException" and "none" in message and "CreateStream" in message, message
    code, _, message = client_error(
        fh.create_delivery_stream, DeliveryStreamName="bad-arn", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": "arn:aws:s3:::not-a-stream", "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=extended_s3(bucket))
    assert code == "InvalidArgumentException" and "KinesisStreamARN" in message, message
    code, _, message = client_error(
        fh.create_delivery_stream, DeliveryStreamName="no-config", DeliveryStreamType="KinesisStreamAsSource",
        ExtendedS3DestinationConfiguration=extended_s3(bucket))
    assert code == "InvalidArgumentException" and "KinesisStreamSourceConfiguration" in message, message


def test_a_delivery_stream_delivers_exactly_once_while_its_kinesis_stream_reshards_at_random_and_is_killed(
        server, s3, bucket):
    """The Firehose side of the resharding proof (test_kinesis_resharding.py has the KCL side):
    a writer puts records while the Kinesis stream is split, merged and rescaled at random with
    two kill -9 in between; every acknowledged record lands in S3 once, nothing lands twice, and
    only records that were sent are there."""
    k, _, _ = kinesis_and_reader(server, bucket, "moving")
    writer, rng, done = Writer(server.endpoint, "moving", suffix="\n"), random.Random(15), []
    writer.start()
    for step in range(12):
        time.sleep(0.3)
        if step in (4, 9):
            server.kill()
            server.start()
            done.append("kill -9")
            continue
        done.append(reshard_at_random(k, "moving", rng))
    time.sleep(0.5)
    writer.stop.set()
    writer.join(30)
    acked = [f"{d}\n".encode() for d in writer.acked]
    counts = wait_delivered(s3, bucket, acked, prefix="moving/", timeout=120)
    duplicated = sorted(r for r, n in counts.items() if n > 1)
    extra = [r for r in counts if not r.decode().split(":")[0].startswith("k")]
    print(f"\n{len(acked)} acknowledged of {writer.sent} sent, {sum(counts.values())} delivered; {done}")
    assert writer.failed_calls > 0, "the kills happened while the writer ran"
    assert not duplicated, f"{len(duplicated)} records delivered twice, e.g. {duplicated[:5]}"
    assert not extra, extra[:5]
    assert len(acked) > 500


def _deleted(k, stream):
    """Tries DeleteStream; True once it succeeded."""
    try:
        k.delete_stream(StreamName=stream)
        return True
    except Exception:  # noqa: BLE001 - still read (the delivery stream is being dropped)
        return False
