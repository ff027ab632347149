"""Durability: an acknowledged record is on disk (fdatasync before the 200, seen with strace);
a full disk budget answers 503 and drops nothing it acknowledged; a graceful stop keeps what is
buffered and delivers it after the restart."""

import os
import re
import signal
import time
import uuid

import botocore.exceptions
import pytest

from conftest import (
    assert_exactly_once,
    assert_no_panic,
    b64,
    config_yaml,
    delivered_counter,
    free_port,
    list_objects,
    make_records,
    raw_call,
    reconfigure,
    require_tool,
    s3_store_yaml,
    s3_stream,
    stream_yaml,
    wait_delivered,
    wait_for,
)

WRITE_CALLS = ("write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg")
SYNC_CALLS = ("fdatasync", "fsync")


def parse_strace(text):
    """strace -f output -> list of syscalls {pid, name, args, ret, entry, exit} (line indexes)."""
    calls, pending = [], {}
    for i, line in enumerate(text.splitlines()):
        m = re.match(r"^(\d+) +(.*)$", line)
        if not m:
            continue
        pid, rest = int(m[1]), m[2]
        r = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", rest)
        if r:
            call = pending.pop(pid, None)
            if call is None:
                continue
            call["args"] += r[2]
            call["exit"] = i
            ret = re.search(r"\) += (-?\d+)", r[2])
            call["ret"] = int(ret[1]) if ret else None
            continue
        c = re.match(r"^(\w+)\((.*)$", rest)
        if not c:
            continue
        call = {"pid": pid, "name": c[1], "args": c[2], "entry": i, "exit": None, "ret": None}
        calls.append(call)
        if rest.endswith("<unfinished ...>"):
            pending[pid] = call
        else:
            call["exit"] = i
            ret = re.search(r"\) += (-?\d+)", rest)
            call["ret"] = int(ret[1]) if ret else None
    return calls


def fd_of(call):
    m = re.match(r"(\d+)", call["args"])
    return int(m[1]) if m else None


def traced_child(strace_pid, timeout=10):
    """The pid of the process strace started (hydrant)."""
    def child():
        try:
            with open(f"/proc/{strace_pid}/task/{strace_pid}/children") as f:
                pids = f.read().split()
            return int(pids[0]) if pids else None
        except OSError:
            return None
    return wait_for(child, timeout=timeout, what="hydrant under strace")


def start_traced(hydrant_factory, config, calls, trace):
    """A Hydrant run under `strace -f` that records `calls` in the file `trace`, started; returns
    it and the pid of hydrant itself. Skips where ptrace is not allowed."""
    strace = require_tool("strace", "strace")
    wrap = [strace, "-f", "-qq", "-e", "trace=" + ",".join(calls), "-s", "600", "-o", str(trace)]
    h = hydrant_factory(config, wrap=wrap, start=False)
    try:
        h.start(timeout=60)
    except AssertionError as e:
        if "ptrace" in str(e) or "Operation not permitted" in str(e):
            pytest.skip(f"strace cannot trace here: {e}")
        raise
    return h, traced_child(h.proc.pid)


def test_records_are_fdatasynced_before_the_200_is_written(s3, bucket, hydrant_factory, tmp_path):
    trace = tmp_path / "strace.txt"
    config = config_yaml(s3_stream("sync", bucket, prefix="s/", interval=60, shards=1), s3=s3,
                         storage={"fsync": "always"})
    h, child = start_traced(hydrant_factory, config, SYNC_CALLS + WRITE_CALLS, trace)
    marker = "FSYNCPROOF-" + uuid.uuid4().hex
    record = (marker + "\n").encode()
    try:
        status, _, out = raw_call(h.endpoint, "Firehose_20150804.PutRecordBatch",
                                  {"DeliveryStreamName": "sync", "Records": [{"Data": b64(record)}]})
        assert status == 200 and out["FailedPutCount"] == 0, out
    finally:
        os.kill(child, signal.SIGTERM)
        h.proc.wait(timeout=60)

    calls = parse_strace(trace.read_text(errors="replace"))
    # The segment write: a file write carrying the record (not stdout/stderr logging).
    seg_writes = [c for c in calls if c["name"] in WRITE_CALLS and marker in c["args"] and fd_of(c) not in (1, 2)
                  and c["name"] not in ("sendto", "sendmsg")]
    assert seg_writes, "no write of the record to a file was traced:\n" + "\n".join(
        f"{c['pid']} {c['name']}({c['args'][:120]}" for c in calls[-40:])
    seg = seg_writes[0]
    assert seg["ret"] is not None and seg["ret"] > 0, seg
    # The answer: the first 200 with Firehose's content type written to a socket after that.
    answers = [c for c in calls if c["name"] in WRITE_CALLS and "HTTP/1.1 200" in c["args"]
               and "x-amz-json-1.1" in c["args"] and c["entry"] > seg["entry"]]
    assert answers, "the 200 answer to the PutRecordBatch was not traced after the segment write"
    answer = answers[0]
    syncs = [c for c in calls if c["name"] in SYNC_CALLS and fd_of(c) == fd_of(seg) and c["ret"] == 0
             and c["entry"] > seg["exit"] and c["exit"] is not None and c["exit"] < answer["entry"]]
    assert syncs, (
        f"no fdatasync/fsync of fd {fd_of(seg)} completed between the segment write (trace line {seg['entry']}) "
        f"and the 200 answer (trace line {answer['entry']}): an acknowledged record may not be on disk.\n"
        + "\n".join(f"{c['entry']}: {c['pid']} {c['name']}({c['args'][:100]}" for c in calls
                    if seg["entry"] - 5 <= c["entry"] <= answer["entry"] + 2)
    )


def test_a_full_disk_budget_answers_503_and_every_acknowledged_record_survives(s3, bucket, hydrant_factory):
    closed = free_port()  # nothing listens there: delivery cannot make progress
    unreachable = (
        "object_stores:\n  s3: { type: s3, endpoint: \"http://127.0.0.1:%d\", region: us-east-1, "
        "access_key_id: \"x\", secret_access_key: \"y\", allow_http: true }\n" % closed
    )
    storage = "storage: { fsync: always, max_bytes: 1048576, segment_bytes: 65536 }\n"
    # SIGTERM drains buffers until this deadline; the destination is dead, so keep it short.
    storage += "shutdown_timeout_seconds: 5\n"
    streams = "delivery_streams:\n" + stream_yaml("budget", bucket, prefix="b/", interval=1, shards=2)
    h = hydrant_factory(unreachable + storage + streams)
    fh = h.firehose(read_timeout=30)

    acked, rejected = [], []
    saw_503 = None
    for call in range(200):  # 200 x 40 KiB = 8 MiB, far over the 1 MiB budget
        records = make_records(40, tag=f"budget-{call}", size=1024)
        try:
            out = fh.put_record_batch(DeliveryStreamName="budget", Records=[{"Data": r} for r in records])
        except botocore.exceptions.ClientError as e:
            code, status = e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
            assert (code, status) == ("ServiceUnavailableException", 503), (call, code, status, e.response)
            rejected.extend(records)
            saw_503 = saw_503 or (call, e.response["Error"].get("Message"))
            if len(rejected) >= 3 * len(records):
                break
            continue
        for r, entry in zip(records, out["RequestResponses"]):
            (acked if entry.get("RecordId") else rejected).append(r)
    assert saw_503, f"200 calls ({len(acked)} records, {len(acked) * 1024 >> 20} MiB) never hit the 1 MiB budget"
    (single,) = make_records(1, tag="budget-single", size=1024)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        fh.put_record(DeliveryStreamName="budget", Record={"Data": single})
    r = info.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("ServiceUnavailableException", 503), r
    rejected.append(single)
    print(f"first 503 at call {saw_503[0]}: {saw_503[1]!r}; acknowledged {len(acked)}, rejected {len(rejected)}")
    assert acked, "the budget refused even the first call"
    assert h.metric("hydrant_incoming_records_total", "budget") == len(acked)

    assert h.stop() == 0, f"SIGTERM with an unreachable destination did not exit 0:\n{h.log()}"
    reconfigure(h, s3_store_yaml(s3) + storage + streams)
    h.start()
    counts = wait_delivered(s3, bucket, acked, prefix="b/", timeout=90)
    wait_for(lambda: h.metric("hydrant_shard_backlog_records", "budget") == 0, timeout=30, what="backlog 0")
    counts = delivered_counter(s3, bucket, "b/")
    stored_rejected = [r for r in rejected if counts[r.rstrip(b"\n")]]
    assert not stored_rejected, f"{len(stored_rejected)} records answered 503/failed were delivered anyway"
    assert_exactly_once(counts, acked)

    # The budget is free again once delivered: puts succeed.
    later = []

    def put_ok():
        records = make_records(40, tag="later", size=1024)
        try:
            out = fh.put_record_batch(DeliveryStreamName="budget", Records=[{"Data": r} for r in records])
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "ServiceUnavailableException", e.response
            return False
        assert out["FailedPutCount"] == 0, out
        later.extend(records)
        return True

    wait_for(put_ok, timeout=30, interval=0.5, what="a put accepted after the backlog was delivered")
    counts = wait_delivered(s3, bucket, acked + later, prefix="b/")
    assert_exactly_once(counts, acked + later)
    assert_no_panic(h)


def test_sigterm_keeps_buffered_records_and_the_restart_delivers_them_exactly_once(s3, bucket, hydrant_factory):
    def config(interval):
        return config_yaml(s3_stream("term", bucket, prefix="t/", interval=interval), s3=s3)

    h = hydrant_factory(config(60))
    fh = h.firehose()
    records = make_records(200, tag="term")
    for i in range(0, 200, 50):
        assert fh.put_record_batch(DeliveryStreamName="term", Records=[{"Data": r} for r in records[i:i + 50]])[
            "FailedPutCount"] == 0
    extra = make_records(3, tag="term-single")
    for r in extra:
        assert fh.put_record(DeliveryStreamName="term", Record={"Data": r})["RecordId"]
    records += extra

    t = time.time()
    code = h.stop(timeout=30)
    assert code == 0, f"SIGTERM exit code {code}:\n{h.log()}"
    print(f"stopped in {time.time() - t:.2f}s; objects before restart: {len(list_objects(s3, bucket, 't/'))}")

    reconfigure(h, config(1))
    h.start()
    counts = wait_delivered(s3, bucket, records, prefix="t/")
    wait_for(lambda: h.metric("hydrant_shard_backlog_records", "term") == 0, timeout=30, what="backlog 0")
    assert_exactly_once(delivered_counter(s3, bucket, "t/"), records)
    assert h.stop() == 0
    assert_no_panic(h)
