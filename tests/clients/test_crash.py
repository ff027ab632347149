"""Crash test: SIGKILL the real hydrant several times under load and restart it on the same data
directory. Producers behave like real ones (resend a call that failed or got no answer), and at
the end every acknowledged record is in S3, and the only duplicates are records of calls whose
answer was lost (the producer resent them not knowing they were stored)."""

import collections
import json
import os
import random
import threading
import time

import botocore.exceptions
from botocore.exceptions import EndpointConnectionError

from conftest import config_yaml, delivered_counter, list_objects, read_object, s3_stream, wait_for

STREAM = "crash"
THREADS = 3
RECORDS_PER_CALL = 40
KILLS = (3, 4)


class Ledger:
    """What the producers know: per record, acknowledged or not, and whether any attempt went unanswered."""

    def __init__(self):
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


def producer(client, tid, ledger, stop, deadline):
    call_no = 0
    while not stop.is_set() and time.time() < deadline:
        pending = [f'{{"t":{tid},"c":{call_no},"i":{i},"r":"{os.urandom(6).hex()}"}}'.encode()
                   for i in range(RECORDS_PER_CALL)]
        call_no += 1
        while pending and time.time() < deadline:
            try:
                out = client.put_record_batch(DeliveryStreamName=STREAM,
                                              Records=[{"Data": r + b"\n"} for r in pending])
            except EndpointConnectionError as e:
                # "Connection refused" does NOT prove the request never reached hydrant: when a
                # request on a reused keep-alive connection dies with the server, urllib3 sends it
                # again on a new connection and reports only that second failure (seen here: the
                # killed process had stored the call). So it is an unknown outcome, like a reset.
                ledger.note("unanswered", pending, (tid, call_no - 1), f"refused: {e.kwargs.get('error')!r}")
                time.sleep(0.1)
                continue
            except botocore.exceptions.ClientError as e:
                # An answer: the call was refused as a whole, nothing of it is stored.
                ledger.note("error:" + e.response["Error"]["Code"], pending, (tid, call_no - 1))
                time.sleep(0.1)
                continue
            except Exception as e:  # noqa: BLE001 - reset, closed, timed out: the answer is lost
                ledger.note("unanswered", pending, (tid, call_no - 1), f"{type(e).__name__}: {e}")
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
            pending = failed  # resend only the failed entries, as Firehose tells producers to


def where(s3, bucket, record):
    """Keys (with record count and position) of every object holding record: for bug reports."""
    out = []
    for key in list_objects(s3, bucket, "c/"):
        lines = read_object(s3, bucket, key).splitlines()
        if record in lines:
            at = [i for i, line in enumerate(lines) if line == record]
            out.append(f"{key} ({len(lines)} records, at {at}, first {lines[0][:40]!r})")
    return out


def call_of(record):
    doc = json.loads(record)
    return doc["t"], doc["c"]



class Producers:
    """One `producer` thread per client, all writing to `ledger` until `finish()`."""

    def __init__(self, clients, ledger, seconds):
        self.stop = threading.Event()
        self.errors = []
        deadline = time.time() + seconds

        def run(i):
            try:
                producer(clients[i], i, ledger, self.stop, deadline)
            except BaseException as e:  # noqa: BLE001
                self.errors.append(e)

        self.threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(clients))]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not self.errors, self.errors
        assert all(not t.is_alive() for t in self.threads), "a producer did not finish"


def test_sigkill_under_load_loses_no_acknowledged_record_and_duplicates_only_unanswered_calls(
        s3, bucket, hydrant_factory):
    seed = int(os.environ.get("HYDRANT_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"crash test seed {seed} (HYDRANT_CRASH_SEED={seed} to replay the kill timing)")
    h = hydrant_factory(config_yaml(s3_stream(STREAM, bucket, prefix="c/", compression="GZIP", interval=1, shards=2),
                                    s3=s3))
    # Clients are created here (boto3 client creation is not thread safe); no retries, so every
    # outcome the producer sees is the truth of one HTTP exchange.
    clients = [h.firehose(connect_timeout=2, read_timeout=15) for _ in range(THREADS)]
    ledger = Ledger()
    producers = Producers(clients, ledger, seconds=90)
    kills = rng.randint(*KILLS)
    kill_times = []
    for k in range(kills):
        time.sleep(rng.uniform(0.5, 2.5))
        kill_times.append(round(time.time(), 3))
        h.kill()
        acked_at_kill = len(ledger.acked)
        time.sleep(rng.uniform(0.0, 0.5))
        h.start()
        print(f"kill {k + 1}/{kills}: {acked_at_kill} records acknowledged before it")
    time.sleep(1.5)
    producers.finish()

    acked = ledger.acked
    assert len(acked) > 0
    assert ledger.calls["unanswered"] > 0, (
        f"no call was interrupted by the kills, the test proved nothing: {dict(ledger.calls)}")

    def all_acked_delivered():
        try:
            counts = delivered_counter(s3, bucket, "c/")
        except Exception:  # noqa: BLE001 - an object being rewritten; read again
            return None
        return counts if all(counts[r] for r in acked) else None

    try:
        wait_for(all_acked_delivered, timeout=90, interval=0.5, what="every acknowledged record in S3")
    except AssertionError:
        pass  # counted (and reported) below
    # Let the workers finish everything in the log, then count once more.
    wait_for(lambda: h.metric("hydrant_shard_backlog_records", STREAM) == 0, timeout=60, what="backlog 0")
    counts = delivered_counter(s3, bucket, "c/")

    missing = [r for r in acked if counts[r] == 0]
    dups = {r: c for r, c in counts.items() if c > 1}
    bad_dups = {r: c for r, c in dups.items() if r not in ledger.unanswered}
    unknown = [r for r in counts if r not in ledger.sent]
    # Delivered although no attempt of it was acknowledged or unanswered: a call answered with an
    # error was stored anyway.
    stored_after_error = [r for r in counts if r not in acked and r not in ledger.unanswered and r in ledger.sent]
    print(
        f"calls {dict(ledger.calls)}; records: sent {len(ledger.sent)}, acknowledged {len(acked)}, "
        f"in unanswered calls {len(ledger.unanswered)}, delivered {len(counts)} distinct / "
        f"{sum(counts.values())} total; missing {len(missing)}; duplicates {len(dups)} "
        f"(of unanswered calls {len(dups) - len(bad_dups)}, others {len(bad_dups)}); kills {kills}; "
        f"objects {len(list_objects(s3, bucket, 'c/'))}"
    )
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}\n{h.log()}"
    assert not unknown, f"records nobody sent were delivered: {unknown[:3]}"
    assert not bad_dups, (
        f"{len(bad_dups)} records duplicated though every call of them was answered: "
        f"{list(bad_dups.items())[:3]}; the first one is in {where(s3, bucket, next(iter(bad_dups)))}; "
        f"its call's attempts: {ledger.history[call_of(next(iter(bad_dups)))]}; kills at {kill_times}")
    assert not stored_after_error, f"{len(stored_after_error)} records of refused calls were delivered: " \
                                   f"{stored_after_error[:3]}"
