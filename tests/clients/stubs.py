"""Fault-injecting HTTP stubs for the destination suites: an OpenSearch `_bulk` stub, a Firehose
HTTP endpoint receiver, and a recording proxy in front of a real cluster.

Every stub is a threaded `http.server` on 127.0.0.1:0 that records each request (arrival time,
method, path, headers, raw body, decoded body) before it answers, so a test can look at exactly
what Hydrant sent on every attempt. What a stub answers is decided per request by a *plan*: a
list of `Reply` (request i gets plan[i], the last entry repeats) or a callable.
"""

import base64
import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


@dataclass
class Reply:
    """One answer. body may be bytes, or anything JSON-serialisable. close: drop the connection
    without answering. delay: seconds to wait before answering (or closing)."""
    status: int = 200
    body: Any = None
    delay: float = 0.0
    close: bool = False
    headers: dict = field(default_factory=dict)


@dataclass
class Recorded:
    at: float                      # time.monotonic() when the body had been read
    method: str
    path: str
    headers: dict                  # lower-case names
    raw: bytes                     # the body exactly as received
    body: bytes                    # the body after Content-Encoding was undone
    reply: Optional[Reply] = None

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Stub:
    """Base: records requests, answers from `answer(recorded, index)`."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.on_request = None  # optional hook(recorded, index) run before answering
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = raw
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(raw)
                rec = Recorded(time.monotonic(), self.command, self.path, headers, raw, body)
                with stub.lock:
                    index = len(stub.requests)
                    stub.requests.append(rec)
                if stub.on_request:
                    stub.on_request(rec, index)
                reply = stub.answer(rec, index)
                rec.reply = reply
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.close:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                data = reply.body
                if data is None:
                    data = b""
                elif not isinstance(data, (bytes, bytearray)):
                    data = json.dumps(data).encode()
                self.send_response(reply.status)
                hdrs = {"Content-Type": "application/json", **reply.headers}
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_GET = do_HEAD = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, rec, index):  # pragma: no cover - overridden
        return Reply(404, {"error": "no handler"})

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pick(plan, index, rec):
    if callable(plan):
        return plan(rec, index)
    return plan[min(index, len(plan) - 1)]


# ---------------------------------------------------------------------------------------------
# OpenSearch `_bulk`


def parse_bulk(body: bytes):
    """NDJSON `_bulk` body -> [(action name, action metadata, document dict)]."""
    lines = body.split(b"\n")
    assert lines[-1] == b"", "a _bulk body ends with a newline"
    lines = lines[:-1]
    assert len(lines) % 2 == 0, f"odd number of _bulk lines: {len(lines)}"
    out = []
    for action_line, doc_line in zip(lines[0::2], lines[1::2]):
        action = json.loads(action_line)
        assert len(action) == 1, action
        (name, meta), = action.items()
        out.append((name, meta, json.loads(doc_line)))
    return out


class BulkStub(Stub):
    """A `_bulk` endpoint. `plan` entries are a Reply (the whole request answered that way) or
    an item rule: a callable (position, meta, doc) -> item status (2xx indexed), or (status, error
    object); the answer is then
    a well-formed bulk response with one item per document. The request index counts `_bulk`
    requests only; anything else (GET /) gets a small cluster banner."""

    def __init__(self, plan):
        self.plan = plan
        self.bulk_count = 0
        super().__init__()

    def bulks(self):
        return [r for r in self.snapshot() if r.path.split("?")[0].endswith("/_bulk")]

    def answer(self, rec, index):
        if not rec.path.split("?")[0].endswith("/_bulk"):
            return Reply(200, {"version": {"number": "2.11.0", "distribution": "opensearch"}})
        with self.lock:
            n = self.bulk_count
            self.bulk_count += 1
        entry = _pick(self.plan, n, rec)
        if isinstance(entry, Reply):
            return entry
        items, errors = [], False
        for position, (name, meta, doc) in enumerate(parse_bulk(rec.body)):
            status = entry(position, meta, doc)
            error = None
            if isinstance(status, tuple):
                status, error = status
            item = {"_index": meta.get("_index"), "_id": meta.get("_id") or f"gen-{n}-{position}",
                    "status": status}
            if 200 <= status < 300:
                item.update({"result": "created", "_version": 1})
            else:
                errors = True
                kind = "es_rejected_execution_exception" if status == 429 else "stub_failure"
                item["error"] = error or {"type": kind, "reason": f"stub said {status} for position {position}"}
            items.append({name: item})
        return Reply(200, {"took": 1, "errors": errors, "items": items})


def all_ok(position, meta, doc):
    return 201


# ---------------------------------------------------------------------------------------------
# Firehose HTTP endpoint receiver


def firehose_ok(rec, index):
    """The answer Firehose expects: 200 with the request's id and a timestamp."""
    try:
        request_id = rec.json()["requestId"]
    except (ValueError, KeyError):
        request_id = rec.header("X-Amz-Firehose-Request-Id")
    return Reply(200, {"requestId": request_id, "timestamp": int(time.time() * 1000)})


def firehose_error(status, message="stub failure"):
    def reply(rec, index):
        return Reply(status, {"requestId": rec.header("X-Amz-Firehose-Request-Id"),
                              "timestamp": int(time.time() * 1000), "errorMessage": message})
    return reply


def wrong_request_id(rec, index):
    return Reply(200, {"requestId": "00000000-0000-0000-0000-000000000000",
                       "timestamp": int(time.time() * 1000)})


def dropped(rec, index):
    return Reply(close=True)


class Receiver(Stub):
    """A Firehose HTTP endpoint receiver. `plan` entries are callables (rec, index) -> Reply
    (firehose_ok, firehose_error(500), wrong_request_id, dropped) or Replies, request i getting
    plan[i] and the last one repeating.
    `plan` may be replaced while running."""

    def __init__(self, plan=None):
        self.plan = plan or [firehose_ok]
        super().__init__()

    def answer(self, rec, index):
        entry = self.plan[min(index, len(self.plan) - 1)]
        return entry(rec, index) if callable(entry) else entry

    def records(self, requests=None):
        """[(request id, [record bytes])] in arrival order."""
        out = []
        for rec in requests if requests is not None else self.snapshot():
            doc = rec.json()
            out.append((doc["requestId"], [base64.b64decode(r["data"]) for r in doc["records"]]))
        return out


# ---------------------------------------------------------------------------------------------
# A recording proxy in front of a real cluster


class Proxy(Stub):
    """Forwards every request to `upstream` and relays the answer. `after_forward(rec, index,
    status, body)` runs once the upstream answered and before the answer is relayed: a test can
    kill Hydrant there, after the cluster indexed a batch and before Hydrant learns it did."""

    def __init__(self, upstream):
        self.upstream = upstream.rstrip("/")
        self.after_forward = None
        super().__init__()

    def answer(self, rec, index):
        req = urllib.request.Request(self.upstream + rec.path, data=rec.raw or None, method=rec.method)
        for k, v in rec.headers.items():
            if k in ("content-type", "content-encoding", "authorization"):
                req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        if self.after_forward:
            self.after_forward(rec, index, status, body)
        return Reply(status, body)
