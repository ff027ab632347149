"""Load for the chaos suite: producers that behave like real ones, a ledger of what they were
told, and the one accounting every scenario prints.

Each record is `{"id": "<run>-<thread>-<call>-<i>", "n": i, "pad": "..."}` plus a newline, the
shape every destination adapter of tests/clients/test_conformance.py reads back.

A producer resends the records of a call that failed or went unanswered, as an SDK with retries
would. Outcomes:
- acknowledged: the answer said the record is stored (it must be delivered);
- unanswered: an attempt got no answer (a kill, a reset). It may or may not be stored, so a
  duplicate of such a record is the producer's resend, not Hydrant's doing; it is counted apart;
- refused: the whole call was answered with an error (503 under a full disk, 400...): nothing of
  it may be stored.
"""

import collections
import json
import os
import threading
import time
import uuid

import botocore.exceptions

from clients_conftest import list_objects, read_object
from producers import ProducerThreads


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = set()
        self.acked = set()
        self.unanswered = set()
        self.calls = collections.Counter()
        self.latencies = []  # seconds, of answered calls

    def note(self, outcome, ids, seconds=None):
        with self.lock:
            self.calls[outcome] += 1
            self.sent.update(ids)
            if outcome == "unanswered":
                self.unanswered.update(ids)
            if seconds is not None:
                self.latencies.append(seconds)

    def acknowledge(self, ids):
        with self.lock:
            self.acked.update(ids)

    def p99(self):
        with self.lock:
            values = sorted(self.latencies)
        return values[min(len(values) - 1, int(len(values) * 0.99))] if values else None


def make_record(rid, n, pad):
    return json.dumps({"id": rid, "n": n, "pad": pad}).encode() + b"\n"


class Producers(ProducerThreads):
    """`threads` producers putting batches of `per_call` records of about `record_bytes` into
    `stream` until `finish()`, at most `calls_per_second` calls each (None: as fast as answered)."""

    def __init__(self, clients, stream, ledger, per_call=50, record_bytes=200, calls_per_second=None):
        self.run_id = uuid.uuid4().hex[:8]
        pad = "x" * max(0, record_bytes - 60)

        def produce(tid, client):
            call = 0
            while not self.stop.is_set():
                pending = [(f"{self.run_id}-{tid}-{call}-{i}", i) for i in range(per_call)]
                call += 1
                began = time.time()
                while pending and not self.stop.is_set():
                    ids = [rid for rid, _ in pending]
                    started = time.time()
                    try:
                        out = client.put_record_batch(
                            DeliveryStreamName=stream,
                            Records=[{"Data": make_record(rid, n, pad)} for rid, n in pending])
                    except botocore.exceptions.ClientError as e:
                        ledger.note("refused:" + e.response["Error"]["Code"], ids, time.time() - started)
                        time.sleep(0.2)
                        continue
                    except Exception:  # noqa: BLE001 - refused, reset, timed out: answer lost
                        ledger.note("unanswered", ids)
                        time.sleep(0.1)
                        continue
                    answers = out["RequestResponses"]
                    ok = [p for p, a in zip(pending, answers) if a.get("RecordId")]
                    ledger.note("acked" if len(ok) == len(pending) else "partly-acked", ids,
                                time.time() - started)
                    ledger.acknowledge(rid for rid, _ in ok)
                    pending = [p for p, a in zip(pending, answers) if not a.get("RecordId")]
                if calls_per_second:
                    time.sleep(max(0.0, 1.0 / calls_per_second - (time.time() - began)))

        super().__init__(len(clients), lambda tid: produce(tid, clients[tid]))


def account(scenario, dest_name, ledger, counts, exact=True, extra=None):
    """The numbers every run prints (and appends to $CHAOS_REPORT as one JSON line), and the
    verdict: nothing acknowledged missing, nothing unknown delivered, and where `exact`, no
    duplicate except of records whose call went unanswered (the producer resent them)."""
    acked = ledger.acked
    missing = sorted(r for r in acked if counts[r] == 0)
    dups = {r: c for r, c in counts.items() if c > 1}
    producer_dups = {r for r in dups if r in ledger.unanswered}
    hydrant_dups = sorted(r for r in dups if r not in ledger.unanswered)
    unknown = sorted(r for r in counts if r not in ledger.sent)
    refused_stored = sorted(r for r in counts if r not in acked and r not in ledger.unanswered)
    row = {
        "scenario": scenario, "destination": dest_name,
        "acknowledged": len(acked), "delivered": len(counts), "delivered_total": sum(counts.values()),
        "missing": len(missing), "duplicated": len(hydrant_dups),
        "duplicated_by_producer_resends": len(producer_dups),
        "calls": dict(ledger.calls), **(extra or {}),
    }
    print("CHAOS " + " ".join(f"{k}={v}" for k, v in row.items() if k != "calls") + f" calls={row['calls']}")
    report = os.environ.get("CHAOS_REPORT")
    if report:
        with open(report, "a") as f:
            f.write(json.dumps(row) + "\n")
    assert not missing, f"{scenario}/{dest_name}: {len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    assert not unknown, f"{scenario}/{dest_name}: records nobody sent were delivered: {unknown[:3]}"
    assert not refused_stored, (
        f"{scenario}/{dest_name}: {len(refused_stored)} records of calls answered with an error were "
        f"delivered: {refused_stored[:3]}")
    if exact:
        assert not hydrant_dups, (
            f"{scenario}/{dest_name}: {len(hydrant_dups)} records delivered twice though their calls were "
            f"answered: {hydrant_dups[:3]}")
    return row


def s3_ids(s3, bucket, prefix):
    """Counter of the record ids in every object under prefix."""
    counts = collections.Counter()
    for key in list_objects(s3, bucket, prefix):
        for line in read_object(s3, bucket, key).splitlines():
            if line.strip():
                counts[json.loads(line)["id"]] += 1
    return counts


def env_int(name, default):
    return int(os.environ.get(name, default))
