"""Producers that behave like real ones under failures, and the accounting of what they were told.

A producer thread sends PutRecordBatch calls of unique records and resends what a call did not
store: the failed entries of a partly acknowledged call, or the whole call when it was refused
or went unanswered. With several clients (the nodes of a cluster) it moves to the next one after
a failure, as a load balancer would. The `Ledger` records per record what the producer learned:
- acknowledged: the answer said the record is stored (it must be delivered);
- unanswered: an attempt got no answer (a kill, a reset, a timeout). It may or may not be stored,
  so a duplicate of such a record is the producer's resend, not Hydrant's doing (with
  `Ledger(uncertain_failures=True)`, a record answered with an error counts so too);
- refused: the whole call was answered with an error: nothing of it may be stored.

`check(ledger, counts)` compares it with what was delivered and names every broken promise.
"""

import collections
import json
import os
import threading
import time

import botocore.exceptions
from botocore.exceptions import EndpointConnectionError

RECORDS_PER_CALL = 40


class Ledger:
    """What the producers know: per record, acknowledged or not, and whether any attempt went unanswered."""

    def __init__(self, uncertain_failures=False):
        # With `uncertain_failures`, a record answered with an error may still be stored (the
        # cluster mode when a publish's acknowledgement never came): it counts as unanswered.
        self.uncertain_failures = uncertain_failures
        self.lock = threading.Lock()
        self.sent = set()
        self.acked = set()
        self.unanswered = set()  # records of attempts that got no answer (may be stored, may not)
        self.calls = collections.Counter()
        self.history = collections.defaultdict(list)  # (thread, call) -> [(time, outcome)]

    def note(self, outcome, records, call=None, detail=""):
        with self.lock:
            self.calls[outcome] += 1
            if call is not None:
                self.history[call].append((round(time.time(), 3), outcome, detail[:200]))
            self.sent.update(records)
            if outcome == "unanswered":
                self.unanswered.update(records)


def producer(clients, stream, tid, ledger, stop, deadline, records_per_call=RECORDS_PER_CALL):
    """Sends calls to `clients` (the next one after a failure) until `stop` or `deadline`."""
    call_no = 0
    at = tid % len(clients)
    while not stop.is_set() and time.time() < deadline:
        pending = [f'{{"t":{tid},"c":{call_no},"i":{i},"r":"{os.urandom(6).hex()}"}}'.encode()
                   for i in range(records_per_call)]
        call_no += 1
        while pending and time.time() < deadline:
            client = clients[at]
            try:
                out = client.put_record_batch(DeliveryStreamName=stream,
                                              Records=[{"Data": r + b"\n"} for r in pending])
            except EndpointConnectionError as e:
                # "Connection refused" does NOT prove the request never reached hydrant: when a
                # request on a reused keep-alive connection dies with the server, urllib3 sends it
                # again on a new connection and reports only that second failure (seen here: the
                # killed process had stored the call). So it is an unknown outcome, like a reset.
                ledger.note("unanswered", pending, (tid, call_no - 1), f"refused: {e.kwargs.get('error')!r}")
                at = (at + 1) % len(clients)
                time.sleep(0.1)
                continue
            except botocore.exceptions.ClientError as e:
                # An answer: the call was refused as a whole, nothing of it is stored (unless the
                # ledger says errors are uncertain).
                ledger.note("error:" + e.response["Error"]["Code"], pending, (tid, call_no - 1))
                if ledger.uncertain_failures:
                    with ledger.lock:
                        ledger.unanswered.update(pending)
                at = (at + 1) % len(clients)
                time.sleep(0.1)
                continue
            except Exception as e:  # noqa: BLE001 - reset, closed, timed out: the answer is lost
                ledger.note("unanswered", pending, (tid, call_no - 1), f"{type(e).__name__}: {e}")
                at = (at + 1) % len(clients)
                time.sleep(0.1)
                continue
            responses = out["RequestResponses"]
            assert len(responses) == len(pending), out
            ok = [r for r, e in zip(pending, responses) if e.get("RecordId")]
            failed = [r for r, e in zip(pending, responses) if not e.get("RecordId")]
            assert out["FailedPutCount"] == len(failed), out
            ledger.note("acked" if not failed else "partly-acked", pending, (tid, call_no - 1))
            with ledger.lock:
                ledger.acked.update(ok)
                if ledger.uncertain_failures:
                    ledger.unanswered.update(failed)
            pending = failed  # resend only the failed entries, as Firehose tells producers to


class ProducerThreads:
    """Runs `work(i)` for each i < `count` on its own thread until `finish()` (which sets `stop`
    and re-raises what a thread raised)."""

    def __init__(self, count, work):
        self.stop = threading.Event()
        self.errors = []

        def run(i):
            try:
                work(i)
            except BaseException as e:  # noqa: BLE001 - reported by finish()
                self.errors.append(e)

        self.threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not self.errors, self.errors
        assert all(not t.is_alive() for t in self.threads), "a producer did not finish"


class Producers(ProducerThreads):
    """One `producer` thread per entry of `clients` (each a list: one client per server, or
    several), all writing to `ledger` until `finish()` or `seconds` passed."""

    def __init__(self, clients, stream, ledger, seconds):
        deadline = time.time() + seconds
        super().__init__(len(clients), lambda i: producer(clients[i], stream, i, ledger, self.stop, deadline))


def call_of(record):
    doc = json.loads(record)
    return doc["t"], doc["c"]


def check(ledger, counts, context=""):
    """Asserts that `counts` (delivered line -> times) keeps every promise to the producers of
    `ledger`; returns the summary line it prints."""
    acked = ledger.acked
    missing = [r for r in acked if counts[r] == 0]
    dups = {r: c for r, c in counts.items() if c > 1}
    bad_dups = {r: c for r, c in dups.items() if r not in ledger.unanswered}
    unknown = [r for r in counts if r not in ledger.sent]
    # Delivered although no attempt of it was acknowledged or unanswered: a call answered with an
    # error was stored anyway.
    stored_after_error = [r for r in counts if r not in acked and r not in ledger.unanswered and r in ledger.sent]
    summary = (
        f"calls {dict(ledger.calls)}; records: sent {len(ledger.sent)}, acknowledged {len(acked)}, "
        f"in unanswered calls {len(ledger.unanswered)}, delivered {len(counts)} distinct / "
        f"{sum(counts.values())} total; missing {len(missing)}; duplicates {len(dups)} "
        f"(of unanswered calls {len(dups) - len(bad_dups)}, others {len(bad_dups)})"
    )
    print(summary)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}\n{context}"
    assert not unknown, f"records nobody sent were delivered: {unknown[:3]}"
    first_dup = next(iter(bad_dups), None)
    assert not bad_dups, (
        f"{len(bad_dups)} records duplicated though every call of them was answered: "
        f"{list(bad_dups.items())[:3]}; the first one's call's attempts: "
        f"{ledger.history[call_of(first_dup)]}\n{context}")
    assert not stored_after_error, (
        f"{len(stored_after_error)} records of refused calls were delivered: {stored_after_error[:3]}")
    return summary
