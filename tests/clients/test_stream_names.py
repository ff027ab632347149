"""Stream names are not paths: `.` and `..` are valid Firehose names, and their streams must
keep to their own log and file (create, put, deliver, delete one, the others intact, also across
a restart), through boto3 against the real binary."""

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    delivered_counter,
    extended_s3,
    gone,
    make_records,
    s3_store_yaml,
    wait_delivered,
    wait_for,
)

def put_and_wait(fh, s3, bucket, name, prefix, tag):
    records = make_records(5, tag=tag)
    out = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    wait_delivered(s3, bucket, records, prefix=prefix)
    return records


def test_streams_named_dot_and_dotdot_keep_to_their_own_files(s3, bucket, hydrant_factory):
    h = hydrant_factory(s3_store_yaml(s3, name="default") + "shutdown_timeout_seconds: 10\n")
    fh = h.firehose()
    streams = {".": "dot/", "..": "dotdot/", "x": "x/"}
    sent = {name: [] for name in streams}
    for name, prefix in streams.items():
        fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix))
    for name, prefix in streams.items():
        sent[name] += put_and_wait(fh, s3, bucket, name, prefix, f"first-{prefix}")
    fh.delete_delivery_stream(DeliveryStreamName=".")
    wait_for(lambda: gone(fh, "."), timeout=60, what="stream . to be deleted")
    for name in ("..", "x"):
        sent[name] += put_and_wait(fh, s3, bucket, name, streams[name], f"second-{name}")
    assert sorted(fh.list_delivery_streams()["DeliveryStreamNames"]) == ["..", "x"]
    assert h.stop() == 0

    h.start()
    fh = h.firehose()
    assert sorted(fh.list_delivery_streams()["DeliveryStreamNames"]) == ["..", "x"]
    for name in ("..", "x"):
        sent[name] += put_and_wait(fh, s3, bucket, name, streams[name], f"third-{name}")
    assert h.stop() == 0
    for name, prefix in streams.items():
        assert_exactly_once(delivered_counter(s3, bucket, prefix), sent[name])
    assert sorted(p.name for p in (h.data_dir / "streams").iterdir()) == ["%2E.", "x"]
    assert_no_panic(h)
