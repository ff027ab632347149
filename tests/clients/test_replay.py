"""Replays (`hydrant replay`, `Hydrant_20261208.*`): a time range of a stream's retained log is
delivered again, exactly once, to a new prefix or through another stream, while producers keep
writing, across a kill -9 in the middle; asking for it again writes nothing new. Records are
counted by their content: the new prefix must hold exactly the records of the range, once."""

import os
import subprocess
import threading
import time

from conftest import (
    assert_exactly_once, assert_no_panic, config_yaml, delivered_counter, hydrant_bin,
    list_objects, make_records, raw_call, s3_stream, wait_delivered, wait_for,
)

TARGET = "Hydrant_20261208."


def put_all(fh, stream, records, batch=250):
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        answer = fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in chunk])
        assert answer["FailedPutCount"] == 0, answer


def replay_cli(h, *args, env=None, timeout=120):
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run_env.update(env or {})
    return subprocess.run([hydrant_bin(), "replay", "--endpoint", h.endpoint, *args], capture_output=True,
                          text=True, timeout=timeout, env=run_env)


def call(h, op, body, headers=None):
    return raw_call(h.endpoint, TARGET + op, body, headers=headers)


class Load:
    """Producers that keep writing (records that arrive after the range) while a replay runs."""

    def __init__(self, h, stream):
        self.fh = h.firehose()
        self.stream = stream
        self.stop = threading.Event()
        self.sent = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            records = make_records(100, tag="load")
            try:
                put_all(self.fh, self.stream, records, batch=100)
                self.sent.extend(records)
            except Exception:  # noqa: BLE001 - the server is being killed; the load is not counted
                time.sleep(0.2)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=30)


def test_a_replay_to_a_new_prefix_under_load_and_a_kill9_holds_the_range_exactly_once(s3, bucket, hydrant_factory):
    # Small segments: without retention, delivered segments would be deleted and the range lost.
    h = hydrant_factory(config_yaml(
        s3_stream("orders", bucket, prefix="o/", compression="GZIP", interval=1, size=1, shards=2),
        s3=s3, storage={"segment_bytes": 65536}))
    fh = h.firehose()
    before = make_records(2000, tag="before", size=200)
    put_all(fh, "orders", before)
    time.sleep(0.05)
    start = time.time()
    in_range = make_records(40000, tag="range", size=300)
    put_all(fh, "orders", in_range)
    end = time.time()
    time.sleep(0.05)
    after = make_records(2000, tag="after", size=200)
    put_all(fh, "orders", after)
    wait_delivered(s3, bucket, before + in_range + after, prefix="o/", timeout=120)

    window = call(h, "DescribeReplayWindow", {"DeliveryStreamName": "orders"})
    assert window[0] == 200, window
    assert window[2]["Oldest"] is not None and window[2]["Oldest"] <= start, (window, start)

    load = Load(h, "orders")
    args = ["--stream", "orders", "--from", f"{start:.3f}", "--to", f"{end:.3f}", "--prefix", "replay/"]
    first = replay_cli(h, *args, "--no-wait")
    assert first.returncode == 0, first.stderr
    replay_id = first.stdout.strip()

    def running_with_objects():
        status = call(h, "DescribeReplay", {"ReplayId": replay_id})[2]["Replay"]
        return status if status["Status"] == "RUNNING" and list_objects(s3, bucket, "replay/") else None

    at_kill = wait_for(running_with_objects, timeout=60, interval=0.02, what="the replay's first objects")
    objects_at_kill = len(list_objects(s3, bucket, "replay/"))
    h.kill()
    print(f"killed the server mid-replay at {at_kill['Progress']:.0%}, {objects_at_kill} objects written")
    h.start()
    # The server resumes the replay on its own; asking again finds it and shows its progress.
    second = replay_cli(h, *args)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == replay_id
    assert "%" in second.stderr and "DONE" in second.stderr, second.stderr
    assert "resuming an unfinished replay" in h.log_path.read_text(errors="replace")
    load.finish()

    counts = delivered_counter(s3, bucket, "replay/")
    assert_exactly_once(counts, in_range)

    # Asking for the same replay once more writes nothing new.
    keys = {o["Key"]: (o["Size"], o["LastModified"]) for o in s3.list_objects_v2(Bucket=bucket, Prefix="replay/")["Contents"]}
    third = replay_cli(h, *args)
    assert third.returncode == 0 and third.stdout.strip() == replay_id, third.stderr
    again = {o["Key"]: (o["Size"], o["LastModified"]) for o in s3.list_objects_v2(Bucket=bucket, Prefix="replay/")["Contents"]}
    assert again == keys
    listed = call(h, "ListReplays", {})[2]["Replays"]
    assert [r["ReplayId"] for r in listed] == [replay_id]
    assert listed[0]["Status"] == "DONE" and listed[0]["Prefix"] == "replay/"
    assert (listed[0]["ShardsDone"], listed[0]["ShardsTotal"], listed[0]["Progress"]) == (2, 2, 1.0), listed
    assert h.metric("hydrant_replay_progress_ratio", "orders", replay=replay_id) == 1.0
    # The stream's own delivery went on: every acknowledged record of the load is under its
    # prefix, once (a call cut by the kill may be stored without an answer: not counted).
    own = wait_delivered(s3, bucket, load.sent, prefix="o/")
    assert load.sent and all(own[r.rstrip(b"\n")] == 1 for r in load.sent)
    assert_no_panic(h)


def test_a_replay_through_another_stream_and_its_permissions(s3, bucket, hydrant_factory):
    h = hydrant_factory(config_yaml(
        s3_stream("clicks", bucket, prefix="c/", interval=1, shards=2),
        s3_stream("audit", bucket, prefix="a/", compression="GZIP", interval=1, shards=1),
        s3=s3,
        auth={"mode": "sigv4", "credentials": [
            {"access_key_id": "AKIDOPS", "secret_access_key": "ops-secret",
             "actions": ["firehose:*", "hydrant:*"]},
            {"access_key_id": "AKIDPRODUCER", "secret_access_key": "producer-secret",
             "actions": ["firehose:Put*"]},
        ]}))
    fh = h.firehose("AKIDOPS", "ops-secret")
    start = time.time()
    records = make_records(3000, tag="click")
    put_all(fh, "clicks", records)
    end = time.time()
    own = make_records(50, tag="audit")
    put_all(fh, "audit", own)
    wait_delivered(s3, bucket, records, prefix="c/")

    args = ["--stream", "clicks", "--from", f"{start:.3f}", "--to", f"{end:.3f}", "--to-stream", "audit"]
    denied = replay_cli(h, *args, env={"AWS_ACCESS_KEY_ID": "AKIDPRODUCER", "AWS_SECRET_ACCESS_KEY": "producer-secret"})
    assert denied.returncode != 0
    assert "AccessDenied" in denied.stderr and "hydrant:StartReplay" in denied.stderr, denied.stderr
    unsigned = replay_cli(h, *args)
    assert unsigned.returncode != 0 and "MissingAuthenticationToken" in unsigned.stderr, unsigned.stderr

    ops = {"AWS_ACCESS_KEY_ID": "AKIDOPS", "AWS_SECRET_ACCESS_KEY": "ops-secret"}
    done = replay_cli(h, *args, env=ops)
    assert done.returncode == 0, done.stderr
    counts = wait_delivered(s3, bucket, records + own, prefix="a/")
    assert_exactly_once(counts, records + own)
    # Named by the audit stream's namer, with ids of the replayed records: none took the name of
    # one of audit's own objects.
    assert all(k.rsplit("/", 1)[1].startswith("audit-") for k in list_objects(s3, bucket, "a/"))

    # Clear refusals that name the field and the fix.
    for extra, needle in [
        (["--stream", "clicks", "--from", f"{start}", "--to", f"{time.time() + 3600}", "--prefix", "x/"],
         "To is in the future"),
        (["--stream", "clicks", "--from", f"{end}", "--to", f"{start}", "--prefix", "x/"], "From is after To"),
        (["--stream", "clicks", "--from", f"{start}", "--to", f"{end}", "--prefix", "c/"], "not a new prefix"),
        (["--stream", "nope", "--from", f"{start}", "--to", f"{end}", "--prefix", "x/"], "not found"),
        (["--stream", "clicks", "--from", "yesterday", "--to", f"{end}", "--prefix", "x/"], "RFC 3339"),
    ]:
        refused = replay_cli(h, *extra, env=ops)
        assert refused.returncode != 0 and needle in refused.stderr, (extra, refused.stderr)
    assert_no_panic(h)


def test_replay_help_teaches_with_examples():
    out = subprocess.run([hydrant_bin(), "replay", "--help"], capture_output=True, text=True, check=True).stdout
    for needle in ["--prefix", "--to-stream", "RFC 3339", "hydrant:StartReplay", "retention_hours", "Examples:"]:
        assert needle in out, needle


def test_a_replay_in_a_cluster_reads_the_shared_log_through_any_node(cluster, s3, bucket):
    """Cluster mode (`core.type: jetstream`): the records were put through every node; a replay
    asked of one node reads the shared log (its checkpoints are in the cluster) and holds the
    range once."""
    nodes = cluster([s3_stream("shared", bucket, prefix="s/", interval=1, shards=3)])
    start = time.time()
    records = []
    for i, node in enumerate(nodes):
        batch = make_records(400, tag=f"n{i + 1}")
        put_all(node.firehose(), "shared", batch, batch=200)
        records += batch
    end = time.time()
    later = make_records(100, tag="later")
    put_all(nodes[0].firehose(), "shared", later)
    wait_delivered(s3, bucket, records + later, prefix="s/", timeout=90)
    done = replay_cli(nodes[1], "--stream", "shared", "--from", f"{start:.3f}", "--to", f"{end:.3f}",
                      "--prefix", "again/", timeout=180)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(delivered_counter(s3, bucket, "again/"), records)
