"""Proof 7 of issue 13, for the embedded log and for JetStream (`core.type: jetstream`, one
node on the test NATS cluster): a kill during a drain does not duplicate.

A stream with a 300 s interval buffers everything; SIGTERM makes Hydrant drain (each shard
records a drain seal in its log and seals its open buffers early). The server runs with
HYDRANT_FAULT=after_upload_before_commit, so it dies (abort: no cleanup, like kill -9) right
after its first object reached S3 and before that object's checkpoint was stored. The restart
on the same data directory replays from the old checkpoint: it reads the drain seal and writes
the same object under the same key (an overwrite). Records put after the restart go to objects
of their own. Before seals were stored in the embedded log, the replay cut the early-sealed
records together with the new ones under another key: the same records twice."""

import collections

import pytest

from conftest import config_yaml, jetstream_core, list_objects, new_namespace, read_object, s3_stream, wait_for

STREAM = "drainkill"
PREFIX = "k/"


def objects(s3, bucket):
    return {key: read_object(s3, bucket, key) for key in list_objects(s3, bucket, PREFIX)}


def put(fh, records):
    for i in range(0, len(records), 100):
        chunk = records[i:i + 100]
        out = fh.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": r + b"\n"} for r in chunk])
        assert out["FailedPutCount"] == 0, out


@pytest.mark.parametrize("core", ["embedded", "jetstream"])
def test_a_kill_during_a_drain_rewrites_the_same_objects_and_duplicates_nothing(
        s3, bucket, hydrant_factory, monkeypatch, core):
    settings = {} if core == "embedded" else {"core": jetstream_core(new_namespace()), "node_id": "drainer"}
    config = config_yaml(s3_stream(STREAM, bucket, prefix=PREFIX, interval=300, size=5, shards=2), s3=s3,
                         **settings)
    monkeypatch.setenv("HYDRANT_FAULT", "after_upload_before_commit")
    h = hydrant_factory(config)
    first = [b'{"batch":"before","i":%d}' % i for i in range(300)]
    put(h.firehose(), first)

    # The drain: the first upload happens, then the process dies before the checkpoint.
    h.stop(timeout=60)
    assert h.proc.returncode != 0, f"the fault did not end the process:\n{h.log()}"
    assert "aborting before the commit" in h.log(), h.log()
    before = objects(s3, bucket)
    assert before, "no object reached S3 before the kill"

    # The restart, without the fault; more records arrive in the same 300 s window.
    monkeypatch.delenv("HYDRANT_FAULT")
    h.start()
    if core == "jetstream":
        # The killed process's leases expire first (12 s): nobody can tell a dead holder from
        # a slow one sooner. Until then the restarted node accepts puts but delivers nothing.
        wait_for(lambda: h.metric("hydrant_lease_owner", STREAM, consumer="delivery") == 2, timeout=30,
                 what="the restarted node holding both leases")
    second = [b'{"batch":"after","i":%d}' % i for i in range(200)]
    put(h.firehose(), second)
    # A graceful stop now: the replay cuts at the first drain's seal, this drain at its own.
    assert h.stop(timeout=60) == 0, h.log()

    after = objects(s3, bucket)
    for key, body in before.items():
        assert after.get(key) == body, f"the object {key} written before the kill is not the same after it"
    counts = collections.Counter(line for body in after.values() for line in body.splitlines() if line)
    dups = {r: c for r, c in counts.items() if c > 1}
    missing = [r for r in first + second if counts[r] == 0]
    print(f"objects before the kill {len(before)}, after {len(after)}; records {sum(counts.values())}, "
          f"distinct {len(counts)}, duplicated {len(dups)}, missing {len(missing)}")
    assert not dups, f"{len(dups)} records delivered twice, e.g. {list(dups.items())[:3]}; objects {sorted(after)}"
    assert not missing, f"{len(missing)} records lost, e.g. {missing[:3]}\n{h.log()}"
    assert len(counts) == len(first) + len(second)
