"""OpenSearch / Elasticsearch destination end to end: boto3 producers, the real `hydrant` binary,
osmem-server (an in-memory OpenSearch with real `_bulk` semantics) or a fault-injecting `_bulk`
stub, and s3s-fs for the failed documents.

Proves: records become documents with `<stream>-<shard>-<seq>-<sub>` ids in the rotated index;
mapping errors and non-JSON records go to `AmazonOpenSearchService-failed` (`elasticsearch-failed`)
as Firehose's failed-document JSON while the good documents are indexed; only the retryable items
of a partial failure are sent again; a whole-request 5xx is retried byte for byte; a cluster that
never recovers sends the documents to S3 when RetryOptions runs out and Hydrant keeps serving;
a crash after the cluster indexed a batch but before Hydrant heard back duplicates nothing;
NO_DOCUMENT_ID lets the cluster choose ids."""

import base64
import collections
import datetime as dt
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import (
    Hydrant,
    Stream,
    config_yaml,
    documented_keys,
    error_documents,
    list_objects,
    new_bucket,
    raw_of,
    require_env,
    s3_client,
    wait_error_documents,
    wait_for,
)
from stubs import BulkStub, Proxy, Reply, all_ok, parse_bulk

# The fields and order of docs/destinations/search.md's example, which Firehose documents.
FAILED_FIELDS = documented_keys("docs/destinations/search.md", "json error-output")
PASSWORD_ENV = "HYD_TEST_SEARCH_PASSWORD"


# ---------------------------------------------------------------------------------------------
# helpers


def cluster():
    (endpoint,) = require_env("FH_TEST_OPENSEARCH_ENDPOINT")
    return endpoint.rstrip("/")


def os_call(method, path, body=None):
    """(status, parsed JSON) of a request to the OpenSearch under test."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(cluster() + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def count(index):
    status, out = os_call("GET", f"/{index}/_count")
    return out["count"] if status == 200 else 0


def hits(index):
    status, out = os_call("GET", f"/{index}/_search?size=10000")
    assert status == 200, out
    return out["hits"]["hits"]


def indices_starting(prefix):
    status, out = os_call("GET", "/_cat/indices?format=json")
    assert status == 200, out
    return sorted(i["index"] for i in out if i["index"].startswith(prefix))


def wait_count(index, n, timeout=30):
    try:
        return wait_for(lambda: count(index) >= n, timeout=timeout, what=f"{n} documents in {index}")
    except AssertionError:
        raise AssertionError(f"{index} holds {count(index)} documents, expected {n}") from None


def us_week(day: dt.date):
    """(week year, week) with US rules: weeks run Sunday-Saturday; week 1 holds January 1, and
    a week that holds January 1 belongs wholly to the new year. Written independently of
    Hydrant's arithmetic: it uses strftime's %U (Sunday weeks, days before the first Sunday are
    week 0)."""
    sunday = day - dt.timedelta(days=(day.weekday() + 1) % 7)
    saturday = sunday + dt.timedelta(days=6)
    if saturday.year != sunday.year:
        return saturday.year, 1
    jan1_is_sunday = dt.date(day.year, 1, 1).weekday() == 6
    return day.year, int(day.strftime("%U")) + (0 if jan1_is_sunday else 1)


# The documented table (docs/destinations/search.md), to show the helper is right.
for _d, _w in [((2016, 12, 31), (2016, 53)), ((2017, 1, 1), (2017, 1)), ((2019, 12, 28), (2019, 52)),
               ((2019, 12, 29), (2020, 1)), ((2020, 1, 4), (2020, 1)), ((2021, 12, 31), (2022, 1)),
               ((2022, 1, 1), (2022, 1)), ((2024, 12, 31), (2025, 1)), ((2016, 2, 25), (2016, 9))]:
    assert us_week(dt.date(*_d)) == _w, (_d, us_week(dt.date(*_d)), _w)


def rotated(base, period, ms):
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    if period == "NoRotation":
        return base
    if period == "OneHour":
        return f"{base}-{t:%Y-%m-%d-%H}"
    if period == "OneDay":
        return f"{base}-{t:%Y-%m-%d}"
    if period == "OneMonth":
        return f"{base}-{t:%Y-%m}"
    if period == "OneWeek":
        year, week = us_week(t.date())
        return f"{base}-{year:04d}-w{week:02d}"
    raise ValueError(period)


def now_ms():
    return int(time.time() * 1000)


def search_stream(name, bucket, endpoint, index, rotation="NoRotation", interval=1, retry=None,
                  elasticsearch=False, id_format=None, shards=2, auth=False, prefix=None, type_name=None):
    config = {"ClusterEndpoint": endpoint, "IndexName": index, "IndexRotationPeriod": rotation,
              "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval}}
    if type_name:
        config["TypeName"] = type_name
    if retry is not None:
        config["RetryOptions"] = {"DurationInSeconds": retry}
    if id_format:
        config["DocumentIdOptions"] = {"DefaultDocumentIdFormat": id_format}
    config["S3Configuration"] = {"BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": prefix or name + "/"}
    block = "ElasticsearchDestinationConfiguration" if elasticsearch else \
        "AmazonopensearchserviceDestinationConfiguration"
    hydrant = {"object_store": "s3", "shards": shards}
    if auth:
        hydrant["basic_auth"] = {"username": "hydrant", "password": f"${{{PASSWORD_ENV}}}"}
    return Stream(name, {block: config}, hydrant)


def records_for(run, n, **extra):
    return [json.dumps({"run": run, "i": i, **extra}, separators=(",", ":")).encode() for i in range(n)]


def put(fh, stream, records):
    out = fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    return out


def id_re(stream):
    return re.compile(rf"^{re.escape(stream)}-(?P<shard>\d+)-(?P<seq>\d+)-(?P<sub>\d+)$")


def assert_failed_document(doc, key, *, prefix, output_type, stream, index, before, after, code, type_name=""):
    assert re.fullmatch(rf"{re.escape(prefix)}{output_type}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/[^/]+", key), key
    assert list(doc) == FAILED_FIELDS, f"fields and order of a failed document: {list(doc)}"
    assert before <= doc["arrivalTimestamp"] <= after, (doc, before, after)
    assert doc["arrivalTimestamp"] <= doc["attemptEndingTimestamp"] <= now_ms(), doc
    assert isinstance(doc["attemptsMade"], int) and doc["attemptsMade"] >= 1, doc
    assert doc["errorCode"] == code, doc
    assert id_re(stream).match(doc["esDocumentId"]), doc
    assert doc["esIndexName"] == index, doc
    assert doc["esTypeName"] == type_name, doc


# ---------------------------------------------------------------------------------------------
# one hydrant for the cluster and stub streams


class Env:
    pass


ROTATIONS = ["NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env()
    e.os = cluster()
    e.s3 = s3_client()
    e.bucket = new_bucket(e.s3)
    e.run = uuid.uuid4().hex[:10]
    e.index = {r: f"hyd-rot-{r.lower()}-{e.run}" for r in ROTATIONS}
    e.index.update(mapped=f"hyd-mapped-{e.run}", noid=f"hyd-noid-{e.run}", es=f"hyd-es-{e.run}")
    e.password = "pw-" + uuid.uuid4().hex
    os.environ[PASSWORD_ENV] = e.password

    first_seen = set()
    e.partial_429 = set()

    def some_429(position, meta, doc):
        # The first time a document is seen, every third one is refused with 429.
        if meta["_id"] not in first_seen:
            first_seen.add(meta["_id"])
            if doc["i"] % 3 == 0:
                e.partial_429.add(meta["_id"])
                return 429
        return 201

    e.stub_partial = BulkStub(lambda rec, n: some_429)
    e.stub_503_once = BulkStub([Reply(503, {"error": {"type": "unavailable", "reason": "warming up"},
                                            "status": 503}), all_ok])
    e.stub_down = BulkStub([Reply(503, {"error": "cluster is down"})])

    seen_once = set()

    def retry_then_reject(position, meta, doc):
        # 429 the first time, a mapping error the second: rejected on the second attempt.
        if meta["_id"] not in seen_once:
            seen_once.add(meta["_id"])
            return 429
        return 400, {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]"}

    e.stub_retry_reject = BulkStub(lambda rec, n: retry_then_reject)
    e.stub_late_413 = BulkStub([Reply(503, {"error": "busy"}),
                                Reply(413, {"error": {"type": "content_too_long", "reason": "too big"}})])
    e.stub_garbage = BulkStub([Reply(200, {"took": 1, "acknowledged": True}), all_ok])

    streams = [search_stream(f"rot-{r.lower()}", e.bucket, e.os, e.index[r], rotation=r) for r in ROTATIONS] + [
        search_stream("mapped", e.bucket, e.os, e.index["mapped"]),
        search_stream("noid", e.bucket, e.os, e.index["noid"], id_format="NO_DOCUMENT_ID"),
        search_stream("es", e.bucket, e.os, e.index["es"], elasticsearch=True),
        search_stream("partial", e.bucket, e.stub_partial.url, "partial", shards=1, auth=True),
        search_stream("once503", e.bucket, e.stub_503_once.url, "once", shards=1),
        search_stream("down", e.bucket, e.stub_down.url, "down", shards=1, retry=3),
        search_stream("retryreject", e.bucket, e.stub_retry_reject.url, "rr", shards=1),
        search_stream("late413", e.bucket, e.stub_late_413.url, "late", shards=1, type_name="logline"),
        search_stream("garbage", e.bucket, e.stub_garbage.url, "garbage", shards=1),
    ]
    body = config_yaml(*streams, s3=e.s3)
    e.h = Hydrant(tmp_path_factory.mktemp("search"), body)
    e.h.start(timeout=60)
    e.fh = e.h.firehose(read_timeout=30)
    yield e
    e.h.kill()
    for stub in (e.stub_partial, e.stub_503_once, e.stub_down, e.stub_retry_reject, e.stub_late_413,
                 e.stub_garbage):
        stub.close()
    for name in e.index.values():
        for index in indices_starting(name):
            os_call("DELETE", f"/{index}")


# ---------------------------------------------------------------------------------------------
# osmem


def test_records_become_documents_with_position_ids_in_the_rotated_index(env):
    shards = 2
    sent = {}
    for r in ROTATIONS:
        stream = f"rot-{r.lower()}"
        recs = records_for(env.run, 12, rotation=r)
        # Line breaks between JSON tokens are legal JSON whitespace: this record must still be
        # one document, not break the NDJSON framing.
        recs.append(json.dumps({"run": env.run, "i": 99, "rotation": r, "pretty": True}, indent=2).encode() + b"\n")
        before = now_ms()
        put(env.fh, stream, recs[:7])
        env.fh.put_record(DeliveryStreamName=stream, Record={"Data": recs[7]})
        put(env.fh, stream, recs[8:])
        after = now_ms()
        sent[r] = (stream, recs, before, after)

    for r, (stream, recs, before, after) in sent.items():
        base = env.index[r]
        expected_names = {rotated(base, r, before), rotated(base, r, after)}

        def total():
            return sum(count(n) for n in expected_names)
        try:
            wait_for(lambda: total() >= len(recs), timeout=30, what=f"{len(recs)} documents for {r}")
        except AssertionError:
            raise AssertionError(f"{r}: expected {len(recs)} documents in {sorted(expected_names)}; "
                                 f"indexes named {base}*: {indices_starting(base)}") from None
        # Only the rotated index exists: nothing went to a wrongly named one.
        for index in indices_starting(base):
            assert index in expected_names, f"{r}: unexpected index {index}; expected {sorted(expected_names)}"
        if r == "NoRotation":
            assert expected_names == {base}
        found = [h for n in expected_names if count(n) for h in hits(n)]
        assert len(found) == len(recs), f"{r}: {len(found)} documents for {len(recs)} records"
        ids = [h["_id"] for h in found]
        assert len(set(ids)) == len(ids), f"{r}: duplicate ids {ids}"
        positions = set()
        for h in found:
            m = id_re(stream).match(h["_id"])
            assert m, f"{r}: id {h['_id']!r} is not <stream>-<shard>-<seq>-<sub>"
            assert int(m["shard"]) < shards and m["sub"] == "0", h["_id"]
            positions.add((int(m["shard"]), int(m["seq"])))
        assert len(positions) == len(recs), "every record has its own log position"
        # Sources are the records, each exactly once.
        assert collections.Counter(json.dumps(h["_source"], sort_keys=True) for h in found) == \
            collections.Counter(json.dumps(json.loads(x), sort_keys=True) for x in recs), r
        # GET by id returns the document too.
        h = found[0]
        status, doc = os_call("GET", f"/{h['_index']}/_doc/{h['_id']}")
        assert status == 200 and doc["found"] and doc["_source"] == h["_source"], doc


def test_a_mapping_error_sends_only_the_bad_documents_to_s3_as_failed_documents(env):
    index, stream = env.index["mapped"], "mapped"
    status, out = os_call("PUT", f"/{index}", {"mappings": {"properties": {"n": {"type": "integer"}}}})
    assert status == 200, out
    good = [json.dumps({"run": env.run, "n": i, "k": f"good{i}"}).encode() for i in range(6)]
    bad = [json.dumps({"run": env.run, "n": f"not-a-number-{i}", "k": f"bad{i}"}).encode() for i in range(3)]
    not_json = [b"this is not JSON", b'["an","array"]']
    mixed = [good[0], bad[0], good[1], not_json[0], good[2], bad[1], good[3], good[4], not_json[1], bad[2], good[5]]
    before = now_ms()
    put(env.fh, stream, mixed)
    after = now_ms()

    prefix = f"{stream}/"
    docs = wait_error_documents(env.s3, env.bucket, prefix + "AmazonOpenSearchService-failed/", len(bad) + len(not_json))
    wait_count(index, len(good))
    by_raw = {raw_of(d): (k, d) for k, d in docs}
    assert sorted(by_raw) == sorted(bad + not_json), "exactly the bad records are failed documents"
    assert len(docs) == len(bad) + len(not_json), f"a failed record written twice: {[raw_of(d) for _, d in docs]}"
    indexed_ids = {h["_id"] for h in hits(index)}
    for raw, (key, doc) in by_raw.items():
        assert_failed_document(doc, key, prefix=prefix, output_type="AmazonOpenSearchService-failed",
                               stream=stream, index=index, before=before, after=after,
                               code="OS.MapperParsingException")
        assert doc["esDocumentId"] not in indexed_ids, doc
        assert doc["attemptsMade"] == 1, f"a mapping error is not retried: {doc}"
        if raw in bad:
            assert "mapper_parsing_exception" in doc["errorMessage"] and "(status 400)" in doc["errorMessage"], doc
    # The good ones are searchable and intact.
    assert sorted(h["_source"]["k"] for h in hits(index)) == sorted(f"good{i}" for i in range(6))
    # Nothing in the data prefix other than the failed-document output.
    assert all(k.startswith(prefix + "AmazonOpenSearchService-failed/") for k in list_objects(env.s3, env.bucket, prefix))


def test_no_document_id_lets_the_cluster_choose_ids(env):
    index, stream = env.index["noid"], "noid"
    recs = records_for(env.run, 10, kind="noid")
    put(env.fh, stream, recs + [b"{not json"])
    wait_count(index, len(recs))
    (key, failed), = wait_error_documents(env.s3, env.bucket, "noid/AmazonOpenSearchService-failed/", 1)
    assert raw_of(failed) == b"{not json" and failed["esDocumentId"] == "", failed
    assert failed["errorCode"] == "OS.MapperParsingException", failed
    found = hits(index)
    assert len(found) == len(recs)
    ids = [h["_id"] for h in found]
    assert len(set(ids)) == len(ids)
    assert not [i for i in ids if id_re(stream).match(i) or i.startswith(stream + "-")], \
        f"NO_DOCUMENT_ID sent Hydrant's ids: {ids}"
    assert sorted(h["_source"]["i"] for h in found) == list(range(10))


def test_an_elasticsearch_destination_indexes_and_writes_failures_under_elasticsearch_failed(env):
    index, stream = env.index["es"], "es"
    status, out = os_call("PUT", f"/{index}", {"mappings": {"properties": {"n": {"type": "integer"}}}})
    assert status == 200, out
    good = [json.dumps({"n": i, "run": env.run}).encode() for i in range(5)]
    bad = [json.dumps({"n": "oops", "run": env.run}).encode()]
    before = now_ms()
    put(env.fh, stream, good + bad)
    after = now_ms()
    docs = wait_error_documents(env.s3, env.bucket, "es/elasticsearch-failed/", 1)
    wait_count(index, len(good))
    assert [raw_of(d) for _, d in docs] == bad
    key, doc = docs[0]
    assert_failed_document(doc, key, prefix="es/", output_type="elasticsearch-failed", stream=stream,
                           index=index, before=before, after=after, code="ES.MapperParsingException")
    assert not list_objects(env.s3, env.bucket, "es/AmazonOpenSearchService-failed/")
    assert sorted(h["_source"]["n"] for h in hits(index)) == list(range(5))


# ---------------------------------------------------------------------------------------------
# fault-injecting _bulk stubs


def delivered(env, stream):
    return env.h.metric("hydrant_delivery_to_amazon_opensearch_service_records_total", stream)


def test_only_the_documents_refused_with_429_are_sent_again(env):
    stream = "partial"
    recs = records_for(env.run, 12, kind="partial")
    put(env.fh, stream, recs)
    stub = env.stub_partial
    wait_for(lambda: delivered(env, stream) >= len(recs), timeout=30, what="all 12 documents indexed")
    bulks = stub.bulks()
    assert len(bulks) == 2, f"{len(bulks)} _bulk requests: {[r.body[:200] for r in bulks]}"
    first = parse_bulk(bulks[0].body)
    second = parse_bulk(bulks[1].body)
    assert len(first) == len(recs)
    assert sorted(json.dumps(d, sort_keys=True) for _, _, d in first) == \
        sorted(json.dumps(json.loads(r), sort_keys=True) for r in recs)
    assert {m["_id"] for _, m, _ in first} >= env.partial_429 and len(env.partial_429) == 4
    assert [m["_id"] for _, m, _ in second] == [m["_id"] for _, m, d in first if d["i"] % 3 == 0], \
        "the retry carries exactly the 429 documents, in order"
    assert {m["_id"] for _, m, _ in second} == env.partial_429
    for _, m, _ in first + second:
        assert id_re(stream).match(m["_id"]) and m["_index"] == "partial" and "_type" not in m, m
    # Same document, same id and body on the retry.
    assert {m["_id"]: d for _, m, d in second} == {m["_id"]: d for _, m, d in first if m["_id"] in env.partial_429}
    for r in bulks:
        assert r.method == "POST" and r.path == "/_bulk", r.path
        assert r.header("content-type").startswith("application/x-ndjson"), r.headers
        expected = "Basic " + base64.b64encode(f"hydrant:{env.password}".encode()).decode()
        assert r.header("authorization") == expected, "basic auth from hydrant.basic_auth (${ENV} expanded)"
    assert not list_objects(env.s3, env.bucket, f"{stream}/"), "nothing failed, nothing in S3"


def test_a_whole_request_503_is_retried_with_the_same_body(env):
    stream = "once503"
    recs = records_for(env.run, 5, kind="once503")
    put(env.fh, stream, recs)
    wait_for(lambda: delivered(env, stream) >= len(recs), timeout=30, what="5 documents indexed after a 503")
    bulks = env.stub_503_once.bulks()
    assert len(bulks) == 2, len(bulks)
    assert bulks[0].raw == bulks[1].raw, "a retried _bulk request is the same bytes"
    assert bulks[1].at - bulks[0].at >= 0.35, "a wait (0.5 s ± 20 %) before the retry"
    assert len(parse_bulk(bulks[0].body)) == len(recs)
    assert env.h.metric("hydrant_delivery_to_amazon_opensearch_service_failures_total", stream) >= 1
    assert not list_objects(env.s3, env.bucket, f"{stream}/")


def test_documents_go_to_s3_when_the_cluster_stays_down_past_the_retry_duration(env):
    stream, stub = "down", env.stub_down
    recs = records_for(env.run, 4, kind="down")
    before = now_ms()
    put(env.fh, stream, recs)
    after = now_ms()
    prefix = f"{stream}/"
    docs = wait_error_documents(env.s3, env.bucket, prefix + "AmazonOpenSearchService-failed/", len(recs), timeout=40)
    attempts = len(stub.bulks())
    assert sorted(raw_of(d) for _, d in docs) == sorted(recs)
    first_ts = min(r.at for r in stub.bulks())
    last_ts = max(r.at for r in stub.bulks())
    assert last_ts - first_ts <= 3.5, "no attempt starts after RetryOptions.DurationInSeconds (3 s)"
    for key, doc in docs:
        assert_failed_document(doc, key, prefix=prefix, output_type="AmazonOpenSearchService-failed",
                               stream=stream, index="down", before=before, after=after, code="OS.ServerError")
        assert "503" in doc["errorMessage"], doc
        assert doc["attemptsMade"] == attempts >= 2, (doc["attemptsMade"], attempts)
    # Hydrant keeps serving: the cluster comes back and a new record is indexed.
    stub.plan = [all_ok]
    more = records_for(env.run, 1, kind="down-after")
    put(env.fh, stream, more)
    wait_for(lambda: any(d.get("kind") == "down-after" for r in stub.bulks() for _, _, d in parse_bulk(r.body)),
             timeout=30, what="the next record reaching the recovered cluster")
    wait_for(lambda: delivered(env, stream) >= 1, timeout=30, what="the next record counted as delivered")
    assert len(error_documents(env.s3, env.bucket, prefix)) == len(recs), "the old failures are not written again"


# stream -> (its stub, index, errorCode, TypeName)
SECOND_ATTEMPT_FAILS = {
    # 429 the first time, a mapping error the second: rejected for good on the second attempt.
    "retryreject": ("stub_retry_reject", "rr", "OS.MapperParsingException", ""),
    # 503, then a 413, which ends retrying.
    "late413": ("stub_late_413", "late", "OS.RequestEntityTooLarge", "logline"),
}


@pytest.mark.parametrize("stream", list(SECOND_ATTEMPT_FAILS))
def test_a_document_failing_for_good_on_its_second_attempt_reports_two_attempts(env, stream):
    stub, index, code, type_name = SECOND_ATTEMPT_FAILS[stream]
    stub = getattr(env, stub)
    recs = records_for(env.run, 3, kind=stream)
    before = now_ms()
    put(env.fh, stream, recs)
    after = now_ms()
    docs = wait_error_documents(env.s3, env.bucket, f"{stream}/AmazonOpenSearchService-failed/", len(recs))
    bulks = stub.bulks()
    assert len(bulks) == 2, f"two _bulk attempts, then no more: {len(bulks)} attempts"
    if type_name:
        for _, meta, _ in parse_bulk(bulks[0].body):
            assert meta["_type"] == type_name, "TypeName is sent as _type"
    assert sorted(raw_of(d) for _, d in docs) == sorted(recs)
    for key, doc in docs:
        assert_failed_document(doc, key, prefix=f"{stream}/", output_type="AmazonOpenSearchService-failed",
                               stream=stream, index=index, before=before, after=after, code=code,
                               type_name=type_name)
        assert doc["attemptsMade"] == 2, f"two _bulk attempts carried this document: {doc}"


def test_a_2xx_that_is_not_a_bulk_answer_is_retried(env):
    stream, stub = "garbage", env.stub_garbage
    recs = records_for(env.run, 3, kind="garbage")
    put(env.fh, stream, recs)
    wait_for(lambda: delivered(env, stream) >= len(recs), timeout=30, what="delivery after a bogus 200")
    bulks = stub.bulks()
    assert len(bulks) == 2 and bulks[0].raw == bulks[1].raw, len(bulks)
    assert env.h.metric("hydrant_delivery_to_amazon_opensearch_service_failures_total", stream) >= 1
    assert not list_objects(env.s3, env.bucket, f"{stream}/")


# ---------------------------------------------------------------------------------------------
# crash


def test_a_crash_before_and_after_the_cluster_indexed_a_batch_leaves_one_document_per_record(tmp_path):
    os_endpoint = cluster()
    s3 = s3_client()
    bucket = new_bucket(s3)
    run = uuid.uuid4().hex[:10]
    index, stream = f"hyd-crash-{run}", "crash"
    proxy = Proxy(os_endpoint)
    h = Hydrant(tmp_path, config_yaml(search_stream(stream, bucket, proxy.url, index, interval=2), s3=s3))
    try:
        h.start()
        fh = h.firehose(read_timeout=30)
        batch_a = records_for(run, 20, phase="a")
        put(fh, stream, batch_a)
        h.kill()  # acknowledged, not yet flushed (2 s buffer)

        killed = threading.Event()

        def kill_after_indexing(rec, n, status, body):
            if rec.path.endswith("/_bulk") and not killed.is_set():
                assert status == 200, body[:300]
                h.kill()  # the cluster indexed the batch; Hydrant never hears back
                killed.set()
        proxy.after_forward = kill_after_indexing
        h.start()
        wait_for(killed.is_set, timeout=30, what="the replayed batch reaching the cluster")
        assert h.proc.poll() is not None
        indexed_before_restart = count(index)
        assert indexed_before_restart >= 1, "the first bulk was indexed before the kill"

        proxy.after_forward = None
        h.start()
        fh = h.firehose(read_timeout=30)
        batch_b = records_for(run, 10, phase="b")
        put(fh, stream, batch_b)
        records = batch_a + batch_b
        wait_count(index, len(records))
        found = hits(index)
        ids = [x["_id"] for x in found]
        assert len(found) == len(records) == len(set(ids)), f"{len(found)} documents for {len(records)} records"
        assert all(id_re(stream).match(i) for i in ids), ids
        assert collections.Counter(json.dumps(x["_source"], sort_keys=True) for x in found) == \
            collections.Counter(json.dumps(json.loads(r), sort_keys=True) for r in records)
        # The replay really happened: some ids were sent twice and the second send overwrote.
        sent = collections.Counter(m["_id"] for r in proxy.snapshot() if r.path.endswith("/_bulk")
                                   for _, m, _ in parse_bulk(r.body))
        twice = [i for i, c in sent.items() if c > 1]
        assert twice, f"no document was sent twice, so the crash did not exercise a replay: {sent}"
        for i in twice[:3]:
            status, doc = os_call("GET", f"/{index}/_doc/{i}")
            assert status == 200 and doc["_version"] >= 2, doc
        assert count(index) == len(records)
    finally:
        h.kill()
        proxy.close()
        os_call("DELETE", f"/{index}")
