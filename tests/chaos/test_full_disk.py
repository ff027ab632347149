"""A real full disk under load, and recovery once space is freed, without a restart.

Hydrant's data directory is a small tmpfs. Under load, a filler file takes all its free space
for `CHAOS_FULL_DISK_SECONDS` (default 60): appends fail with ENOSPC (producers get
ServiceUnavailable for those records and resend them), checkpoint and marker writes fail (the
delivery workers must keep retrying, not stop for good). Once the filler is removed, puts are
acknowledged again and every acknowledged record reaches S3 exactly once, with no restart.
"""

import os
import subprocess
import time
import urllib.error
import uuid

import pytest

from load import Ledger, Producers, account, env_int, s3_ids
from clients_conftest import Hydrant, s3_store_yaml, stream_yaml, wait_for

TMPFS_MIB = 48


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    workdir = tmp_path / "h"
    (workdir / "data").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m", "tmpfs", str(workdir / "data")],
                   check=True)
    yield workdir
    subprocess.run(["umount", "-l", str(workdir / "data")], check=False)


def fill(path):
    """Writes zeros to `path` until the file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * (256 << 10)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError:
                break
    for size in (64 << 10, 4 << 10, 512):  # the last scraps
        with open(path, "ab", buffering=0) as f:
            while True:
                try:
                    written += f.write(b"\0" * size)
                except OSError:
                    break
    return written


def readyz(h):
    """`/readyz`'s status and first line."""
    try:
        with h.urlopen(h.endpoint + "/readyz", timeout=5) as r:
            return f"{r.status} {r.read().decode().splitlines()[0]}"
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.read().decode()[:200]}"


def test_a_full_disk_refuses_puts_and_delivery_resumes_by_itself_once_space_is_freed(
        small_disk, s3, bucket):
    seconds = env_int("CHAOS_FULL_DISK_SECONDS", 60)
    stream = "full-" + uuid.uuid4().hex[:6]
    h = Hydrant(small_disk, s3_store_yaml(s3) + "delivery_streams:\n"
                + stream_yaml(stream, bucket, prefix="c/", interval=1, size=1, shards=2))
    h.start()
    try:
        ledger = Ledger()
        producers = Producers([h.firehose(read_timeout=15) for _ in range(2)], stream, ledger,
                              per_call=50, record_bytes=400, calls_per_second=10)
        time.sleep(3)
        filler = small_disk / "data" / "filler"
        filled = fill(filler)
        full_since = time.time()
        wait_for(lambda: ledger.calls["partly-acked"] + sum(
            c for k, c in ledger.calls.items() if k.startswith("refused")) > 0,
            timeout=30, what="puts refused on the full disk")
        time.sleep(max(0, seconds - (time.time() - full_since)))
        refused_while_full = {k: c for k, c in ledger.calls.items() if k != "acked"}
        ready_while_full = readyz(h)
        os.remove(filler)
        freed_at = time.time()
        # Puts are acknowledged again soon after.
        acked_before = len(ledger.acked)
        wait_for(lambda: len(ledger.acked) > acked_before + 500, timeout=60,
                 what="puts acknowledged again after the space was freed")
        time.sleep(2)
        producers.finish()

        def delivered():
            try:
                counts = s3_ids(s3, bucket, "c/")
            except Exception:  # noqa: BLE001 - an object mid-write
                return None
            return counts if all(counts[r] for r in ledger.acked) else None

        # The workers' supervision backs off at most ~10 s: delivery resumes without a restart.
        wait_for(delivered, timeout=120, interval=1, what="every acknowledged record in S3")
        recovered_in = time.time() - freed_at
        wait_for(lambda: h.metric("hydrant_shard_backlog_records", stream) == 0, timeout=60,
                 what="backlog 0")
        account("full-disk", "s3", ledger, s3_ids(s3, bucket, "c/"),
                extra={"tmpfs_mib": TMPFS_MIB, "filler_mib": filled >> 20, "full_seconds": seconds,
                       "recovered_seconds": round(recovered_in, 1), "refused_calls": refused_while_full,
                       "readyz_while_full": ready_while_full})
        assert h.starts == 1 and h.proc.poll() is None, "hydrant had to be restarted"
        assert "panicked" not in h.log_path.read_text(errors="replace"), h.log()
    finally:
        h.kill()
