"""What API clients can make the server spend, through boto3 against the real binary: the
`limits:` ceilings on streams, shards, the transform sandbox, partitions and buffers
(LimitExceededException for counts, InvalidArgumentException for values, each naming the field
and the setting to raise)."""

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    client_error,
    extended_s3,
    gone,
    make_records,
    s3_store_yaml,
    wait_delivered,
    wait_for,
    with_hydrant_member,
)


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def test_ten_create_calls_cannot_start_thousands_of_threads(s3, bucket, hydrant_factory):
    """The issue's reproduction: ten CreateDeliveryStream calls asking for 64 shards each used
    to start about 1,900 threads. With the default limits (16 shards per stream, 256 in all)
    each is refused before anything is opened."""
    h = hydrant_factory(s3_store_yaml(s3, name="default"))
    fh = with_hydrant_member(h.firehose(), {"shards": 64})
    before = threads(h.proc.pid)
    for i in range(10):
        code, status, message = client_error(fh.create_delivery_stream, DeliveryStreamName=f"many-{i}",
                                             ExtendedS3DestinationConfiguration=extended_s3(bucket, f"m{i}/"))
        assert (code, status) == ("LimitExceededException", 400), (code, message)
        for needle in ("hydrant.shards", "16 shards per stream", "limits.max_shards_per_stream"):
            assert needle in message, (needle, message)
    assert threads(h.proc.pid) <= before + 4, f"threads went from {before} to {threads(h.proc.pid)}"
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == []
    # Within the ceiling it works, and adds that stream's threads only.
    fh = with_hydrant_member(h.firehose(), {"shards": 16})
    fh.create_delivery_stream(DeliveryStreamName="sixteen", ExtendedS3DestinationConfiguration=extended_s3(bucket, "s/"))
    # Three threads per shard (log writer, cutter, uploader). Opening the stream also wakes up
    # to one thread of tokio's shared, capped blocking pool per shard (checkpoint and marker
    # files are read off the runtime); those end after ten idle seconds, so wait for them.
    steady = before + 16 * 3 + 4
    wait_for(lambda: threads(h.proc.pid) <= steady, timeout=20, interval=0.5,
             what=f"the stream's threads to settle to at most {steady}")
    records = make_records(20, tag="sixteen")
    assert fh.put_record_batch(DeliveryStreamName="sixteen", Records=[{"Data": r} for r in records])["FailedPutCount"] == 0
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="s/"), records)
    assert_no_panic(h)


def test_streams_shards_and_buffers_past_the_configured_limits_are_refused(s3, bucket, hydrant_factory):
    h = hydrant_factory(s3_store_yaml(s3, name="default")
                        + "limits: { max_streams: 2, max_shards: 4, max_shards_per_stream: 3, "
                        "max_buffer_size_mib: 64 }\n")
    fh = h.firehose()
    big = dict(extended_s3(bucket, "1/"), BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 60})
    code, status, message = client_error(fh.create_delivery_stream, DeliveryStreamName="one",
                                         ExtendedS3DestinationConfiguration=big)
    assert (code, status) == ("InvalidArgumentException", 400), (code, message)
    for needle in ("ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs", "128 MiB", "64 MiB",
                   "limits.max_buffer_size_mib"):
        assert needle in message, (needle, message)
    fh.create_delivery_stream(DeliveryStreamName="one", ExtendedS3DestinationConfiguration=extended_s3(bucket, "1/"))
    big = with_hydrant_member(h.firehose(), {"shards": 3})
    code, _, message = client_error(big.create_delivery_stream, DeliveryStreamName="two",
                                    ExtendedS3DestinationConfiguration=extended_s3(bucket, "2/"))
    assert code == "LimitExceededException"
    for needle in ("hydrant.shards", "2 of the 4", "limits.max_shards", "ask for at most 2"):
        assert needle in message, (needle, message)
    fh.create_delivery_stream(DeliveryStreamName="two", ExtendedS3DestinationConfiguration=extended_s3(bucket, "2/"))
    code, status, message = client_error(fh.create_delivery_stream, DeliveryStreamName="three",
                                         ExtendedS3DestinationConfiguration=extended_s3(bucket, "3/"))
    assert (code, status) == ("LimitExceededException", 400)
    assert "limits.max_streams" in message and "DeleteDeliveryStream" in message, message
    # A deleted stream frees its place.
    fh.delete_delivery_stream(DeliveryStreamName="one")
    wait_for(lambda: gone(fh, "one"), timeout=60, what="stream one to be deleted")
    fh.create_delivery_stream(DeliveryStreamName="three", ExtendedS3DestinationConfiguration=extended_s3(bucket, "3/"))
    assert sorted(fh.list_delivery_streams()["DeliveryStreamNames"]) == ["three", "two"]
    records = make_records(10, tag="three")
    fh.put_record_batch(DeliveryStreamName="three", Records=[{"Data": r} for r in records])
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="3/"), records)


def test_a_transform_sandbox_or_partition_cap_above_its_ceiling_is_an_invalid_argument(s3, bucket, hydrant_factory):
    """With the default limits: the transform may not get more fuel or memory than the default
    sandbox, nor more partitions than Firehose's default quota."""
    h = hydrant_factory(s3_store_yaml(s3, name="default"))
    cases = [
        ({"transform": {"memory_mib": 4096}}, ["hydrant.transform.memory_mib", "4096 MiB", "64 MiB",
                                               "limits.max_transform_memory_mib"]),
        ({"transform": {"fuel": 10 ** 15}}, ["hydrant.transform.fuel", "limits.max_transform_fuel"]),
        ({"max_partitions": 10 ** 6}, ["hydrant.max_partitions", "500", "limits.max_partitions"]),
    ]
    for hydrant, needles in cases:
        fh = with_hydrant_member(h.firehose(), hydrant)
        code, status, message = client_error(fh.create_delivery_stream, DeliveryStreamName="sandbox",
                                             ExtendedS3DestinationConfiguration=extended_s3(bucket, "x/"))
        assert (code, status) == ("InvalidArgumentException", 400), (hydrant, code, message)
        for needle in needles:
            assert needle in message, (needle, message)
    fh = h.firehose()
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == []
    assert not (h.data_dir / "streams" / "sandbox").exists()
