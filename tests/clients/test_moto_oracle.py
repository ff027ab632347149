"""moto as an oracle of the API's shape: the same boto3 calls go to moto_server and to Hydrant, and
the answers must have the same keys (recursively, for DescribeDeliveryStream's required members,
which the botocore service model lists) and the same error codes and statuses.

Where moto is known to be wrong (FIREHOSE.md, TESTING.md) it is NOT used as the oracle:
- moto accepts 501 records in one PutRecordBatch (Firehose's limit is 500): not compared; Hydrant's
  ValidationException is checked in test_errors.py instead.
- moto ignores BufferingHints and compression and writes one object per put: object counts and
  contents are not compared, only the shape of the key.
- moto's Extended/S3DestinationDescription omit EncryptionConfiguration, a required member in the
  service model (and present in real AWS answers, FIREHOSE.md 1.8): Hydrant must have every
  required member; one moto lacks is listed as a moto omission, never required of moto.
- moto lists streams in creation order and ignores an ExclusiveStartDeliveryStreamName that names
  no stream (Firehose sorts and starts strictly after the name, FIREHOSE.md 1.9): only pages that
  start at an existing stream are compared.
- moto's object keys use random UUIDv4; Hydrant's are deterministic UUIDv8 (on purpose, for
  exactly-once re-delivery), so the uuid version is not compared.
"""

import re
import uuid

import botocore.exceptions
import botocore.session
import pytest

from conftest import config_yaml, extended_s3, list_objects, make_records, s3_stream, wait_for

# KEY_SUFFIX of conftest, with any UUID version (moto uses v4).
ANY_KEY = re.compile(
    r"(?P<prefix>.*?)(?P<hour>\d{4}/\d{2}/\d{2}/\d{2}/)(?P<stream>[A-Za-z0-9_.-]+)-(?P<version>\d+)-"
    r"(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?P<ext>(\.[a-z]+)?)$"
)

MODEL = botocore.session.get_session().get_service_model("firehose")


@pytest.fixture
def pair(s3, bucket, hydrant_factory, moto):
    """One stream of the same name (and buffering, prefix) in moto and in Hydrant."""
    tag = uuid.uuid4().hex[:10]
    names = [f"orc-{tag}-{c}" for c in "abc"]
    for n in names:
        create = dict(
            DeliveryStreamName=n, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration=extended_s3(moto.bucket, interval=1, size=5))
        try:
            moto.fh.create_delivery_stream(**create)
        except moto.fh.exceptions.LimitExceededException:
            # moto keeps Firehose's 50-stream limit across runs on one moto_server: drop streams
            # this module left behind (interrupted runs) and try again.
            for old in moto.fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]:
                if old.startswith("orc-") and old not in names:
                    moto.fh.delete_delivery_stream(DeliveryStreamName=old)
            moto.fh.create_delivery_stream(**create)
        moto.created.append(n)
    h = hydrant_factory(config_yaml(*(s3_stream(n, bucket, prefix="p/", interval=1, size=5) for n in names), s3=s3))
    return {"moto": moto.fh, "hydrant": h.firehose(), "names": names, "moto_s3": moto.s3,
            "moto_bucket": moto.bucket, "bucket": bucket, "h": h}


def keys_of(answer):
    return set(answer) - {"ResponseMetadata"}


def both(pair, op, **kw):
    out = {}
    for side in ("moto", "hydrant"):
        out[side] = getattr(pair[side], op)(**kw)
        meta = out[side]["ResponseMetadata"]
        assert meta["HTTPStatusCode"] == 200, (side, op, meta)
        assert meta["HTTPHeaders"].get("content-type", "").startswith("application/x-amz-json-1.1"), (side, meta)
        assert meta.get("RequestId"), (side, op)
    return out["moto"], out["hydrant"]


def both_fail(pair, op, **kw):
    out = {}
    for side in ("moto", "hydrant"):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            getattr(pair[side], op)(**kw)
        r = info.value.response
        assert r["ResponseMetadata"].get("RequestId"), (side, op)
        out[side] = (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"],
                     r["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype"))
    return out["moto"], out["hydrant"]


def test_put_record_answers_have_the_same_keys(pair):
    (record,) = make_records(1, tag="orc")
    m, h = both(pair, "put_record", DeliveryStreamName=pair["names"][0], Record={"Data": record})
    assert keys_of(m) == keys_of(h) == {"RecordId", "Encrypted"}, (m, h)
    assert type(m["Encrypted"]) is type(h["Encrypted"]) is bool


def test_put_record_batch_answers_have_the_same_keys(pair):
    records = make_records(7, tag="orc-batch")
    m, h = both(pair, "put_record_batch", DeliveryStreamName=pair["names"][0], Records=[{"Data": r} for r in records])
    assert keys_of(m) == keys_of(h) == {"FailedPutCount", "Encrypted", "RequestResponses"}, (m, h)
    assert m["FailedPutCount"] == h["FailedPutCount"] == 0
    assert len(m["RequestResponses"]) == len(h["RequestResponses"]) == len(records)
    assert [set(e) for e in m["RequestResponses"]] == [set(e) for e in h["RequestResponses"]]


def test_delivered_object_keys_have_the_same_shape(pair, s3):
    """Both name objects <prefix>yyyy/MM/dd/HH/<stream>-1-<time>-<uuid>; moto writes at once."""
    name = pair["names"][1]
    records = make_records(3, tag="orc-keys")
    both(pair, "put_record_batch", DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    hyd = wait_for(lambda: list_objects(s3, pair["bucket"], "p/"), timeout=30, what="a Hydrant object")
    moto = wait_for(lambda: list_objects(pair["moto_s3"], pair["moto_bucket"], "p/"), timeout=30, what="a moto object")
    shapes = set()
    for side, key in [("moto", moto[0]), ("hydrant", hyd[0])]:
        m = ANY_KEY.fullmatch(key)
        assert m, f"{side} key {key!r} is not <prefix>yyyy/MM/dd/HH/<stream>-<version>-<time>-<uuid><ext>"
        shapes.add((m["prefix"], m["stream"], m["version"], m["ext"]))
    assert len(shapes) == 1, shapes


def test_list_delivery_streams_answers_match(pair):
    # moto lists in creation order (not alphabetically) and ignores an ExclusiveStartDeliveryStreamName
    # that is not a stream, so only pages that start at one of our (consecutively created, sorted)
    # streams are compared; Hydrant's own sorting is checked in test_boto3.py.
    a, b, c = pair["names"]
    m, h = both(pair, "list_delivery_streams", Limit=1, ExclusiveStartDeliveryStreamName=a)
    assert keys_of(m) == keys_of(h) == {"DeliveryStreamNames", "HasMoreDeliveryStreams"}
    assert m["DeliveryStreamNames"] == h["DeliveryStreamNames"] == [b], (m, h)
    assert m["HasMoreDeliveryStreams"] is h["HasMoreDeliveryStreams"] is True
    m, h = both(pair, "list_delivery_streams", Limit=1, ExclusiveStartDeliveryStreamName=b)
    assert m["DeliveryStreamNames"] == h["DeliveryStreamNames"] == [c]
    m, h = both(pair, "list_delivery_streams")
    assert keys_of(m) == keys_of(h)
    assert type(m["HasMoreDeliveryStreams"]) is type(h["HasMoreDeliveryStreams"]) is bool
    assert h["DeliveryStreamNames"] == sorted(pair["names"])


def compare_required(shape, m, h, path, moto_omits):
    """Every required member (per the service model) is in Hydrant's answer, and where moto has it
    too, recursively the same. Returns nothing; collects moto's own omissions in moto_omits."""
    if shape.type_name == "structure":
        assert isinstance(h, dict), f"{path}: Hydrant has {type(h).__name__}, the model says structure"
        for member in shape.required_members:
            assert member in h, f"Hydrant's answer lacks required member {path}.{member}"
            if member not in m:
                moto_omits.append(f"{path}.{member}")
                continue
            compare_required(shape.members[member], m[member], h[member], f"{path}.{member}", moto_omits)
        # Optional members both sides emit must have the same shape inside, too.
        for member in set(m) & set(h) - set(shape.required_members):
            if member in shape.members:
                compare_required(shape.members[member], m[member], h[member], f"{path}.{member}", moto_omits)
    elif shape.type_name == "list":
        assert isinstance(h, list) and isinstance(m, list), path
        assert len(h) == len(m), f"{path}: {len(m)} items from moto, {len(h)} from Hydrant"
        for i, (mi, hi) in enumerate(zip(m, h)):
            compare_required(shape.member, mi, hi, f"{path}[{i}]", moto_omits)
    else:
        assert type(m) is type(h) or {type(m), type(h)} <= {int, float} or shape.type_name == "timestamp", (
            f"{path}: moto has {m!r}, Hydrant has {h!r}")


def test_describe_delivery_stream_has_every_required_member_moto_has(pair):
    name = pair["names"][0]
    m, h = both(pair, "describe_delivery_stream", DeliveryStreamName=name)
    assert keys_of(m) == keys_of(h) == {"DeliveryStreamDescription"}
    shape = MODEL.operation_model("DescribeDeliveryStream").output_shape.members["DeliveryStreamDescription"]
    omits = []
    compare_required(shape, m["DeliveryStreamDescription"], h["DeliveryStreamDescription"],
                     "DeliveryStreamDescription", omits)
    # Values that must agree (the ARN's account differs: moto uses 123456789012, Hydrant its own).
    md, hd = m["DeliveryStreamDescription"], h["DeliveryStreamDescription"]
    for k in ("DeliveryStreamName", "DeliveryStreamStatus", "DeliveryStreamType", "VersionId", "HasMoreDestinations"):
        assert md[k] == hd[k], (k, md[k], hd[k])
    assert md["Destinations"][0]["DestinationId"] == hd["Destinations"][0]["DestinationId"]
    for member in ("ExtendedS3DestinationDescription", "S3DestinationDescription"):
        for k in ("Prefix", "BufferingHints", "CompressionFormat"):
            assert md["Destinations"][0][member][k] == hd["Destinations"][0][member][k], (member, k)
    # Documented moto omission (see the module docstring); anything else missing in moto is news.
    unexpected = [p for p in omits if not p.endswith(".EncryptionConfiguration")]
    assert not unexpected, f"moto omits required members not documented here: {unexpected}"


@pytest.mark.parametrize("op,kw", [
    ("put_record", {"DeliveryStreamName": "orc-missing", "Record": {"Data": b"x\n"}}),
    ("put_record_batch", {"DeliveryStreamName": "orc-missing", "Records": [{"Data": b"x\n"}]}),
    ("describe_delivery_stream", {"DeliveryStreamName": "orc-missing"}),
])
def test_unknown_stream_errors_match(pair, op, kw):
    m, h = both_fail(pair, op, **kw)
    assert m == h == ("ResourceNotFoundException", 400, "ResourceNotFoundException"), (m, h)
