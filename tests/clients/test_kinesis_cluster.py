"""The Kinesis Data Streams API in cluster mode (`core.type: jetstream`, issue 14): three Hydrant
nodes on the three-node NATS JetStream cluster scripts/services.sh starts (HYDRANT_NATS_URLS),
boto3's `kinesis` client, real S3 (s3s-fs). docs/kinesis.md "Cluster mode".

- a stream created through one node takes puts through a second at once and is read through a
  third: every record once, in order, under the sequence numbers the put answered;
- tags and retention changed through one node are seen through the others; of one CreateStream
  sent to two nodes at once exactly one succeeds; a deletion through one node is
  ResourceNotFound through the others;
- a kill -9 of a node while a writer writes through every node (moving on from the dead one):
  every acknowledged record is read once (missing and duplicated counted);
- a KinesisStreamAsSource delivery stream delivers every record put through any node to S3
  exactly once, across a kill -9 of a node and reshards through another;
- a consumer following the Kinesis Client Library's rules (parents to SHARD_END first) reads
  every record once and in key order while a writer writes through every node and another node
  splits, merges and rescales at random, with kill -9s of nodes in between;
- an ON_DEMAND stream whose load passes a shard's limit only counted over every node splits,
  decided by one node.
"""
import random

import collections
import itertools
import threading
import time

from conftest import (
    assert_exactly_once,
    client_error,
    cluster,  # noqa: F401 - the fixture
    extended_s3,
    make_records,
    wait_delivered,
    wait_for,
)
from test_kinesis import kinesis_client
from test_kinesis_resharding import Consumer, all_shards, check_kcl_run, reshard_at_random
from test_kinesis_resharding import Writer as KeyedWriter

ROLE = "arn:aws:iam::123456789012:role/firehose"
#: A change made through one node is seen through every other within this (docs/kinesis.md).
SEEN_WITHIN_S = 2.0
#: `core.lease_seconds` of these clusters (half the default): the dead node's shards move sooner.
CORE = {"lease_seconds": 6}


def read_all(k, stream):
    """Every record of every shard from TRIM_HORIZON, shard by shard: {shard: [(seq, data)]}."""
    out = {}
    for shard in all_shards(k, stream):
        sid = shard["ShardId"]
        it = k.get_shard_iterator(StreamName=stream, ShardId=sid,
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = out.setdefault(sid, [])
        while it:
            got = k.get_records(ShardIterator=it, Limit=1000)
            records += [(r["SequenceNumber"], r["Data"]) for r in got["Records"]]
            if not got["Records"] and got.get("MillisBehindLatest", 0) == 0:
                break
            it = got.get("NextShardIterator")
    return out


def seen_within(nodes, check, what):
    """Waits until `check(kinesis client)` holds through every node; returns the seconds."""
    began = time.monotonic()
    clients = [kinesis_client(n.endpoint) for n in nodes]
    wait_for(lambda: all(check(k) for k in clients), timeout=SEEN_WITHIN_S, interval=0.05, what=what)
    return time.monotonic() - began


def not_found(k, stream):
    try:
        k.describe_stream_summary(StreamName=stream)
    except k.exceptions.ResourceNotFoundException:
        return True
    return False


def test_a_stream_created_through_one_node_is_written_through_another_and_read_through_a_third(cluster):
    a, b, c = cluster(core=CORE)
    ka, kb, kc = (kinesis_client(n.endpoint) for n in (a, b, c))
    ka.create_stream(StreamName="clicks", ShardCount=3)
    # At once through another node: a node that has not heard of the stream yet looks it up.
    sent = {}
    for batch in range(6):
        records = [{"Data": f"{batch}-{i}".encode(), "PartitionKey": f"user-{i % 17}"} for i in range(100)]
        out = kb.put_records(StreamName="clicks", Records=records)
        assert out["FailedRecordCount"] == 0, out
        for record, answer in zip(records, out["Records"]):
            sent.setdefault(answer["ShardId"], []).append((answer["SequenceNumber"], record["Data"]))
    read = read_all(kc, "clicks")
    assert sorted(read) == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    for shard, records in sent.items():
        assert read[shard] == records, f"{shard}: read differs from what the puts answered"
    assert sum(map(len, read.values())) == 600

    # Tags and retention changed through one node are seen through the others.
    kb.add_tags_to_stream(StreamName="clicks", Tags={"team": "web"})
    kc.increase_stream_retention_period(StreamName="clicks", RetentionPeriodHours=48)
    took = seen_within(
        (a, b, c),
        lambda k: (k.list_tags_for_stream(StreamName="clicks")["Tags"] == [{"Key": "team", "Value": "web"}]
                   and k.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]
                   ["RetentionPeriodHours"] == 48),
        "the tag and the retention on every node")
    print(f"tags and retention seen through every node {took:.2f}s after the change")
    # Two changes of one stream through two nodes at once: both are kept (each node retries
    # its compare-and-set on what the other stored).
    threads = [threading.Thread(target=k.add_tags_to_stream, kwargs={"StreamName": "clicks", "Tags": {t: "1"}})
               for k, t in ((ka, "x"), (kb, "y"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    seen_within((a, b, c), lambda k: {t["Key"] for t in k.list_tags_for_stream(StreamName="clicks")["Tags"]}
                == {"team", "x", "y"}, "both tags on every node")

    # A deletion through one node: ResourceNotFound through the others, and the name is free.
    ka.delete_stream(StreamName="clicks")
    took = seen_within((b, c), lambda k: not_found(k, "clicks"), "the deletion on every node")
    print(f"deletion seen through every node {took:.2f}s after it")
    code, _, _ = client_error(kb.put_record, StreamName="clicks", PartitionKey="a", Data=b"x")
    assert code == "ResourceNotFoundException"
    kc.create_stream(StreamName="clicks", ShardCount=1)
    assert kb.put_record(StreamName="clicks", PartitionKey="a", Data=b"new")["SequenceNumber"]
    assert [d for _, d in read_all(ka, "clicks")["shardId-000000000000"]] == [b"new"], \
        "the new stream has none of the deleted one's records"


def test_one_create_stream_sent_to_two_nodes_at_once_succeeds_once(cluster):
    nodes = cluster(core=CORE)
    outcomes = collections.Counter()
    for round_ in range(5):
        name = f"race-{round_}"
        results, barrier = [], threading.Barrier(2)

        def create(node):
            k = kinesis_client(node.endpoint)
            barrier.wait()
            try:
                k.create_stream(StreamName=name, ShardCount=1)
                results.append("created")
            except k.exceptions.ResourceInUseException:
                results.append("in use")

        pair = (nodes[round_ % 3], nodes[(round_ + 1) % 3])
        threads = [threading.Thread(target=create, args=(n,)) for n in pair]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(results) == ["created", "in use"], (name, results)
        outcomes.update(results)
        seen_within(nodes, lambda k: k.describe_stream_summary(StreamName=name), f"{name} on every node")
    print(f"concurrent creates: {dict(outcomes)}")


class Writer(threading.Thread):
    """Puts records `w:<n>` (each sent once) through the nodes in turn, moving to the next node
    when a call fails; remembers the acknowledged ones."""

    def __init__(self, nodes, stream):
        super().__init__(daemon=True)
        self.clients = [kinesis_client(n.endpoint) for n in nodes]
        self.stream, self.stop, self.acked, self.failed = stream, threading.Event(), set(), 0

    def run(self):
        counter, turn = itertools.count(), itertools.cycle(range(len(self.clients)))
        k = self.clients[next(turn)]
        while not self.stop.is_set():
            batch = [f"w:{next(counter)}" for _ in range(50)]
            try:
                out = k.put_records(StreamName=self.stream, Records=[
                    {"Data": (d + "\n").encode(), "PartitionKey": d} for d in batch])
            except Exception:  # noqa: BLE001 - the node died: not acknowledged; move on
                self.failed += 1
                k = self.clients[next(turn)]
                continue
            self.acked.update(d for d, r in zip(batch, out["Records"]) if "SequenceNumber" in r)
            k = self.clients[next(turn)]
            time.sleep(0.01)


def test_a_kill_9_of_a_node_loses_and_duplicates_no_acknowledged_record(cluster):
    a, b, c = cluster(core=CORE)
    kinesis_client(a.endpoint).create_stream(StreamName="steady", ShardCount=2)
    writer = Writer((a, b, c), "steady")
    writer.start()
    time.sleep(3)
    a.kill()
    time.sleep(3)
    writer.stop.set()
    writer.join()
    read = collections.Counter(
        d.decode().rstrip("\n") for records in read_all(kinesis_client(b.endpoint), "steady").values()
        for _, d in records)
    missing = [r for r in writer.acked if read[r] == 0]
    duplicated = [r for r, n in read.items() if n > 1]
    print(f"kill -9: {len(writer.acked)} acknowledged, {len(read)} read, {writer.failed} calls failed, "
          f"{len(missing)} missing, {len(duplicated)} duplicated")
    assert len(writer.acked) > 500
    assert not missing and not duplicated, (missing[:3], duplicated[:3])


def test_a_kinesis_source_delivery_stream_delivers_exactly_once_across_a_kill_9(cluster, s3, bucket):
    a, b, c = cluster(core=CORE)
    k = kinesis_client(a.endpoint)
    k.create_stream(StreamName="events", ShardCount=2)
    arn = k.describe_stream_summary(StreamName="events")["StreamDescriptionSummary"]["StreamARN"]
    b.firehose().create_delivery_stream(
        DeliveryStreamName="events-to-s3", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="events/"))
    wait_for(lambda: "events-to-s3" in c.firehose().list_delivery_streams()["DeliveryStreamNames"],
             timeout=SEEN_WITHIN_S, what="the delivery stream on every node")

    def put(node, records):
        out = kinesis_client(node.endpoint).put_records(StreamName="events", Records=[
            {"Data": r, "PartitionKey": str(i)} for i, r in enumerate(records)])
        assert out["FailedRecordCount"] == 0, out
        return records

    acked = put(a, make_records(200, tag="a")) + put(b, make_records(200, tag="b")) + put(c, make_records(200, tag="c"))
    # The Kinesis stream cannot be deleted under its reader, through any node.
    code, _, message = client_error(kinesis_client(c.endpoint).delete_stream, StreamName="events")
    assert code == "ResourceInUseException" and "events-to-s3" in message, message
    a.kill()
    acked += put(b, make_records(200, tag="after"))
    # Reshards through another node while the delivery stream reads: parents are delivered to
    # their ends before their children.
    kc = kinesis_client(c.endpoint)
    kc.update_shard_count(StreamName="events", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    acked += put(b, make_records(200, tag="split"))
    kc.update_shard_count(StreamName="events", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    acked += put(c, make_records(200, tag="merged"))
    assert_exactly_once(wait_delivered(s3, bucket, acked, prefix="events/", timeout=60), acked)


def test_a_kcl_style_consumer_reads_every_record_once_in_key_order_across_random_reshards_on_any_node_and_kill_9(cluster):
    nodes = cluster(core=CORE)
    endpoints = [n.endpoint for n in nodes]
    k, stream, rng = kinesis_client(nodes[0].endpoint), "moving", random.Random(41)
    k.create_stream(StreamName=stream, ShardCount=2)
    # The writer and the consumer go through every node, moving on from one that fails.
    writer = KeyedWriter(endpoints, stream)
    consumer = Consumer(endpoints[1:] + endpoints[:1], stream)
    writer.start()
    consumer.start()
    done = []
    for step in range(14):
        time.sleep(0.4)
        node = nodes[step % 3]
        # The writer's node first, then the consumer's.
        victim = {4: nodes[0], 10: nodes[1]}.get(step)
        if victim is not None:
            node = victim
            node.kill()
            time.sleep(0.5)
            node.start(timeout=60)
            done.append(f"kill -9 {node.workdir.name}")
            continue
        # Reshards through any node (a node that did not follow the last change yet plans on
        # what it knows: Kinesis' refusals are fine, nothing else is).
        try:
            done.append(f"{node.workdir.name}: " + reshard_at_random(kinesis_client(node.endpoint), stream, rng))
        except k.exceptions.InvalidArgumentException as e:
            done.append(f"{node.workdir.name}: refused ({e.response['Error']['Message'][:60]})")
        except k.exceptions.ResourceInUseException as e:
            done.append(f"{node.workdir.name}: in use ({e.response['Error']['Message'][:60]})")
    time.sleep(0.5)
    writer.stop.set()
    writer.join(30)
    consumer.stop.set()
    consumer.join(120)
    assert not consumer.is_alive(), "the consumer did not finish"
    assert sum("split" in d or "merge" in d or "scale" in d for d in done) >= 8, done
    check_kcl_run(k, stream, writer, consumer, done)


def test_an_on_demand_stream_splits_when_the_load_through_every_node_passes_a_shards_limit(cluster):
    """ON_DEMAND in cluster mode: three writers, one through each node, each about 270 records a
    second to the same shard: no node alone passes half the shard's limit, together they pass it
    (80%), and the one deciding node sees the cluster's rate in the log's positions and splits
    the shard (two 5 s looks), once, logged with its reason on that node."""
    nodes = cluster(core=CORE)
    k = kinesis_client(nodes[0].endpoint)
    k.create_stream(StreamName="auto", ShardCount=1, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    seen_within(nodes, lambda kc: not not_found(kc, "auto"), "the stream on every node")
    stop = threading.Event()

    def load(node):
        writer, i = kinesis_client(node.endpoint), 0
        while not stop.is_set():
            started = time.time()
            writer.put_records(StreamName="auto", Records=[
                {"Data": b"x" * 100, "PartitionKey": f"{node.workdir.name}-{i + j}"} for j in range(27)])
            i += 27
            time.sleep(max(0.0, 0.1 - (time.time() - started)))

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    t0 = time.time()
    try:
        open_shards = lambda: k.describe_stream_summary(StreamName="auto")["StreamDescriptionSummary"]["OpenShardCount"]
        wait_for(lambda: open_shards() >= 2, timeout=45, interval=0.5, what="a split under the cluster's load")
        print(f"split {time.time() - t0:.1f} s after the load began")
        time.sleep(6)
        assert open_shards() == 2, "split once: the halves carry the load"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    deciders = [n.workdir.name for n in nodes if "on-demand stream resharded" in n.log_path.read_text(errors="replace")]
    assert len(deciders) == 1, f"one node decides and logs its reason: {deciders}"
    assert sum(n.metric("hydrant_kinesis_reshards_total", "auto") for n in nodes) == 1
