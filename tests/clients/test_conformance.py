"""One suite, every destination: the delivery guarantees Hydrant makes do not depend on where the
records go. Each destination is an adapter (its stream configuration, setup/teardown, a way to
block and unblock it, and `read()`: a Counter of the record ids that reached it), and every
shared test runs once per destination against the real `hydrant` binary:

1. every record of several PutRecordBatch calls arrives exactly once;
2. a SIGTERM and a start on the same data directory lose and duplicate nothing;
3. a kill -9 right after acknowledged puts loses nothing; duplicates are 0 where the destination
   deduplicates (S3 keys, warehouse load checkpoints, search document ids) and, for the HTTP
   endpoint, only come from requests repeated with the same request id;
4. a destination that refuses everything for a while gets everything exactly once afterwards.
"""

import base64
import collections
import gzip
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import (
    Stream, assert_no_panic, config_yaml, list_objects, read_object, require_env, s3_store, s3_stream, wait_for,
)

BUFFER = {"SizeInMBs": 1, "IntervalInSeconds": 1}
SHARDS = 2
HYDRANT = {"object_store": "s3", "shards": SHARDS}


def ids_of_lines(lines, counts):
    for line in lines:
        if line.strip():
            counts[json.loads(line)["id"]] += 1


# ---------------------------------------------------------------------------------------------
# Adapters


class S3Gate:
    """A pass-through proxy in front of the test S3 server that answers NoSuchBucket while `closed`.

    The test S3 server (s3s-fs) creates a bucket's directory on the first PutObject, so a bucket
    that "does not exist yet" would not refuse anything there; real S3 answers 404 NoSuchBucket.
    Requests are forwarded verbatim (Host included, so SigV4 signatures still verify)."""

    def __init__(self, upstream):
        import http.client
        import urllib.parse
        up = urllib.parse.urlsplit(upstream)
        self.closed = False
        self.refused = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def relay(self):
                data = self.body()
                if gate.closed:
                    gate.refused += 1
                    bucket = self.path.lstrip("/").split("/")[0].split("?")[0]
                    xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code>"
                           f"<Message>The specified bucket does not exist</Message><BucketName>{bucket}"
                           f"</BucketName></Error>").encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(xml)
                    return
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                if data or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(data))
                conn.request(self.command, self.path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload) if self.command != "HEAD"
                                                       else resp.getheader("Content-Length") or 0))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class S3Adapter:
    """ExtendedS3DestinationConfiguration. Blocked: the bucket does not exist yet (Hydrant reaches
    the S3 server through an S3Gate, which answers NoSuchBucket until the bucket is created)."""
    name = "s3"
    exact = True
    failure_metric = "hydrant_delivery_to_s3_failures_total"

    def __init__(self, s3):
        self.s3 = s3
        self.bucket = "t-" + uuid.uuid4().hex[:16]
        self.gate = S3Gate(s3.endpoint)

    def setup(self, blocked=False):
        self.gate.closed = blocked
        if not blocked:
            self.unblock()

    def unblock(self):
        self.s3.create_bucket(Bucket=self.bucket)
        self.gate.closed = False

    def teardown(self):
        self.gate.close()

    def stores(self):
        return {"gate": {**s3_store(self.s3), "endpoint": self.gate.endpoint}}

    def stream(self, name):
        return s3_stream(name, self.bucket, prefix="c/", size=1, interval=1, shards=SHARDS, store="gate")

    def read(self):
        counts = collections.Counter()
        try:
            keys = list_objects(self.s3, self.bucket, "c/")
        except self.s3.exceptions.NoSuchBucket:
            return counts
        for key in keys:
            ids_of_lines(read_object(self.s3, self.bucket, key).splitlines(), counts)
        return counts


class PostgresAdapter:
    """RedshiftDestinationConfiguration with a PostgreSQL target. Blocked: the table does not
    exist yet (Redshift.TableNotFound is retried for RetryOptions.DurationInSeconds)."""
    name = "postgres"
    exact = True
    failure_metric = "hydrant_delivery_to_redshift_failures_total"

    def __init__(self, s3):
        (self.url,) = require_env("FH_TEST_DATABASE_URL")
        import psycopg
        self.db = psycopg.connect(self.url, autocommit=True)
        self.s3 = s3
        self.bucket = "t-" + uuid.uuid4().hex[:16]
        self.table = "conf_" + uuid.uuid4().hex[:12]

    def setup(self, blocked=False):
        self.s3.create_bucket(Bucket=self.bucket)
        if not blocked:
            self.unblock()

    def unblock(self):
        self.db.execute(f"CREATE TABLE {self.table} (id text NOT NULL, n int)")

    def teardown(self):
        self.db.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.db.close()

    def stream(self, name):
        return Stream(name, {"RedshiftDestinationConfiguration": {
            "ClusterJDBCURL": self.url,
            "CopyCommand": {"DataTableName": self.table, "CopyOptions": "JSON 'auto'"},
            "Username": "postgres",
            "S3Configuration": {"BucketARN": f"arn:aws:s3:::{self.bucket}", "Prefix": "stage/", "BufferingHints": BUFFER},
        }}, HYDRANT)

    def read(self):
        exists = self.db.execute("SELECT to_regclass(%s)", (self.table,)).fetchone()[0]
        if exists is None:
            return collections.Counter()
        return collections.Counter(dict(self.db.execute(
            f"SELECT id, count(*) FROM {self.table} GROUP BY id").fetchall()))


class OpenSearchAdapter:
    """AmazonopensearchserviceDestinationConfiguration (NoRotation, FIREHOSE_DEFAULT ids).
    Blocked: the index exists with `index.blocks.write: true`, so every document fails with a
    cluster_block_exception, which Hydrant retries."""
    name = "opensearch"
    exact = True
    failure_metric = "hydrant_delivery_to_amazon_opensearch_service_failures_total"

    def __init__(self, s3):
        (self.endpoint,) = require_env("FH_TEST_OPENSEARCH_ENDPOINT")
        self.s3 = s3
        self.bucket = "t-" + uuid.uuid4().hex[:16]
        self.index = "conf-" + uuid.uuid4().hex[:12]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def setup(self, blocked=False):
        self.s3.create_bucket(Bucket=self.bucket)
        if blocked:
            status, out = self.call("PUT", f"/{self.index}", {"settings": {"index.blocks.write": True}})
            assert status == 200, out

    def unblock(self):
        status, out = self.call("PUT", f"/{self.index}/_settings", {"index.blocks.write": False})
        assert status == 200, out

    def teardown(self):
        self.call("DELETE", f"/{self.index}")

    def stream(self, name):
        return Stream(name, {"AmazonopensearchserviceDestinationConfiguration": {
            "ClusterEndpoint": self.endpoint, "IndexName": self.index, "IndexRotationPeriod": "NoRotation",
            "BufferingHints": BUFFER,
            "S3Configuration": {"BucketARN": f"arn:aws:s3:::{self.bucket}", "Prefix": "failed/"},
        }}, HYDRANT)

    def read(self):
        counts = collections.Counter()
        status, _ = self.call("POST", f"/{self.index}/_refresh")
        if status == 404:
            return counts
        # Pages of 10,000 (the default max_result_window), in _id order with search_after. Hydrant
        # may index more while we read: a later page may hold documents newer than the first.
        query = {"size": 10000, "sort": [{"_id": "asc"}], "query": {"match_all": {}}}
        while True:
            status, out = self.call("POST", f"/{self.index}/_search", query)
            assert status == 200, out
            hits = out["hits"]["hits"]
            for hit in hits:
                counts[hit["_source"]["id"]] += 1
            if len(hits) < query["size"]:
                break
            query["search_after"] = hits[-1]["sort"]
        return counts


class Receiver:
    """A Firehose HTTP endpoint receiver on 127.0.0.1:0. Records of requests it answers 200 are
    delivered; `fail` makes it answer 500 (nothing delivered)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fail = False
        self.requests = []  # (request id, status answered, [record ids])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = json.loads(body)
                request_id = request["requestId"]
                ids = [json.loads(base64.b64decode(r["data"]))["id"] for r in request["records"]]
                status = 500 if receiver.fail else 200
                with receiver.lock:
                    receiver.requests.append((request_id, status, ids))
                answer = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
                if status != 200:
                    answer["errorMessage"] = "not now"
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self):
        with self.lock:
            return [(rid, ids) for rid, status, ids in self.requests if status == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HttpAdapter:
    """HttpEndpointDestinationConfiguration to an in-test receiver. Blocked: it answers 500."""
    name = "http"
    exact = False  # at least once: a request answered but not checkpointed is sent again
    failure_metric = "hydrant_delivery_to_http_endpoint_failures_total"

    def __init__(self, s3):
        self.s3 = s3
        self.bucket = "t-" + uuid.uuid4().hex[:16]
        self.receiver = Receiver()

    def setup(self, blocked=False):
        self.s3.create_bucket(Bucket=self.bucket)
        self.receiver.fail = blocked

    def unblock(self):
        self.receiver.fail = False

    def teardown(self):
        self.receiver.close()

    def stream(self, name):
        return Stream(name, {"HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": self.receiver.url, "Name": "conformance"},
            "BufferingHints": BUFFER,
            "S3Configuration": {"BucketARN": f"arn:aws:s3:::{self.bucket}", "Prefix": "backup/"},
        }}, HYDRANT)

    def read(self):
        counts = collections.Counter()
        for _, ids in self.receiver.accepted():
            counts.update(ids)
        return counts


ADAPTERS = {a.name: a for a in (S3Adapter, PostgresAdapter, OpenSearchAdapter, HttpAdapter)}


@pytest.fixture(params=list(ADAPTERS))
def dest(request, s3):
    adapter = ADAPTERS[request.param](s3)
    yield adapter
    adapter.teardown()


# ---------------------------------------------------------------------------------------------
# Helpers


def start(dest, hydrant_factory, s3):
    stream = f"conf-{dest.name}-{uuid.uuid4().hex[:6]}"
    stores = {"s3": s3_store(s3), **getattr(dest, "stores", dict)()}
    h = hydrant_factory(config_yaml(dest.stream(stream), object_stores=stores))
    return h, stream


def records(n, tag):
    run = uuid.uuid4().hex[:8]
    out = []
    for i in range(n):
        rid = f"{tag}-{run}-{i}"
        out.append((rid, json.dumps({"id": rid, "n": i}).encode() + b"\n"))
    return out


def put_all(h, stream, batch, per_call=100):
    """PutRecordBatch calls of per_call records; returns the acknowledged ids (all of them)."""
    client = h.firehose()
    acked = []
    for start_at in range(0, len(batch), per_call):
        chunk = batch[start_at:start_at + per_call]
        out = client.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for _, d in chunk])
        assert out["FailedPutCount"] == 0, out
        acked.extend(rid for rid, _ in chunk)
    return acked


def settled(dest, h, stream, ids, timeout=60):
    """Waits until every id arrived and the stream's backlog is 0 (nothing left to deliver, so no
    later duplicate can come); returns the final Counter."""
    wanted = set(ids)

    def arrived():
        if h.proc.poll() is not None or "panicked at" in h.log_path.read_text(errors="replace"):
            raise AssertionError(f"hydrant died or a thread panicked while delivering to {dest.name} "
                                 f"(exit {h.proc.poll()}){panics(h)}")
        return wanted <= set(dest.read())
    try:
        wait_for(arrived, timeout=timeout, interval=0.3, what=f"{len(wanted)} records at {dest.name}")
    except AssertionError:
        got = dest.read()
        missing = sorted(wanted - set(got))
        raise AssertionError(f"{len(missing)} of {len(wanted)} records never reached {dest.name}: "
                             f"{missing[:5]}{panics(h)}\n{h.log()}") from None
    wait_for(lambda: h.metric("hydrant_shard_backlog_records", stream) == 0, timeout=30, what="backlog 0")
    return dest.read()


def panics(h):
    """Hydrant's panic messages (with the line after each, where it happened), for failure messages."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", h.log_path.read_text(errors="replace")).splitlines()
    found = [f"{line.strip()} {lines[i + 1].strip() if i + 1 < len(lines) else ''}"
             for i, line in enumerate(lines) if "panicked at" in line]
    return ("; hydrant panicked: " + " | ".join(found[:4])) if found else ""


def assert_exactly_once(dest, counts, ids):
    wanted = set(ids)
    missing = sorted(wanted - set(counts))
    dups = {i: c for i, c in counts.items() if c > 1}
    extra = sorted(set(counts) - wanted)
    assert not missing and not dups and not extra, (
        f"{dest.name}: missing {len(missing)} {missing[:3]}, duplicated {len(dups)} {list(dups.items())[:3]}, "
        f"unexpected {len(extra)} {extra[:3]}")


# ---------------------------------------------------------------------------------------------
# The shared tests


def test_every_record_of_several_put_record_batch_calls_arrives_exactly_once(dest, s3, hydrant_factory):
    dest.setup()
    h, stream = start(dest, hydrant_factory, s3)
    batch = records(500, "every")
    ids = put_all(h, stream, batch)
    counts = settled(dest, h, stream, ids)
    assert_exactly_once(dest, counts, ids)
    assert_no_panic(h)


def test_delivery_resumes_after_a_sigterm_restart_with_nothing_lost_or_duplicated(dest, s3, hydrant_factory):
    dest.setup()
    h, stream = start(dest, hydrant_factory, s3)
    before = put_all(h, stream, records(300, "before"))
    assert h.stop() == 0, f"hydrant did not exit cleanly on SIGTERM:\n{h.log()}"
    h.start()
    after = put_all(h, stream, records(300, "after"))
    counts = settled(dest, h, stream, before + after)
    assert_exactly_once(dest, counts, before + after)
    assert_no_panic(h)


def test_a_kill_9_right_after_acknowledged_puts_loses_none_of_them(dest, s3, hydrant_factory):
    dest.setup()
    h, stream = start(dest, hydrant_factory, s3)
    acked = put_all(h, stream, records(400, "killed"))
    h.kill()  # well before the 1 s buffer interval passes: nothing was delivered yet
    h.start()
    more = put_all(h, stream, records(100, "after"))
    ids = acked + more
    counts = settled(dest, h, stream, ids)
    missing = sorted(set(ids) - set(counts))
    dups = {i: c for i, c in counts.items() if c > 1}
    assert not missing, f"{len(missing)} acknowledged records lost: {missing[:5]}"
    assert not set(counts) - set(ids), f"unexpected records: {sorted(set(counts) - set(ids))[:3]}"
    if dest.exact:
        assert not dups, f"{dest.name} delivered {len(dups)} records twice: {list(dups.items())[:3]}"
        return
    # HTTP endpoint: at least once. A duplicate is only acceptable as a repeated request (same
    # request id), which a receiver can deduplicate on.
    accepted = dest.receiver.accepted()
    per_id = collections.Counter(rid for rid, _ in accepted)
    repeated = {rid: c for rid, c in per_id.items() if c > 1}
    carriers = collections.defaultdict(set)
    for rid, rec_ids in accepted:
        for i in rec_ids:
            carriers[i].add(rid)
    bad = {i: carriers[i] for i in dups if len(carriers[i]) > 1}
    print(f"http: {len(accepted)} accepted requests, {len(repeated)} request ids seen more than once, "
          f"{len(dups)} records delivered more than once")
    assert not bad, f"records delivered twice under different request ids (not deduplicable): {list(bad.items())[:3]}"


def test_a_destination_refusing_everything_for_a_while_then_gets_everything_exactly_once(
        dest, s3, hydrant_factory):
    dest.setup(blocked=True)
    h, stream = start(dest, hydrant_factory, s3)
    ids = put_all(h, stream, records(300, "blocked"))
    wait_for(lambda: h.metric(dest.failure_metric, stream) >= 2, timeout=30,
             what=f"{dest.name} refusing deliveries ({dest.failure_metric})")
    assert not dest.read(), f"{dest.name} got records while it was refusing them"
    more = put_all(h, stream, records(100, "while-blocked"))
    dest.unblock()
    counts = settled(dest, h, stream, ids + more, timeout=90)
    assert_exactly_once(dest, counts, ids + more)
    assert h.proc.poll() is None
    assert_no_panic(h)
