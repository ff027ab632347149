"""Directories are durable: a file's entry lives in its directory, and a directory's entry in
its parent, so every directory Hydrant creates (the data directory's, a stream's and a shard's
log directories, the API's stream files, a local bucket's object prefixes) must be followed by
an fsync of its parent, or a power loss can take away files that were fsync'd and
acknowledged. Seen with strace on the real server."""

import os
import re
import signal
import time

from conftest import config_yaml, make_records, s3_stream, wait_for
from test_durability import fd_of, parse_strace, start_traced

MKDIR_CALLS = ("mkdir", "mkdirat")
OPEN_CALLS = ("open", "openat")
SYNC_CALLS = ("fsync", "fdatasync")


def first_path(args):
    m = re.search(r'"((?:[^"\\]|\\.)*)"', args)
    return m[1] if m else None


def files_under(root):
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def test_every_directory_hydrant_creates_is_fsynced_in_its_parent(hydrant_factory, tmp_path):
    trace = tmp_path / "strace.txt"
    local = tmp_path / "h0" / "buckets"
    config = config_yaml(s3_stream("file", "raw", prefix="p/", size=1, interval=1, shards=1, store="local"),
                         object_stores={"local": {"type": "local", "root": str(local)}})
    h, child = start_traced(hydrant_factory, config, MKDIR_CALLS + OPEN_CALLS + SYNC_CALLS, trace)
    try:
        fh = h.firehose()
        # An API stream: api-streams/ and its log directory; it writes to the implicit
        # `default` store, <data_dir>/buckets.
        fh.create_delivery_stream(DeliveryStreamName="api", ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/fh", "BucketARN": "arn:aws:s3:::api", "Prefix": "q/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})
        for name in ("file", "api"):
            records = make_records(5, tag=name)
            assert fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])[
                "FailedPutCount"] == 0
        wait_for(lambda: files_under(local / "raw" / "p") and files_under(h.data_dir / "buckets" / "api" / "q"),
                 timeout=60, what="objects in both local buckets")
        time.sleep(0.5)  # the delivery's checkpoint, after the object
    finally:
        os.kill(child, signal.SIGTERM)
        h.proc.wait(timeout=60)

    calls = parse_strace(trace.read_text(errors="replace"))
    fd_paths, synced = {}, []  # synced: (trace line, directory path)
    for c in calls:
        if c["name"] in OPEN_CALLS and c["ret"] is not None and c["ret"] >= 0:
            path = first_path(c["args"])
            if path is not None:
                fd_paths[c["ret"]] = os.path.normpath(path)
        elif c["name"] in SYNC_CALLS and c["ret"] == 0 and fd_of(c) in fd_paths:
            synced.append((c["entry"], fd_paths[fd_of(c)]))
    made = [(c["exit"], os.path.normpath(first_path(c["args"]))) for c in calls
            if c["name"] in MKDIR_CALLS and c["ret"] == 0 and first_path(c["args"])]
    expected = [h.data_dir / "streams" / "file" / "shard-0000", h.data_dir / "api-streams",
                h.data_dir / "streams" / "api" / "shard-0000", local / "raw" / "p"]
    for path in expected:
        assert any(p == str(path) for _, p in made), f"{path} was not created while traced"
    unsynced = [p for line, p in made
                if not any(at > line and q == os.path.dirname(p) for at, q in synced)]
    assert not unsynced, "directories whose parent was never fsync'd after they were made:\n" + "\n".join(unsynced)
    print(f"{len(made)} directories made, each followed by an fsync of its parent")
