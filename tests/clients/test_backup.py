"""Source-record backup, end to end through boto3 and the real `hydrant` binary.

`S3BackupMode: Enabled` (S3) writes every record as the producer sent it, before any
transform, to `S3BackupConfiguration`, while the destination gets the transformed records;
`AllData` (HTTP endpoint) writes every record to `S3Configuration` as well as sending it. The
backup is its own consumer of the log with its own checkpoint, so both outputs hold every record
exactly once, also across a SIGKILL."""

import collections
import json
import uuid

from conftest import (
    WASM_DIST,
    Hydrant,
    Stream,
    config_yaml,
    delivered_counter,
    lambda_processor,
    list_objects,
    new_bucket,
    read_object,
    s3_client,
    s3_stream,
    wait_for,
)
from stubs import Receiver


def lines_under(s3, bucket, prefix):
    out = collections.Counter()
    for key in list_objects(s3, bucket, prefix):
        out.update(line for line in read_object(s3, bucket, key).splitlines() if line)
    return out


def test_enabled_backup_keeps_the_source_records_while_the_destination_gets_transformed_ones(tmp_path):
    s3 = s3_client()
    bucket, backup = new_bucket(s3), new_bucket(s3)
    backup_configuration = {"BucketARN": f"arn:aws:s3:::{backup}", "Prefix": "source/", "CompressionFormat": "GZIP",
                            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}
    body = config_yaml(s3_stream("bk", bucket, prefix="out/", shards=2,
                                 processors=[lambda_processor(str(WASM_DIST / "json_filter_redact.wasm"))],
                                 S3BackupMode="Enabled", S3BackupConfiguration=backup_configuration), s3=s3)
    h = Hydrant(tmp_path, body).start()
    try:
        fh = h.firehose()
        run = uuid.uuid4().hex
        records = [json.dumps({"run": run, "i": i, "password": f"pw-{i}@example.com"}).encode() + b"\n"
                   for i in range(300)]
        for chunk in range(0, len(records), 100):
            out = fh.put_record_batch(DeliveryStreamName="bk",
                                      Records=[{"Data": r} for r in records[chunk:chunk + 100]])
            assert out["FailedPutCount"] == 0, out
        wait_for(lambda: sum(lines_under(s3, backup, "source/").values()) >= len(records), timeout=60,
                 what="every source record in the backup bucket")
        wait_for(lambda: sum(delivered_counter(s3, bucket, "out/").values()) >= len(records), timeout=60,
                 what="every record at the destination")
        # Backup objects are GZIP (read_object gunzips .gz keys) and hold the records as sent.
        keys = list_objects(s3, backup, "source/")
        assert keys and all(k.endswith(".gz") for k in keys), keys
        assert lines_under(s3, backup, "source/") == collections.Counter(r.rstrip(b"\n") for r in records)
        delivered = [line for k in list_objects(s3, bucket, "out/") for line in read_object(s3, bucket, k).splitlines()]
        assert len(delivered) == len(records)
        assert all(b"@example.com" not in line for line in delivered), "the destination got untransformed data"
        assert h.metric("hydrant_backup_to_s3_records_total", "bk") == len(records)
    finally:
        h.kill()


def test_all_data_backup_of_an_http_endpoint_survives_a_kill(tmp_path):
    s3 = s3_client()
    bucket = new_bucket(s3)
    with Receiver() as receiver:
        body = config_yaml(Stream("hb", {"HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": receiver.url},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "S3BackupMode": "AllData",
            "S3Configuration": {"BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": "all/",
                                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}},
        }}, {"object_store": "s3", "shards": 1}), s3=s3)
        h = Hydrant(tmp_path, body).start()
        try:
            run = uuid.uuid4().hex
            records = [json.dumps({"run": run, "i": i}).encode() for i in range(200)]
            fh = h.firehose()
            out = fh.put_record_batch(DeliveryStreamName="hb", Records=[{"Data": r} for r in records[:100]])
            assert out["FailedPutCount"] == 0
            h.kill()  # acknowledged, maybe not yet backed up
            h.start()
            fh = h.firehose()
            out = fh.put_record_batch(DeliveryStreamName="hb", Records=[{"Data": r} for r in records[100:]])
            assert out["FailedPutCount"] == 0
            # The records carry no newline: a backup object is their concatenation, as Firehose
            # writes it; count each record's JSON object.
            def backed_up():
                blob = b"".join(read_object(s3, bucket, k) for k in list_objects(s3, bucket, "all/"))
                return collections.Counter(blob.replace(b"}{", b"}\n{").splitlines())

            wait_for(lambda: sum(backed_up().values()) >= len(records), timeout=60,
                     what="every record backed up")
            assert backed_up() == collections.Counter(records), "each record backed up exactly once"
            got = {r for _, recs in receiver.records() for r in recs}
            wait_for(lambda: {r for _, recs in receiver.records() for r in recs} >= set(records), timeout=60,
                     what="every record at the receiver")
            assert got <= set(records)
        finally:
            h.kill()
