"""The control plane against the real binary: CreateDeliveryStream, DescribeDeliveryStream,
ListDeliveryStreams, UpdateDestination, tags and DeleteDeliveryStream through boto3 and the aws
CLI v2, compared with moto_server (shapes: keys and types, and error `__type`s); API streams
that deliver to real S3 (s3s-fs), survive restarts and drain when deleted; the config file's
ownership of its streams; SIGHUP reloads and the SIGTERM drain, counting every record.

moto is the oracle for shapes only (TESTING.md). Known moto differences not compared:
- moto answers tag limit errors with ValidationException (its own choice); Hydrant with
  LimitExceededException / InvalidArgumentException as the model says;
- moto's Describe always carries LastUpdateTimestamp and omits EncryptionConfiguration from the
  S3 descriptions (see test_moto_oracle.py); only members both sides emit are compared, and
  every required member must be in Hydrant's answer.
"""

import json
import os
import signal
import threading
import time
import uuid

import botocore.exceptions
import botocore.session

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    client_error,
    config_yaml,
    delivered_counter,
    describe_error,
    extended_s3,
    list_objects,
    make_records,
    s3_store_yaml,
    s3_stream,
    wait_delivered,
    wait_for,
)

MODEL = botocore.session.get_session().get_service_model("firehose")
DEST = "destinationId-000000000001"


def api_body(s3):
    """Config file of a Hydrant whose API streams deliver to the test S3: the `default` object
    store (the one a stream created through the API uses) is the S3 server."""
    return s3_store_yaml(s3, name="default")


def keys_of(answer):
    return set(answer) - {"ResponseMetadata"}


def same_shape(shape, m, h, path):
    """Every required member (service model) is in Hydrant's answer; members both sides emit have
    the same type, recursively."""
    if shape.type_name == "structure":
        assert isinstance(h, dict) and isinstance(m, dict), path
        for member in shape.required_members:
            assert member in h, f"Hydrant's answer lacks required member {path}.{member}"
        for member in set(m) & set(h):
            if member in shape.members:
                same_shape(shape.members[member], m[member], h[member], f"{path}.{member}")
    elif shape.type_name == "list":
        assert isinstance(h, list) and isinstance(m, list), path
        for i, (mi, hi) in enumerate(zip(m, h)):
            same_shape(shape.member, mi, hi, f"{path}[{i}]")
    elif shape.type_name == "timestamp":
        assert type(m) is type(h), f"{path}: moto {m!r}, Hydrant {h!r}"
    else:
        assert type(m) is type(h) or {type(m), type(h)} <= {int, float}, f"{path}: moto {m!r}, Hydrant {h!r}"


def output_shape(op):
    return MODEL.operation_model(op).output_shape


def test_the_control_plane_answers_like_moto(s3, bucket, hydrant_factory, moto):
    """The same boto3 sequence against moto and Hydrant: same keys and types, same error codes."""
    moto_fh, moto_bucket, created = moto.fh, moto.bucket, moto.created
    h = hydrant_factory(api_body(s3))
    sides = {"moto": (moto_fh, moto_bucket), "hydrant": (h.firehose(), bucket)}
    name = "cp-" + uuid.uuid4().hex[:10]
    answers = {}
    for side, (fh, b) in sides.items():
        out = answers.setdefault(side, {})
        out["create"] = fh.create_delivery_stream(
            DeliveryStreamName=name, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration=extended_s3(b), Tags=[{"Key": "team", "Value": "web"}])
        if side == "moto":
            created.append(name)
        out["describe"] = fh.describe_delivery_stream(DeliveryStreamName=name)
        out["list"] = fh.list_delivery_streams(Limit=10000)
        out["duplicate"] = client_error(fh.create_delivery_stream, DeliveryStreamName=name,
                                      ExtendedS3DestinationConfiguration=extended_s3(b))
        out["stale"] = client_error(fh.update_destination, DeliveryStreamName=name,
                                  CurrentDeliveryStreamVersionId="7", DestinationId=DEST,
                                  ExtendedS3DestinationUpdate={"Prefix": "q/"})
        out["bad_destination"] = client_error(fh.update_destination, DeliveryStreamName=name,
                                            CurrentDeliveryStreamVersionId="1",
                                            DestinationId="destinationId-000000000009",
                                            ExtendedS3DestinationUpdate={"Prefix": "q/"})
        out["update"] = fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                                              DestinationId=DEST, ExtendedS3DestinationUpdate={"Prefix": "q/"})
        out["described_again"] = fh.describe_delivery_stream(DeliveryStreamName=name)
        out["tag"] = fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "env", "Value": "prod"}])
        out["tags"] = fh.list_tags_for_delivery_stream(DeliveryStreamName=name)
        out["tags_page"] = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=1)
        out["untag"] = fh.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["team"])
        out["tags_after"] = fh.list_tags_for_delivery_stream(DeliveryStreamName=name)
        out["delete"] = fh.delete_delivery_stream(DeliveryStreamName=name)
        if side == "moto":
            created.remove(name)
        out["gone"] = wait_for(lambda: describe_error(fh, name), timeout=60, what=f"{side} to delete {name}")
        out["missing_delete"] = client_error(fh.delete_delivery_stream, DeliveryStreamName=name)
        out["missing_update"] = client_error(fh.update_destination, DeliveryStreamName=name,
                                           CurrentDeliveryStreamVersionId="1", DestinationId=DEST,
                                           ExtendedS3DestinationUpdate={"Prefix": "q/"})
        out["missing_tags"] = client_error(fh.list_tags_for_delivery_stream, DeliveryStreamName=name)
    m, h_ = answers["moto"], answers["hydrant"]

    for op, key in [("CreateDeliveryStream", "create"), ("UpdateDestination", "update"),
                    ("TagDeliveryStream", "tag"), ("UntagDeliveryStream", "untag"),
                    ("DeleteDeliveryStream", "delete"), ("ListTagsForDeliveryStream", "tags"),
                    ("ListDeliveryStreams", "list")]:
        assert keys_of(m[key]) == keys_of(h_[key]), (op, m[key], h_[key])
        same_shape(output_shape(op), m[key], h_[key], op)
    assert h_["create"]["DeliveryStreamARN"].endswith(f":deliverystream/{name}")
    assert name in h_["list"]["DeliveryStreamNames"]
    for key in ("describe", "described_again"):
        same_shape(output_shape("DescribeDeliveryStream"), m[key], h_[key], "DescribeDeliveryStream")
        md, hd = m[key]["DeliveryStreamDescription"], h_[key]["DeliveryStreamDescription"]
        for k in ("DeliveryStreamName", "DeliveryStreamStatus", "DeliveryStreamType", "VersionId"):
            assert md[k] == hd[k], (key, k, md[k], hd[k])
        assert [d["DestinationId"] for d in md["Destinations"]] == [d["DestinationId"] for d in hd["Destinations"]]
    assert h_["described_again"]["DeliveryStreamDescription"]["VersionId"] == "2"
    ext = h_["described_again"]["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["Prefix"] == "q/" and ext["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
    assert h_["described_again"]["DeliveryStreamDescription"]["LastUpdateTimestamp"]
    for key in ("tags", "tags_page", "tags_after"):
        assert m[key]["Tags"] == h_[key]["Tags"], (key, m[key], h_[key])
        assert m[key]["HasMoreTags"] is h_[key]["HasMoreTags"], key
    expected_errors = {
        "duplicate": "ResourceInUseException", "stale": "ConcurrentModificationException",
        "bad_destination": "InvalidArgumentException", "missing_delete": "ResourceNotFoundException",
        "missing_update": "ResourceNotFoundException", "missing_tags": "ResourceNotFoundException",
        "gone": "ResourceNotFoundException",
    }
    for key, code in expected_errors.items():
        assert m[key][:2] == h_[key][:2] == (code, 400), (key, m[key], h_[key])


def test_aws_cli_v2_creates_describes_lists_and_deletes(s3, bucket, hydrant_factory, aws_v2, tmp_path):
    h = hydrant_factory(api_body(s3))
    name = "cli-" + uuid.uuid4().hex[:8]
    config = tmp_path / "s3.json"
    # The CLI's own model wants IntervalInSeconds >= 60; delete delivers the buffer anyway.
    config.write_text(json.dumps(extended_s3(bucket, prefix="cli/", interval=60, compression="GZIP")))
    created = aws_v2(h.endpoint, "create-delivery-stream", "--delivery-stream-name", name,
                     "--delivery-stream-type", "DirectPut",
                     "--extended-s3-destination-configuration", f"file://{config}")
    assert created == {"DeliveryStreamARN": f"arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}"}
    described = aws_v2(h.endpoint, "describe-delivery-stream", "--delivery-stream-name", name)
    d = described["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] == "ACTIVE" and d["VersionId"] == "1"
    assert d["Destinations"][0]["ExtendedS3DestinationDescription"]["CompressionFormat"] == "GZIP"
    listed = aws_v2(h.endpoint, "list-delivery-streams")
    assert listed == {"DeliveryStreamNames": [name], "HasMoreDeliveryStreams": False}
    records = make_records(5, tag="cli")
    for r in records:
        aws_v2(h.endpoint, "put-record", "--delivery-stream-name", name,
               "--record", json.dumps({"Data": aws_v2.data(r)}))
    assert aws_v2(h.endpoint, "delete-delivery-stream", "--delivery-stream-name", name) == {}
    wait_for(lambda: aws_v2(h.endpoint, "describe-delivery-stream", "--delivery-stream-name", name, ok=False).returncode != 0,
             timeout=60, what="the stream to be deleted")
    p = aws_v2(h.endpoint, "describe-delivery-stream", "--delivery-stream-name", name, ok=False)
    assert "ResourceNotFoundException" in p.stderr, p.stderr
    # Delete delivered what the stream buffered.
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="cli/"), records)


def test_a_terraform_style_loop(s3, bucket, hydrant_factory):
    """What an IaC tool does: create, wait for ACTIVE, update with the current version, read back,
    tag, delete, wait for ResourceNotFound."""
    h = hydrant_factory(api_body(s3))
    fh = h.firehose()
    name = "tf-" + uuid.uuid4().hex[:8]
    arn = fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                                    ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="tf/"))["DeliveryStreamARN"]
    d = wait_for(lambda: (lambda x: x if x["DeliveryStreamStatus"] == "ACTIVE" else None)(
        fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]), what="ACTIVE")
    assert d["DeliveryStreamARN"] == arn
    version = d["VersionId"]
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId=version, DestinationId=DEST,
                          ExtendedS3DestinationUpdate={"Prefix": "tf2/", "CompressionFormat": "GZIP",
                                                       "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 5}})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == str(int(version) + 1)
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert (ext["Prefix"], ext["CompressionFormat"], ext["BufferingHints"]) == (
        "tf2/", "GZIP", {"SizeInMBs": 2, "IntervalInSeconds": 5})
    assert ext["BucketARN"] == f"arn:aws:s3:::{bucket}"  # kept: not in the update
    assert d["Destinations"][0]["S3DestinationDescription"]["Prefix"] == "tf2/"
    fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "managed-by", "Value": "terraform"}])
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [
        {"Key": "managed-by", "Value": "terraform"}]
    # A second apply with the old version is refused.
    code, status, message = client_error(fh.update_destination, DeliveryStreamName=name,
                                       CurrentDeliveryStreamVersionId=version, DestinationId=DEST,
                                       ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert (code, status) == ("ConcurrentModificationException", 400) and "version" in message
    fh.delete_delivery_stream(DeliveryStreamName=name)
    code = wait_for(lambda: describe_error(fh, name), timeout=60, what="ResourceNotFoundException")
    assert code[:2] == ("ResourceNotFoundException", 400)
    assert name not in fh.list_delivery_streams()["DeliveryStreamNames"]


def test_a_timestamp_pattern_hydrant_cannot_render_is_refused_naming_the_field(s3, bucket, hydrant_factory):
    """`b` is no pattern letter: CreateDeliveryStream and UpdateDestination refuse the prefix with
    the path of the field and the expression, as `hydrant validate` does, before any log exists."""
    h = hydrant_factory(api_body(s3))
    fh = h.firehose()
    name = "ts-" + uuid.uuid4().hex[:8]
    bad = dict(extended_s3(bucket, prefix="t/!{timestamp:yyyy-bb}/"),
               ErrorOutputPrefix="e/!{firehose:error-output-type}/")
    code, status, message = client_error(fh.create_delivery_stream, DeliveryStreamName=name,
                                         ExtendedS3DestinationConfiguration=bad)
    assert (code, status) == ("InvalidArgumentException", 400), message
    assert "ExtendedS3DestinationConfiguration.Prefix: Prefix has an invalid expression " \
           "`!{timestamp:yyyy-bb}`" in message, message
    assert "unknown pattern letter 'b'" in message, message
    assert name not in fh.list_delivery_streams()["DeliveryStreamNames"]

    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(bucket))
    code, status, message = client_error(
        fh.update_destination, DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
        DestinationId=DEST, ExtendedS3DestinationUpdate={"Prefix": "t/!{timestamp:ww}/",
                                                         "ErrorOutputPrefix": "e/!{firehose:error-output-type}/"})
    assert (code, status) == ("InvalidArgumentException", 400), message
    assert "Prefix has an invalid expression `!{timestamp:ww}`" in message, message
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "1"
    assert d["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"] == "p/"
    assert_no_panic(h)


def test_api_stream_records_reach_s3_and_updates_rename_objects(s3, bucket, hydrant_factory):
    h = hydrant_factory(api_body(s3))
    fh = h.firehose()
    name = "up-" + uuid.uuid4().hex[:8]
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="v1/"))
    first = make_records(30, tag="v1")
    assert fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in first])["FailedPutCount"] == 0
    assert_exactly_once(wait_delivered(s3, bucket, first, prefix="v1/"), first)
    assert all(k.rsplit("/", 1)[1].startswith(f"{name}-1-") for k in list_objects(s3, bucket, "v1/"))
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1", DestinationId=DEST,
                          ExtendedS3DestinationUpdate={"Prefix": "v2/"})
    second = make_records(30, tag="v2")
    assert fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in second])["FailedPutCount"] == 0
    assert_exactly_once(wait_delivered(s3, bucket, second, prefix="v2/"), second)
    keys = list_objects(s3, bucket, "v2/")
    assert keys and all(k.rsplit("/", 1)[1].startswith(f"{name}-2-") for k in keys), keys
    assert_exactly_once(delivered_counter(s3, bucket), first + second)


def test_an_api_stream_survives_a_restart(s3, bucket, hydrant_factory):
    h = hydrant_factory(api_body(s3) + "shutdown_timeout_seconds: 20\n")
    fh = h.firehose()
    name = "keep-" + uuid.uuid4().hex[:8]
    fh.create_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "k", "Value": "v"}],
                              ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="r/", interval=300))
    before = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    first = make_records(20, tag="before-restart")
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in first])
    assert h.stop() == 0
    assert (h.data_dir / "api-streams" / f"{name}.json").exists()
    h.start()
    fh = h.firehose()
    after = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert after == before
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [{"Key": "k", "Value": "v"}]
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == [name]
    second = make_records(20, tag="after-restart")
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in second])
    assert h.stop() == 0
    assert_exactly_once(delivered_counter(s3, bucket, "r/"), first + second)


def test_config_file_streams_are_refused_to_the_api(s3, bucket, hydrant_factory):
    h = hydrant_factory(config_yaml(s3_stream("owned", bucket), s3=s3))
    fh = h.firehose()
    calls = [
        (fh.delete_delivery_stream, dict(DeliveryStreamName="owned")),
        (fh.update_destination, dict(DeliveryStreamName="owned", CurrentDeliveryStreamVersionId="1",
                                     DestinationId=DEST, ExtendedS3DestinationUpdate={"Prefix": "x/"})),
        (fh.tag_delivery_stream, dict(DeliveryStreamName="owned", Tags=[{"Key": "a", "Value": "b"}])),
        (fh.untag_delivery_stream, dict(DeliveryStreamName="owned", TagKeys=["a"])),
        (fh.start_delivery_stream_encryption, dict(DeliveryStreamName="owned")),
        (fh.stop_delivery_stream_encryption, dict(DeliveryStreamName="owned")),
    ]
    for call, kw in calls:
        code, status, message = client_error(call, **kw)
        assert (code, status) == ("ResourceInUseException", 400), (call, code)
        assert "config file" in message, message
    code, status, message = client_error(fh.create_delivery_stream, DeliveryStreamName="owned",
                                       ExtendedS3DestinationConfiguration=extended_s3(bucket))
    assert (code, status) == ("ResourceInUseException", 400)
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName="owned") ["Tags"] == []
    # Still serving.
    records = make_records(3, tag="owned")
    fh.put_record_batch(DeliveryStreamName="owned", Records=[{"Data": r} for r in records])
    assert_exactly_once(wait_delivered(s3, bucket, records), records)


def test_delete_delivers_buffered_records_before_removing_the_stream(s3, bucket, hydrant_factory):
    h = hydrant_factory(api_body(s3))
    fh = h.firehose()
    name = "del-" + uuid.uuid4().hex[:8]
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(
        bucket, prefix="d/", interval=300, size=64))
    records = make_records(200, tag="deleted")
    for i in range(0, 200, 50):
        assert fh.put_record_batch(DeliveryStreamName=name,
                                   Records=[{"Data": r} for r in records[i:i + 50]])["FailedPutCount"] == 0
    time.sleep(1)
    assert list_objects(s3, bucket, "d/") == [], "nothing is due for 300 s"
    fh.delete_delivery_stream(DeliveryStreamName=name)
    code, status, _ = client_error(fh.put_record, DeliveryStreamName=name, Record={"Data": b"late\n"})
    assert (code, status) == ("ResourceNotFoundException", 400)
    wait_for(lambda: describe_error(fh, name), timeout=60, what="the stream to be deleted")
    assert_exactly_once(delivered_counter(s3, bucket, "d/"), records)
    assert not (h.data_dir / "streams" / name).exists()
    assert not (h.data_dir / "api-streams" / f"{name}.json").exists()


class Producer(threading.Thread):
    """Puts small batches into streams until stopped; remembers every acknowledged record."""

    def __init__(self, fh, streams, tag):
        super().__init__(daemon=True)
        self.fh, self.streams, self.tag = fh, streams, tag
        self.acked = {s: [] for s in streams}
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        n = 0
        while not self.halt.is_set():
            for stream in self.streams:
                batch = make_records(5, tag=f"{self.tag}-{stream}-{n}")
                try:
                    out = self.fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in batch])
                except botocore.exceptions.ClientError as e:
                    self.errors.append((stream, e.response["Error"]["Code"]))
                    continue
                for r, answer in zip(batch, out["RequestResponses"]):
                    if "RecordId" in answer:
                        self.acked[stream].append(r)
            n += 1
            time.sleep(0.02)

    def stop(self):
        self.halt.set()
        self.join(timeout=30)


def test_sighup_adds_changes_and_removes_streams_without_losing_or_repeating_records(s3, bucket, hydrant_factory):
    before = config_yaml(*(s3_stream(n, bucket, prefix=f"{n}/", interval=1) for n in ("keep", "change", "drop")), s3=s3)
    h = hydrant_factory(before)
    fh = h.firehose()
    dropped = make_records(20, tag="drop")
    fh.put_record_batch(DeliveryStreamName="drop", Records=[{"Data": r} for r in dropped])
    producer = Producer(fh, ["keep", "change"], "during")
    producer.start()
    time.sleep(1.5)

    after = [
        s3_stream("keep", bucket, prefix="keep/", interval=1),
        s3_stream("change", bucket, prefix="change2/", interval=1),
        s3_stream("add", bucket, prefix="add/", interval=1),
    ]
    h.write_config(config_yaml(*after, s3=s3))
    h.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "delivery stream add added" in h.log_path.read_text(), timeout=30, what="the reload")
    log = h.log_path.read_text()
    assert "delivery stream change changed: restarted with version 2" in log, h.log()
    assert "delivery stream drop removed" in log, h.log()
    wait_for(lambda: describe_error(fh, "drop"), timeout=30, what="drop to be removed")
    assert fh.describe_delivery_stream(DeliveryStreamName="change")["DeliveryStreamDescription"]["VersionId"] == "2"
    added = make_records(20, tag="add")
    fh.put_record_batch(DeliveryStreamName="add", Records=[{"Data": r} for r in added])
    time.sleep(1.5)

    # An invalid file is rejected with the validation messages; everything keeps serving.
    after[0].destination["ExtendedS3DestinationConfiguration"]["BufferingHints"]["Bogus"] = 2
    h.write_config(config_yaml(*after, s3=s3))
    h.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "invalid configuration" in h.log_path.read_text(), timeout=30, what="the rejection")
    assert "Bogus" in h.log_path.read_text()
    time.sleep(1)
    producer.stop()
    assert not producer.errors, producer.errors[:5]
    assert sorted(fh.list_delivery_streams()["DeliveryStreamNames"]) == ["add", "change", "keep"]

    assert_exactly_once(wait_delivered(s3, bucket, producer.acked["keep"], prefix="keep/"), producer.acked["keep"])
    change = producer.acked["change"]
    wait_for(lambda: sum(delivered_counter(s3, bucket, p)[r.rstrip(b"\n")] for p in ("change/", "change2/")
                         for r in change[-1:]) > 0, timeout=60, what="the last change record")
    counts = delivered_counter(s3, bucket, "change/") + delivered_counter(s3, bucket, "change2/")
    assert_exactly_once(counts, change)
    assert delivered_counter(s3, bucket, "change2/"), "records after the change went to the new prefix"
    assert all(k.rsplit("/", 1)[1].startswith("change-2-") for k in list_objects(s3, bucket, "change2/"))
    assert_exactly_once(wait_delivered(s3, bucket, dropped, prefix="drop/"), dropped)
    assert_exactly_once(wait_delivered(s3, bucket, added, prefix="add/"), added)
    # The removed stream's log is kept, so adding it back resumes it.
    assert (h.data_dir / "streams" / "drop").exists()
    assert h.stop() == 0


def test_sigterm_delivers_buffered_records_within_the_deadline_and_exits_0(s3, bucket, hydrant_factory):
    h = hydrant_factory(config_yaml(s3_stream("slow", bucket, prefix="slow/", interval=300, size=64), s3=s3,
                                    shutdown_timeout_seconds=20))
    fh = h.firehose()
    records = make_records(500, tag="sigterm")
    for i in range(0, 500, 100):
        assert fh.put_record_batch(DeliveryStreamName="slow",
                                   Records=[{"Data": r} for r in records[i:i + 100]])["FailedPutCount"] == 0
    time.sleep(1)
    assert list_objects(s3, bucket, "slow/") == []
    started = time.time()
    h.proc.send_signal(signal.SIGTERM)
    code = h.proc.wait(timeout=30)
    elapsed = time.time() - started
    assert code == 0, h.log()
    assert elapsed < 20, f"took {elapsed:.1f}s"
    assert_exactly_once(delivered_counter(s3, bucket, "slow/"), records)
    # Nothing is left to deliver after a restart.
    h.start()
    time.sleep(2)
    assert h.stop() == 0
    assert_exactly_once(delivered_counter(s3, bucket, "slow/"), records)


def log_key_yaml(ids=("k1", "k2")):
    """storage.encryption with fresh master keys; the first is active."""
    import base64 as b64mod
    keys = {k: b64mod.b64encode(os.urandom(32)).decode() for k in ids}
    return (f"storage:\n  encryption:\n    active_key: {ids[0]}\n    keys:\n"
            + "".join(f"      - {{ id: {k}, base64: \"{v}\" }}\n" for k, v in keys.items()))


def segment_bytes(h, name):
    out = b""
    for seg in sorted((h.data_dir / "streams" / name).glob("shard-*/*.seg")):
        out += seg.read_bytes()
    return out


def test_encryption_starts_and_stops_like_moto(s3, bucket, hydrant_factory, moto):
    moto_fh, moto_bucket, created = moto.fh, moto.bucket, moto.created
    h = hydrant_factory(api_body(s3) + log_key_yaml())
    sides = {"moto": (moto_fh, moto_bucket), "hydrant": (h.firehose(), bucket)}
    name = "enc-" + uuid.uuid4().hex[:10]
    arn = "arn:aws:kms:us-east-1:000000000000:key/k2"
    answers = {}
    for side, (fh, b) in sides.items():
        out = answers.setdefault(side, {})
        fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(b))
        if side == "moto":
            created.append(name)
        out["start"] = fh.start_delivery_stream_encryption(
            DeliveryStreamName=name,
            DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": arn})
        out["enabled"] = fh.describe_delivery_stream(DeliveryStreamName=name)
        out["stop"] = fh.stop_delivery_stream_encryption(DeliveryStreamName=name)
        out["disabled"] = fh.describe_delivery_stream(DeliveryStreamName=name)
        out["missing"] = client_error(fh.start_delivery_stream_encryption, DeliveryStreamName=name + "-x",
                                    DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    m, h_ = answers["moto"], answers["hydrant"]
    enc = lambda d: d["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]  # noqa: E731
    for op, key in [("StartDeliveryStreamEncryption", "start"), ("StopDeliveryStreamEncryption", "stop")]:
        assert keys_of(m[key]) == keys_of(h_[key]) == set(), (op, m[key], h_[key])
    for key in ("enabled", "disabled"):
        same_shape(output_shape("DescribeDeliveryStream"), m[key], h_[key], "DescribeDeliveryStream")
    assert enc(m["enabled"]) == enc(h_["enabled"]) == {
        "KeyARN": arn, "KeyType": "CUSTOMER_MANAGED_CMK", "Status": "ENABLED"}
    # moto keeps the key in a stopped stream's description; both say DISABLED.
    assert enc(m["disabled"])["Status"] == enc(h_["disabled"])["Status"] == "DISABLED"
    assert m["missing"][:2] == h_["missing"][:2] == ("ResourceNotFoundException", 400)
    # Hydrant's own refusals: a key it does not have, a KeyARN with AWS_OWNED_CMK.
    fh = h.firehose()
    code, status, message = client_error(
        fh.start_delivery_stream_encryption, DeliveryStreamName=name,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK",
                                                    "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/nope"})
    assert (code, status) == ("InvalidKMSResourceException", 400) and "k1, k2" in message, message
    code, _, message = client_error(
        fh.start_delivery_stream_encryption, DeliveryStreamName=name,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK", "KeyARN": arn})
    assert code == "InvalidArgumentException" and "KeyARN" in message, message


def test_switching_encryption_under_load_and_a_kill_loses_nothing(s3, bucket, hydrant_factory):
    """Producers put without pause while encryption is switched on and off ten times, and the
    process is killed -9 while encrypted records are still undelivered: every acknowledged record
    is delivered, the log never holds an encrypted-phase record in the clear, and the put answers'
    Encrypted follows the switches."""
    h = hydrant_factory(api_body(s3) + log_key_yaml())
    fh = h.firehose()
    name = "encl-" + uuid.uuid4().hex[:8]
    fh.create_delivery_stream(DeliveryStreamName=name,
                              ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="e/", interval=60))
    acked, flags, stop = [], set(), threading.Event()

    def produce():
        client = h.firehose()
        while not stop.is_set():
            batch = make_records(50, tag="load")
            answer = client.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in batch])
            assert answer["FailedPutCount"] == 0
            acked.extend(batch)
            flags.add(answer["Encrypted"])

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for _ in range(10):
            fh.start_delivery_stream_encryption(DeliveryStreamName=name,
                                                DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
            time.sleep(0.1)
            fh.stop_delivery_stream_encryption(DeliveryStreamName=name)
            time.sleep(0.1)
    finally:
        stop.set()
        producer.join()
    assert flags == {True, False}, flags
    # Encrypted records from here on: they must not be readable in the log file.
    fh.start_delivery_stream_encryption(DeliveryStreamName=name,
                                        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    secret = make_records(40, tag="secret-after-switch")
    answer = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in secret])
    assert answer["FailedPutCount"] == 0 and answer["Encrypted"] is True
    log = segment_bytes(h, name)
    assert b"secret-after-switch" not in log and b'"tag":"load"' in log
    h.kill()
    h.start()
    assert h.firehose().describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]["Status"] == "ENABLED"
    assert h.stop() == 0  # the graceful stop delivers the 60 s buffers
    assert_exactly_once(delivered_counter(s3, bucket, "e/"), acked + secret)
    assert_no_panic(h)


def test_watch_config_reloads_when_the_file_changes(s3, bucket, hydrant_factory, monkeypatch):
    """`serve --watch-config` (here through HYDRANT_WATCH_CONFIG): an edit of the file applies
    like SIGHUP, no signal sent; a broken edit is refused and the running streams stay."""
    monkeypatch.setenv("HYDRANT_WATCH_CONFIG", "true")
    first = s3_stream("first", bucket, prefix="first/")
    h = hydrant_factory(config_yaml(first, s3=s3))
    fh = h.firehose()
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == ["first"]
    h.write_config(config_yaml(first, s3_stream("second", bucket, prefix="second/"), s3=s3))
    wait_for(lambda: "second" in fh.list_delivery_streams()["DeliveryStreamNames"], timeout=20,
             what="the watched file's new stream")
    records = make_records(10, tag="watched")
    assert fh.put_record_batch(DeliveryStreamName="second", Records=[{"Data": r} for r in records])["FailedPutCount"] == 0
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="second/"), records)
    h.config_path.write_text(h.config_path.read_text() + "  - DeliveryStreamName: [broken\n")
    wait_for(lambda: "invalid configuration" in h.log(), timeout=20, what="the broken edit to be refused")
    assert fh.list_delivery_streams()["DeliveryStreamNames"] == ["first", "second"]
    assert h.stop() == 0
    assert_no_panic(h)


def test_changing_hydrant_shards_reshards_the_log_without_losing_or_repeating_records(s3, bucket, hydrant_factory):
    """hydrant.shards changed by SIGHUP (2 -> 4, under load) and while the server is down (4 -> 1,
    after a kill -9): the log splits and merges its shards in place (the running workers are
    granted the new shards; the version stays), delivery finishes each closed shard before its
    children, and every acknowledged record lands once."""
    def config(shards):
        return config_yaml(s3_stream("grow", bucket, prefix="grow/", interval=1, shards=shards), s3=s3)

    h = hydrant_factory(config(2))
    fh = h.firehose()
    producer = Producer(fh, ["grow"], "before")
    producer.start()
    time.sleep(1.5)
    h.write_config(config(4))
    h.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "delivery stream grow resharded to 4 shards" in h.log_path.read_text(),
             timeout=30, what="the reload")
    assert "resharded the stream's log to hydrant.shards" in h.log_path.read_text(), h.log()
    time.sleep(1.5)
    producer.stop()
    assert not producer.errors, producer.errors[:5]
    lineage = json.loads((h.data_dir / "streams" / "grow" / "shards.json").read_text())
    assert sum(not s["closed"] for s in lineage["shards"]) == 4, lineage

    h.kill()
    h.write_config(config(1))
    h.start()
    after = make_records(50, tag="after")
    fh = h.firehose()
    fh.put_record_batch(DeliveryStreamName="grow", Records=[{"Data": r} for r in after])
    lineage = json.loads((h.data_dir / "streams" / "grow" / "shards.json").read_text())
    assert sum(not s["closed"] for s in lineage["shards"]) == 1, lineage
    acked = producer.acked["grow"] + after
    assert_exactly_once(wait_delivered(s3, bucket, acked, prefix="grow/"), acked)
    # The shard count is not part of the version: every object is named with version 1.
    keys = list_objects(s3, bucket, "grow/")
    assert keys and all(k.rsplit("/", 1)[-1].startswith("grow-1-") for k in keys), keys
    assert h.stop() == 0
