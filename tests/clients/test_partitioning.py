"""Dynamic partitioning end to end: partition keys from a jq MetadataExtractionQuery or from a
WebAssembly transform decide each record's prefix; RecordDeAggregation splits concatenated JSON;
records that cannot be partitioned (missing key, over the partition cap) go to the
`partitioning-failed` error output and are never dropped; and a SIGKILL under load loses or
duplicates nothing it should not."""

import collections
import datetime as dt
import json
import os
import random
import re
import time
import uuid

import pytest

from conftest import (
    KEY_SUFFIX,
    WASM_DIST,
    ModuleServer,
    config_yaml,
    delivered_counter,
    error_documents,
    lambda_processor,
    list_objects,
    module_server,
    raw_of,
    s3_stream,
    wait_error_documents,
    wait_for,
)

JQ_QUERY = '{customer: .customer} + (if has("kind") then {kind: .kind} else {} end)'
JQ = ("MetadataExtraction", {"MetadataExtractionQuery": JQ_QUERY, "JsonParsingEngine": "JQ-1.6"})
DELIM = ("AppendDelimiterToRecord", {})
DEAGG = ("RecordDeAggregation", {"SubRecordType": "JSON"})
LAMBDA_PREFIX = ("l/customer_id=!{partitionKeyFromLambda:customer_id}/dt=!{partitionKeyFromLambda:year}-"
                 "!{partitionKeyFromLambda:month}-!{partitionKeyFromLambda:day}/")


def err_prefix(name):
    return f"err/{name}/!{{firehose:error-output-type}}/"


STREAMS = {
    # Processors are listed out of Firehose's order on purpose: the order in the list must not matter.
    "jq": dict(prefix="p/customer=!{partitionKeyFromQuery:customer}/kind=!{partitionKeyFromQuery:kind}/",
               processors=[DELIM, JQ]),
    "lam": dict(prefix=LAMBDA_PREFIX, processors=[lambda_processor(str(WASM_DIST / "partition_by_field.wasm"))]),
    "deagg": dict(prefix="d/c=!{partitionKeyFromQuery:c}/",
                  processors=[DELIM, ("MetadataExtraction", {"MetadataExtractionQuery": "{c: .c}",
                                                              "JsonParsingEngine": "JQ-1.6"}), DEAGG]),
    "cap": dict(prefix="cap/k=!{partitionKeyFromQuery:k}/",
                processors=[("MetadataExtraction", {"MetadataExtractionQuery": "{k: .k}",
                                                    "JsonParsingEngine": "JQ-1.6"}), DELIM],
                hydrant={"max_partitions": 2}),
    # Each partition's buffer has its own 4 s window, counted from its own first record.
    "win": dict(prefix="w/k=!{partitionKeyFromQuery:k}/", interval=4,
                processors=[("MetadataExtraction", {"MetadataExtractionQuery": "{k: .k}",
                                                    "JsonParsingEngine": "JQ-1.6"}), DELIM]),
    "big": dict(prefix="big/k=!{partitionKeyFromQuery:k}/", size=1,
                processors=[("MetadataExtraction", {"MetadataExtractionQuery": "{k: .k}",
                                                    "JsonParsingEngine": "JQ-1.6"})]),
}


class Server(ModuleServer):
    def lines_by_key(self, prefix):
        return {key: self.get(key)["Body"].read().splitlines(keepends=True)
                for key in list_objects(self.s3, self.bucket, prefix)}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    def streams(bucket):
        return [s3_stream(name, bucket, shards=1, partitioning=True, error_prefix=err_prefix(name), **{"interval": 1, **kw})
                for name, kw in STREAMS.items()]
    with module_server(tmp_path_factory, "partitioning", streams, timeout=120, server=Server) as srv:
        yield srv


def uid():
    return uuid.uuid4().hex


def wait_lines(srv, prefix, count, marker, timeout=30):
    def ready():
        try:
            found = {k: [line for line in v if marker in line] for k, v in srv.lines_by_key(prefix).items()}
        except Exception:  # noqa: BLE001
            return None
        found = {k: v for k, v in found.items() if v}
        return found if sum(len(v) for v in found.values()) >= count else None
    try:
        return wait_for(ready, timeout=timeout, interval=0.25, what=f"{count} lines under {prefix}")
    except AssertionError:
        raise AssertionError(f"fewer than {count} lines with {marker!r} under {prefix}: "
                             f"{list_objects(srv.s3, srv.bucket)[:30]}\n{srv.h.log()[-3000:]}") from None


def test_jq_partition_keys_put_each_record_under_its_prefix_exactly_once(srv):
    run = uid()
    customers = ["acme", "globex", 42, True]
    kinds = ["click", "view"]
    records = []
    for i in range(40):
        doc = {"customer": customers[i % 4], "kind": kinds[i % 2], "run": run, "i": i}
        records.append(json.dumps(doc, separators=(",", ":")).encode())  # no newline: AppendDelimiter adds it
    srv.put("jq", records[:25])
    srv.put("jq", records[25:])
    found = wait_lines(srv, "p/", len(records), run.encode())
    seen = collections.Counter()
    for key, lines in found.items():
        m = re.fullmatch(r"p/customer=([^/]+)/kind=([^/]+)/(.+)", key)
        assert m, key
        suffix = KEY_SUFFIX.fullmatch(m[3])
        assert suffix and suffix["stream"] == "jq" and suffix["ext"] == "", key
        for line in lines:
            assert line.endswith(b"\n") and not line.endswith(b"\n\n"), line
            doc = json.loads(line)
            # Numbers and booleans become their JSON text in the prefix.
            assert m[1] == (json.dumps(doc["customer"]) if not isinstance(doc["customer"], str) else doc["customer"]), key
            assert m[2] == doc["kind"], key
            seen[line.rstrip(b"\n")] += 1
    assert seen == collections.Counter(records), "every record exactly once"
    assert {k.rsplit("/", 1)[0] for k in found} == {
        f"p/customer={c}/kind={k}" for c, k in [("acme", "click"), ("globex", "view"), ("42", "click"),
                                                 ("true", "view")]}
    # Nothing of this run is in the error output.
    assert not [d for _, d in error_documents(srv.s3, srv.bucket, "err/jq/") if run.encode() in raw_of(d)]


def test_a_record_missing_a_partition_key_goes_to_partitioning_failed_with_its_original_bytes(srv):
    run = uid()
    t0 = int(time.time() * 1000)
    good = json.dumps({"customer": "ok", "kind": "k", "run": run}).encode()
    null_key = json.dumps({"kind": "k", "run": run, "why": "customer missing"}).encode()
    absent_key = json.dumps({"customer": "c", "run": run, "why": "kind not produced"}).encode()
    not_json = f"not json {run}".encode()
    srv.put("jq", [good, null_key, absent_key, not_json])
    t1 = int(time.time() * 1000)
    wait_lines(srv, "p/customer=ok/kind=k/", 1, run.encode())
    docs = wait_error_documents(srv.s3, srv.bucket, "err/jq/partitioning-failed/", 3)
    # (Compared without a trailing newline first; the exact bytes are checked at the end.)
    mine = {raw_of(d).rstrip(b"\n"): (k, d) for k, d in docs if run.encode() in raw_of(d)}
    assert set(mine) == {null_key, absent_key, not_json}, list(mine)
    expected_codes = {null_key: "MetadataExtraction.MissingKey", absent_key: "DynamicPartitioning.MissingPartitionKey",
                      not_json: "MetadataExtraction.NonJsonRecord"}
    for raw, (key, d) in mine.items():
        assert key.startswith("err/jq/partitioning-failed/") and KEY_SUFFIX.fullmatch(key.rsplit("/", 1)[1]), key
        assert d["errorCode"] == expected_codes[raw], d
        assert d["attemptsMade"] == 1 and d["errorMessage"], d
        assert t0 - 1000 <= d["arrivalTimestamp"] <= t1 + 1000, d
        assert "lambdaArn" not in d, d  # no transform on this stream
    delivered = b"".join(line for lines in srv.lines_by_key("p/").values() for line in lines)
    assert b"customer missing" not in delivered and b"kind not produced" not in delivered
    # rawData is the record as sent, without the delimiter AppendDelimiterToRecord adds for delivery.
    wrong = {raw: raw_of(d) for raw, (_, d) in mine.items() if raw_of(d) != raw}
    assert not wrong, f"rawData is not the original record (error code -> rawData): " + "; ".join(
        f"{mine[raw][1]['errorCode']} -> {got!r}" for raw, got in wrong.items())


def test_each_partition_is_flushed_on_its_own_interval(srv):
    # p opens at 0 s (window to 4 s) and q at 1 s (window to 5 s). At 4.5 s, p's next record
    # starts a new object while q's still joins its first one: one buffer per partition, each
    # with its own timer, as Firehose does (a shared window would split q instead).
    run = uid()

    def put(k, name):
        srv.put("win", [json.dumps({"k": k, "run": run, "n": name}).encode()])

    put("p", "p1")
    time.sleep(1)
    put("q", "q1")
    time.sleep(1)
    put("p", "p2")
    time.sleep(2.5)
    put("p", "p3")
    put("q", "q2")
    found = wait_lines(srv, "w/", 5, run.encode(), timeout=60)
    objects = sorted(sorted(json.loads(line)["n"] for line in lines) for lines in found.values())
    assert objects == [["p1", "p2"], ["p3"], ["q1", "q2"]], found
    for key, lines in found.items():
        k = re.fullmatch(r"w/k=([pq])/.+", key)[1]
        assert all(json.loads(line)["k"] == k for line in lines), (key, lines)


def test_partition_keys_from_the_partition_by_field_transform_shape_the_prefix(srv):
    run = uid()
    t0 = dt.datetime.now(dt.timezone.utc)
    records = [json.dumps({"customer_id": c, "run": run, "i": i}).encode() + b"\n"
               for i, c in enumerate(["c-1", "c-2", 7, "c-1", "c-2", 7, "c-1"])]
    no_field = json.dumps({"run": run, "customer": "wrong field"}).encode() + b"\n"
    srv.put("lam", records + [no_field])
    t1 = dt.datetime.now(dt.timezone.utc)
    found = wait_lines(srv, "l/", len(records), run.encode())
    days = {t0.strftime("%Y-%m-%d"), t1.strftime("%Y-%m-%d")}
    seen = collections.Counter()
    for key, lines in found.items():
        m = re.fullmatch(r"l/customer_id=([^/]+)/dt=(\d{4}-\d{2}-\d{2})/(.+)", key)
        assert m and m[2] in days and KEY_SUFFIX.fullmatch(m[3]), key
        for line in lines:
            assert str(json.loads(line)["customer_id"]) == m[1], (key, line)
            seen[line] += 1
    assert seen == collections.Counter(records)
    docs = wait_error_documents(srv.s3, srv.bucket, "err/lam/processing-failed/", 1)
    mine = [d for _, d in docs if run.encode() in raw_of(d)]
    assert [raw_of(d) for d in mine] == [no_field]
    assert mine[0]["errorCode"] == "Lambda.ProcessingFailedStatus", mine
    assert mine[0]["errorMessage"] == "record has no scalar field customer_id", mine
    assert mine[0]["lambdaArn"] == str(WASM_DIST / "partition_by_field.wasm"), mine


def test_record_deaggregation_splits_concatenated_json_into_partitioned_records(srv):
    run = uid()
    r1 = f'{{"c":"x","n":1,"run":"{run}"}}{{"c":"y","n":2,"run":"{run}"}}'.encode()
    r2 = f'{{"c":"x","n":3,"run":"{run}"}} \n\t{{"c":"x","n":4,"run":"{run}"}}\n'.encode()
    r3 = f'{{"c":"y","n":5,"run":"{run}"}}'.encode()
    broken = f'{{"c":"x","n":6,"run":"{run}"}}{{"c": oops {run}'.encode()
    srv.put("deagg", [r1, r2, r3, broken])
    found = wait_lines(srv, "d/", 5, run.encode())
    by_partition = collections.defaultdict(list)
    for key, lines in found.items():
        m = re.fullmatch(r"d/c=([xy])/(.+)", key)
        assert m and KEY_SUFFIX.fullmatch(m[2]), key
        by_partition[m[1]].extend(lines)
    # Each sub-record byte for byte as it was inside its record, plus the delimiter.
    assert sorted(by_partition["x"]) == sorted([f'{{"c":"x","n":{n},"run":"{run}"}}\n'.encode() for n in (1, 3, 4)])
    assert sorted(by_partition["y"]) == sorted([f'{{"c":"y","n":{n},"run":"{run}"}}\n'.encode() for n in (2, 5)])
    # A record that does not de-aggregate fails whole (none of its sub-records is delivered).
    docs = wait_error_documents(srv.s3, srv.bucket, "err/deagg/processing-failed/", 1)
    mine = [d for _, d in docs if run.encode() in raw_of(d)]
    assert [raw_of(d) for d in mine] == [broken], mine
    assert mine[0]["errorCode"] == "RecordDeAggregation.MalformedJson" and mine[0]["attemptsMade"] == 1, mine
    assert not any(b'"n":6' in line for lines in found.values() for line in lines)


def test_the_partition_cap_sends_overflow_records_to_partitioning_failed_and_drops_none(srv):
    run = uid()
    records = [json.dumps({"k": f"key{i % 5}", "run": run, "i": i}).encode() for i in range(25)]
    srv.put("cap", records)  # one call, one shard: one buffer with 5 distinct keys, cap 2
    docs = wait_error_documents(srv.s3, srv.bucket, "err/cap/partitioning-failed/", 15)
    found = wait_lines(srv, "cap/", 10, run.encode())
    time.sleep(1.5)  # let anything extra (a duplicate, a late object) arrive before counting
    found = {k: [line for line in v if run.encode() in line] for k, v in srv.lines_by_key("cap/").items()}
    found = {k: v for k, v in found.items() if v}
    docs = [d for _, d in error_documents(srv.s3, srv.bucket, "err/cap/") if run.encode() in raw_of(d)]
    partitions = {re.fullmatch(r"cap/k=(key\d)/.+", k)[1] for k in found}
    assert len(partitions) == 2, f"max_partitions 2 but objects under {sorted(found)}"
    delivered = collections.Counter(line.rstrip(b"\n") for lines in found.values() for line in lines)
    failed = collections.Counter(raw_of(d).rstrip(b"\n") for d in docs)  # exact bytes checked at the end
    assert delivered + failed == collections.Counter(records), (
        f"every record exactly once in data or error output: delivered {sum(delivered.values())}, "
        f"failed {sum(failed.values())}, e.g. failed rawData {list(failed)[:2]}")
    for d in docs:
        assert d["errorCode"] == "DynamicPartitioning.PartitionCountExceeded", d
        assert json.loads(raw_of(d))["k"] not in partitions, d
    for key, lines in found.items():
        assert all(json.loads(line)["k"] == key.split("/")[1][2:] for line in lines), key
    # rawData is the record as sent, without the delimiter AppendDelimiterToRecord adds for delivery.
    assert collections.Counter(raw_of(d) for d in docs) == failed, (
        f"rawData of PartitionCountExceeded documents is not the original record: {raw_of(docs[0])!r}")


def test_a_partition_larger_than_size_in_mbs_is_split_into_several_objects(srv):
    run = uid()
    pad = "x" * 400_000
    records = [json.dumps({"k": "one", "run": run, "i": i, "pad": pad}).encode() + b"\n" for i in range(5)]
    records += [json.dumps({"k": "two", "run": run, "i": 9, "pad": "y"}).encode() + b"\n"]
    srv.put("big", records)
    found = wait_lines(srv, "big/", len(records), run.encode(), timeout=45)
    one = [k for k in found if k.startswith("big/k=one/")]
    assert len(one) >= 2, f"2 MB in a 1 MiB stream must make several objects: { {k: len(v) for k, v in found.items()} }"
    for k in one:
        assert sum(len(line) for line in found[k]) <= 1024 * 1024, k
    seen = collections.Counter(line for lines in found.values() for line in lines)
    assert seen == collections.Counter(records)


# ---------------------------------------------------------------------------------------------
# Crash test with partitioning on (the approach of test_crash.py, with its producers: producers.py).

from producers import Ledger, Producers  # noqa: E402

CRASH_STREAM = "crash"


def test_sigkill_under_load_with_partitioning_loses_no_acknowledged_record(s3, bucket, hydrant_factory):
    seed = int(os.environ.get("HYDRANT_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"partitioned crash test seed {seed}")
    jq = ("MetadataExtraction", {"MetadataExtractionQuery": "{part: (.i % 3), t: .t}", "JsonParsingEngine": "JQ-1.6"})
    h = hydrant_factory(config_yaml(s3_stream(
        CRASH_STREAM, bucket, prefix="c/part=!{partitionKeyFromQuery:part}/t=!{partitionKeyFromQuery:t}/",
        compression="GZIP", interval=1, shards=2, partitioning=True, processors=[jq],
        error_prefix="cerr/!{firehose:error-output-type}/"), s3=s3))
    clients = [h.firehose(connect_timeout=2, read_timeout=15) for _ in range(3)]
    ledger = Ledger()
    producers = Producers([[c] for c in clients], CRASH_STREAM, ledger, seconds=60)
    kills = rng.randint(2, 3)
    for k in range(kills):
        time.sleep(rng.uniform(0.5, 2.0))
        h.kill()
        time.sleep(rng.uniform(0.0, 0.4))
        h.start()
    time.sleep(1.0)
    producers.finish()
    acked = ledger.acked
    assert acked and ledger.calls["unanswered"] > 0, f"the kills interrupted no call: {dict(ledger.calls)}"

    def all_acked():
        try:
            counts = delivered_counter(s3, bucket, "c/")
        except Exception:  # noqa: BLE001
            return None
        return counts if all(counts[r] for r in acked) else None

    try:
        wait_for(all_acked, timeout=60, interval=0.5, what="every acknowledged record in S3")
    except AssertionError:
        pass  # reported below
    wait_for(lambda: h.metric("hydrant_shard_backlog_records", CRASH_STREAM) == 0, timeout=60, what="backlog 0")
    counts = delivered_counter(s3, bucket, "c/")
    missing = [r for r in acked if counts[r] == 0]
    bad_dups = {r: c for r, c in counts.items() if c > 1 and r not in ledger.unanswered}
    unknown = [r for r in counts if r not in ledger.sent]
    print(f"calls {dict(ledger.calls)}; acknowledged {len(acked)}; delivered {len(counts)} distinct / "
          f"{sum(counts.values())}; kills {kills}")
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}\n{h.log()}"
    assert not unknown, unknown[:3]
    assert not bad_dups, f"{len(bad_dups)} records of answered calls duplicated: {list(bad_dups.items())[:3]}"
    # Every record sits under the partition its content names.
    for key in list_objects(s3, bucket, "c/"):
        m = re.fullmatch(r"c/part=(\d)/t=(\d)/(.+)", key)
        assert m and KEY_SUFFIX.fullmatch(m[3]) and m[3].endswith(".gz"), key
    for key in list_objects(s3, bucket, "c/")[:20]:
        import gzip
        m = re.fullmatch(r"c/part=(\d)/t=(\d)/.+", key)
        for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines():
            doc = json.loads(line)
            assert (str(doc["i"] % 3), str(doc["t"])) == (m[1], m[2]), (key, line)
    assert list_objects(s3, bucket, "cerr/") == [], "no record of the crash test can fail partitioning"
