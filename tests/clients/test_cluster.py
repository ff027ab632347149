"""The cluster mode (`core.type: jetstream`, docs/cluster.md) against the real binary: three
Hydrant nodes on the three-node NATS JetStream cluster scripts/services.sh starts
(HYDRANT_NATS_URLS), real S3 (s3s-fs), boto3.

Each test has a NATS namespace of its own (`core.namespace`), so tests and runs never meet.

- the shared control plane (issue 13, proof 5): a stream created through one node is served by
  every node within 2 s; of two UpdateDestination calls with the same version on two nodes at
  once exactly one wins and the other answers ConcurrentModificationException; tags and a
  deletion reach every node;
- puts spread over every node are delivered exactly once, whichever node delivers them;
- config-file streams: every node with the same file names objects with the same version;
- encryption switches, a full shard (503 until delivery frees it), a wiped data directory.
"""

import base64
import collections
import os
import shutil
import struct
import threading
import time
import uuid

from conftest import (
    assert_exactly_once,
    client_error,
    cluster,  # noqa: F401 - the fixture
    config_yaml,
    describe_error,
    extended_s3,
    gone,
    jetstream_core,
    list_objects,
    make_records,
    new_namespace,
    read_object,
    s3_stream,
    wait_delivered,
    wait_for,
)

DEST = "destinationId-000000000001"
#: Proof 5's bound: a change made through one node is seen through every other within it.
SEEN_WITHIN_S = 2.0


def describe(node, name):
    return node.firehose().describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]


def seen_everywhere(nodes, name, check, timeout=SEEN_WITHIN_S):
    """Waits until `check(description)` holds on every node; returns the seconds it took."""
    began = time.monotonic()

    def everywhere():
        for node in nodes:
            error = describe_error(node.firehose(), name)
            if error is not None or not check(describe(node, name)):
                return False
        return True

    wait_for(everywhere, timeout=timeout, interval=0.05, what=f"{name} as expected on every node")
    return time.monotonic() - began


def test_control_plane_across_nodes(cluster, s3, bucket):
    n1, n2, n3 = cluster()
    name = f"shared-{uuid.uuid4().hex[:6]}"
    n1.firehose().create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="v1/"))
    took = seen_everywhere([n2, n3], name, lambda d: d["DeliveryStreamStatus"] == "ACTIVE")
    print(f"created on n1, served by n2 and n3 after {took:.2f} s")

    # A put through n2 is delivered (by whichever node holds the shard's lease).
    records = make_records(20, tag="n2")
    n2.firehose().put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="v1/"), records)

    # Two updates of version 1 at once, through two nodes: exactly one wins.
    barrier = threading.Barrier(2)
    outcomes = {}

    def update(node, prefix):
        fh = node.firehose()
        barrier.wait()
        try:
            fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                                  DestinationId=DEST, ExtendedS3DestinationUpdate={"Prefix": prefix})
            outcomes[prefix] = "ok"
        except fh.exceptions.ConcurrentModificationException:
            outcomes[prefix] = "ConcurrentModificationException"

    threads = [threading.Thread(target=update, args=(n1, "from-n1/")),
               threading.Thread(target=update, args=(n2, "from-n2/"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes.values()) == ["ConcurrentModificationException", "ok"], outcomes
    winner = next(prefix for prefix, outcome in outcomes.items() if outcome == "ok")

    def updated(d):
        s3_desc = d["Destinations"][0]["ExtendedS3DestinationDescription"]
        return d["VersionId"] == "2" and s3_desc["Prefix"] == winner

    took = seen_everywhere([n1, n2, n3], name, updated)
    print(f"update through one node seen on all three after {took:.2f} s")
    # The loser's version is gone: updating from it again is refused on any node.
    code, _, _ = client_error(n3.firehose().update_destination, DeliveryStreamName=name,
                              CurrentDeliveryStreamVersionId="1", DestinationId=DEST,
                              ExtendedS3DestinationUpdate={"Prefix": "late/"})
    assert code == "ConcurrentModificationException"

    # Records put after the change go under the winner's prefix, once, through any node.
    later = make_records(20, tag="after")
    n3.firehose().put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in later])
    assert_exactly_once(wait_delivered(s3, bucket, later, prefix=winner), later)

    # Tags keep the version and reach every node.
    n2.firehose().tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "team", "Value": "a"}])

    def tagged(node):
        tags = node.firehose().list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"]
        return tags == [{"Key": "team", "Value": "a"}]

    wait_for(lambda: all(tagged(n) for n in (n1, n2, n3)), timeout=SEEN_WITHIN_S, interval=0.05,
             what="the tag on every node")

    # A deletion through n3 reaches every node; the name can be created again afterwards.
    n3.firehose().delete_delivery_stream(DeliveryStreamName=name)
    wait_for(lambda: all(gone(n.firehose(), name) for n in (n1, n2, n3)), timeout=30,
             what=f"{name} gone on every node")
    n1.firehose().create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="again/"))
    seen_everywhere([n2, n3], name, lambda d: d["VersionId"] == "1")


def test_a_name_created_on_two_nodes_at_once_is_created_once(cluster, bucket):
    n1, n2, _ = cluster()
    name = f"race-{uuid.uuid4().hex[:6]}"
    barrier = threading.Barrier(2)
    outcomes = []

    def create(node, prefix):
        fh = node.firehose()
        barrier.wait()
        try:
            fh.create_delivery_stream(DeliveryStreamName=name,
                                      ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix=prefix))
            outcomes.append(("ok", prefix))
        except fh.exceptions.ResourceInUseException:
            outcomes.append(("ResourceInUseException", prefix))

    threads = [threading.Thread(target=create, args=(n, f"{n.workdir.name}/")) for n in (n1, n2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(o for o, _ in outcomes) == ["ResourceInUseException", "ok"], outcomes
    winner = next(p for o, p in outcomes if o == "ok")
    seen_everywhere([n1, n2], name, lambda d: d["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"] == winner)


def test_puts_spread_over_every_node_are_delivered_exactly_once(cluster, s3, bucket):
    nodes = cluster()
    name = f"spread-{uuid.uuid4().hex[:6]}"
    fh = nodes[0].firehose()
    fh.create_delivery_stream(DeliveryStreamName=name,
                              ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="spread/"))
    seen_everywhere(nodes[1:], name, lambda d: d["DeliveryStreamStatus"] == "ACTIVE")
    records = make_records(600, tag="spread")
    clients = [n.firehose() for n in nodes]
    where = {}  # record -> (shard, position), from its RecordId
    for i in range(0, len(records), 50):
        batch = records[i:i + 50]
        answer = clients[(i // 50) % 3].put_record_batch(DeliveryStreamName=name,
                                                          Records=[{"Data": r} for r in batch])
        assert answer["FailedPutCount"] == 0, answer
        for record, entry in zip(batch, answer["RequestResponses"]):
            where[record.rstrip(b"\n")] = shard_and_position(entry["RecordId"])
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="spread/", timeout=90), records)
    # Per-shard order: each object holds one shard's records in log order, and a shard's objects
    # hold consecutive ranges that never interleave.
    ranges = collections.defaultdict(list)
    for key in list_objects(s3, bucket, "spread/"):
        located = [where[line] for line in read_object(s3, bucket, key).splitlines()]
        shards = {shard for shard, _ in located}
        assert len(shards) == 1, f"{key} mixes shards {shards}"
        positions = [position for _, position in located]
        assert positions == sorted(positions), f"{key} is out of log order: {positions[:20]}"
        ranges[shards.pop()].append((positions[0], positions[-1], key))
    assert len(ranges) > 1, f"every record went to one shard: {dict(ranges)}"
    for shard, spans in ranges.items():
        spans.sort()
        for (_, end, key), (start, _, next_key) in zip(spans, spans[1:]):
            assert end < start, f"shard {shard}: {key} and {next_key} interleave"
    # Every node published its share and measured it.
    published = [n.metric("hydrant_jetstream_publish_latency_seconds_count", name) for n in nodes]
    assert all(count > 0 for count in published), published


def shard_and_position(record_id):
    """(shard, position) of a RecordId (base64 of `[1, shard u16, seq u64, arrival ms u64]`)."""
    raw = base64.b64decode(record_id)
    assert raw[0] == 1 and len(raw) == 19, record_id
    return struct.unpack(">H", raw[1:3])[0], struct.unpack(">Q", raw[3:11])[0]


def test_config_file_streams_have_one_version_across_nodes(cluster, s3, bucket):
    stream = s3_stream("filed", bucket, prefix="filed/", shards=2)
    nodes = cluster(streams=[stream])
    versions = {describe(n, "filed")["VersionId"] for n in nodes}
    assert versions == {"1"}, versions
    records = make_records(30, tag="filed")
    for i, node in enumerate(nodes):
        node.firehose().put_record_batch(DeliveryStreamName="filed",
                                          Records=[{"Data": r} for r in records[i * 10:(i + 1) * 10]])
    assert_exactly_once(wait_delivered(s3, bucket, records, prefix="filed/"), records)
    # Every object names version 1, whichever node wrote it.
    keys = list_objects(s3, bucket, "filed/")
    assert keys and all("-filed-1-" in f"-{k.rsplit('/', 1)[-1]}" for k in keys), keys
    # The config file's streams stay the file's: the API refuses to change them on any node.
    code, _, _ = client_error(nodes[2].firehose().delete_delivery_stream, DeliveryStreamName="filed")
    assert code == "ResourceInUseException"


def test_a_full_shard_answers_503_while_its_destination_is_down_and_recovers(hydrant_factory, s3):
    """`core.max_bytes_per_shard`: while delivery is down, a shard keeps what it acknowledged
    up to its limit, then puts get ServiceUnavailableException (503) rather than anything being
    dropped; once the destination is back, delivery frees the space and puts are taken again."""
    bucket = f"later-{uuid.uuid4().hex[:8]}"  # created only once the shard is full
    core = {**jetstream_core(new_namespace()), "max_bytes_per_shard": "2MiB"}
    h = hydrant_factory(config_yaml(s3_stream("full", bucket, prefix="f/", shards=1), s3=s3,
                                    core=core, node_id="alone"))
    fh = h.firehose()
    acked, refused = [], 0
    for batch in range(40):
        records = make_records(20, tag=f"b{batch}", size=10_000)
        try:
            out = fh.put_record_batch(DeliveryStreamName="full", Records=[{"Data": r} for r in records])
        except fh.exceptions.ServiceUnavailableException:
            refused += 1
            break
        codes = {r.get("ErrorCode") for r in out["RequestResponses"] if r.get("ErrorCode")}
        assert codes <= {"ServiceUnavailableException"}, out["RequestResponses"][:3]
        acked += [r for r, answer in zip(records, out["RequestResponses"]) if answer.get("RecordId")]
        if codes:
            refused += 1
            break
    assert refused, "2 MiB of 10 kB records never filled the shard"
    assert 100 <= len(acked) <= 220, f"{len(acked)} records of 10 kB acknowledged under a 2 MiB limit"

    s3.create_bucket(Bucket=bucket)
    assert_exactly_once(wait_delivered(s3, bucket, acked, prefix="f/", timeout=60), acked)
    later = make_records(20, tag="later", size=10_000)

    def taken():
        try:
            out = fh.put_record_batch(DeliveryStreamName="full", Records=[{"Data": r} for r in later])
        except fh.exceptions.ServiceUnavailableException:
            return False
        return out["FailedPutCount"] == 0

    wait_for(taken, timeout=30, interval=0.5, what="puts taken again once delivery freed the shard")


def test_an_encryption_switch_through_one_node_applies_on_every_node(cluster, s3, bucket):
    """Start/StopDeliveryStreamEncryption through one node: every node's appends follow (the
    put answers' `Encrypted`), with the same master keys in every node's file, and every record
    is delivered once across the switches."""
    keys = {"active_key": "k1", "keys": [{"id": "k1", "base64": base64.b64encode(os.urandom(32)).decode()}]}
    nodes = cluster(storage={"encryption": keys})
    n1, n2, n3 = nodes
    name = f"enc-{uuid.uuid4().hex[:6]}"
    n1.firehose().create_delivery_stream(DeliveryStreamName=name,
                                         ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="e/"))
    seen_everywhere([n2, n3], name, lambda d: d["DeliveryStreamStatus"] == "ACTIVE")
    delivered = []

    def put_everywhere(tag):
        flags = set()
        for node in nodes:
            records = make_records(10, tag=f"{tag}-{node.workdir.name}")
            out = node.firehose().put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
            assert out["FailedPutCount"] == 0, out
            flags.add(out["Encrypted"])
            delivered.extend(records)
        return flags

    assert put_everywhere("plain") == {False}
    n1.firehose().start_delivery_stream_encryption(
        DeliveryStreamName=name, DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enabled = lambda d: d["DeliveryStreamEncryptionConfiguration"]["Status"] == "ENABLED"  # noqa: E731
    seen_everywhere(nodes, name, enabled)
    wait_for(lambda: put_everywhere("switching") == {True}, timeout=SEEN_WITHIN_S, interval=0.1,
             what="every node encrypting its appends")
    assert put_everywhere("encrypted") == {True}
    n2.firehose().stop_delivery_stream_encryption(DeliveryStreamName=name)
    seen_everywhere(nodes, name, lambda d: not enabled(d))
    wait_for(lambda: put_everywhere("stopping") == {False}, timeout=SEEN_WITHIN_S, interval=0.1,
             what="every node appending in the clear again")
    assert_exactly_once(wait_delivered(s3, bucket, delivered, prefix="e/"), delivered)


def test_a_node_whose_data_directory_was_wiped_while_down_loses_nothing(cluster, s3, bucket):
    """In cluster mode a node's data_dir is scratch: the logs, checkpoints and definitions live
    on NATS. Wiping it while the node is down loses no stream and no record."""
    nodes = cluster(streams=[s3_stream("filed", bucket, prefix="w/", shards=2)])
    n1, n2, _ = nodes
    name = f"wipe-{uuid.uuid4().hex[:6]}"
    n1.firehose().create_delivery_stream(DeliveryStreamName=name,
                                         ExtendedS3DestinationConfiguration=extended_s3(bucket, prefix="api/"))
    seen_everywhere([n2], name, lambda d: d["DeliveryStreamStatus"] == "ACTIVE")
    before = make_records(30, tag="before")
    n2.firehose().put_record_batch(DeliveryStreamName="filed", Records=[{"Data": r} for r in before])
    assert n2.stop(timeout=60) == 0, n2.log()
    shutil.rmtree(n2.data_dir)
    n2.start(timeout=60)
    assert describe(n2, name)["DeliveryStreamStatus"] == "ACTIVE"
    after = make_records(30, tag="after")
    n2.firehose().put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in after])
    assert_exactly_once(wait_delivered(s3, bucket, before, prefix="w/"), before)
    assert_exactly_once(wait_delivered(s3, bucket, after, prefix="api/"), after)
