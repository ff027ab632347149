"""Object formats end to end: every CompressionFormat is read back byte for byte by a reader
Hydrant did not write (gzip, unzip, zstd CLIs; kafka-python's xerial snappy decoder;
python-snappy's Hadoop stream decoder), with Firehose's key extensions and Content-Encoding;
FileExtension overrides the extension; and DataFormatConversionConfiguration writes Parquet that
pyarrow reads with the configured schema, refusing records that do not fit to
`format-conversion-failed`."""

import base64
import datetime as dt
import io
import json
import os
import re
import subprocess
import time
import uuid
import zlib

import pytest

from conftest import (
    KEY_SUFFIX,
    list_objects,
    module_server,
    raw_of,
    require_tool,
    s3_stream,
    wait_error_documents,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # kafka-python's importlib use

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def run_tool(args, data):
    out = subprocess.run(args, input=data, capture_output=True, timeout=60)
    assert out.returncode == 0, f"{args} failed ({out.returncode}): {out.stderr.decode(errors='replace')}"
    return out.stdout


def read_gzip(body, tmp):
    # One gzip member for the whole object: nothing may follow the first member.
    d = zlib.decompressobj(wbits=31)
    d.decompress(body)
    assert d.eof and d.unused_data == b"", f"not exactly one gzip member ({len(d.unused_data)} bytes follow)"
    return run_tool([require_tool("gzip", "gzip"), "-d", "-c"], body)


def read_zip(body, tmp):
    path = tmp / f"{uuid.uuid4().hex}.zip"
    path.write_bytes(body)
    unzip = require_tool("unzip", "unzip")
    names = run_tool([unzip, "-Z1", str(path)], b"").decode().split()
    assert len(names) == 1 and re.fullmatch(UUID, names[0]), f"a zip with one entry named by a UUID: {names}"
    listing = run_tool([unzip, "-v", str(path)], b"").decode()
    assert "Defl" in listing, f"the entry should be deflated:\n{listing}"
    return run_tool([unzip, "-p", str(path)], b"")


def read_zstd(body, tmp):
    return run_tool([require_tool("zstd", "zstd"), "-d", "-c"], body)


def read_xerial(body, tmp):
    from kafka.codec import snappy_decode
    assert body[:8] == b"\x82SNAPPY\x00", f"xerial snappy-java magic expected, got {body[:8]!r}"
    return snappy_decode(body)


def read_hadoop(body, tmp):
    import snappy
    assert not body.startswith(b"\x82SNAPPY") and not body.startswith(b"\xff\x06\x00\x00sNaPpY")
    return snappy.HadoopStreamDecompressor().decompress(body)


def read_plain(body, tmp):
    return body


# stream -> (CompressionFormat, FileExtension or None, expected extension, Content-Encoding, reader)
FORMATS = {
    "unc": ("UNCOMPRESSED", None, "", None, read_plain),
    "gz": ("GZIP", None, ".gz", "gzip", read_gzip),
    "zip": ("ZIP", None, ".zip", "zip", read_zip),
    "snappy": ("Snappy", None, ".snappy", "snappy-java", read_xerial),
    "hsnappy": ("HADOOP_SNAPPY", None, ".snappy", "hadoop-snappy", read_hadoop),
    "zstd": ("ZSTD", None, ".zst", "zstd", read_zstd),
    # FileExtension replaces the extension, whatever the compression.
    "extzip": ("ZIP", ".archive.zip", ".archive.zip", "zip", read_zip),
    "extunc": ("UNCOMPRESSED", ".jsonl", ".jsonl", None, read_plain),
    "extzst": ("ZSTD", ".json.zstd", ".json.zstd", "zstd", read_zstd),
}

PARQUET_COLUMNS = [
    ("id", "bigint"), ("name", "string"), ("ts", "timestamp"), ("tags", "array<string>"),
    ("loc", "struct<lat:double,lon:double>"), ("score", "double"), ("ok", "boolean"),
    ("attrs", "map<string,int>"),
]
PARQUET = {
    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    def streams(bucket):
        out = [s3_stream(name, bucket, prefix=f"{name}/", compression=compression, shards=1, interval=1,
                         **({"FileExtension": ext} if ext else {}))
               for name, (compression, ext, *_rest) in FORMATS.items()]
        columns = [{"name": n, "type": t} for n, t in PARQUET_COLUMNS]
        out.append(s3_stream("pq", bucket, prefix="pq/", shards=1, interval=1, size=64,
                             error_prefix="pqerr/!{firehose:error-output-type}/",
                             DataFormatConversionConfiguration=PARQUET, hydrant={"schema": {"columns": columns}}))
        return out
    with module_server(tmp_path_factory, "formats", streams) as srv:
        yield srv


def records_for(name, n=450):
    """Unique JSON lines, ~1.3 KB each, half random hex (so the compressed form has real blocks)."""
    run = uuid.uuid4().hex
    return [json.dumps({"s": name, "run": run, "i": i, "rnd": os.urandom(300).hex(),
                        "txt": f"line {i} " * 40}).encode() + b"\n" for i in range(n)]


@pytest.mark.parametrize("stream", list(FORMATS))
def test_each_compression_format_reads_back_byte_for_byte_with_a_foreign_reader(srv, stream, tmp_path):
    compression, _, ext, encoding, reader = FORMATS[stream]
    records = records_for(stream)
    out = srv.fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0
    keys = wait_for(lambda: list_objects(srv.s3, srv.bucket, f"{stream}/"), timeout=30,
                    what=f"the {stream} object")
    time.sleep(0.5)
    keys = list_objects(srv.s3, srv.bucket, f"{stream}/")
    # One call on one shard within one interval: one object with every record in order.
    assert len(keys) == 1, keys
    key = keys[0]
    assert key.endswith(ext) and (ext or "." not in key.rsplit("/", 1)[1]), key
    name = key[len(f"{stream}/") + 14:]
    if ext:
        name = name[: -len(ext)]
    m = KEY_SUFFIX.fullmatch(name)
    assert m and m["stream"] == stream and m["ext"] == "", key
    obj = srv.get(key)
    body = obj["Body"].read()
    assert obj.get("ContentEncoding") == encoding, (key, obj.get("ContentEncoding"))
    plain = reader(body, tmp_path)
    expected = b"".join(records)
    assert plain == expected, f"{stream}: {len(plain)} bytes read back, {len(expected)} sent; " \
                              f"first difference at {next((i for i, (a, b) in enumerate(zip(plain, expected)) if a != b), None)}"
    if compression != "UNCOMPRESSED":
        assert len(body) < len(expected), "compression should make the object smaller"


def test_parquet_objects_have_the_configured_schema_and_values_and_bad_records_go_to_format_conversion_failed(srv):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = uuid.uuid4().hex
    utc = dt.timezone.utc
    good = [
        {"id": 1, "name": f"{run}-a", "ts": "2026-11-22T06:00:00.123456Z", "tags": ["x", "y"],
         "loc": {"lat": 48.85, "lon": 2.35}, "score": 1.5, "ok": True, "attrs": {"a": 1, "b": 2}},
        # Key case is ignored (OpenXJsonSerDe's CaseInsensitive default); extra keys are ignored.
        {"ID": 2, "Name": f"{run}-b", "ts": 1700000000123, "tags": [], "loc": {"LAT": -1.0, "lon": 0.0},
         "score": "2.25", "ok": "false", "extra": {"ignored": True}},
        # Missing keys and JSON null are null.
        {"id": 3, "name": None, "ts": "2026-1-2 03:04:05.5", "tags": ["z", None], "loc": None},
    ]
    bad_type = {"id": f"not a number {run}", "name": "bad"}
    bad_json = f'["{run}", "a top-level array"]'.encode()
    records = [json.dumps(g).encode() + b"\n" for g in good]
    t0 = int(time.time() * 1000)
    out = srv.fh.put_record_batch(DeliveryStreamName="pq", Records=[{"Data": r} for r in records] + [
        {"Data": json.dumps(bad_type).encode() + b"\n"}, {"Data": bad_json}])
    assert out["FailedPutCount"] == 0
    t1 = int(time.time() * 1000)
    keys = wait_for(lambda: list_objects(srv.s3, srv.bucket, "pq/"), timeout=30, what="the Parquet object")
    time.sleep(0.5)
    keys = list_objects(srv.s3, srv.bucket, "pq/")
    assert len(keys) == 1, keys
    key = keys[0]
    assert key.endswith(".parquet"), key
    m = KEY_SUFFIX.fullmatch(key[len("pq/") + 14:])
    assert m and m["ext"] == ".parquet" and m["stream"] == "pq", key
    body = srv.get(key)["Body"].read()
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"
    pf = pq.ParquetFile(io.BytesIO(body))
    table = pf.read()
    schema = table.schema
    assert schema.names == [n for n, _ in PARQUET_COLUMNS]
    assert schema.field("id").type == pa.int64()
    assert schema.field("name").type == pa.string()
    assert pa.types.is_timestamp(schema.field("ts").type) and schema.field("ts").type.unit == "us" \
        and schema.field("ts").type.tz in ("UTC", "+00:00"), schema.field("ts").type
    assert pa.types.is_list(schema.field("tags").type) and schema.field("tags").type.value_type == pa.string()
    assert schema.field("loc").type == pa.struct([("lat", pa.float64()), ("lon", pa.float64())])
    assert schema.field("score").type == pa.float64()
    assert schema.field("ok").type == pa.bool_()
    assert pa.types.is_map(schema.field("attrs").type)
    assert schema.field("attrs").type.key_type == pa.string() and schema.field("attrs").type.item_type == pa.int32()
    assert table.num_rows == 3
    for rg in range(pf.metadata.num_row_groups):
        for c in range(pf.metadata.num_columns):
            assert pf.metadata.row_group(rg).column(c).compression == "SNAPPY"
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert rows[0] == {"id": 1, "name": f"{run}-a", "ts": dt.datetime(2026, 11, 22, 6, 0, 0, 123456, tzinfo=utc),
                       "tags": ["x", "y"], "loc": {"lat": 48.85, "lon": 2.35}, "score": 1.5, "ok": True,
                       "attrs": [("a", 1), ("b", 2)]}
    assert rows[1] == {"id": 2, "name": f"{run}-b", "ts": dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=utc),
                       "tags": [], "loc": {"lat": -1.0, "lon": 0.0}, "score": 2.25, "ok": False, "attrs": None}
    assert rows[2] == {"id": 3, "name": None, "ts": dt.datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=utc),
                       "tags": ["z", None], "loc": None, "score": None, "ok": None, "attrs": None}

    docs = wait_error_documents(srv.s3, srv.bucket, "pqerr/format-conversion-failed/", 2)
    mine = {raw_of(d): (k, d) for k, d in docs if run.encode() in raw_of(d)}
    assert set(mine) == {json.dumps(bad_type).encode() + b"\n", bad_json}, list(mine)
    for raw, (k, d) in mine.items():
        assert not k.endswith(".parquet") and KEY_SUFFIX.fullmatch(k.rsplit("/", 1)[1])["ext"] == "", k
        assert set(d) == {"attemptsMade", "arrivalTimestamp", "lastErrorCode", "lastErrorMessage",
                          "attemptEndingTimestamp", "rawData", "sequenceNumber", "subSequenceNumber",
                          "dataCatalogTable"}, d
        assert d["attemptsMade"] == 1 and d["subSequenceNumber"] == 0, d
        assert isinstance(d["sequenceNumber"], str) and d["sequenceNumber"], d
        assert t0 - 1000 <= d["arrivalTimestamp"] <= t1 + 1000, d
        assert d["arrivalTimestamp"] <= d["attemptEndingTimestamp"], d
        assert isinstance(d["lastErrorMessage"], str) and d["lastErrorMessage"], d
        assert base64.b64encode(raw).decode() == d["rawData"]
    assert mine[bad_json][1]["lastErrorCode"] == "DataFormatConversion.MalformedData", mine[bad_json]
    typed = mine[json.dumps(bad_type).encode() + b"\n"][1]
    assert typed["lastErrorCode"] == "DataFormatConversion.InvalidSchema", typed
    assert "id" in typed["lastErrorMessage"], typed
