"""A destination that is down for minutes under load, for every destination.

While the destination refuses everything (`CHAOS_OUTAGE_SECONDS`, default 180), producers keep
putting: every put is still acknowledged (the records wait in the log), hydrant's memory stays
flat (the backlog lives on disk, not in RAM), and DataFreshness keeps rising so an alert fires.
Once the destination is back, everything acknowledged arrives, exactly once where promised.
"""

import time

import pytest

from load import Ledger, Producers, account, env_int
from test_conformance import ADAPTERS, settled, start

# Memory may grow by this much over the outage once the first buffers are full (allocator
# noise, metric series); the backlog itself (tens of MB here) must not be held in memory.
RSS_GROWTH_LIMIT = 48 << 20


@pytest.fixture(params=list(ADAPTERS))
def dest(request, s3):
    adapter = ADAPTERS[request.param](s3)
    yield adapter
    adapter.teardown()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_long_outage_keeps_memory_flat_and_freshness_rising_and_loses_nothing(dest, s3, hydrant_factory):
    seconds = env_int("CHAOS_OUTAGE_SECONDS", 180)
    dest.setup(blocked=True)
    h, stream = start(dest, hydrant_factory, s3)
    ledger = Ledger()
    # 250 records/s: a steady load every destination here drains quickly once it is back (the
    # in-memory OpenSearch stand-in indexes about 1,000 documents/s).
    producers = Producers([h.firehose(read_timeout=15) for _ in range(2)], stream, ledger,
                          per_call=25, record_bytes=500, calls_per_second=5)
    samples = []  # (t, rss, freshness)
    began = time.time()
    while time.time() - began < seconds:
        time.sleep(min(5.0, max(1.0, seconds / 30)))
        samples.append((round(time.time() - began, 1), rss_bytes(h.proc.pid),
                        h.metric("hydrant_delivery_data_freshness_seconds", stream)))
    assert not dest.read(), f"{dest.name} got records while it was refusing them"
    backlog = h.metric("hydrant_shard_backlog_records", stream)

    # Memory: compare the last third of the outage with the first sample taken after warm-up.
    warm = [s for s in samples if s[0] >= min(15.0, seconds / 3)] or samples
    base = warm[0][1]
    peak = max(rss for _, rss, _ in warm)
    # Freshness: rises with the outage (allowing for scrape granularity).
    last_freshness = samples[-1][2]
    print(f"outage {seconds}s at {dest.name}: backlog {int(backlog)} records, RSS {base >> 20} -> peak "
          f"{peak >> 20} MiB, freshness at the end {last_freshness:.0f}s; samples {samples}")
    assert peak - base <= RSS_GROWTH_LIMIT, (
        f"hydrant's memory grew by {(peak - base) >> 20} MiB during the outage: {samples}")
    assert last_freshness >= seconds * 0.6, f"DataFreshness did not follow the outage: {samples}"
    assert all(b[2] >= a[2] - 2 for a, b in zip(samples, samples[1:])), f"freshness fell: {samples}"

    dest.unblock()
    time.sleep(2)
    producers.finish()
    counts = settled(dest, h, stream, ledger.acked, timeout=600)
    account("outage", dest.name, ledger, counts, exact=dest.exact,
            extra={"outage_seconds": seconds, "rss_growth_mib": (peak - base) >> 20,
                   "backlog_records": int(backlog), "freshness_seconds": round(last_freshness)})
    assert ledger.calls["acked"] > 0 and not ledger.calls["unanswered"], dict(ledger.calls)
