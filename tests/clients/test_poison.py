"""No record, query or error can stop a shard or the process (issue 11), proven with boto3
against the real binary:

- a jq MetadataExtractionQuery that recurses or loops forever, or asks for a terabyte, fails
  the records it runs away on (`partitioning-failed`, with the reason): the process stays up and
  the records after them on the same shard are delivered, also across a restart;
- partition key values that cannot be named (`""`, `..`, a control character) go to
  `partitioning-failed` instead of being retried forever;
- an object key the store refuses goes to the error output instead of blocking the shard;
- a destination that is down shows in `/readyz` (still 200: the pod takes records) and in
  `hydrant_delivery_blocked_seconds`, naming the stream and shard;
- a delivery worker that fails on a full disk (a real tmpfs) is restarted with a backoff,
  `/readyz` says so while it fails, and once space is freed every acknowledged record is
  delivered exactly once, without a restart of the process.
"""

import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    config_yaml,
    delivered_counter,
    error_documents,
    free_port,
    list_objects,
    make_records,
    raw_of,
    s3_store_yaml,
    s3_stream,
    stream_yaml,
    wait_delivered,
    wait_error_documents,
    wait_for,
)

ROLE = "arn:aws:iam::123456789012:role/fh"

# Recurses without end, loops without end, asks for a terabyte; otherwise partitions by .k.
RUNAWAY_QUERY = (
    "if .boom then (def f: 1 + f; f) "
    "elif .spin then (def g: g; g) "
    'elif .huge then {k: ("x" * 1000000000000)} '
    "else {k: .k} end"
)


def readyz(h):
    try:
        with h.urlopen(h.endpoint + "/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except Exception as e:  # noqa: BLE001 - urllib raises HTTPError for 503
        if hasattr(e, "code"):
            return e.code, e.read().decode()
        raise


def metric_value(h, name, **labels):
    text = h.urlopen(h.endpoint + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def jq_stream(bucket, query):
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "Prefix": "p/k=!{partitionKeyFromQuery:k}/",
        "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
        "DynamicPartitioningConfiguration": {"Enabled": True},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord"}]},
    }


def record(**fields):
    return json.dumps(dict(fields, id=uuid.uuid4().hex), separators=(",", ":")).encode()


def put(fh, name, records):
    out = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out


def partition_failures(s3, bucket, count):
    docs = wait_error_documents(s3, bucket, "err/partitioning-failed/", count, timeout=60)
    return {raw_of(doc): doc for _, doc in docs}


def test_a_runaway_jq_query_fails_its_records_and_the_shard_keeps_delivering_across_a_restart(
        s3, bucket, hydrant_factory):
    h = hydrant_factory(s3_store_yaml(s3, name="default"))
    fh = h.firehose(read_timeout=60)
    name = "runaway-" + uuid.uuid4().hex[:6]
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=jq_stream(bucket, RUNAWAY_QUERY))

    # API streams have two shards: with seven poison records and twenty good ones, both shards
    # get some of each (the config-file test below has one shard).
    good = [record(k=k) for k in "ab" * 10]
    runaway = [record(boom=True), record(spin=True), record(huge=True)]
    unnameable = [record(k=""), record(k=".."), record(k="a\nb"), record(k="x/../y")]
    # Poison first, good records last: everything behind the poison on the shard must arrive.
    put(fh, name, runaway + unnameable + good)

    want = [r + b"\n" for r in good]
    assert_exactly_once(wait_delivered(s3, bucket, want, prefix="p/"), want)
    failed = partition_failures(s3, bucket, len(runaway) + len(unnameable))
    assert set(failed) == set(runaway + unnameable), failed.keys()
    codes = {raw: doc["errorCode"] for raw, doc in failed.items()}
    assert codes[runaway[0]] == "MetadataExtraction.QueryLimitExceeded", failed[runaway[0]]
    assert "recursed too deeply" in failed[runaway[0]]["errorMessage"], failed[runaway[0]]
    assert codes[runaway[1]] == "MetadataExtraction.QueryLimitExceeded", failed[runaway[1]]
    assert "evaluation steps" in failed[runaway[1]]["errorMessage"], failed[runaway[1]]
    assert codes[runaway[2]] == "MetadataExtraction.QueryFailed", failed[runaway[2]]
    assert "longer than" in failed[runaway[2]]["errorMessage"], failed[runaway[2]]
    for raw in unnameable:
        assert codes[raw] == "DynamicPartitioning.InvalidPartitionKeyValue", failed[raw]
        assert 'partition key "k"' in failed[raw]["errorMessage"], failed[raw]
    assert h.proc.poll() is None, "the process died"
    assert_no_panic(h)

    # A restart replays nothing delivered, and the query still cannot take the process down.
    pid = h.proc.pid
    h.kill()
    h.start(timeout=60)
    assert h.proc.pid != pid
    boom = record(boom=True)
    after_good = [record(k="c") for _ in range(20)]
    put(h.firehose(read_timeout=60), name, [boom] + after_good)
    want += [r + b"\n" for r in after_good]
    assert_exactly_once(wait_delivered(s3, bucket, want, prefix="p/"), want)
    failed = partition_failures(s3, bucket, len(runaway) + len(unnameable) + 1)
    assert set(failed) == set(runaway + unnameable + [boom])
    assert len(error_documents(s3, bucket, "err/partitioning-failed/")) == len(failed), "a failure twice"
    assert h.proc.poll() is None
    assert_no_panic(h)


def test_a_config_file_stream_with_a_runaway_query_is_bounded_too(s3, bucket, hydrant_factory):
    processors = [("MetadataExtraction", {"MetadataExtractionQuery": RUNAWAY_QUERY, "JsonParsingEngine": "JQ-1.6"}),
                  ("AppendDelimiterToRecord", {})]
    h = hydrant_factory(config_yaml(s3_stream(
        "file", bucket, prefix="p/k=!{partitionKeyFromQuery:k}/", shards=1, partitioning=True, processors=processors,
        error_prefix="err/!{firehose:error-output-type}/"), s3=s3))
    fh = h.firehose(read_timeout=60)
    good, boom = record(k="z"), record(boom=True)
    put(fh, "file", [boom, good])
    wait_delivered(s3, bucket, [good + b"\n"], prefix="p/")
    failed = partition_failures(s3, bucket, 1)
    assert failed[boom]["errorCode"] == "MetadataExtraction.QueryLimitExceeded"
    assert h.proc.poll() is None
    assert_no_panic(h)


def test_an_object_key_the_store_refuses_goes_to_the_error_output_instead_of_blocking(
        s3, bucket, hydrant_factory):
    # The store cannot hold a key with an empty path segment: every object of this stream is
    # refused for good, and must go to the error output rather than be retried forever.
    h = hydrant_factory(config_yaml(s3_stream("badkey", bucket, prefix="a//b/", shards=1, error_prefix="err/"), s3=s3))
    records = make_records(5, tag="refused")
    put(h.firehose(), "badkey", records)
    docs = wait_error_documents(s3, bucket, "err/", 1, timeout=30)
    assert not list_objects(s3, bucket, "a/"), "nothing was written under the refused prefix"
    (key, doc), = docs
    assert doc["errorCode"] == "S3.InvalidKey", doc
    assert "empty path segment" in doc["errorMessage"], doc
    assert doc["objectKey"].startswith("a//b/"), doc
    assert raw_of(doc) == b"".join(records), "rawData is the whole object"
    assert doc["recordCount"] == len(records)
    status, text = readyz(h)
    assert (status, text) == (200, "ready\n"), text


def test_a_destination_that_is_down_shows_in_readyz_and_the_metrics(bucket, hydrant_factory):
    port = free_port()  # nothing listens there
    body = (
        f"object_stores:\n  down: {{ type: s3, endpoint: \"http://127.0.0.1:{port}\", region: us-east-1, "
        "access_key_id: k, secret_access_key: s, allow_http: true }\n"
        "delivery_streams:\n" + stream_yaml("stuck", bucket, shards=1, store="down")
    )
    h = hydrant_factory(body)
    put(h.firehose(), "stuck", make_records(3, tag="stuck"))

    def held_back():
        status, text = readyz(h)
        return (status, text) if "held back" in text else None

    status, text = wait_for(held_back, timeout=30, what="/readyz naming the held-back shard")
    assert status == 200, "a pod whose log takes records stays in its Service"
    assert text.startswith("ready, delivery held back on 1 shard"), text
    assert "stream=stuck shard=0 consumer=delivery" in text, text
    assert "delivery failing" in text and "S3." in text, text
    wait_for(lambda: (metric_value(h, "hydrant_delivery_blocked_seconds", stream="stuck", shard="0") or 0) >= 1,
             timeout=30, what="hydrant_delivery_blocked_seconds >= 1")
    assert h.proc.poll() is None


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MiB tmpfs (root only), unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        reason = "mounting a tmpfs needs root"
        if os.environ.get("HYDRANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory):
    """Writes until the file system is full; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_worker_that_fails_on_a_full_disk_restarts_and_delivers_everything_once_space_is_freed(
        s3, bucket, hydrant_factory, small_disk):
    body = config_yaml(s3_stream("disk", bucket, interval=3, shards=1), s3=s3)
    h = hydrant_factory(body, start=False)
    h.data_dir = small_disk / "data"
    h.config_path.write_text(f"listen: 127.0.0.1:{h.port}\ndata_dir: {h.data_dir}\n" + body)
    h.start()
    pid = h.proc.pid
    fh = h.firehose()
    try:
        before = make_records(40, tag="before-full")
        put(fh, "disk", before)
        filler = fill(small_disk)  # the object goes out, its checkpoint cannot be written

        def down():
            status, text = readyz(h)
            return (status, text) if "worker down" in text else None

        status, text = wait_for(down, timeout=30, what="/readyz reporting the failing worker")
        assert status == 200, text
        assert "stream=disk shard=0" in text and "No space left on device" in text, text
        wait_for(lambda: (metric_value(h, "hydrant_delivery_worker_restarts_total", stream="disk", shard="0") or 0) >= 2,
                 timeout=30, what="the worker restarted at least twice")
        assert metric_value(h, "hydrant_delivery_worker_stopped", stream="disk", shard="0") == 1
        assert "delivery worker failed; restarting it" in h.log_path.read_text(errors="replace")

        filler.unlink()
        freed_at = time.time()
        wait_for(lambda: readyz(h) == (200, "ready\n"), timeout=30, what="/readyz ready again")
        assert time.time() - freed_at < 25, "delivery resumed within the restart backoff (10 s) and an interval"
        after = make_records(40, tag="after-full")
        put(fh, "disk", after)
        counts = wait_delivered(s3, bucket, before + after, timeout=60)
        assert_exactly_once(counts, before + after)
        assert metric_value(h, "hydrant_delivery_worker_stopped", stream="disk", shard="0") == 0
        assert h.proc.pid == pid and h.proc.poll() is None, "no restart of the process was needed"
        assert_no_panic(h)
    finally:
        h.kill()
    assert_exactly_once(delivered_counter(s3, bucket), before + after)
