"""kill -9 at random points under load, for every destination.

`CHAOS_KILLS` kills (default 20) of the real hydrant process while producers put continuously;
each kill lands at a random moment (mid-request, mid-fsync, mid-upload, mid-COPY...), and the
process is restarted on the same data directory after a random pause. At the end every
acknowledged record must have reached the destination, and exactly once where Hydrant promises
it (S3, PostgreSQL, OpenSearch); the HTTP endpoint is at-least-once, and a record it got twice
must have come in a repeated request (same request id), which a receiver can deduplicate.

`CHAOS_SEED` replays the kill timing of a run.
"""

import collections
import os
import random
import time

import pytest

from load import Producers, Ledger, account, env_int
from test_conformance import ADAPTERS, settled, start


@pytest.fixture(params=list(ADAPTERS))
def dest(request, s3):
    adapter = ADAPTERS[request.param](s3)
    yield adapter
    adapter.teardown()


def test_kill_9_at_random_points_under_load_loses_nothing_acknowledged(dest, s3, hydrant_factory):
    kills = env_int("CHAOS_KILLS", 20)
    seed = env_int("CHAOS_SEED", random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"CHAOS_SEED={seed}")
    dest.setup()
    h, stream = start(dest, hydrant_factory, s3)
    clients = [h.firehose(connect_timeout=2, read_timeout=15) for _ in range(2)]
    ledger = Ledger()
    producers = Producers(clients, stream, ledger, per_call=50, calls_per_second=10)
    for k in range(kills):
        time.sleep(rng.uniform(0.3, 2.0))
        h.kill()
        time.sleep(rng.uniform(0.0, 0.4))
        h.start()
    time.sleep(1.0)
    producers.finish()
    assert ledger.calls["unanswered"] > 0 or kills == 0, (
        f"no call was interrupted by the kills, the run proved nothing: {dict(ledger.calls)}")

    counts = settled(dest, h, stream, ledger.acked, timeout=180)
    row = account("kill-9", dest.name, ledger, counts, exact=dest.exact,
                  extra={"kills": kills, "seed": seed})
    assert row["acknowledged"] > 0
    if not dest.exact:
        # HTTP endpoint: a duplicate must be a repeated request (same id) a receiver can drop.
        carriers = collections.defaultdict(set)
        for request_id, ids in dest.receiver.accepted():
            for i in ids:
                carriers[i].add(request_id)
        twice = {i: ids for i, ids in carriers.items() if len(ids) > 1 and i not in ledger.unanswered}
        assert not twice, f"records delivered in two different requests: {list(twice.items())[:3]}"
    assert h.proc.poll() is None, f"hydrant exited:\n{h.log()}"
    assert "panicked" not in h.log_path.read_text(errors="replace"), h.log()
    print(f"restarts: {h.starts}; objects/documents checked: {sum(counts.values())}; "
          f"hydrant log: {os.path.getsize(h.log_path)} bytes")
