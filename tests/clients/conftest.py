"""Shared fixtures: a real `hydrant` process, real S3 (s3s-fs), real clients.

Service addresses come from the environment written by scripts/services.sh. When one is
missing the test is skipped with the reason, unless HYDRANT_REQUIRE_SERVICES=1 (set by
scripts/test.sh), where a missing service fails the test instead.

- Servers: `Hydrant` (one process), the `hydrant_factory` fixture (killed after the test),
  `module_server` (one server for the tests of a module), and the `cluster` fixture (three nodes
  on the NATS JetStream cluster, `core.type: jetstream`, in a namespace of their own).
- Configs are data rendered with yaml.safe_dump, never YAML text spliced together: `Stream`
  (one entry of `delivery_streams`), `s3_stream` (an ExtendedS3 stream with its features),
  `config_yaml` (a whole file).
- Clients: `firehose_client` / `Hydrant.firehose` (boto3), `client_error`, the `aws_cli` fixture
  (aws CLI v2 and v1) and `aws_v2`, `moto` (the API oracle).
- The docs' examples: `doc_blocks`, `documented_keys`, `rewrite_example`, `run_example`.
"""

import base64
import collections
import contextlib
import dataclasses
import gzip
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import textwrap
import time
import types
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import yaml
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "long: a long failure scenario (minutes of cluster chaos); scripts/test.sh leaves it to "
        "scripts/chaos.sh, which runs it in its full (not --short) variant")


def require_env(*names):
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        reason = f"needs {', '.join(missing)} (run scripts/test.sh, which starts the services)"
        if os.environ.get("HYDRANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return [os.environ[n] for n in names]


def hydrant_bin():
    path = os.environ.get("HYDRANT_BIN") or str(ROOT / "target" / "debug" / "hydrant")
    if not Path(path).exists():
        pytest.fail(f"hydrant binary not found at {path}; run cargo build first")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hydrant:
    """A `hydrant serve` child process on its own data directory.

    With tls_ca (the CA file that signed the server certificate configured under `tls:`), the
    endpoint is https and every client here verifies the server against that CA. With
    config_body None it runs the embedded default (no --config) in workdir, on its own port."""

    def __init__(self, workdir: Path, config_body, wrap=None, tls_ca=None):
        self.workdir = workdir
        self.port = free_port()
        self.tls_ca = str(tls_ca) if tls_ca else None
        self.endpoint = f"{'https' if tls_ca else 'http'}://127.0.0.1:{self.port}"
        if config_body is None:
            self.data_dir = workdir / "hydrant-data"
            self.config_path = None
        else:
            self.data_dir = workdir / "data"
            self.config_path = workdir / "hydrant.yaml"
            self.write_config(config_body)
        self.wrap = wrap or []
        self.proc = None
        self.log_path = workdir / "hydrant.log"
        self.starts = 0

    def write_config(self, body):
        """Replaces the config file with `body` on this server's port and data directory (a
        running server reads it at its next reload)."""
        self.config_path.write_text(f"listen: 127.0.0.1:{self.port}\ndata_dir: {self.data_dir}\n" + body)

    def start(self, timeout=30):
        self.starts += 1
        log = open(self.log_path, "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info,hydrant=debug"))
        if self.config_path is None:
            env.pop("HYDRANT_CONFIG", None)
            args, cwd = ["serve", "--listen", f"127.0.0.1:{self.port}"], self.workdir
        else:
            args, cwd = ["serve", "--config", str(self.config_path)], None
        self.proc = subprocess.Popen(self.wrap + [hydrant_bin(), *args], stdout=log,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hydrant exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.urlopen(self.endpoint + "/healthz", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"hydrant did not become healthy:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace")[-5000:]

    def urlopen(self, url_or_request, timeout):
        context = ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else None
        return urllib.request.urlopen(url_or_request, timeout=timeout, context=context)

    def kill(self):
        """SIGKILL: what a crash looks like."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode if self.proc else None

    def metric(self, name, stream, **labels):
        """The sum of metric `name` over the series of `stream` that also carry `labels`
        (e.g. consumer="delivery")."""
        text = self.urlopen(self.endpoint + "/metrics", timeout=5).read().decode()
        wanted = [f'stream="{stream}"'] + [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") and all(w in line for w in wanted):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def firehose(self, key="AKIDEXAMPLE", secret="secret", region="us-east-1", **config):
        return firehose_client(self.endpoint, key, secret, region, verify=self.tls_ca, **config)


def firehose_client(endpoint, key="AKIDEXAMPLE", secret="secret", region="us-east-1", verify=None, **config):
    """A boto3 Firehose client that makes each call once (a test sees every error as it comes);
    `config` goes to botocore's Config (read_timeout=...). `total_max_attempts`, not
    `max_attempts`: botocore counts the latter in retries, so `max_attempts: 1` resends a failed
    call once, unseen (a 503'd call whose records were stored anyway then looked like
    duplicates of acknowledged records)."""
    return boto3.client(
        "firehose", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=key, aws_secret_access_key=secret, verify=verify,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config),
    )


def client_error(call, *args, **kw):
    """The (code, HTTP status, message) of the ClientError that call(*args, **kw) must raise;
    every error answer carries a request id."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(*args, **kw)
    r = info.value.response
    assert r["ResponseMetadata"].get("RequestId"), "error answers need x-amzn-RequestId"
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


@pytest.fixture
def s3():
    return s3_client()


@pytest.fixture
def bucket(s3):
    return new_bucket(s3)


# --- requests of the control plane --------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/fh"


def extended_s3(bucket, prefix="p/", interval=1, size=1, compression="UNCOMPRESSED"):
    """An ExtendedS3DestinationConfiguration for CreateDeliveryStream."""
    return {
        "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": prefix,
        "BufferingHints": {"SizeInMBs": size, "IntervalInSeconds": interval},
        "CompressionFormat": compression,
    }


def with_hydrant_member(fh, hydrant):
    """Makes this boto3 client add Hydrant's `hydrant` member to its CreateDeliveryStream
    requests (boto3 knows only Firehose's members; the server accepts this one)."""
    def add(params, **_):
        body = json.loads(params["body"])
        body["hydrant"] = hydrant
        params["body"] = json.dumps(body).encode()
    fh.meta.events.register("before-call.firehose.CreateDeliveryStream", add)
    return fh


def describe_error(fh, name):
    """The (code, status, message) DescribeDeliveryStream of `name` fails with, or None."""
    try:
        fh.describe_delivery_stream(DeliveryStreamName=name)
        return None
    except botocore.exceptions.ClientError as e:
        r = e.response
        return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def gone(fh, name):
    """Whether `name` answers ResourceNotFoundException (its deletion is finished)."""
    error = describe_error(fh, name)
    return error is not None and error[0] == "ResourceNotFoundException"


# --- configs: built as data, rendered with yaml.safe_dump --------------------------------------


class _IndentedDumper(yaml.SafeDumper):
    """Indents a list under its key (`key:\n  - item`), as the configs written by hand do, so that
    rendered pieces (`stream_yaml`) and whole files look alike."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def dump_yaml(document):
    return yaml.dump(document, Dumper=_IndentedDumper, sort_keys=False, width=1000)


def s3_store(s3):
    """The test S3 server (an `s3_client()`) as an `object_stores` entry."""
    return {"type": "s3", "endpoint": s3.endpoint, "region": "us-east-1", "access_key_id": s3.key,
            "secret_access_key": s3.secret, "allow_http": True}


@dataclasses.dataclass
class Stream:
    """One entry of `delivery_streams`: Firehose's CreateDeliveryStream members (`destination`
    is the one destination block, `members` any others, such as Tags) and Hydrant's `hydrant:`
    block."""
    name: str
    destination: dict
    hydrant: dict = dataclasses.field(default_factory=dict)
    members: dict = dataclasses.field(default_factory=dict)

    def document(self):
        doc = {"DeliveryStreamName": self.name, **self.members, **self.destination}
        if self.hydrant:
            doc["hydrant"] = self.hydrant
        return doc


def processing(processors):
    """A ProcessingConfiguration from a list of (Type, {ParameterName: value})."""
    return {"Enabled": True, "Processors": [
        {"Type": ptype, **({"Parameters": [{"ParameterName": k, "ParameterValue": str(v)} for k, v in params.items()]}
                           if params else {})}
        for ptype, params in processors]}


def s3_stream(name, bucket, prefix="", compression="UNCOMPRESSED", interval=1, size=5, shards=2, store="s3",
              processors=None, error_prefix=None, partitioning=False, hydrant=None, **members):
    """An ExtendedS3 stream into `bucket` of object store `store`. `processors` is a list of
    (Type, {ParameterName: value}); `members` are more members of the ExtendedS3 block
    (FileExtension=".gz"); `hydrant` more members of the stream's hydrant: block."""
    s3 = {"BucketARN": f"arn:aws:s3:::{bucket}"}
    if prefix is not None:
        s3["Prefix"] = prefix
    if error_prefix is not None:
        s3["ErrorOutputPrefix"] = error_prefix
    s3["BufferingHints"] = {"SizeInMBs": size, "IntervalInSeconds": interval}
    s3["CompressionFormat"] = compression
    if partitioning:
        s3["DynamicPartitioningConfiguration"] = {"Enabled": True}
    if processors is not None:
        s3["ProcessingConfiguration"] = processing(processors)
    s3.update(members)
    return Stream(name, {"ExtendedS3DestinationConfiguration": s3},
                  {"object_store": store, "shards": shards, **(hydrant or {})})


def config_yaml(*streams, s3=None, **settings):
    """A config file without `listen` and `data_dir` (Hydrant adds them): `settings`, the test S3
    server as object store `s3` when `s3` is given, and `streams`."""
    doc = dict(settings)
    if s3 is not None:
        doc["object_stores"] = {**doc.get("object_stores", {}), "s3": s3_store(s3)}
    if streams:
        doc["delivery_streams"] = [s.document() for s in streams]
    return dump_yaml(doc)


def s3_store_yaml(s3, name="s3"):
    """`object_stores:` with the test S3 server as `name`, for configs assembled in pieces."""
    return dump_yaml({"object_stores": {name: s3_store(s3)}})


def stream_yaml(*args, **kw):
    """One `delivery_streams` entry (s3_stream's arguments), for configs assembled in pieces:
    `s3_store_yaml(s3) + "delivery_streams:\\n" + stream_yaml(...)`."""
    return textwrap.indent(dump_yaml([s3_stream(*args, **kw).document()]), "  ")


@pytest.fixture
def hydrant_factory(tmp_path):
    started = []

    def make(config_body, wrap=None, start=True, tls_ca=None):
        workdir = tmp_path / f"h{len(started)}"
        workdir.mkdir()
        h = Hydrant(workdir, config_body, wrap=wrap, tls_ca=tls_ca)
        started.append(h)
        return h.start() if start else h

    yield make
    for h in started:
        h.kill()


def jetstream_core(namespace):
    """A `core:` block on the test NATS cluster (HYDRANT_NATS_URLS) in `namespace`: buckets of
    their own, so that tests and runs never meet."""
    servers = require_env("HYDRANT_NATS_URLS")[0].split(",")
    return {"type": "jetstream", "servers": servers, "namespace": namespace, "replicas": 3}


def new_namespace():
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cluster(tmp_path, s3):
    """`start(streams=(), core=None, **settings)` starts three nodes (n1..n3) of a new cluster:
    the test S3 server as object stores `default` and `s3`, `streams`, the `core` members and
    `settings` in every node's config file. Killed after the test, each checked for panics."""
    nodes = []
    namespace = new_namespace()

    def start(streams=(), core=None, **settings):
        for i in range(3):
            workdir = tmp_path / f"n{i + 1}"
            workdir.mkdir()
            body = config_yaml(*streams, node_id=f"n{i + 1}", core={**jetstream_core(namespace), **(core or {})},
                               shutdown_timeout_seconds=20,
                               object_stores={"default": s3_store(s3), "s3": s3_store(s3)}, **settings)
            node = Hydrant(workdir, body)
            node.namespace = namespace
            nodes.append(node)
        for node in nodes:
            node.start(timeout=60)
        return nodes

    yield start
    for node in nodes:
        if node.proc and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGCONT)
        node.kill()
    for node in nodes:
        assert_no_panic(node)


def list_objects(s3, bucket, prefix=""):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def read_object(s3, bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body) if key.endswith(".gz") else body


def wait_for(predicate, timeout=30, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


# <prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>
KEY_SUFFIX = re.compile(
    r"(?P<stream>[A-Za-z0-9_.-]+)-(?P<version>\d+)-(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})(?P<ext>(\.[a-z]+)?)$"
)


def delivered_lines(s3, bucket, prefix=""):
    """Every newline-terminated record in every object under prefix, with its key."""
    out = []
    for key in list_objects(s3, bucket, prefix):
        for line in read_object(s3, bucket, key).splitlines():
            out.append((line.decode(), key))
    return out


# ---------------------------------------------------------------------------------------------
# Additions for the client suites (aws CLI, boto3, errors, moto oracle, crash, durability).


def make_records(n, tag="r", size=None):
    """n unique newline-terminated JSON records (bytes). With size, each is padded to size bytes."""
    out = []
    run = uuid.uuid4().hex[:8]
    for i in range(n):
        doc = {"tag": tag, "run": run, "i": i, "id": uuid.uuid4().hex}
        line = json.dumps(doc, separators=(",", ":"))
        if size is not None:
            doc["pad"] = ""
            base = len(json.dumps(doc, separators=(",", ":"))) + 1
            assert size >= base, f"record size {size} is smaller than its JSON envelope {base}"
            doc["pad"] = "x" * (size - base)
            line = json.dumps(doc, separators=(",", ":"))
        out.append(line.encode() + b"\n")
    return out


def delivered_counter(s3, bucket, prefix=""):
    """Counter of every delivered line (as bytes, without the newline) under prefix."""
    counts = collections.Counter()
    for key in list_objects(s3, bucket, prefix):
        for line in read_object(s3, bucket, key).splitlines():
            counts[line] += 1
    return counts


def wait_delivered(s3, bucket, records, prefix="", timeout=60):
    """Waits until every record (bytes ending in \\n) is present under prefix; returns the Counter.

    Objects that cannot be read yet (a re-delivery overwriting one, a truncated gzip) count as
    not ready and are read again on the next poll.
    """
    wanted = {r.rstrip(b"\n") for r in records}

    def ready():
        try:
            counts = delivered_counter(s3, bucket, prefix)
        except Exception:  # noqa: BLE001 - an object mid-write; poll again
            return None
        missing = [w for w in wanted if counts[w] == 0]
        return counts if not missing else None

    try:
        return wait_for(ready, timeout=timeout, interval=0.25, what=f"{len(wanted)} records in s3://{bucket}/{prefix}")
    except AssertionError:
        counts = delivered_counter(s3, bucket, prefix)
        missing = [w for w in wanted if counts[w] == 0]
        raise AssertionError(
            f"{len(missing)} of {len(wanted)} records never reached s3://{bucket}/{prefix} within {timeout}s; "
            f"first missing: {missing[:3]!r}; keys: {list_objects(s3, bucket, prefix)[:10]}"
        ) from None


def assert_exactly_once(counts, records):
    """Every record delivered exactly once and nothing else delivered."""
    wanted = collections.Counter(r.rstrip(b"\n") for r in records)
    missing = [r for r in wanted if counts[r] == 0]
    dups = {r: c for r, c in counts.items() if c > 1}
    extra = [r for r in counts if r not in wanted]
    assert not missing and not dups and not extra, (
        f"missing={len(missing)} duplicated={len(dups)} unexpected={len(extra)}; "
        f"e.g. missing {missing[:2]!r} dup {list(dups.items())[:2]!r} extra {extra[:2]!r}"
    )


def raw_call(endpoint, target, body, content_type="application/x-amz-json-1.1", timeout=30, headers=None):
    """A Firehose call without an SDK: returns (status, headers, parsed JSON body or raw bytes)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(endpoint + "/", data=body, method="POST")
    if target is not None:
        req.add_header("X-Amz-Target", target)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, data = e.code, e.headers, e.read()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = data
    return status, hdrs, parsed


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_no_panic(h):
    text = h.log_path.read_text(errors="replace")
    assert "panicked" not in text, "hydrant panicked:\n" + "\n".join(
        line for line in text.splitlines() if "panick" in line or "RUST_BACKTRACE" in line
    )[:3000]


def reconfigure(h, config_body):
    """Rewrites a stopped Hydrant's configuration (same port and data directory)."""
    assert h.proc is None or h.proc.poll() is not None, "stop hydrant before changing its config"
    h.write_config(config_body)


@pytest.fixture
def moto_endpoint():
    (endpoint,) = require_env("FH_TEST_MOTO_ENDPOINT")
    return endpoint


def require_tool(path_or_name, what):
    found = shutil.which(path_or_name) if "/" not in path_or_name else (path_or_name if Path(path_or_name).exists() else None)
    if not found:
        reason = f"{what} ({path_or_name}) is not installed (scripts/services.sh install adds it)"
        if os.environ.get("HYDRANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


# ---------------------------------------------------------------------------------------------
# Additions for the feature suites (transforms, partitioning, formats, encryption).

TESTDATA_WAT = ROOT / "src" / "wasm_host" / "testdata"
WASM_DIST = ROOT / "transforms" / "dist"


def s3_client():
    """A path-style S3 client for the test S3 server (what the `s3` fixture returns), for fixtures
    of a wider scope than a function."""
    endpoint, key, secret = require_env("FH_TEST_S3_ENDPOINT", "FH_TEST_S3_ACCESS_KEY", "FH_TEST_S3_SECRET_KEY")
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.endpoint, client.key, client.secret = endpoint, key, secret
    return client


def new_bucket(s3):
    name = "t-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    return name


def lambda_processor(arn, retries=None, buffer_mb=None, interval=1):
    # Firehose's default BufferIntervalInSeconds is 60: tests ask for 1 so records do not wait.
    params = {"LambdaArn": arn, "BufferIntervalInSeconds": interval}
    if retries is not None:
        params["NumberOfRetries"] = retries
    if buffer_mb is not None:
        params["BufferSizeInMBs"] = buffer_mb
    return ("Lambda", params)


def error_documents(s3, bucket, prefix):
    """Every JSON document of every (uncompressed JSON lines) error object under prefix, as
    (key, parsed document) pairs."""
    out = []
    for key in list_objects(s3, bucket, prefix):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for line in body.splitlines():
            out.append((key, json.loads(line)))
    return out


def wait_error_documents(s3, bucket, prefix, count, timeout=30):
    """Waits until at least count error documents are under prefix; returns them all."""
    def ready():
        try:
            docs = error_documents(s3, bucket, prefix)
        except Exception:  # noqa: BLE001 - an object mid-write; poll again
            return None
        return docs if len(docs) >= count else None
    try:
        return wait_for(ready, timeout=timeout, interval=0.25, what=f"{count} error documents under {prefix}")
    except AssertionError:
        raise AssertionError(
            f"fewer than {count} error documents under s3://{bucket}/{prefix} after {timeout}s: "
            f"{error_documents(s3, bucket, prefix)[:5]!r}; bucket keys: {list_objects(s3, bucket)[:20]}"
        ) from None


def raw_of(doc):
    """The original record bytes of an error document."""
    return base64.b64decode(doc["rawData"])


# ---------------------------------------------------------------------------------------------
# One server for the tests of a module, the aws CLI, moto.


class ModuleServer:
    """A Hydrant shared by the tests of one module (its config takes a while to start, or its
    streams are independent), with the S3 client and bucket its streams deliver to."""

    def __init__(self, h, s3, bucket):
        self.h, self.s3, self.bucket = h, s3, bucket
        self.fh = h.firehose(read_timeout=60)

    def put(self, stream, records):
        out = self.fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in records])
        assert out["FailedPutCount"] == 0, out
        return out

    def get(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=key)


@contextlib.contextmanager
def module_server(tmp_path_factory, name, streams, settings=None, timeout=60, server=ModuleServer):
    """Starts a Hydrant with `streams(bucket)` (a new bucket of the test S3 server, the store
    `s3`) and `settings`; yields `server(h, s3, bucket)` and kills it afterwards. For a
    module-scoped fixture: `with module_server(...) as srv: yield srv`."""
    s3 = s3_client()
    bucket = new_bucket(s3)
    h = Hydrant(tmp_path_factory.mktemp(name), config_yaml(*streams(bucket), s3=s3, **(settings or {})))
    try:
        h.start(timeout=timeout)
        yield server(h, s3, bucket)
    finally:
        h.kill()


class AwsCli:
    """The aws CLI (v1 or v2) away from this machine's aws setup: no config or credentials
    files, no pager, one attempt per call."""

    def __init__(self, version, tmp_path):
        (self.path,) = require_env("FH_TEST_AWS_V2" if version == "v2" else "FH_TEST_AWS_V1")
        require_tool(self.path, f"aws CLI {version}")
        self.version, self.tmp_path = version, tmp_path

    def __call__(self, endpoint, *args, key="AKIDEXAMPLE", secret="secret", ca=None, ok=True, timeout=120,
                 service="firehose"):
        """`aws <service> <args>` against `endpoint`: the JSON answer ({} when it prints nothing),
        or with ok=False the CompletedProcess (text), whatever its exit code."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE=str(self.tmp_path / "no-aws-config"),
                   AWS_SHARED_CREDENTIALS_FILE=str(self.tmp_path / "no-aws-credentials"),
                   AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        cmd = [self.path, service, *args, "--endpoint-url", endpoint, "--output", "json"]
        if ca:
            cmd += ["--ca-bundle", str(ca)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if not ok:
            return p
        assert p.returncode == 0, f"aws {self.version} {service} {args[0]} failed ({p.returncode}):\n{p.stderr[-2000:]}"
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def data(self, record: bytes) -> str:
        """A record as this CLI takes a blob on its command line: v2 base64, v1 raw text (it
        encodes it itself)."""
        return b64(record) if self.version == "v2" else record.decode()


@pytest.fixture(params=["v2", "v1"])
def aws_cli(request, tmp_path):
    """The aws CLI, each test run once with v2 and once with v1."""
    return AwsCli(request.param, tmp_path)


@pytest.fixture
def aws_v2(tmp_path):
    return AwsCli("v2", tmp_path)


@pytest.fixture
def moto(moto_endpoint):
    """moto, the API oracle: its Firehose client (`fh`), its S3 client (`s3`) and a new bucket
    there (`bucket`). Streams named in `created` are deleted afterwards: moto keeps Firehose's
    limit of 50 streams across the tests of a run."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    m = types.SimpleNamespace(fh=firehose_client(moto_endpoint), s3=s3, bucket="moto-" + uuid.uuid4().hex[:12],
                              created=[])
    s3.create_bucket(Bucket=m.bucket)
    yield m
    for name in m.created:
        try:
            m.fh.delete_delivery_stream(DeliveryStreamName=name)
        except botocore.exceptions.ClientError:
            pass


# ---------------------------------------------------------------------------------------------
# The documentation's examples (tests/docs/main.rs explains the info strings).

# The Markdown files whose examples users copy (the same as tests/docs/main.rs reads).
DOCUMENTS = ["README.md", "deploy/README.md", "transforms/README.md",
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^\1```$", re.S | re.M)


def doc_fences(path):
    """(info string, text) of every fenced block of the Markdown file `path` (relative to the
    repository), in order, without the fence's indentation."""
    out = []
    for m in FENCE.finditer((ROOT / path).read_text()):
        indent = len(m.group(1))
        out.append((m.group(2).strip(), "".join(line[indent:] for line in m.group(3).splitlines(keepends=True))))
    return out


def doc_blocks(path, info):
    """The text of every fenced block of `path` whose info string is `info` (`json error-output`)."""
    blocks = [text for i, text in doc_fences(path) if i == info]
    assert blocks, f"{path} has no ```{info} block"
    return blocks


def documented_keys(path, info):
    """The keys, in order, of the first JSON document of the first ```info block of `path`:
    what the docs say Hydrant writes."""
    document, _ = json.JSONDecoder().raw_decode(doc_blocks(path, info)[0])
    return list(document)


def rewrite_example(text, rewrites, what):
    """A documentation example with only the given (old, new) replacements, each of which must
    match (so a changed example fails the test that runs it instead of running something else)."""
    for old, new in rewrites:
        assert old in text, f"{what} no longer contains {old!r}: update the test's rewrites"
        text = text.replace(old, new)
    return text


def example_env(tmp_path, **extra):
    """The environment a documentation example runs in: the aws CLI v2 as `aws` on PATH, no aws
    config or credentials files, no pager; then `extra`."""
    (aws,) = require_env("FH_TEST_AWS_V2")
    require_tool(aws, "aws CLI v2")
    bin_dir = tmp_path / "example-bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        (bin_dir / "aws").symlink_to(aws)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", AWS_PAGER="",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_example(script, cwd, env, timeout=300, check=True):
    """Runs a shell example with bash -euo pipefail; returns the CompletedProcess (text)."""
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"example failed ({p.returncode}):\n{script}\n--- stderr:\n{p.stderr[-3000:]}\n--- stdout:\n{p.stdout[-2000:]}"
    return p
