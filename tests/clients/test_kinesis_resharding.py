"""Resharding of Kinesis streams (issue 14), through boto3 against the real binary: SplitShard,
MergeShards and UpdateShardCount follow Kinesis' rules and errors; a closed shard stays
readable to its end, where GetRecords names its children; and a consumer that follows the
Kinesis Client Library's rules (parents to SHARD_END before children, checkpoints by sequence
number) reads every acknowledged record exactly once and in per-key order while a writer runs,
the stream is split, merged and rescaled at random, and the server is killed (-9) in between.
Also the other stream settings: retention and tags."""

import random
import threading
import time

import pytest


from conftest import raw_call
from test_kinesis import error_of, kinesis_client, md5_key, read_shard, server  # noqa: F401 - server: fixture

MAX_KEY = 2**128 - 1


def all_shards(k, stream, **kw):
    shards, token = [], None
    while True:
        out = k.list_shards(NextToken=token) if token else k.list_shards(StreamName=stream, **kw)
        shards += out["Shards"]
        token = out.get("NextToken")
        if not token:
            return shards


def open_ranges(k, stream):
    shards = all_shards(k, stream, ShardFilter={"Type": "AT_LATEST"})
    return sorted((int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]),
                   s["ShardId"]) for s in shards)


def test_split_merge_and_update_shard_count_follow_kinesis_rules(server):
    k = server.kinesis
    k.create_stream(StreamName="s", ShardCount=2)
    k.put_record(StreamName="s", PartitionKey="x", Data=b"before", ExplicitHashKey="5")
    middle = str(2**126)
    k.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=middle)
    shards = {s["ShardId"]: s for s in all_shards(k, "s")}
    assert sorted(shards) == [f"shardId-{i:012d}" for i in range(4)]
    parent, low, high = (shards[f"shardId-{i:012d}"] for i in (0, 2, 3))
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"], "the split shard is closed"
    assert low["ParentShardId"] == high["ParentShardId"] == "shardId-000000000000"
    assert (low["HashKeyRange"]["StartingHashKey"], low["HashKeyRange"]["EndingHashKey"]) == ("0", str(2**126 - 1))
    assert high["HashKeyRange"]["StartingHashKey"] == middle
    assert k.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]["OpenShardCount"] == 3
    assert [s[2] for s in open_ranges(k, "s")] == ["shardId-000000000002", "shardId-000000000003",
                                                     "shardId-000000000001"]
    # Writes go to the children; the parent reads to its end, which names them.
    after = k.put_record(StreamName="s", PartitionKey="x", Data=b"after", ExplicitHashKey="5")
    assert after["ShardId"] == "shardId-000000000002"
    it = k.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = k.get_records(ShardIterator=it)
    while out.get("NextShardIterator") and not out.get("ChildShards"):
        out = k.get_records(ShardIterator=out["NextShardIterator"])
    assert "NextShardIterator" not in out or out["NextShardIterator"] is None
    assert sorted(c["ShardId"] for c in out["ChildShards"]) == ["shardId-000000000002", "shardId-000000000003"]
    assert all(c["ParentShards"] == ["shardId-000000000000"] for c in out["ChildShards"])
    first = k.get_records(ShardIterator=k.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"])
    assert [r["Data"] for r in first["Records"]] == [b"before"]

    # Merge the two children back; the merged shard names both parents.
    k.merge_shards(StreamName="s", ShardToMerge="shardId-000000000002", AdjacentShardToMerge="shardId-000000000003")
    merged = {s["ShardId"]: s for s in all_shards(k, "s")}["shardId-000000000004"]
    assert (merged["ParentShardId"], merged["AdjacentParentShardId"]) == ("shardId-000000000002", "shardId-000000000003")
    assert merged["HashKeyRange"]["EndingHashKey"] == str(2**127 - 1)

    # Kinesis' rules, each refused with its error and the shards unchanged.
    before = all_shards(k, "s")
    for call, kw, code in [
        (k.split_shard, dict(ShardToSplit="shardId-000000000000", NewStartingHashKey="7"), "InvalidArgumentException"),
        (k.split_shard, dict(ShardToSplit="shardId-000000000004", NewStartingHashKey="0"), "InvalidArgumentException"),
        (k.split_shard, dict(ShardToSplit="shardId-000000000004", NewStartingHashKey=str(2**127)), "InvalidArgumentException"),
        (k.split_shard, dict(ShardToSplit="shardId-000000000099", NewStartingHashKey="7"), "ResourceNotFoundException"),
        (k.split_shard, dict(ShardToSplit="shardId-000000000004", NewStartingHashKey="x"), "ValidationException"),
        (k.merge_shards, dict(ShardToMerge="shardId-000000000004", AdjacentShardToMerge="shardId-000000000004"), "InvalidArgumentException"),
        (k.merge_shards, dict(ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001"), "InvalidArgumentException"),
        (k.update_shard_count, dict(TargetShardCount=5, ScalingType="UNIFORM_SCALING"), "InvalidArgumentException"),
    ]:
        got, status, message = error_of(call, StreamName="s", **kw)
        assert (got, status) == (code, 400), (kw, got, message)
    assert all_shards(k, "s") == before
    _, _, message = error_of(k.merge_shards, StreamName="s", ShardToMerge="shardId-000000000000",
                             AdjacentShardToMerge="shardId-000000000001")
    assert "closed" in message and "AT_LATEST" in message, message

    # UpdateShardCount: up to double, down to half, always equal ranges.
    for target in (4, 3, 2, 1):
        out = k.update_shard_count(StreamName="s", TargetShardCount=target, ScalingType="UNIFORM_SCALING")
        assert out["TargetShardCount"] == target
        ranges = open_ranges(k, "s")
        assert len(ranges) == target
        assert ranges[0][0] == 0 and ranges[-1][1] == MAX_KEY
        assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:])), "the open shards tile the space"
        widths = [hi - lo + 1 for lo, hi, _ in ranges]
        assert max(widths) - min(widths) <= 2**64, widths
    # Every record written before any reshard is still readable, in its shard.
    read = [r["Data"] for s in all_shards(k, "s") for r in read_shard(k, "s", s["ShardId"])[0]]
    assert sorted(read) == [b"after", b"before"]


def test_retention_and_tags_are_kept_and_survive_kill_9(server):
    k = server.kinesis
    k.create_stream(StreamName="s", ShardCount=1)
    summary = lambda: k.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]
    assert summary()["RetentionPeriodHours"] == 24
    k.increase_stream_retention_period(StreamName="s", RetentionPeriodHours=168)
    assert summary()["RetentionPeriodHours"] == 168
    code, _, message = error_of(k.increase_stream_retention_period, StreamName="s", RetentionPeriodHours=48)
    assert code == "InvalidArgumentException" and "DecreaseStreamRetentionPeriod" in message
    code, _, _ = error_of(k.decrease_stream_retention_period, StreamName="s", RetentionPeriodHours=12)
    assert code == "InvalidArgumentException"
    k.decrease_stream_retention_period(StreamName="s", RetentionPeriodHours=72)
    k.add_tags_to_stream(StreamName="s", Tags={"team": "data", "env": "test"})
    k.add_tags_to_stream(StreamName="s", Tags={"env": "prod"})
    k.remove_tags_from_stream(StreamName="s", TagKeys=["team", "absent"])
    status, _, body = raw_call(server.endpoint, "Kinesis_20131202.AddTagsToStream",
                               {"StreamName": "s", "Tags": {"": "x"}})
    assert (status, body["__type"]) == (400, "InvalidArgumentException"), body
    code, _, _ = error_of(k.add_tags_to_stream, StreamName="nope", Tags={"a": "b"})
    assert code == "ResourceNotFoundException"
    k.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    server.kill()
    server.start()
    k = kinesis_client(server.endpoint)
    assert summary()["RetentionPeriodHours"] == 72
    assert k.list_tags_for_stream(StreamName="s")["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert [s[2] for s in open_ranges(k, "s")] == ["shardId-000000000001", "shardId-000000000002"]


class Clients:
    """Kinesis clients of one server, or of several (a cluster's nodes): `next()` moves on to the
    next one after a failure, as a client behind a load balancer would."""

    def __init__(self, endpoints):
        endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self.clients, self.at = [kinesis_client(e) for e in endpoints], 0

    @property
    def current(self):
        return self.clients[self.at]

    def next(self):
        self.at = (self.at + 1) % len(self.clients)


class Writer(threading.Thread):
    """Puts records `key:counter` (counters increase per key) until told to stop; remembers the
    acknowledged ones. A call that fails (the server is down) is not retried: its records may or
    may not be stored, and each (key, counter) is sent once, so any duplicate read is Hydrant's."""

    def __init__(self, endpoint, stream, suffix=""):
        super().__init__(daemon=True)
        self.clients = Clients(endpoint)
        self.stream, self.suffix = stream, suffix
        self.stop, self.acked, self.sent, self.failed_calls = threading.Event(), set(), 0, 0

    @property
    def k(self):
        return self.clients.current

    def run(self):
        counters, rng = {}, random.Random(1)
        while not self.stop.is_set():
            batch = []
            for _ in range(40):
                key = f"k{rng.randrange(24)}"
                counters[key] = counters.get(key, 0) + 1
                batch.append(f"{key}:{counters[key]}")
            self.sent += len(batch)
            try:
                out = self.k.put_records(StreamName=self.stream, Records=[
                    {"Data": (d + self.suffix).encode(), "PartitionKey": d.split(":")[0]} for d in batch])
            except Exception:  # noqa: BLE001 - the server is being killed; not acknowledged
                self.failed_calls += 1
                self.clients.next()
                time.sleep(0.1)
                continue
            self.acked.update(d for d, r in zip(batch, out["Records"]) if "SequenceNumber" in r)
            time.sleep(0.01)


class Consumer(threading.Thread):
    """Reads a stream as the Kinesis Client Library does: lists the shards, takes a shard only
    once every parent was read to SHARD_END, reads with GetRecords from its checkpoint (the last
    sequence number read, AFTER_SEQUENCE_NUMBER), and on any error starts over from there."""

    def __init__(self, endpoint, stream):
        super().__init__(daemon=True)
        self.clients, self.stream = Clients(endpoint), stream
        self.read, self.checkpoints, self.finished = [], {}, set()
        self.stop, self.errors, self.idle_passes = threading.Event(), 0, 0

    @property
    def k(self):
        return self.clients.current

    def run(self):
        while True:
            try:
                progressed = self.one_pass()
            except Exception:  # noqa: BLE001 - the server restarts; resume from the checkpoints
                self.errors += 1
                self.clients.next()
                time.sleep(0.2)
                continue
            self.idle_passes = 0 if progressed else self.idle_passes + 1
            if self.stop.is_set() and self.idle_passes >= 2:
                return
            time.sleep(0.05)

    def one_pass(self):
        progressed = False
        for shard in all_shards(self.k, self.stream):
            sid = shard["ShardId"]
            parents = [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]
            if sid in self.finished or not all(p in self.finished for p in parents):
                continue
            progressed |= self.read_shard(sid)
        return progressed

    def read_shard(self, sid):
        kw = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": self.checkpoints[sid]}
              if sid in self.checkpoints else {"ShardIteratorType": "TRIM_HORIZON"})
        it = self.k.get_shard_iterator(StreamName=self.stream, ShardId=sid, **kw)["ShardIterator"]
        progressed = False
        while it:
            out = self.k.get_records(ShardIterator=it, Limit=500)
            for r in out["Records"]:
                self.read.append((r["Data"].decode(), sid, r["PartitionKey"]))
                self.checkpoints[sid] = r["SequenceNumber"]
                progressed = True
            it = out.get("NextShardIterator")
            if it is None:
                self.finished.add(sid)  # SHARD_END: the children may be read now
                return True
            if not out["Records"] and out["MillisBehindLatest"] == 0:
                return progressed


def reshard_at_random(k, stream, rng):
    """One random split, merge or UpdateShardCount, keeping 1 to 8 open shards; what it did."""
    ranges = open_ranges(k, stream)
    choice = rng.choice(["split", "merge", "scale"])
    if choice == "split" and len(ranges) < 8:
        lo, hi, sid = rng.choice(ranges)
        at = rng.randrange(lo + 1, hi + 1)
        k.split_shard(StreamName=stream, ShardToSplit=sid, NewStartingHashKey=str(at))
        return f"split {sid} at {at}"
    if choice == "merge" and len(ranges) > 1:
        i = rng.randrange(len(ranges) - 1)
        a, b = ranges[i][2], ranges[i + 1][2]
        k.merge_shards(StreamName=stream, ShardToMerge=a, AdjacentShardToMerge=b)
        return f"merge {a} {b}"
    n = len(ranges)
    target = rng.randint((n + 1) // 2, min(2 * n, 8))
    k.update_shard_count(StreamName=stream, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
    return f"scale {n} -> {target}"


def test_a_kcl_style_consumer_reads_every_record_once_in_key_order_across_random_reshards_and_kill_9(server):
    k, stream, rng = server.kinesis, "moving", random.Random(14)
    k.create_stream(StreamName=stream, ShardCount=2)
    writer, consumer = Writer(server.endpoint, stream), Consumer(server.endpoint, stream)
    writer.start()
    consumer.start()
    done = []
    for step in range(16):
        time.sleep(0.3)
        if step in (5, 11):
            server.kill()
            time.sleep(0.3)
            server.start()
            done.append("kill -9")
            continue
        done.append(reshard_at_random(k, stream, rng))
    time.sleep(0.5)
    writer.stop.set()
    writer.join(30)
    consumer.stop.set()
    consumer.join(120)
    assert not consumer.is_alive(), "the consumer did not finish"

    check_kcl_run(k, stream, writer, consumer, done)


def check_kcl_run(k, stream, writer, consumer, done):
    """Every acknowledged record read once, per-key order across parents and children, and each
    record read from the shard whose range holds its key."""
    read = [d for d, _, _ in consumer.read]
    counts = {}
    for d in read:
        counts[d] = counts.get(d, 0) + 1
    duplicated = sorted(d for d, n in counts.items() if n > 1)
    missing = sorted(writer.acked - counts.keys())
    assert writer.failed_calls > 0, "the kills happened while the writer ran"
    print(f"\n{len(writer.acked)} acknowledged of {writer.sent} sent; {len(read)} read; "
          f"{len(missing)} missing; {len(duplicated)} duplicated; {consumer.errors} consumer restarts; "
          f"{len(all_shards(k, stream))} shards after: {done}")
    assert not missing, f"{len(missing)} acknowledged records never read, e.g. {missing[:5]}"
    assert not duplicated, f"{len(duplicated)} records read twice, e.g. {duplicated[:5]}"
    assert len(writer.acked) > 1000
    # Per key, the records come in the order they were written, across every parent and child.
    last = {}
    for d in read:
        key, counter = d.split(":")
        assert int(counter) > last.get(key, 0), f"{key}: {counter} after {last[key]}"
        last[key] = int(counter)
    # And each record was in the shard whose range held its key when it was read.
    ranges = {s["ShardId"]: (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in all_shards(k, stream)}
    for d, sid, pk in consumer.read:
        lo, hi = ranges[sid]
        assert lo <= md5_key(pk) <= hi, (d, sid)


@pytest.mark.long
def test_an_on_demand_stream_splits_under_load_and_merges_when_it_cools(server):
    """ON_DEMAND: a shard that stays above half its limits splits within seconds (on-demand.rs:
    two 5 s ticks), the halves then carry the load without throttling, and once the load stops
    the cold neighbours merge back (six ticks). Hand resharding is refused until the stream is
    PROVISIONED again."""
    k = server.kinesis
    k.create_stream(StreamName="auto", ShardCount=1, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = lambda: k.describe_stream_summary(StreamName="auto")["StreamDescriptionSummary"]
    assert summary()["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    code, _, message = error_of(k.split_shard, StreamName="auto", ShardToSplit="shardId-000000000000",
                                NewStartingHashKey=str(2**127))
    assert code == "InvalidArgumentException" and "UpdateStreamMode" in message, message

    stop, sent, throttled = threading.Event(), [0], []

    def load():
        # About 800 records a second over many keys: 80% of one shard, 40% of each half.
        writer, i = kinesis_client(server.endpoint), 0
        while not stop.is_set():
            started = time.time()
            out = writer.put_records(StreamName="auto", Records=[
                {"Data": b"x" * 100, "PartitionKey": f"key-{i + j}"} for j in range(80)])
            i += 80
            sent[0] += 80
            throttled.append((time.time(), out["FailedRecordCount"]))
            time.sleep(max(0.0, 0.1 - (time.time() - started)))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    t0 = time.time()
    assert _wait(lambda: summary()["OpenShardCount"] == 2, 40), "no split under load"
    split_after = time.time() - t0
    time.sleep(12)
    steady = [n for t, n in throttled if t > time.time() - 10]
    assert steady and sum(steady) == 0, f"throttled at the steady state: {steady}"
    assert summary()["OpenShardCount"] == 2, "the halves carry the load: no more splits"
    stop.set()
    thread.join(10)
    t1 = time.time()
    assert _wait(lambda: summary()["OpenShardCount"] == 1, 60), "no merge once cold"
    merge_after = time.time() - t1
    print(f"\nsplit {split_after:.0f}s after the load started ({sent[0]} records sent), "
          f"merged {merge_after:.0f}s after it stopped")
    metrics = server.urlopen(server.endpoint + "/metrics", timeout=5).read().decode()
    assert 'hydrant_kinesis_reshards_total{stream="auto",reason="hot"} 1' in metrics
    assert 'hydrant_kinesis_reshards_total{stream="auto",reason="cold"} 1' in metrics
    assert "on-demand stream resharded" in server.log_path.read_text()

    arn = summary()["StreamARN"]
    k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert summary()["StreamModeDetails"]["StreamMode"] == "PROVISIONED"
    k.update_shard_count(StreamName="auto", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert summary()["OpenShardCount"] == 2


def _wait(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.5)
    return False
