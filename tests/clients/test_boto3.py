"""boto3, the most common Firehose producer, works against Hydrant: answers have the shapes
botocore expects, and what it puts comes back from the real S3 server exactly once."""

import json
import re
import uuid

import pytest

from conftest import (
    KEY_SUFFIX,
    assert_exactly_once,
    config_yaml,
    list_objects,
    make_records,
    read_object,
    s3_stream,
    wait_delivered,
    wait_for,
)


def one_stream(s3, bucket, name, **kw):
    return config_yaml(s3_stream(name, bucket, **kw), s3=s3)


def test_put_record_and_put_record_batch_answer_like_firehose_and_deliver_exactly_once(s3, bucket, hydrant_factory):
    h = hydrant_factory(one_stream(s3, bucket, "boto", prefix="b/"))
    fh = h.firehose()
    batch = make_records(300, tag="batch")
    out = fh.put_record_batch(DeliveryStreamName="boto", Records=[{"Data": r} for r in batch])
    assert out["FailedPutCount"] == 0
    assert out["Encrypted"] is False
    assert len(out["RequestResponses"]) == len(batch)
    ids = [e.get("RecordId") for e in out["RequestResponses"]]
    assert all(ids), [e for e in out["RequestResponses"] if not e.get("RecordId")][:3]
    assert len(set(ids)) == len(ids), "RecordIds must be unique"
    assert not any("ErrorCode" in e for e in out["RequestResponses"])
    assert out["ResponseMetadata"]["RequestId"], "x-amzn-RequestId header missing"

    singles = make_records(5, tag="single")
    single_ids = []
    for r in singles:
        one = fh.put_record(DeliveryStreamName="boto", Record={"Data": r})
        assert one["RecordId"] and one["Encrypted"] is False, one
        assert one["ResponseMetadata"]["RequestId"]
        single_ids.append(one["RecordId"])
    assert not set(single_ids) & set(ids)

    counts = wait_delivered(s3, bucket, batch + singles, prefix="b/")
    assert_exactly_once(counts, batch + singles)
    wait_for(lambda: h.metric("hydrant_delivery_to_s3_records_total", "boto") == len(batch) + len(singles),
             timeout=10, what="delivery metric")
    assert h.metric("hydrant_incoming_records_total", "boto") == len(batch) + len(singles)


def test_list_delivery_streams_is_sorted_and_pages(s3, bucket, hydrant_factory):
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    h = hydrant_factory(config_yaml(*(s3_stream(n, bucket, prefix=f"{n}/") for n in names), s3=s3))
    fh = h.firehose()
    out = fh.list_delivery_streams()
    assert out["DeliveryStreamNames"] == sorted(names) and out["HasMoreDeliveryStreams"] is False

    out = fh.list_delivery_streams(Limit=2)
    assert out["DeliveryStreamNames"] == ["alpha", "bravo"] and out["HasMoreDeliveryStreams"] is True

    out = fh.list_delivery_streams(Limit=2, ExclusiveStartDeliveryStreamName="bravo")
    assert out["DeliveryStreamNames"] == ["charlie", "delta"] and out["HasMoreDeliveryStreams"] is True

    out = fh.list_delivery_streams(Limit=2, ExclusiveStartDeliveryStreamName="delta")
    assert out["DeliveryStreamNames"] == ["echo"] and out["HasMoreDeliveryStreams"] is False

    # A start name that is not a stream: results begin strictly after it alphabetically.
    out = fh.list_delivery_streams(ExclusiveStartDeliveryStreamName="c")
    assert out["DeliveryStreamNames"] == ["charlie", "delta", "echo"]

    out = fh.list_delivery_streams(Limit=10, DeliveryStreamType="DirectPut")
    assert out["DeliveryStreamNames"] == sorted(names)
    out = fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")
    assert out["DeliveryStreamNames"] == [] and out["HasMoreDeliveryStreams"] is False


def test_describe_delivery_stream_has_the_firehose_shape(s3, bucket, hydrant_factory):
    h = hydrant_factory(one_stream(s3, bucket, "desc", prefix="logs/", compression="GZIP", interval=17, size=9))
    d = h.firehose().describe_delivery_stream(DeliveryStreamName="desc")["DeliveryStreamDescription"]
    assert d["DeliveryStreamName"] == "desc"
    assert d["DeliveryStreamARN"] == "arn:aws:firehose:us-east-1:000000000000:deliverystream/desc"
    assert d["DeliveryStreamStatus"] == "ACTIVE"
    assert d["DeliveryStreamType"] == "DirectPut"
    assert d["VersionId"] == "1"
    assert d["HasMoreDestinations"] is False
    assert len(d["Destinations"]) == 1
    dest = d["Destinations"][0]
    assert dest["DestinationId"] == "destinationId-000000000001"
    for member in ("ExtendedS3DestinationDescription", "S3DestinationDescription"):
        desc = dest[member]
        assert desc["BucketARN"] == f"arn:aws:s3:::{bucket}", member
        assert desc["BufferingHints"] == {"SizeInMBs": 9, "IntervalInSeconds": 17}, member
        assert desc["CompressionFormat"] == "GZIP", member
        assert desc["Prefix"] == "logs/", member
        # Required members of both shapes (FIREHOSE.md 1.8).
        for required in ("RoleARN", "BucketARN", "BufferingHints", "CompressionFormat", "EncryptionConfiguration"):
            assert required in desc, f"{member} lacks required {required}"


def test_several_streams_each_deliver_to_their_own_bucket_and_prefix(s3, hydrant_factory):
    buckets = []
    for _ in range(2):
        name = "t-" + uuid.uuid4().hex[:16]
        s3.create_bucket(Bucket=name)
        buckets.append(name)
    b1, b2 = buckets
    h = hydrant_factory(config_yaml(
        s3_stream("one", b1, prefix="one/"),
        s3_stream("two", b1, prefix="two/", compression="GZIP"),
        s3_stream("three", b2, prefix="year=!{timestamp:yyyy}/three/",
                  error_prefix="errors/!{firehose:error-output-type}/"),
        s3=s3))
    fh = h.firehose()
    sent = {}
    for name in ("one", "two", "three"):
        sent[name] = make_records(30, tag=name)
        out = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in sent[name]])
        assert out["FailedPutCount"] == 0

    assert_exactly_once(wait_delivered(s3, b1, sent["one"], prefix="one/"), sent["one"])
    assert_exactly_once(wait_delivered(s3, b1, sent["two"], prefix="two/"), sent["two"])
    c3 = wait_delivered(s3, b2, sent["three"], prefix="year=")
    assert_exactly_once(c3, sent["three"])

    keys1 = list_objects(s3, b1)
    assert all(k.startswith(("one/", "two/")) for k in keys1), keys1
    assert all(k.endswith(".gz") for k in keys1 if k.startswith("two/"))
    assert not any(k.endswith(".gz") for k in keys1 if k.startswith("one/"))
    keys2 = list_objects(s3, b2)
    for k in keys2:
        # A prefix with an expression is used as is: no yyyy/MM/dd/HH/ appended.
        m = re.fullmatch(r"year=(\d{4})/three/(.+)", k)
        assert m, k
        assert KEY_SUFFIX.fullmatch(m[2]) and KEY_SUFFIX.fullmatch(m[2])["stream"] == "three", k


@pytest.mark.parametrize("shards", [1, 3])
def test_records_of_one_sequential_producer_keep_their_order(s3, bucket, hydrant_factory, shards):
    h = hydrant_factory(one_stream(s3, bucket, "ord", prefix="o/", shards=shards))
    fh = h.firehose()
    records = []
    n = 0
    for call in range(12):
        batch = []
        for _ in range(20 if call % 2 else 1):
            batch.append(json.dumps({"seq": n, "pad": "x" * 40}).encode() + b"\n")
            n += 1
        if len(batch) == 1:
            assert fh.put_record(DeliveryStreamName="ord", Record={"Data": batch[0]})["RecordId"]
        else:
            assert fh.put_record_batch(DeliveryStreamName="ord", Records=[{"Data": r} for r in batch])[
                "FailedPutCount"] == 0
        records.extend(batch)
    wait_delivered(s3, bucket, records, prefix="o/")
    objects = []
    for key in list_objects(s3, bucket, "o/"):
        seqs = [json.loads(line)["seq"] for line in read_object(s3, bucket, key).splitlines()]
        assert seqs == sorted(seqs), f"records out of order inside {key}: {seqs}"
        objects.append(seqs)
    if shards == 1:
        # One shard: the objects are consecutive runs that together are exactly 0..n-1, in order.
        joined = [s for seqs in sorted(objects, key=lambda s: s[0]) for s in seqs]
        assert joined == list(range(n)), joined
    else:
        assert sorted(s for seqs in objects for s in seqs) == list(range(n))


def test_a_record_of_exactly_1024000_bytes_is_accepted_and_delivered_intact(s3, bucket, hydrant_factory):
    h = hydrant_factory(one_stream(s3, bucket, "big", prefix="big/", shards=1))
    fh = h.firehose(read_timeout=60)
    (record,) = make_records(1, tag="big", size=1_024_000)
    assert len(record) == 1_024_000
    small = make_records(2, tag="small")
    out = fh.put_record(DeliveryStreamName="big", Record={"Data": record})
    assert out["RecordId"]
    out = fh.put_record_batch(DeliveryStreamName="big", Records=[{"Data": record.replace(b'"big"', b'"BIG"')}] + [
        {"Data": r} for r in small])
    assert out["FailedPutCount"] == 0
    sent = [record, record.replace(b'"big"', b'"BIG"')] + small
    counts = wait_delivered(s3, bucket, sent, prefix="big/")
    assert_exactly_once(counts, sent)


def test_an_empty_record_is_accepted_and_adds_no_bytes(s3, bucket, hydrant_factory):
    h = hydrant_factory(one_stream(s3, bucket, "empty", prefix="e/", shards=1))
    fh = h.firehose()
    a, b = make_records(2, tag="around-empty")
    one = fh.put_record(DeliveryStreamName="empty", Record={"Data": b""})
    assert one["RecordId"]
    out = fh.put_record_batch(DeliveryStreamName="empty", Records=[{"Data": a}, {"Data": b""}, {"Data": b}])
    assert out["FailedPutCount"] == 0 and all(e.get("RecordId") for e in out["RequestResponses"])
    wait_delivered(s3, bucket, [a, b], prefix="e/")
    content = b"".join(read_object(s3, bucket, k) for k in list_objects(s3, bucket, "e/"))
    assert sorted(content.splitlines(keepends=True)) == sorted([a, b]), content[:500]
    wait_for(lambda: h.metric("hydrant_incoming_records_total", "empty") == 4, timeout=5,
             what="4 records counted (2 of them empty)")


def test_prefix_forms_extension_and_time_zone_shape_the_keys(s3, hydrant_factory):
    """No Prefix -> yyyy/MM/dd/HH/; a Prefix without expressions gets that appended with no '/'
    added; FileExtension replaces the extension; CustomTimeZone sets the hour of the path."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    cases = {
        "noprefix": dict(prefix=None),
        "legacy": dict(prefix="legacy"),
        "ext": dict(prefix="ext/", compression="GZIP", FileExtension=".jsonl.gz"),
        "tokyo": dict(prefix="tz/", CustomTimeZone="Asia/Tokyo"),
    }
    buckets = {}
    for name in cases:
        buckets[name] = "t-" + uuid.uuid4().hex[:16]
        s3.create_bucket(Bucket=buckets[name])
    h = hydrant_factory(config_yaml(*(s3_stream(name, buckets[name], **kw) for name, kw in cases.items()), s3=s3))
    fh = h.firehose()
    sent = {}
    t0 = dt.datetime.now(dt.timezone.utc)
    for name in cases:
        sent[name] = make_records(5, tag=name)
        assert fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in sent[name]])[
            "FailedPutCount"] == 0
    t1 = dt.datetime.now(dt.timezone.utc)
    for name in cases:
        assert_exactly_once(wait_delivered(s3, buckets[name], sent[name]), sent[name])

    def hours(tz, fmt="%Y/%m/%d/%H/"):
        return {t0.astimezone(tz).strftime(fmt), t1.astimezone(tz).strftime(fmt)}

    utc = dt.timezone.utc
    for key in list_objects(s3, buckets["noprefix"]):
        assert key[:14] in hours(utc) and KEY_SUFFIX.fullmatch(key[14:]), key
        assert KEY_SUFFIX.fullmatch(key[14:])["ext"] == "", key
    for key in list_objects(s3, buckets["legacy"]):
        # FIREHOSE.md 3.2: Prefix "legacy" gives "legacy2026/07/13/14/..." (no '/' added).
        assert key.startswith("legacy") and key[6:20] in hours(utc) and KEY_SUFFIX.fullmatch(key[20:]), key
    for key in list_objects(s3, buckets["ext"]):
        assert key.endswith(".jsonl.gz"), key
        m = KEY_SUFFIX.fullmatch(key[len("ext/") + 14:-len(".jsonl.gz")])
        assert m and m["ext"] == "" and m["stream"] == "ext", key
    tokyo = ZoneInfo("Asia/Tokyo")
    for key in list_objects(s3, buckets["tokyo"]):
        path = key[len("tz/"):len("tz/") + 14]
        assert path in hours(tokyo), f"{key}: the path hour is not Asia/Tokyo time {hours(tokyo)}"
        m = KEY_SUFFIX.fullmatch(key[len("tz/") + 14:])
        assert m, key
        # The suffix timestamp uses the same zone (FIREHOSE.md 3.2).
        assert m["ts"][:13] in hours(tokyo, "%Y-%m-%d-%H"), key
