"""Hostile and slow HTTP clients against the real binary: connections that announce an 8 MiB body
and send nothing, bodies and headers trickled a byte at a time, idle keep-alive connections,
oversized Content-Lengths, and (with `auth: sigv4`) a known key id with a bad signature. A boto3
producer keeps putting meanwhile: it gets no 503 and keeps a latency near its baseline, and the
slow connections are closed after their deadlines. Honest large batches (500 records, 4 MiB)
still go through boto3 and the aws CLI, also over TLS.

The attackers connect from other loopback addresses (127.0.0.2, ...) than the producer
(127.0.0.1), as clients on other machines would: Hydrant's per-client caps count per address.
Latencies are printed (run with -s to see them); the asserts only use generous bounds.
"""

import datetime as dt
import json
import selectors
import socket
import statistics
import threading
import time

import botocore.exceptions
import pytest

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    b64,
    make_records,
    s3_store_yaml,
    stream_yaml,
    wait_delivered,
)

STREAM = "clicks"
JSON11 = "application/x-amz-json-1.1"
EIGHT_MIB = 8 << 20
KEY, SECRET = "AKIAHYDRANTSLOW001", "slow-secret-0123456789"


def config(s3, bucket, http="", auth=""):
    return (s3_store_yaml(s3) + http + auth + "delivery_streams:\n"
            + stream_yaml(STREAM, bucket, prefix="slow/"))


@pytest.fixture
def server(s3, bucket, hydrant_factory):
    h = hydrant_factory(config(s3, bucket))
    h.bucket = bucket
    yield h
    assert_no_panic(h)


def metric_total(h, name, **labels):
    text = h.urlopen(h.endpoint + "/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- raw connections -----------------------------------------------------------------------------

def connect(h, source):
    return socket.create_connection(("127.0.0.1", h.port), timeout=10, source_address=(source, 0))


def request_head(length, target="PutRecordBatch", extra=None):
    lines = [
        "POST / HTTP/1.1", "Host: 127.0.0.1", f"X-Amz-Target: Firehose_20150804.{target}",
        f"Content-Type: {JSON11}", f"Content-Length: {length}",
    ] + [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Watched:
    """Raw sockets, each watched until the server closes it: when, and what it answered."""

    def __init__(self):
        self.start = time.monotonic()
        self.sockets = {}  # socket -> {"kind", "data", "closed_after", "sent"}
        self.lock = threading.Lock()

    def add(self, kind, sock, head=b""):
        entry = {"kind": kind, "data": b"", "closed_after": None}
        try:
            if head:
                sock.sendall(head)
        except OSError:
            entry["closed_after"] = time.monotonic() - self.start
        with self.lock:
            self.sockets[sock] = entry
        return sock

    def open(self, kind):
        with self.lock:
            return [s for s, e in self.sockets.items() if e["kind"] == kind and e["closed_after"] is None]

    def trickle(self, kind, byte=b"x", every=1.0, stop=None):
        """Sends one byte per `every` seconds on each open socket of `kind` until it closes."""
        def run():
            while not (stop and stop.is_set()):
                socks = self.open(kind)
                if not socks:
                    return
                for s in socks:
                    try:
                        s.send(byte)
                    except OSError:
                        pass
                time.sleep(every)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def watch(self, timeout):
        """From now on, in the background, reads every socket until the server closes it or
        timeout seconds pass; wait_all_closed() waits for that."""
        self.watcher = threading.Thread(target=self._watch, args=(timeout,), daemon=True)
        self.watcher.start()

    def wait_all_closed(self):
        self.watcher.join()

    def _watch(self, timeout):
        sel = selectors.DefaultSelector()
        for s, e in self.sockets.items():
            if e["closed_after"] is None:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                s, e = key.fileobj, self.sockets[key.fileobj]
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    e["data"] += chunk
                    continue
                e["closed_after"] = time.monotonic() - self.start
                sel.unregister(s)
        sel.close()

    def outcomes(self, kind):
        """[(seconds until closed or None, status code or None)] of the sockets of `kind`."""
        out = []
        for e in self.sockets.values():
            if e["kind"] == kind:
                status = None
                if e["data"].startswith(b"HTTP/1.1 "):
                    status = int(e["data"][9:12])
                out.append((e["closed_after"], status))
        return out

    def body_of(self, kind, status):
        for e in self.sockets.values():
            if e["kind"] == kind and e["data"].startswith(f"HTTP/1.1 {status}".encode()):
                return json.loads(e["data"].split(b"\r\n\r\n", 1)[1])
        return None

    def close(self):
        for s in self.sockets:
            s.close()


# --- the producer --------------------------------------------------------------------------------

def batch():
    return [{"Data": r} for r in make_records(100, tag="producer", size=1024)]


def timed_puts(fh, records, calls=None, seconds=None):
    """Latencies (s) of PutRecordBatch calls and the errors seen, back to back."""
    latencies, errors = [], []
    end = time.monotonic() + seconds if seconds else None
    while (calls is None or len(latencies) + len(errors) < calls) and (end is None or time.monotonic() < end):
        started = time.monotonic()
        try:
            out = fh.put_record_batch(DeliveryStreamName=STREAM, Records=records)
            if out["FailedPutCount"]:
                errors.append(("FailedPutCount", out["FailedPutCount"]))
            else:
                latencies.append(time.monotonic() - started)
        except botocore.exceptions.ClientError as e:
            errors.append((e.response["Error"]["Code"], time.monotonic() - started))
        except botocore.exceptions.BotoCoreError as e:
            errors.append((type(e).__name__, time.monotonic() - started))
    return latencies, errors


def summary(latencies):
    if not latencies:
        return {"calls": 0}
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return {"calls": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(p95 * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}


def assert_producer_unharmed(baseline, under, errors, what):
    print(f"\n[{what}] producer baseline {summary(baseline)}; under attack {summary(under)}; errors {errors[:5]}")
    assert not errors, f"{what}: the producer got errors while the attack ran: {errors[:10]}"
    assert len(under) >= 5, f"{what}: only {len(under)} calls completed while the attack ran"
    # The median fails on a 10x slowdown of a typical call (the chaos run measured +40 %); the
    # maximum on starvation (5 s waits for request memory).
    base = statistics.median(baseline)
    assert statistics.median(under) < 3 * base + 0.02, (summary(baseline), summary(under))
    assert max(under) < 2.0, (summary(baseline), summary(under))


# --- the tests -----------------------------------------------------------------------------------

def test_connections_that_announce_8_mib_and_send_nothing_do_not_starve_a_producer(server):
    """Default `http:` settings. 200 connections from one address announce 8 MiB and send nothing,
    16 from another trickle their body a byte a second, 16 from a third trickle their headers.
    Before the fix, 32 of the first kind held every in-flight permit forever and every other
    producer got 503 after 5 s."""
    h = server
    fh = h.firehose(read_timeout=30)
    records = batch()
    baseline, errors = timed_puts(fh, records, calls=30)
    assert not errors, errors

    attack = Watched()
    try:
        for _ in range(200):
            attack.add("announce", connect(h, "127.0.0.2"), request_head(EIGHT_MIB))
        for _ in range(16):
            attack.add("trickle_body", connect(h, "127.0.0.3"), request_head(EIGHT_MIB) + b'{"Deli')
        for _ in range(16):
            attack.add("trickle_head", connect(h, "127.0.0.4"), b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stop = threading.Event()
        attack.trickle("trickle_body", stop=stop)
        attack.trickle("trickle_head", byte=b"X", stop=stop)
        attack.watch(timeout=40)
        time.sleep(0.5)

        under, errors = timed_puts(fh, records, seconds=8)
        assert_producer_unharmed(baseline, under, errors, "announce 8 MiB, send nothing")

        attack.wait_all_closed()
        stop.set()
        announce = attack.outcomes("announce")
        trickle_body = attack.outcomes("trickle_body")
        trickle_head = attack.outcomes("trickle_head")
        print(f"[closed] announce: {sorted(announce, key=lambda o: o[0] or 99)[::25]}")
        print(f"[closed] trickled bodies: {trickle_body[:4]}; trickled heads: {trickle_head[:4]}")
        never = [o for o in announce + trickle_body + trickle_head if o[0] is None]
        assert not never, f"{len(never)} slow connections were never closed"
        # 128 per address are let in: the rest are closed at once.
        assert sum(1 for t, s in announce if s is None and t < 3) >= 72, announce
        # Of those let in, 4 (32 MiB per address) hold memory until the body deadline (408), the
        # others wait 5 s for room and get 503 ServiceUnavailableException.
        statuses = [s for _, s in announce]
        assert statuses.count(408) == 4 and statuses.count(503) == 124, sorted(statuses, key=str)
        assert all(8 <= t <= 25 for t, s in announce + trickle_body if s == 408), announce + trickle_body
        timeout = attack.body_of("announce", 408)
        assert timeout["__type"] == "RequestTimeoutException", timeout
        assert "http.min_body_bytes_per_second" in timeout["message"], timeout
        busy = attack.body_of("announce", 503)
        assert busy["__type"] == "ServiceUnavailableException", busy
        assert "127.0.0.2" in busy["message"], busy
        # A byte a second is far below 32 KiB/s: cut off after the 10 s body allowance.
        assert [s for _, s in trickle_body].count(408) == 4, trickle_body
        # Headers that never end: closed at the 10 s header timeout, without an answer.
        assert all(s is None and 8 <= t <= 20 for t, s in trickle_head), trickle_head
    finally:
        attack.close()

    assert metric_total(h, "hydrant_http_connections_rejected_total", reason="client_connections") >= 72
    assert metric_total(h, "hydrant_http_connections_timed_out_total", phase="body") >= 8
    assert metric_total(h, "hydrant_http_connections_timed_out_total", phase="header") >= 16
    assert metric_total(h, "hydrant_http_requests_rejected_total", reason="client_inflight") >= 124
    # The server is fine afterwards.
    assert fh.put_record_batch(DeliveryStreamName=STREAM, Records=records)["FailedPutCount"] == 0


def sigv4_head(key, when=None):
    """A request head signed (badly) for `key`: scope and date are valid, the signature is not."""
    when = when or dt.datetime.now(dt.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    auth = (f"AWS4-HMAC-SHA256 Credential={key}/{stamp[:8]}/us-east-1/firehose/aws4_request, "
            f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={'0' * 64}")
    return request_head(EIGHT_MIB, extra={"X-Amz-Date": stamp, "Authorization": auth})


def test_with_sigv4_a_known_key_with_a_bad_signature_cannot_starve_a_producer(s3, bucket, hydrant_factory, monkeypatch):
    """Under sigv4 the signature is checked once the body is in, so an attacker who knows only a
    key id can reserve memory; an unknown key id is refused from its headers, before any."""
    monkeypatch.setenv("HYD_SLOW_SECRET", SECRET)
    auth = ("auth:\n  mode: sigv4\n  credentials:\n"
            f"    - {{ access_key_id: {KEY}, secret_access_key: \"${{HYD_SLOW_SECRET}}\" }}\n")
    h = hydrant_factory(config(s3, bucket, auth=auth))
    fh = h.firehose(key=KEY, secret=SECRET, read_timeout=30)
    records = batch()
    baseline, errors = timed_puts(fh, records, calls=30)
    assert not errors, errors

    attack = Watched()
    try:
        for _ in range(64):
            attack.add("known_key", connect(h, "127.0.0.2"), sigv4_head(KEY))
        for _ in range(32):
            attack.add("unknown_key", connect(h, "127.0.0.3"), sigv4_head("AKIANOTCONFIGURED1"))
        attack.watch(timeout=40)
        time.sleep(0.5)
        under, errors = timed_puts(fh, records, seconds=6)
        assert_producer_unharmed(baseline, under, errors, "sigv4, known key id, bad signature")

        attack.wait_all_closed()
        known = attack.outcomes("known_key")
        unknown = attack.outcomes("unknown_key")
        print(f"[closed] known key: {sorted(known, key=lambda o: o[0] or 99)[::8]}; unknown key: {unknown[:3]}")
        # Unknown key: answered from the headers at once, nothing waited for.
        assert all(s == 400 and t < 3 for t, s in unknown), unknown
        assert attack.body_of("unknown_key", 400)["__type"] == "UnrecognizedClientException"
        # Known key: 4 hold the address's 32 MiB until the body deadline, the rest get 503.
        statuses = [s for _, s in known]
        assert statuses.count(408) == 4 and statuses.count(503) == 60, sorted(statuses, key=str)
        assert all(t is not None and t <= 25 for t, _ in known), known
    finally:
        attack.close()
    assert metric_total(h, "hydrant_auth_failures_total", reason="unknown_key") >= 32
    assert_no_panic(h)


SHORT = ("http:\n  header_timeout_seconds: 2\n  idle_timeout_seconds: 3\n  body_timeout_seconds: 2\n"
         "  min_body_bytes_per_second: 16KiB\n")


@pytest.fixture
def short(s3, bucket, hydrant_factory):
    h = hydrant_factory(config(s3, bucket, http=SHORT))
    h.bucket = bucket
    yield h
    assert_no_panic(h)


def read_until_closed(sock, timeout):
    """(what the server sent, seconds until it closed the connection or None)."""
    sock.settimeout(timeout)
    started, data = time.monotonic(), b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, time.monotonic() - started
            data += chunk
    except socket.timeout:
        return data, None
    except OSError:
        return data, time.monotonic() - started


def read_response(sock, timeout):
    """One HTTP response: (head, JSON body), read by its Content-Length."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data!r}"
        body += chunk
    return head, json.loads(body)


def test_idle_and_slow_connections_are_closed_at_their_deadlines_and_an_honest_slow_body_fits(short, s3):
    h = short
    # An idle keep-alive connection: closed after idle_timeout_seconds (3).
    idle = connect(h, "127.0.0.1")
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    first = idle.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), first
    data, after = read_until_closed(idle, timeout=15)
    assert data == b"" and after is not None and 2 <= after <= 8, (data, after)

    # A connection that sends nothing, and one whose headers never end: header_timeout_seconds (2).
    silent = connect(h, "127.0.0.1")
    partial = connect(h, "127.0.0.1")
    partial.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: Firehose_20150804.PutRecordBatch\r\n")
    for sock in (silent, partial):
        data, after = read_until_closed(sock, timeout=15)
        assert data == b"" and after is not None and after <= 6, (data, after)

    # A body trickled below 16 KiB/s: 408 RequestTimeoutException after the 2 s allowance.
    slow = connect(h, "127.0.0.1")
    slow.sendall(request_head(100_000) + b'{"DeliveryStreamName": "clicks", ')
    started = time.monotonic()
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                slow.send(b" ")
            except OSError:
                return
            time.sleep(0.5)
    threading.Thread(target=trickle, daemon=True).start()
    data, after = read_until_closed(slow, timeout=15)
    stop.set()
    elapsed = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"connection: close" in data.lower(), data[:400]
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["__type"] == "RequestTimeoutException", body
    assert "16384 bytes per second" in body["message"], body
    assert 1.5 <= elapsed <= 8, elapsed

    # An honest body at ~3x the minimum rate takes longer than the 2 s allowance, and fits.
    records = make_records(150, tag="slow-link", size=1000)
    payload = json.dumps({"DeliveryStreamName": STREAM, "Records": [{"Data": b64(r)} for r in records]}).encode()
    honest = connect(h, "127.0.0.1")
    honest.sendall(request_head(len(payload)))
    started = time.monotonic()
    for i in range(0, len(payload), 4096):
        honest.sendall(payload[i:i + 4096])
        time.sleep(4096 / (48 * 1024))
    data, _ = read_until_closed(honest, timeout=3)
    took = time.monotonic() - started
    print(f"\n[honest slow body] {len(payload)} bytes in {took:.1f} s")
    assert took > 2.5, took
    assert data.startswith(b"HTTP/1.1 200"), data[:300]
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["FailedPutCount"] == 0
    for sock in (idle, silent, partial, slow, honest):
        sock.close()

    assert metric_total(h, "hydrant_http_connections_timed_out_total", phase="idle") >= 1
    assert metric_total(h, "hydrant_http_connections_timed_out_total", phase="header") >= 2
    assert metric_total(h, "hydrant_http_connections_timed_out_total", phase="body") >= 1
    # The honest records arrived.
    assert_exactly_once(wait_delivered(s3, h.bucket, records, prefix="slow/"), records)


def test_an_oversized_content_length_is_answered_413_before_any_body_is_sent(server):
    h = server
    for length in (EIGHT_MIB + 1, 10 ** 12):
        sock = connect(h, "127.0.0.1")
        sock.sendall(request_head(length))
        started = time.monotonic()
        head, error = read_response(sock, timeout=10)
        took = time.monotonic() - started
        sock.close()
        assert head.startswith(b"HTTP/1.1 413"), head
        assert took < 3, took
        assert b"x-amzn-errortype: requestentitytoolargeexception" in head.lower(), head
        assert b"x-amzn-requestid" in head.lower(), head
        assert b"connection: close" in head.lower(), head
        assert error["__type"] == "RequestEntityTooLargeException", error
        assert f"{length} bytes" in error["message"] and "split" in error["message"], error
    # An 8 MiB body is not too large (it is refused for what it holds, not for its size).
    sock = connect(h, "127.0.0.1")
    sock.sendall(request_head(EIGHT_MIB) + b"x" * EIGHT_MIB)
    data, _ = read_until_closed(sock, timeout=20)
    sock.close()
    assert data.startswith(b"HTTP/1.1 400"), data[:300]
    assert b"SerializationException" in data, data[:500]
    assert metric_total(h, "hydrant_http_requests_rejected_total", reason="too_large") >= 2


# --- honest large batches, also over TLS ---------------------------------------------------------

def four_mib_batch(tag):
    records = make_records(500, tag=tag, size=8388)
    assert 4_190_000 < sum(map(len, records)) <= 4 << 20
    return records


@pytest.fixture
def tls_server(s3, bucket, hydrant_factory, tmp_path):
    from test_sigv4 import make_ca_and_server_cert

    certs = tmp_path / "certs"
    certs.mkdir()
    paths = make_ca_and_server_cert(certs)
    http = "http:\n  header_timeout_seconds: 2\n"
    body = config(s3, bucket, http=http) + f"tls: {{ cert: {paths['cert']}, key: {paths['key']} }}\n"
    h = hydrant_factory(body, tls_ca=paths["ca"])
    h.bucket = bucket
    yield h
    assert_no_panic(h)


def test_over_tls_a_stalled_handshake_is_cut_off_and_a_500_record_4_mib_batch_goes_through(tls_server, s3):
    h = tls_server
    # TCP connected, no ClientHello: closed at the header timeout (2 s).
    stalled = connect(h, "127.0.0.2")
    data, after = read_until_closed(stalled, timeout=15)
    stalled.close()
    assert data == b"" and after is not None and after <= 6, (data, after)
    assert metric_total(h, "hydrant_http_connections_timed_out_total", phase="tls_handshake") >= 1

    records = four_mib_batch("tls-4mib")
    out = h.firehose(read_timeout=60).put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    assert_exactly_once(wait_delivered(s3, h.bucket, records, prefix="slow/", timeout=90), records)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_aws_cli_puts_a_500_record_4_mib_batch(scheme, aws_cli, request, s3, tmp_path):
    h = request.getfixturevalue("server" if scheme == "http" else "tls_server")
    records = four_mib_batch(f"cli-{scheme}")
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"Data": aws_cli.data(r)} for r in records]))
    out = aws_cli(h.endpoint, "put-record-batch", "--delivery-stream-name", STREAM, "--records", f"file://{path}",
                  ca=h.tls_ca, timeout=180)
    assert out["FailedPutCount"] == 0, out
    assert_exactly_once(wait_delivered(s3, h.bucket, records, prefix="slow/", timeout=90), records)
