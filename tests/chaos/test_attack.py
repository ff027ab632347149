"""A sustained slow-client attack while a producer measures its latency.

For `CHAOS_ATTACK_SECONDS` (default 60), attackers on four other addresses keep as many
connections open as they can: each announces an 8 MiB body and sends nothing, or trickles its
body or its headers a byte at a time, and every connection the server closes is replaced at once.
Meanwhile a boto3 producer puts steadily. It must get no error, keep a p99 close to its baseline
(printed; asserted only with generous bounds), and every record it was acknowledged must be
delivered exactly once.
"""

import random
import threading
import time
import uuid

from load import Ledger, Producers, account, env_int, s3_ids
from clients_conftest import s3_store_yaml, stream_yaml
from test_slow_clients import EIGHT_MIB, connect, request_head

ATTACKERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
CONNECTIONS_PER_ATTACKER = 150


class Attacker(threading.Thread):
    """Keeps up to CONNECTIONS_PER_ATTACKER slow connections open from `source` until stopped."""

    def __init__(self, h, source, stop):
        super().__init__(daemon=True)
        self.h, self.source, self.stop = h, source, stop
        self.opened = 0
        self.closed_by_server = 0
        self.rng = random.Random(source)

    def run(self):
        socks = []
        while not self.stop.is_set():
            while len(socks) < CONNECTIONS_PER_ATTACKER and not self.stop.is_set():
                try:
                    s = connect(self.h, self.source)
                    kind = self.rng.choice(["announce", "trickle_body", "trickle_head"])
                    head = (b"POST / HTTP/1.1\r\nHost: x\r\n" if kind == "trickle_head"
                            else request_head(EIGHT_MIB) + (b'{"D' if kind == "trickle_body" else b""))
                    s.sendall(head)
                    s.setblocking(False)
                    socks.append((s, kind))
                    self.opened += 1
                except OSError:
                    time.sleep(0.05)
            alive = []
            for s, kind in socks:
                try:
                    if s.recv(4096) == b"":
                        raise OSError("closed")
                    raise OSError("answered")  # an answer means the server is done with it
                except BlockingIOError:
                    try:
                        if kind != "announce":
                            s.send(b"x")
                        alive.append((s, kind))
                    except OSError:
                        self.closed_by_server += 1
                        s.close()
                except OSError:
                    self.closed_by_server += 1
                    s.close()
            socks = alive
            time.sleep(0.5)
        for s, _ in socks:
            s.close()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else None


def test_a_sustained_slow_client_attack_leaves_a_producer_its_latency_and_its_records(
        s3, bucket, hydrant_factory):
    seconds = env_int("CHAOS_ATTACK_SECONDS", 60)
    stream = "attacked-" + uuid.uuid4().hex[:6]
    h = hydrant_factory(s3_store_yaml(s3) + "delivery_streams:\n"
                        + stream_yaml(stream, bucket, prefix="c/", interval=1, shards=2))
    baseline_ledger = Ledger()
    producers = Producers([h.firehose(read_timeout=30)], stream, baseline_ledger, per_call=100,
                          record_bytes=1000, calls_per_second=10)
    time.sleep(5)
    producers.finish()
    baseline = list(baseline_ledger.latencies)

    ledger = Ledger()
    ledger.sent |= baseline_ledger.sent
    ledger.acked |= baseline_ledger.acked
    stop = threading.Event()
    attackers = [Attacker(h, source, stop) for source in ATTACKERS]
    for a in attackers:
        a.start()
    time.sleep(2)
    producers = Producers([h.firehose(read_timeout=30)], stream, ledger, per_call=100,
                          record_bytes=1000, calls_per_second=10)
    time.sleep(seconds)
    producers.finish()
    stop.set()
    for a in attackers:
        a.join(timeout=30)

    under = list(ledger.latencies)
    opened = sum(a.opened for a in attackers)
    closed = sum(a.closed_by_server for a in attackers)
    stats = {
        "baseline_p50_ms": round(percentile(baseline, 0.5) * 1000, 1),
        "baseline_p99_ms": round(percentile(baseline, 0.99) * 1000, 1),
        "attack_p50_ms": round(percentile(under, 0.5) * 1000, 1),
        "attack_p99_ms": round(percentile(under, 0.99) * 1000, 1),
        "attack_calls": len(under), "attack_seconds": seconds,
        "attack_connections_opened": opened, "attack_connections_closed_by_server": closed,
    }
    errors = {k: c for k, c in ledger.calls.items() if k != "acked"}
    counts = s3_ids(s3, bucket, "c/")
    deadline = time.time() + 60
    while not all(counts[r] for r in ledger.acked) and time.time() < deadline:
        time.sleep(1)
        counts = s3_ids(s3, bucket, "c/")
    account("slow-clients", "s3", ledger, counts, extra={**stats, "producer_errors": errors})
    assert not errors, f"the producer got errors under the attack: {errors}"
    assert closed > 0, "the server closed none of the slow connections"
    # Measured (docs/security.md): p50 8.8 -> 12.2 ms, p99 14.8 -> 123 ms on 2 cores. The median
    # bound fails on a 10x slowdown of a typical call; the tail bound on starvation (5 s waits).
    print(f"slow-clients producer latency: {stats}")
    assert stats["attack_p50_ms"] < 3 * stats["baseline_p50_ms"] + 5, stats
    assert stats["attack_p99_ms"] < 1000, stats
