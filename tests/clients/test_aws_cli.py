"""The aws CLI (v2 from Debian, v1 from PyPI) is a Firehose client that works against Hydrant.

v2 sends blob arguments as given (base64 expected); v1 takes raw text and base64-encodes it.
Every record comes back exactly once from the real S3 server (s3s-fs), under keys shaped like
Firehose's, and a GZIP stream's objects are read back with the `gzip` CLI, not our code.
"""

import datetime as dt
import json
import subprocess
import time
import zlib


from conftest import (
    KEY_SUFFIX,
    assert_exactly_once,
    config_yaml,
    list_objects,
    make_records,
    require_tool,
    s3_stream,
    wait_delivered,
)


def utc_hour_paths(t0, t1):
    return {
        dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y/%m/%d/%H/")
        for t in (t0, t1)
    }


def check_key(key, prefix, stream, ext, t0, t1):
    """Key is <prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid v8><ext>, times near arrival."""
    assert key.startswith(prefix), key
    rest = key[len(prefix):]
    hour_path, _, suffix = rest.rpartition("/")
    hour_path += "/"
    m = KEY_SUFFIX.fullmatch(suffix)
    assert m, f"{key!r}: suffix {suffix!r} is not <stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>"
    assert m["stream"] == stream and m["version"] == "1" and m["ext"] == ext, key
    assert hour_path in utc_hour_paths(t0, t1), (
        f"{key!r}: the yyyy/MM/dd/HH/ part {hour_path!r} is not the UTC arrival hour {utc_hour_paths(t0, t1)}"
    )
    ts = dt.datetime.strptime(m["ts"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=dt.timezone.utc).timestamp()
    assert t0 - 60 <= ts <= t1 + 60, f"{key!r}: timestamp {m['ts']} is not within a minute of the puts"
    assert ts // 3600 * 3600 == dt.datetime.strptime(hour_path, "%Y/%m/%d/%H/").replace(
        tzinfo=dt.timezone.utc).timestamp(), f"{key!r}: the prefix hour and the suffix time disagree"


def test_put_record_batch_and_put_record_deliver_every_record_exactly_once_under_firehose_keys(
        aws_cli, s3, bucket, hydrant_factory, tmp_path):
    stream = f"cli-{aws_cli.version}"
    h = hydrant_factory(config_yaml(s3_stream(stream, bucket, prefix="cli/"), s3=s3))
    batch = make_records(40, tag=f"batch-{aws_cli.version}")
    singles = make_records(3, tag=f"single-{aws_cli.version}")
    records_file = tmp_path / "records.json"
    records_file.write_text(json.dumps([{"Data": aws_cli.data(r)} for r in batch]))

    t0 = time.time()
    out = aws_cli(h.endpoint, "put-record-batch", "--delivery-stream-name", stream, "--records", f"file://{records_file}")
    assert out["FailedPutCount"] == 0, out
    assert len(out["RequestResponses"]) == len(batch)
    assert all(r.get("RecordId") for r in out["RequestResponses"]), out
    for r in singles:
        out = aws_cli(h.endpoint, "put-record", "--delivery-stream-name", stream,
                  "--record", json.dumps({"Data": aws_cli.data(r)}))
        assert out.get("RecordId"), out
    t1 = time.time()

    counts = wait_delivered(s3, bucket, batch + singles, prefix="cli/")
    assert_exactly_once(counts, batch + singles)
    keys = list_objects(s3, bucket)
    assert keys
    for key in keys:
        check_key(key, "cli/", stream, "", t0, t1)


def test_list_and_describe_delivery_streams(aws_cli, s3, bucket, hydrant_factory):
    names = [f"cli-b-{aws_cli.version}", f"cli-a-{aws_cli.version}", f"cli-c-{aws_cli.version}"]
    h = hydrant_factory(config_yaml(*(
        s3_stream(n, bucket, prefix=f"{n}/", compression="GZIP" if n.startswith("cli-c") else "UNCOMPRESSED",
                  interval=7, size=3) for n in names), s3=s3))

    listed = aws_cli(h.endpoint, "list-delivery-streams")
    assert listed["DeliveryStreamNames"] == sorted(names), listed
    assert listed["HasMoreDeliveryStreams"] is False

    page = aws_cli(h.endpoint, "list-delivery-streams", "--limit", "2")
    assert page["DeliveryStreamNames"] == sorted(names)[:2] and page["HasMoreDeliveryStreams"] is True, page

    d = aws_cli(h.endpoint, "describe-delivery-stream", "--delivery-stream-name", names[2])["DeliveryStreamDescription"]
    assert d["DeliveryStreamName"] == names[2]
    assert d["DeliveryStreamARN"].endswith(f":deliverystream/{names[2]}")
    assert d["DeliveryStreamStatus"] == "ACTIVE"
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["BucketARN"] == f"arn:aws:s3:::{bucket}"
    assert ext["CompressionFormat"] == "GZIP"
    assert ext["BufferingHints"] == {"SizeInMBs": 3, "IntervalInSeconds": 7}
    assert ext["Prefix"] == f"{names[2]}/"


def test_gzip_stream_objects_decompress_with_the_gzip_cli_byte_identical(aws_cli, s3, bucket, hydrant_factory, tmp_path):
    gzip_cli = require_tool("gzip", "the gzip CLI")
    stream = f"cli-gz-{aws_cli.version}"
    # One shard and one call: the records arrive together, so they form one object in send order.
    h = hydrant_factory(config_yaml(s3_stream(stream, bucket, prefix="gz/", compression="GZIP", shards=1), s3=s3))
    records = make_records(25, tag=f"gz-{aws_cli.version}")
    records_file = tmp_path / "records.json"
    records_file.write_text(json.dumps([{"Data": aws_cli.data(r)} for r in records]))
    t0 = time.time()
    out = aws_cli(h.endpoint, "put-record-batch", "--delivery-stream-name", stream, "--records", f"file://{records_file}")
    t1 = time.time()
    assert out["FailedPutCount"] == 0, out

    wait_delivered(s3, bucket, records, prefix="gz/")
    keys = list_objects(s3, bucket, "gz/")
    assert len(keys) == 1, f"one call on one shard should make one object, got {keys}"
    key = keys[0]
    check_key(key, "gz/", stream, ".gz", t0, t1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    local = tmp_path / "object.gz"
    local.write_bytes(body)
    p = subprocess.run([gzip_cli, "-dc", str(local)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == b"".join(records), "gzip -d output differs from the bytes that were sent"

    # Exactly one gzip member: nothing follows the first member's trailer.
    d = zlib.decompressobj(wbits=31)
    d.decompress(body)
    assert d.eof and d.unused_data == b"", f"object holds more than one gzip member ({len(d.unused_data)} bytes after)"
