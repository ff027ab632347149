"""The warehouse destination (`RedshiftDestinationConfiguration` with a PostgreSQL target) end to
end: boto3 PutRecordBatch into the real `hydrant` binary, staged objects in s3s-fs, rows COPYed
into a real PostgreSQL 15. What lands in the table, what lands in the error output, what happens
while the database is down, when the table is missing, and after kill -9 under load."""

import base64
import collections
import gzip
import json
import os
import random
import re
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (
    Stream, assert_no_panic, config_yaml, documented_keys, error_documents, list_objects, require_env, wait_for,
)

# The warehouse tests stop the shared PostgreSQL in one test: run them one after the other.
STAGE = "w/"


@pytest.fixture
def db():
    (url,) = require_env("FH_TEST_DATABASE_URL")
    import psycopg
    conn = psycopg.connect(url, autocommit=True)
    conn.url = url
    created = []
    conn.created = created
    yield conn
    for table in created:
        try:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        except Exception:  # noqa: BLE001 - the database may be down after a failed test
            pass
    conn.close()


def new_table(db, columns_sql, name=None):
    """Creates a table with a random name; returns the name."""
    name = name or "wh_" + uuid.uuid4().hex[:12]
    db.execute(f"CREATE TABLE {name} ({columns_sql})")
    db.created.append(name)
    return name


def rows(db, sql, *params):
    return db.execute(sql, params).fetchall()


def warehouse_stream(db_url, name, bucket, table, copy_options="JSON 'auto'", columns=None,
                     compression="UNCOMPRESSED", retry_seconds=None, size=1, interval=1, shards=1,
                     prefix=STAGE, store="s3"):
    copy = {"DataTableName": table, **({"DataTableColumns": columns} if columns else {}), "CopyOptions": copy_options}
    config = {"ClusterJDBCURL": db_url, "CopyCommand": copy, "Username": "postgres", "Password": ""}
    if retry_seconds is not None:
        config["RetryOptions"] = {"DurationInSeconds": retry_seconds}
    config["S3Configuration"] = {"BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": prefix,
                                 "BufferingHints": {"SizeInMBs": size, "IntervalInSeconds": interval},
                                 "CompressionFormat": compression}
    return Stream(name, {"RedshiftDestinationConfiguration": config}, {"object_store": store, "shards": shards})


def start_warehouse(hydrant_factory, s3, db, bucket, table, name=None, **kw):
    name = name or "wh-" + uuid.uuid4().hex[:8]
    h = hydrant_factory(config_yaml(warehouse_stream(db.url, name, bucket, table, **kw), s3=s3))
    return h, name


def put(h, stream, records):
    """One PutRecordBatch; every record must be acknowledged."""
    out = h.firehose().put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    return out


def staged_keys(s3, bucket):
    """Staged data objects (not error output, not manifests)."""
    return [k for k in list_objects(s3, bucket, STAGE) if "redshift-failed" not in k]


def wait_rows(db, sql, expected, timeout=30, what=None):
    """Polls sql until it returns expected (a list of rows); returns the last result."""
    last = []

    def ready():
        nonlocal last
        last = db.execute(sql).fetchall()
        return last == expected

    try:
        wait_for(ready, timeout=timeout, interval=0.2, what=what or sql)
    except AssertionError:
        raise AssertionError(f"{what or sql}: expected {expected!r}, last {last!r}") from None
    return last


# ---------------------------------------------------------------------------------------------


def test_json_auto_records_load_into_the_named_columns_by_key_and_a_missing_key_is_null(
        s3, bucket, db, hydrant_factory):
    table = new_table(db, "id int PRIMARY KEY, name text, score double precision")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table)
    put(h, stream, [
        b'{"id":1,"name":"a","score":1.5,"extra":"ignored"}\n',
        b'{"name":"b","id":2}\n',
        b'{"id":3,"score":7}\n',
    ])
    wait_rows(db, f"SELECT id, name, score FROM {table} ORDER BY id",
              [(1, "a", 1.5), (2, "b", None), (3, None, 7.0)])
    # The batch went through a staged object in the intermediate bucket, as Firehose does.
    keys = staged_keys(s3, bucket)
    assert len(keys) == 1, keys
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert body.count(b"\n") == 3 and b'"extra":"ignored"' in body, body
    # The load id is the staged object's URL (unique across buckets and Hydrants).
    url = f"s3://{bucket}/{keys[0]}"
    (checkpoint,) = rows(db, "SELECT object_url, rows FROM hydrant_load_checkpoints WHERE load_id = %s", url)
    assert checkpoint == (f"s3://{bucket}/{keys[0]}", 3)
    assert_no_panic(h)


def test_csv_records_load_with_null_as_and_a_quoted_field_keeps_its_comma(s3, bucket, db, hydrant_factory):
    table = new_table(db, "id int PRIMARY KEY, name text, note text, n int")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table, copy_options="CSV NULL AS 'NA'")
    put(h, stream, [
        b'1,"Smith, John",NA,10\n',
        b'2,plain,"say ""hi""",\n',     # "" inside quotes is a quote; an empty int field is NULL
        b'3,"NA",NA,NA\n',              # a quoted NA is the string, never NULL
    ])
    wait_rows(db, f"SELECT id, name, note, n FROM {table} ORDER BY id", [
        (1, "Smith, John", None, 10),
        (2, "plain", 'say "hi"', None),
        (3, "NA", None, None),
    ])
    assert_no_panic(h)


def test_data_table_columns_load_a_subset_and_the_other_columns_take_their_defaults(
        s3, bucket, db, hydrant_factory):
    table = new_table(db, "id int, name text, source text NOT NULL DEFAULT 'firehose', "
                          "loaded timestamptz NOT NULL DEFAULT now(), seq serial")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table, columns="name,id")
    # "source" is in the record but not in DataTableColumns: it must not be loaded.
    put(h, stream, [b'{"id":1,"name":"a","source":"record"}\n', b'{"id":2,"name":"b"}\n'])
    wait_rows(db, f"SELECT id, name, source, loaded IS NOT NULL, seq > 0 FROM {table} ORDER BY id",
              [(1, "a", "firehose", True, True), (2, "b", "firehose", True, True)])
    assert_no_panic(h)


def test_gzip_staging_writes_a_gzip_object_and_its_rows_load(s3, bucket, db, hydrant_factory):
    table = new_table(db, "id int PRIMARY KEY, name text")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table, compression="GZIP",
                                copy_options="JSON 'auto' GZIP")
    records = [json.dumps({"id": i, "name": f"n{i}"}).encode() + b"\n" for i in range(50)]
    put(h, stream, records)
    wait_rows(db, f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}", [(50, 50, 0, 49)])
    keys = staged_keys(s3, bucket)
    assert len(keys) == 1 and keys[0].endswith(".gz"), keys
    staged = s3.get_object(Bucket=bucket, Key=keys[0])
    body = staged["Body"].read()
    assert body[:2] == b"\x1f\x8b", f"staged object is not gzip: {body[:20]!r}"
    assert gzip.decompress(body) == b"".join(records)
    assert_no_panic(h)


def test_a_row_the_database_refuses_goes_to_the_redshift_failed_output_and_the_others_load(
        s3, bucket, db, hydrant_factory):
    table = new_table(db, "id int PRIMARY KEY, n int")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table)
    bad_type = b'{"id":2,"n":"ten"}\n'
    bad_key = b'{"id":1,"n":99}\n'  # a second row with primary key 1 (unique violation)
    put(h, stream, [b'{"id":1,"n":1}\n', bad_type, b'{"id":3,"n":3}\n', bad_key, b'{"id":4,"n":4}\n'])
    wait_rows(db, f"SELECT id, n FROM {table} ORDER BY id", [(1, 1), (3, 3), (4, 4)])

    def docs():
        found = error_documents(s3, bucket, STAGE + "redshift-failed/")
        return found if len(found) >= 2 else None
    found = wait_for(docs, timeout=30, what="2 redshift-failed error documents")
    assert len(found) == 2, found
    # rawData is the refused record's bytes as staged: the JSON value, without the newline that
    # separates it from the next one.
    by_raw = {base64.b64decode(d["rawData"]): d for _, d in found}
    assert set(by_raw) == {bad_type.rstrip(b"\n"), bad_key.rstrip(b"\n")}, \
        f"rawData is not the refused records: {list(by_raw)}"
    type_doc, key_doc = by_raw[bad_type.rstrip(b"\n")], by_raw[bad_key.rstrip(b"\n")]
    for doc in (type_doc, key_doc):
        assert doc["errorCode"] == "Redshift.DataLoadFailed", doc
        assert isinstance(doc["arrivalTimestamp"], int) and isinstance(doc["attemptEndingTimestamp"], int), doc
    assert "invalid input syntax for type integer" in type_doc["errorMessage"], type_doc
    assert "ten" in type_doc["errorMessage"] and "22P02" in type_doc["errorMessage"], type_doc
    assert "duplicate key" in key_doc["errorMessage"] and "23505" in key_doc["errorMessage"], key_doc
    assert all(k.startswith(STAGE + "redshift-failed/") for k, _ in found)
    assert_no_panic(h)


def services(action):
    svc_dir, script = require_env("FH_TEST_SVC_DIR", "FH_TEST_SERVICES_SH")
    out = subprocess.run([script, action], env=dict(os.environ, SVC_DIR=svc_dir),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"services.sh {action} failed: {out.stdout}{out.stderr}"


def connect(url):
    import psycopg
    conn = psycopg.connect(url, autocommit=True)
    conn.url = url
    return conn


def test_records_put_while_the_database_is_down_load_exactly_once_after_it_comes_back(
        s3, bucket, db, hydrant_factory):
    table = new_table(db, "id int, batch text")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table)
    # One load first, so the outage breaks a connection Hydrant holds, not only a fresh connect.
    put(h, stream, [b'{"id":0,"batch":"before"}\n'])
    wait_rows(db, f"SELECT count(*) FROM {table}", [(1,)])
    db.close()
    records = [json.dumps({"id": i, "batch": "down"}).encode() + b"\n" for i in range(1, 201)]
    services("pg-stop")
    try:
        for chunk in range(4):
            put(h, stream, records[chunk * 50:(chunk + 1) * 50])
            time.sleep(0.3)  # spread the records over more than one batch (not an assertion)
        # Staged while the database is down, and the COPY is being retried.
        wait_for(lambda: len(staged_keys(s3, bucket)) >= 2, timeout=30, what="the outage's batches staged")
        wait_for(lambda: "COPY failed; will retry" in h.log_path.read_text(errors="replace"),
                 timeout=30, what="a logged COPY retry")
        wait_for(lambda: h.metric("hydrant_delivery_to_redshift_failures_total", stream) >= 2,
                 timeout=30, what="failed COPY attempts counted")
        time.sleep(3)  # the outage lasts a few seconds more, with Hydrant retrying meanwhile
        assert urllib_ok(h.endpoint + "/healthz"), "hydrant stopped answering during the outage"
    finally:
        services("pg-start")
    conn = connect(db.url)
    try:
        wait_rows(conn, f"SELECT count(*), count(DISTINCT id) FROM {table}", [(201, 201)], timeout=90,
                  what="every record loaded once after the database came back")
        dup = conn.execute(f"SELECT id, count(*) FROM {table} GROUP BY id HAVING count(*) > 1").fetchall()
        assert dup == [], dup
        # Nothing of the outage was loaded before the database came back (loaded_at is the
        # database's clock at COPY time).
        early = conn.execute(
            "SELECT load_id, loaded_at, pg_postmaster_start_time() FROM hydrant_load_checkpoints "
            "WHERE object_url LIKE %s AND loaded_at < pg_postmaster_start_time()",
            (f"s3://{bucket}/%",)).fetchall()
        assert len(early) == 1, f"only the first batch loaded before the outage: {early}"
        staged = staged_keys(s3, bucket)
        loads = conn.execute("SELECT count(*), sum(rows) FROM hydrant_load_checkpoints WHERE object_url LIKE %s",
                             (f"s3://{bucket}/%",)).fetchone()
        assert loads == (len(staged), 201), f"one load per staged object: {loads} for {len(staged)} objects"
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
    assert "COPY kept failing" not in h.log_path.read_text(errors="replace")
    assert_no_panic(h)


def urllib_ok(url):
    import urllib.request
    try:
        return urllib.request.urlopen(url, timeout=5).status == 200
    except OSError:
        return False


def test_a_missing_table_skips_the_batch_with_a_manifest_naming_the_staged_object_and_the_stream_moves_on(
        s3, bucket, db, hydrant_factory):
    table = "wh_missing_" + uuid.uuid4().hex[:10]
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table, retry_seconds=5)
    records = [json.dumps({"id": i}).encode() + b"\n" for i in range(3)]
    put(h, stream, records)
    found = wait_for(lambda: list_objects(s3, bucket, "errors/manifests/"), timeout=40,
                     what="a failure manifest under errors/manifests/")
    assert len(found) == 1, found
    staged = staged_keys(s3, bucket)
    assert len(staged) == 1, f"the staged object stays for a backfill: {staged}"
    assert found[0] == "errors/manifests/" + staged[0], (found, staged)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=found[0])["Body"].read())
    assert list(manifest) == documented_keys("docs/destinations/warehouse.md", "json failure-manifest"), manifest
    assert manifest["entries"] == [{"url": f"s3://{bucket}/{staged[0]}", "mandatory": True}], manifest
    assert manifest["loadId"] == staged[0], manifest
    assert manifest["errorCode"] == "Redshift.TableNotFound", manifest
    assert table in manifest["errorMessage"], manifest
    assert manifest["attemptsMade"] >= 2, manifest
    # The staged object holds the records for that backfill.
    assert s3.get_object(Bucket=bucket, Key=staged[0])["Body"].read() == b"".join(records)
    wait_for(lambda: h.metric("hydrant_error_output_records_total", stream) == 3, timeout=10,
             what="the skipped records counted as error output")
    assert "COPY kept failing" in h.log_path.read_text(errors="replace")

    # Hydrant keeps serving, and the stream moved on: once the table exists, new records load
    # (and the skipped batch is not loaded behind the operator's back).
    assert h.proc.poll() is None and urllib_ok(h.endpoint + "/healthz")
    db.execute(f"CREATE TABLE {table} (id int)")
    db.created.append(table)
    put(h, stream, [b'{"id":100}\n'])
    wait_rows(db, f"SELECT id FROM {table} ORDER BY id", [(100,)])
    assert list_objects(s3, bucket, "errors/manifests/") == found
    assert_no_panic(h)


class Ledger:
    """What producers know, per record id: acknowledged, or part of a call whose answer was lost."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent, self.acked, self.unanswered = set(), set(), set()
        self.calls = collections.Counter()

    def note(self, outcome, ids, acked=()):
        with self.lock:
            self.calls[outcome] += 1
            self.sent.update(ids)
            self.acked.update(acked)
            if outcome == "unanswered":
                self.unanswered.update(ids)


def produce(client, stream, tid, ledger, stop, per_call=40):
    """Puts batches of JSON records with unique ids until stop; resends what was not acknowledged
    (a call without an answer is resent whole: it may or may not have been stored)."""
    import botocore.exceptions
    call = 0
    while not stop.is_set():
        pending = {f"{tid}-{call}-{i}-{os.urandom(4).hex()}": None for i in range(per_call)}
        call += 1
        while pending and not stop.is_set():
            ids = list(pending)
            body = [{"Data": json.dumps({"id": i, "t": tid}).encode() + b"\n"} for i in ids]
            try:
                out = client.put_record_batch(DeliveryStreamName=stream, Records=body)
            except botocore.exceptions.ClientError:
                ledger.note("refused", ids)  # an answer: nothing of the call was stored
                time.sleep(0.1)
                continue
            except Exception:  # noqa: BLE001 - refused, reset, timed out: the answer is lost
                ledger.note("unanswered", ids)
                time.sleep(0.1)
                continue
            ok = [i for i, r in zip(ids, out["RequestResponses"]) if r.get("RecordId")]
            ledger.note("acked" if len(ok) == len(ids) else "partly-acked", ids, ok)
            pending = {i: None for i in ids if i not in set(ok)}


def test_kill_9_during_loads_under_load_leaves_every_acknowledged_record_in_the_table_exactly_once(
        s3, bucket, db, hydrant_factory):
    seed = int(os.environ.get("HYDRANT_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"warehouse crash test seed {seed} (HYDRANT_CRASH_SEED={seed} replays the kill timing)")
    table = new_table(db, "id text NOT NULL, t int")
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table, shards=2, size=1, interval=1)
    clients = [h.firehose(connect_timeout=2, read_timeout=15) for _ in range(3)]
    ledger, stop, errors = Ledger(), threading.Event(), []

    def run(i):
        try:
            produce(clients[i], stream, i, ledger, stop)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(clients))]
    for t in threads:
        t.start()
    kills = rng.randint(2, 3)
    interrupted = []  # per kill: staged objects not loaded (yet) when it struck

    def loaded_ids():
        return {r[0] for r in db.execute("SELECT load_id FROM hydrant_load_checkpoints WHERE object_url LIKE %s",
                                         (f"s3://{bucket}/%",)).fetchall()}
    try:
        for _ in range(kills):
            # Strike while a load is under way: right after a new object is staged, its COPY runs.
            before = set(staged_keys(s3, bucket))
            wait_for(lambda: set(staged_keys(s3, bucket)) - before, timeout=30, interval=0.02,
                     what="a newly staged object")
            time.sleep(rng.uniform(0.0, 0.08))
            h.kill()
            interrupted.append(len(set(staged_keys(s3, bucket)) - loaded_ids()))
            time.sleep(rng.uniform(0.0, 0.4))
            h.start()
        time.sleep(1.5)  # producers keep going on the last restart (not an assertion)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    acked = set(ledger.acked)
    assert acked, dict(ledger.calls)
    assert ledger.calls["unanswered"] > 0, f"no call was cut by the kills, the test proved nothing: {dict(ledger.calls)}"

    def counts():
        return collections.Counter(dict(db.execute(f"SELECT id, count(*) FROM {table} GROUP BY id").fetchall()))

    try:
        wait_for(lambda: acked <= set(counts()), timeout=90, interval=0.5,
                 what="every acknowledged record in the table")
    except AssertionError:
        pass  # counted and reported below
    wait_for(lambda: h.metric("hydrant_shard_backlog_records", stream) == 0, timeout=60, what="backlog 0")
    final = counts()
    missing = [i for i in acked if final[i] == 0]
    dups = {i: c for i, c in final.items() if c > 1}
    bad_dups = {i: c for i, c in dups.items() if i not in ledger.unanswered}
    unknown = [i for i in final if i not in ledger.sent]
    loads = db.execute("SELECT count(*), coalesce(sum(rows), 0) FROM hydrant_load_checkpoints WHERE object_url LIKE %s",
                       (f"s3://{bucket}/%",)).fetchone()
    staged = staged_keys(s3, bucket)
    print(f"calls {dict(ledger.calls)}; records sent {len(ledger.sent)}, acknowledged {len(acked)}, in unanswered "
          f"calls {len(ledger.unanswered)}; rows {sum(final.values())} ({len(final)} distinct); missing "
          f"{len(missing)}; duplicated {len(dups)} (of unanswered calls {len(dups) - len(bad_dups)}, others "
          f"{len(bad_dups)}); kills {kills} (staged objects not loaded at each: {interrupted}); staged objects {len(staged)}, "
          f"loads {loads[0]} ({loads[1]} rows)")
    assert not missing, f"{len(missing)} acknowledged records never loaded, e.g. {missing[:3]}\n{h.log()}"
    assert not unknown, f"rows nobody sent: {unknown[:3]}"
    assert not bad_dups, f"{len(bad_dups)} records loaded more than once though every call of theirs was answered: " \
                         f"{list(bad_dups.items())[:3]}"
    # Exactly once per staged batch: every staged object loaded by exactly one checkpointed COPY.
    assert loads == (len(staged), sum(final.values())), \
        f"{len(staged)} staged objects, {sum(final.values())} rows, but checkpoints say {loads}"
    assert not list_objects(s3, bucket, "errors/"), "a batch was skipped"
    assert any(interrupted), f"no kill struck between staging and loading, the test proved little: {interrupted}"
    assert_no_panic(h)


# ---------------------------------------------------------------------------------------------
# Last in the file (so `-x` runs everything else first): these fail on Hydrant bugs, see their
# docstrings.


def test_a_failing_load_is_retried_for_the_whole_retry_duration_before_it_is_skipped(
        s3, bucket, db, hydrant_factory):
    """docs/destinations/warehouse.md: "Hydrant retries a failed load until
    RetryOptions.DurationInSeconds has passed since the first attempt"; the manifest's
    firstAttemptTimestamp / attemptEndingTimestamp are "of the first and of the last attempt"."""
    table = "wh_missing_" + uuid.uuid4().hex[:10]
    interval, duration = 3, 5
    h, stream = start_warehouse(hydrant_factory, s3, db, bucket, table, retry_seconds=duration,
                                interval=interval)
    put_ms = int(time.time() * 1000)
    put(h, stream, [b'{"id":1}\n'])
    (key,) = wait_for(lambda: list_objects(s3, bucket, "errors/manifests/"), timeout=40,
                      what="a failure manifest under errors/manifests/")
    skipped_after = time.time() * 1000 - put_ms
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # The buffer is sealed IntervalInSeconds after the record arrived: no COPY runs before that.
    earliest_first_attempt = put_ms + (interval - 0.5) * 1000
    problems = []
    if skipped_after < (interval + duration) * 1000:
        problems.append(f"the batch was skipped {skipped_after / 1000:.1f}s after the put, less than the "
                        f"buffer interval ({interval}s) plus RetryOptions.DurationInSeconds ({duration}s)")
    if manifest["firstAttemptTimestamp"] < earliest_first_attempt:
        problems.append(f"firstAttemptTimestamp {manifest['firstAttemptTimestamp']} is "
                        f"{(earliest_first_attempt - manifest['firstAttemptTimestamp']) / 1000:.1f}s before the "
                        f"first COPY could run (it looks like the record's arrival time)")
    span = manifest["attemptEndingTimestamp"] - manifest["firstAttemptTimestamp"]
    attempts = [line for line in h.log_path.read_text(errors="replace").splitlines()
                if "COPY failed; will retry" in line or "COPY kept failing" in line]
    assert not problems, "; ".join(problems) + f"; manifest {manifest}; attempts span {span} ms; " \
        f"log lines of the attempts:\n" + "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", a)[:200] for a in attempts)


def test_two_hydrants_staging_in_different_buckets_load_into_one_database_without_skipping_each_others_batches(
        s3, db, hydrant_factory):
    """Two independent Hydrants (say staging and production) with the same stream name and
    Prefix, each with its own intermediate bucket and table, loading into one database (the load
    user's default schema holds one hydrant_load_checkpoints). docs/operations.md only forbids
    sharing a bucket and prefix. Their first batches have the same sequence numbers; when they
    also arrive in the same second, their staged keys are equal, and if the load id is the key
    alone, the second load is taken for a replay of the first and skipped: acknowledged records
    silently never reach the table."""
    stream = "wh-twin-" + uuid.uuid4().hex[:6]
    twins = []
    for _ in range(2):
        bucket = "t-" + uuid.uuid4().hex[:16]
        s3.create_bucket(Bucket=bucket)
        table = new_table(db, "id int, twin int")
        h = hydrant_factory(config_yaml(warehouse_stream(db.url, stream, bucket, table, shards=1), s3=s3))
        twins.append((h, bucket, table))
    for attempt in range(3):
        # Both puts in the same wall-clock second (the staged key has second resolution).
        wait_for(lambda: 0.05 < time.time() % 1 < 0.4, timeout=2, interval=0.01, what="the start of a second")
        for n, (h, _, _) in enumerate(twins):
            put(h, stream, [json.dumps({"id": attempt, "twin": n}).encode() + b"\n"])
        keys = [wait_for(lambda b=b, k=attempt: (lambda ks: ks if len(ks) > k else None)(staged_keys(s3, b)),
                         timeout=20, what="the staged object")[attempt] for _, b, _ in twins]
        if keys[0] == keys[1]:
            break
    assert keys[0] == keys[1], f"could not make the twins stage under the same key: {keys}"
    loads = db.execute("SELECT load_id, object_url FROM hydrant_load_checkpoints WHERE load_id = %s",
                       (keys[0],)).fetchall()
    for n, (h, bucket, table) in enumerate(twins):
        try:
            wait_rows(db, f"SELECT id, twin FROM {table} WHERE id = {attempt}", [(attempt, n)], timeout=15,
                      what=f"twin {n}'s record in {table}")
        except AssertionError as e:
            raise AssertionError(
                f"{e}; both twins staged {keys[0]} (buckets {[b for _, b, _ in twins]}); checkpoints with that "
                f"load_id: {loads}: the load id is the staged key without the bucket, so this twin's load was "
                f"taken for a replay of the other's and skipped (its log still says 'loaded staged object "
                f"rows=1')") from None
