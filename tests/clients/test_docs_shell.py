"""The shell and Python examples of the documentation, run as written.

Every ```sh, ```bash and ```python block of README.md, deploy/README.md, transforms/README.md
and docs/**/*.md is either run here against the real binary and services, run by another test
(ELSEWHERE), or listed in NOT_RUN with the reason it cannot run on this machine;
test_every_shell_example_is_run_or_listed fails on a block that is none of these, so a new
example must be run or listed. Examples run with the aws CLI v2 as `aws`, after rewriting only
addresses, ports, paths, placeholders (`...` for a secret) and one buffer interval
(rewrite_example: each rewrite must match, so a changed example fails here instead of running
something else). tests/docs/main.rs checks the YAML and JSON blocks.
"""

import base64
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import (
    DOCUMENTS,
    Hydrant,
    ROOT,
    assert_no_panic,
    config_yaml,
    doc_blocks,
    doc_fences,
    example_env,
    free_port,
    hydrant_bin,
    raw_call,
    rewrite_example,
    run_example,
    s3_stream,
    wait_for,
)

SHELL_LANGS = {"sh", "bash", "python"}

# (file, first line of the block): the test that runs it.
RUN = {
    ("README.md", "export AWS_ACCESS_KEY_ID=any"): "test_readme_quick_start_delivers_to_the_local_directory",
    ("README.md", "import boto3"): "test_readme_quick_start_delivers_to_the_local_directory",
    ("docs/api.md", "export AWS_ACCESS_KEY_ID=any"): "test_api_put_example",
    ("docs/api.md", "fh put-record"): "test_api_put_example",
    ("docs/api.md", "cat > s3.json"): "test_api_examples_create_change_and_delete_a_stream",
    ("docs/api.md", "$ aws firehose create-delivery-stream"): "test_api_stream_limit_transcript",
    ("docs/api.md", "AWS_ACCESS_KEY_ID=AKIAHYDRANTPRODUCER"): "test_api_https_and_sigv4_client_examples",
    ("docs/api.md", "aws firehose list-delivery-streams --endpoint-url https://"): "test_api_https_and_sigv4_client_examples",
    ("docs/api.md", 'boto3.client("firehose", endpoint_url="https://'): "test_api_https_and_sigv4_client_examples",
    ("docs/configuration.md", "$ hydrant validate hydrant.yaml"): "test_validate_transcript",
    ("docs/configuration.md", "mkdir -p certs"): "test_self_signed_certificate_serves_https",
    ("docs/destinations/http.md", "import base64, gzip, json, os, time"): "test_minimal_http_receiver_gets_the_records",
    ("docs/encryption.md", "aws firehose start-delivery-stream-encryption"): "test_log_encryption_commands",
    ("docs/operations.md", "hydrant validate /etc/hydrant/hydrant.yaml     #"): "test_validate_then_reload",
    ("docs/operations.md", "hydrant validate /etc/hydrant/hydrant.yaml &&"): "test_validate_then_reload",
    ("docs/kinesis.md", "export AWS_ACCESS_KEY_ID=any"): "test_kinesis_example_puts_and_gets_a_record",
    ("docs/replay.md", "# a record now, then the last ten minutes of stream `default` again, under replay/"):
        "test_replay_example_delivers_the_record_again_under_the_new_prefix",
    ("docs/kinesis.md", "aws firehose create-delivery-stream --endpoint-url http://127.0.0.1:4573"): "test_kinesis_example_puts_and_gets_a_record",
    ("docs/performance.md", "cargo build --release"): "test_benchmark_commands_use_flags_that_exist",
    ("docs/performance.md", "cargo build --bin hydrant"): "test_benchmark_commands_use_flags_that_exist",
    ("docs/performance.md", "# the Kinesis API next to the Firehose path"): "test_benchmark_commands_use_flags_that_exist",
    ("docs/performance.md", "# the console: the same command"): "test_benchmark_commands_use_flags_that_exist",
    ("docs/performance.md", "scripts/services.sh up && ."): "test_cluster_benchmark_commands_use_flags_that_exist",
}

# Run by another test of this suite.
ELSEWHERE = {
    ("deploy/README.md", "export AWS_ACCESS_KEY_ID=hydrant-producer"): "test_compose_walkthrough.py",
    ("deploy/README.md", "sleep 15"): "test_compose_walkthrough.py",
    ("deploy/README.md", "curl -s http://localhost:4573/healthz"): "test_compose_walkthrough.py",
    # The export block matches the single node's walkthrough and the cluster's (hydrant-a and
    # hydrant-b); both run there.
    # Its curl line runs in test_compose_walkthrough.py, which reads the table with psycopg
    # instead of `docker compose exec postgres psql`.
    ("deploy/README.md", "docker compose -f deploy/docker-compose.yml exec postgres"): "test_compose_walkthrough.py",
}

# Cannot run here, with the reason.
NOT_RUN = {
    ("README.md", "cargo run --release -- serve"):
        "a release build of the workspace (many CPU-minutes); the quick start test runs the same "
        "`serve` from HYDRANT_BIN",
    ("README.md", "scripts/test.sh"): "it is the whole suite, this test included",
    ("docs/transforms.md", "transforms/build.sh"):
        "the blueprints' benchmark (a minute of CPU on the services of scripts/services.sh); it is "
        "test_blueprints.py::test_blueprint_throughput, which pytest skips unless HYDRANT_BENCH=1",
    ("transforms/README.md", "./build.sh"):
        "a release build for wasm32-wasip1; scripts/test.sh runs it and test_transforms.py uses its output",
    ("deploy/README.md", "docker compose -f deploy/docker-compose.yml up"):
        "no container engine here; test_compose_walkthrough.py replays the walkthrough without it",
    ("deploy/README.md", "docker compose -f deploy/docker-compose.yml --profile cluster up"):
        "no container engine here; test_compose_walkthrough.py replays the cluster walkthrough without it",
    ("deploy/README.md", "docker compose -f deploy/docker-compose.yml exec minio"): "no container engine here",
    ("deploy/README.md", "docker compose -f deploy/docker-compose.yml logs"): "no container engine here",
    ("deploy/README.md", "docker build -f deploy/Dockerfile -t hydrant ."):
        "no container engine here; test_deploy_assets.py checks the Dockerfile against the server",
    ("deploy/README.md", "cargo build --release --locked -p hydrant"):
        "installs into /usr/local and /etc with sudo and starts a systemd unit",
    ("deploy/README.md", "docker build -f deploy/Dockerfile -t registry.example.com"):
        "needs a container engine, a registry and a Kubernetes cluster; test_deploy_assets.py renders "
        "and validates the manifests",
    ("deploy/README.md", "kubectl apply -k deploy/k8s-cluster"):
        "needs a Kubernetes cluster with NATS; test_deploy_assets.py renders the overlay with "
        "kubectl kustomize and validates its config",
    ("docs/operations.md", "dd if=/dev/zero of=/var/lib/hydrant/ddtest"):
        "a disk benchmark writing 1 GiB with O_DSYNC under /var/lib, on a disk other jobs share",
    ("docs/operations.md", "systemctl stop hydrant"): "stops a systemd service and archives /var/lib/hydrant",
    ("docs/operations.md", "# binary / systemd"): "upgrades through sudo, systemd, docker compose and kubectl",
    ("docs/fuzzing.md", "scripts/fuzz.sh install"):
        "an instrumented release build of every target (25 CPU-minutes) and 30-minute runs; "
        "tests/fuzz_corpus.rs replays every committed corpus through the same harnesses",
}

PUT_ENV = dict(AWS_ACCESS_KEY_ID="any", AWS_SECRET_ACCESS_KEY="any", AWS_DEFAULT_REGION="us-east-1")


def shell_blocks():
    """(file, info string, text) of every shell-like block of the documentation."""
    return [(path, info, text) for path in DOCUMENTS for info, text in doc_fences(path)
            if info.split(" ")[0] in SHELL_LANGS | {"shell", "console", "zsh", "bash", "py"}]


def example(path, first_line):
    """The one block of `path` whose text starts with `first_line`."""
    found = [text for p, _, text in shell_blocks() if p == path and text.startswith(first_line)]
    assert len(found) == 1, f"{len(found)} blocks of {path} start with {first_line!r}"
    return found[0]


def test_every_shell_example_is_run_or_listed():
    listed = {**RUN, **ELSEWHERE, **NOT_RUN}
    assert len(listed) == len(RUN) + len(ELSEWHERE) + len(NOT_RUN), "a block is listed twice"
    unlisted, matched = [], set()
    for path, info, text in shell_blocks():
        assert info.split(" ")[0] in SHELL_LANGS, f"{path}: ```{info}: use sh, bash or python"
        keys = [key for key in listed if key[0] == path and text.startswith(key[1])]
        if len(keys) != 1:
            unlisted.append(f"{path}: {text.splitlines()[0]!r} matches {keys}")
        matched.update(keys)
    assert not unlisted, "shell examples that are neither run nor listed (add them to RUN with a " \
                         "test, or to NOT_RUN with the reason):\n" + "\n".join(unlisted)
    stale = set(listed) - matched
    assert not stale, f"listed but no longer in the docs: {sorted(stale)}"
    tests = {name for name in globals() if name.startswith("test_")}
    assert set(RUN.values()) <= tests, set(RUN.values()) - tests


def quiet(h):
    """A server's state after an example: still up, no panic."""
    assert h.proc.poll() is None, h.log()
    assert_no_panic(h)


# --- README.md ---------------------------------------------------------------------------------


def test_readme_quick_start_delivers_to_the_local_directory(tmp_path, hydrant_factory):
    """`hydrant serve` without a config (the embedded default, in a fresh directory), then the
    README's aws CLI and boto3 examples; `find` shows the object with Firehose's key."""
    h = hydrant_factory(None)
    cli = rewrite_example(example("README.md", "export AWS_ACCESS_KEY_ID=any"),
                          [("http://127.0.0.1:4573", h.endpoint)], "README.md's quick start")
    out = run_example(cli, h.workdir, example_env(tmp_path)).stdout
    answer, end = json.JSONDecoder().raw_decode(out)
    assert answer["FailedPutCount"] == 0, answer
    key = re.escape("hydrant-data/buckets/hydrant/") + r"default/\d{4}/\d\d/\d\d/\d\d/default-1-" \
        r"\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}"
    lines = out[end:].split()
    found = [line for line in lines if re.fullmatch(key, line)]
    # The stream has two shards: the two records are one object or two.
    assert len(found) in (1, 2), f"find printed {lines}"
    assert sorted(line for line in lines if line not in found) == ["hello", "world"], lines

    boto3_example = rewrite_example(example("README.md", "import boto3"),
                                    [("http://127.0.0.1:4573", h.endpoint)], "README.md's boto3 example")
    p = subprocess.run([sys.executable, "-c", boto3_example], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    objects = h.data_dir / "buckets" / "hydrant" / "default"
    wait_for(lambda: b'{"user": 2}' in b"".join(f.read_bytes() for f in objects.rglob("*") if f.is_file()),
             timeout=20, what="boto3's records in the local bucket")
    quiet(h)


# --- docs/replay.md ----------------------------------------------------------------------------


def test_replay_example_delivers_the_record_again_under_the_new_prefix(tmp_path, hydrant_factory):
    """docs/replay.md's example on the embedded default: the record put is delivered again
    under replay/, and `find` shows the object."""
    h = hydrant_factory(None)
    script = rewrite_example(
        example("docs/replay.md", "# a record now, then the last ten minutes of stream `default` again, under replay/"),
        [("http://127.0.0.1:4573", h.endpoint)], "docs/replay.md's example")
    env = example_env(tmp_path)
    env["PATH"] = f"{os.path.dirname(hydrant_bin())}:{env['PATH']}"
    p = run_example(script, h.workdir, env, timeout=120)
    found = [line for line in p.stdout.split() if line.startswith("hydrant-data/buckets/hydrant/replay/")]
    assert len(found) >= 1, p.stdout
    assert b"hello" in b"".join((h.workdir / f).read_bytes() for f in found)
    assert "DONE" in p.stderr, p.stderr
    quiet(h)


# --- docs/api.md -------------------------------------------------------------------------------


def api_session(h, *blocks):
    """docs/api.md's setup block (credentials and the `fh` alias) followed by `blocks`, as one
    bash script (aliases need expand_aliases outside an interactive shell)."""
    setup = rewrite_example(example("docs/api.md", "export AWS_ACCESS_KEY_ID=any"),
                            [("http://127.0.0.1:4573", h.endpoint)], "docs/api.md's setup")
    return "shopt -s expand_aliases\n" + setup + "\n".join(blocks)


def json_documents(text):
    """The JSON documents the aws CLI printed one after the other."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)
    return docs


def test_api_put_example(tmp_path, hydrant_factory):
    """The put example names the stream `clicks` that the session below creates and deletes: it
    runs against a server whose config file has a `clicks`."""
    h = hydrant_factory(config_yaml(s3_stream("clicks", "raw", store="default")))
    out = run_example(api_session(h, example("docs/api.md", "fh put-record")), tmp_path, example_env(tmp_path)).stdout
    assert json.loads(out)["RecordId"], out
    quiet(h)


def test_kinesis_example_puts_and_gets_a_record(tmp_path, hydrant_factory):
    h = hydrant_factory("")
    script = rewrite_example(example("docs/kinesis.md", "export AWS_ACCESS_KEY_ID=any"),
                             [("http://127.0.0.1:4573", h.endpoint)], "docs/kinesis.md's example")
    out = run_example(script, tmp_path, example_env(tmp_path)).stdout
    *_, last = out.strip().splitlines()
    assert last.split() == ["user-1", "aGVsbG8="], out
    # The delivery stream that reads the `clicks` stream the example made.
    exports = example("docs/kinesis.md", "export AWS_ACCESS_KEY_ID=any").splitlines()[0]
    script = rewrite_example(exports + "\n" + example("docs/kinesis.md", "aws firehose create-delivery-stream --endpoint-url http://127.0.0.1:4573"),
                             [("http://127.0.0.1:4573", h.endpoint)], "docs/kinesis.md's source example")
    out = run_example(script, tmp_path, example_env(tmp_path)).stdout
    assert json.loads(out)["DeliveryStreamARN"].endswith(":deliverystream/clicks-to-s3"), out
    described = h.firehose().describe_delivery_stream(DeliveryStreamName="clicks-to-s3")
    assert described["DeliveryStreamDescription"]["DeliveryStreamType"] == "KinesisStreamAsSource"
    quiet(h)


def test_api_examples_create_change_and_delete_a_stream(tmp_path, hydrant_factory):
    h = hydrant_factory("")
    session = example("docs/api.md", "cat > s3.json").rstrip("\n").split("\n")
    last = session.pop()  # DELETING, then ResourceNotFoundException: checked below
    out = run_example(api_session(h, "\n".join(session)), tmp_path, example_env(tmp_path)).stdout
    arn, status, listed, tags = json_documents(out)
    assert arn["DeliveryStreamARN"].endswith(":deliverystream/clicks"), arn
    assert status == ["ACTIVE", "1"], status
    assert listed["DeliveryStreamNames"] == ["clicks"], listed
    assert tags["Tags"] == [{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "prod"}], tags
    p = run_example(api_session(h, last), tmp_path, example_env(tmp_path), check=False)
    assert (p.returncode == 0 and '"DELETING"' in p.stdout) or "ResourceNotFoundException" in p.stderr, p
    fh = h.firehose()
    wait_for(lambda: fh.list_delivery_streams()["DeliveryStreamNames"] == [], timeout=30,
             what="the deleted stream to be gone")
    quiet(h)


def test_api_stream_limit_transcript(tmp_path, hydrant_factory):
    """The LimitExceededException transcript: the 51st API stream of a default server."""
    h = hydrant_factory("")
    for i in range(1, 51):
        status, _, body = raw_call(h.endpoint, "Firehose_20150804.CreateDeliveryStream", {
            "DeliveryStreamName": f"s{i}",
            "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::raw"},
            "hydrant": {"shards": 1},  # 50 streams of one shard: fewer threads than two
        })
        assert status == 200, body
    command, expected = example("docs/api.md", "$ aws firehose create-delivery-stream").split("\n\n", 1)
    command = rewrite_example(command.removeprefix("$ "), [("http://127.0.0.1:4573", h.endpoint)],
                              "docs/api.md's limit transcript")
    p = run_example(command, tmp_path, example_env(tmp_path, **PUT_ENV), check=False)
    assert p.returncode != 0
    assert p.stderr.split() == expected.split(), f"the aws CLI says:\n{p.stderr}"
    quiet(h)


def test_api_https_and_sigv4_client_examples(tmp_path, hydrant_factory):
    """The signed and the HTTPS client examples, against a server with `tls:` (the test pair for
    localhost) and `auth: sigv4` with the producer key they name; hydrant.internal is localhost."""
    ca = str(ROOT / "src" / "testdata" / "tls" / "cert.pem")
    secret = "producer-secret-for-the-docs"
    h = hydrant_factory(config_yaml(
        tls={"cert": ca, "key": str(ROOT / "src" / "testdata" / "tls" / "key.pem")},
        auth={"mode": "sigv4", "credentials": [{"access_key_id": "AKIAHYDRANTPRODUCER", "secret_access_key": secret}]},
    ), tls_ca=ca)
    address = [("https://hydrant.internal:4573", f"https://localhost:{h.port}")]
    signed = rewrite_example(example("docs/api.md", "AWS_ACCESS_KEY_ID=AKIAHYDRANTPRODUCER"),
                             [("AWS_SECRET_ACCESS_KEY=...", f"AWS_SECRET_ACCESS_KEY={secret}"), *address],
                             "docs/api.md's signed example")
    out = run_example(signed, tmp_path, example_env(tmp_path, AWS_CA_BUNDLE=ca)).stdout
    assert json.loads(out)["DeliveryStreamNames"] == [], out

    key = dict(AWS_ACCESS_KEY_ID="AKIAHYDRANTPRODUCER", AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")
    cli = rewrite_example(example("docs/api.md", "aws firehose list-delivery-streams --endpoint-url https://"),
                          [*address, ("ca.pem", ca)], "docs/api.md's --ca-bundle example")
    out = run_example(cli, tmp_path, example_env(tmp_path, **key)).stdout
    assert json.loads(out)["DeliveryStreamNames"] == [], out

    client = rewrite_example(example("docs/api.md", 'boto3.client("firehose", endpoint_url="https://'),
                             [*address, ("ca.pem", ca)], "docs/api.md's verify= example")
    script = f"import boto3\nprint({client.strip()}.list_delivery_streams()['DeliveryStreamNames'])"
    p = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, **key),
                       capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, "[]\n"), p.stderr
    quiet(h)


# --- docs/configuration.md ---------------------------------------------------------------------


def test_validate_transcript(tmp_path):
    """`hydrant validate` prints what configuration.md shows, line for line, for a file with those
    two mistakes."""
    (tmp_path / "hydrant.yaml").write_text(
        "object_stores:\n"
        "  s3: { type: s3, endpoint: http://127.0.0.1:9000, allow_http: true }\n"
        "delivery_streams:\n"
        "  - DeliveryStreamName: clicks\n"
        "    ExtendedS3DestinationConfiguration: { BucketARN: 'arn:aws:s3:::raw' }\n"
        "  - DeliveryStreamName: orders\n"
        "    ExtendedS3DestinationConfiguration:\n"
        "      BucketARN: arn:aws:s3:::raw\n"
        "      BufferingHints: { SizeInMBs: 0, IntervalInSeconds: 60 }\n"
        "    hydrant: { object_store: minio }\n")
    command, *expected = example("docs/configuration.md", "$ hydrant validate hydrant.yaml").splitlines()
    argv = command.removeprefix("$ ").split()
    p = subprocess.run([hydrant_bin(), *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert (p.stdout + p.stderr).splitlines() == expected


def test_self_signed_certificate_serves_https(tmp_path, request):
    """configuration.md's openssl command makes a pair that its `tls:` block loads, and the
    server answers HTTPS to a client that trusts that certificate, by name and by address."""
    run_example(example("docs/configuration.md", "mkdir -p certs"), tmp_path, dict(os.environ))
    (tls_block,) = [b for b in doc_blocks("docs/configuration.md", "yaml") if b.startswith("tls:")]
    h = Hydrant(tmp_path, tls_block, tls_ca=tmp_path / "certs" / "hydrant.pem")  # paths relative to tmp_path
    request.addfinalizer(h.kill)
    h.start()
    for host in ("localhost", "127.0.0.1"):
        assert h.urlopen(f"https://{host}:{h.port}/healthz", timeout=5).read() == b"ok\n"
    quiet(h)


# --- docs/destinations/http.md -----------------------------------------------------------------


@pytest.fixture
def documented_receiver(tmp_path, monkeypatch):
    """http.md's receiver, run as the page says (INGEST_ACCESS_KEY=secret python3 receiver.py)
    on a free port; yields (port, a function returning what it printed)."""
    port = free_port()
    receiver = tmp_path / "receiver.py"
    receiver.write_text(rewrite_example(example("docs/destinations/http.md", "import base64, gzip, json, os, time"),
                                        [('("127.0.0.1", 8080)', f'("127.0.0.1", {port})')], "http.md's receiver"))
    output = tmp_path / "receiver.out"
    monkeypatch.setenv("INGEST_ACCESS_KEY", "secret")
    with open(output, "w") as out, open(tmp_path / "receiver.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-u", str(receiver)], stdout=out, stderr=err)
    yield port, output.read_text
    proc.kill()
    proc.wait()


def test_minimal_http_receiver_gets_the_records(documented_receiver, hydrant_factory):
    """The receiver, as the endpoint of http.md's own stream configuration (its Url pointed at
    the receiver, its 60 s buffer made 1 s), prints every record once, with the common
    attributes, and refuses a wrong access key."""
    port, printed = documented_receiver
    (config,) = [b for b in doc_blocks("docs/destinations/http.md", "yaml") if "HttpEndpointDestinationConfiguration" in b]
    h = hydrant_factory(rewrite_example(config, [
        ("https://ingest.example.com/firehose", f"http://127.0.0.1:{port}/"),
        ("IntervalInSeconds: 60", "IntervalInSeconds: 1"),
    ], "http.md's configuration"))
    records = [b'{"n": %d}\n' % i for i in range(5)]
    answer = h.firehose().put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": r} for r in records])
    assert answer["FailedPutCount"] == 0, answer
    attributes = "{'env': 'prod', 'team': 'data'}"
    wait_for(lambda: printed().count(attributes) >= len(records), timeout=30, what="the receiver to print every record")
    # Requests of the two shards arrive at once, so the receiver's threads may interleave lines.
    text = printed()
    assert text.count(attributes) == len(records) and all(text.count(repr(r)) == 1 for r in records), text
    status, _, body = raw_call(f"http://127.0.0.1:{port}", None, {"requestId": "x", "records": []},
                               headers={"X-Amz-Firehose-Access-Key": "wrong", "X-Amz-Firehose-Request-Id": "x"})
    assert (status, body["errorMessage"]) == (401, "bad access key"), body
    quiet(h)


# --- docs/encryption.md ------------------------------------------------------------------------


def test_log_encryption_commands(tmp_path, monkeypatch, request):
    """encryption.md's commands switch a stream created through the API to key `audit` of the
    documented `storage.encryption` block, describe shows the documented answer, and stop
    turns it off again."""
    (storage,) = [b for b in doc_blocks("docs/encryption.md", "yaml") if b.startswith("storage:")]
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "log-2026.key").write_bytes(os.urandom(32))  # head -c 32 /dev/urandom
    monkeypatch.setenv("AUDIT_LOG_KEY", base64.b64encode(os.urandom(32)).decode())
    h = Hydrant(tmp_path, storage)  # the key file is relative to tmp_path
    request.addfinalizer(h.kill)
    fh = h.start().firehose()
    fh.create_delivery_stream(DeliveryStreamName="clicks",
                              ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/fh",
                                                                   "BucketARN": "arn:aws:s3:::raw"})
    commands = rewrite_example(example("docs/encryption.md", "aws firehose start-delivery-stream-encryption"),
                               [("http://127.0.0.1:4573", h.endpoint)], "encryption.md's commands")
    documented = json.loads(re.search(r"^# (\{.*\})$", commands, re.M).group(1))
    out = run_example(commands, tmp_path, example_env(tmp_path, **PUT_ENV)).stdout
    assert json.loads(out) == documented
    description = fh.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"]
    assert description["DeliveryStreamEncryptionConfiguration"]["Status"] == "DISABLED"
    quiet(h)


# --- docs/operations.md ------------------------------------------------------------------------


def test_validate_then_reload(tmp_path, hydrant_factory):
    """`hydrant validate` exits 0 on a good file and 1 naming the field on a bad one; the reload
    line applies a new stream (its `pidof hydrant` is this test's server: other hydrant processes
    run on this machine)."""
    first = s3_stream("first", "raw", store="default")
    h = hydrant_factory(config_yaml(first))
    paths = [("hydrant validate", hydrant_bin() + " validate"), ("/etc/hydrant/hydrant.yaml", str(h.config_path))]
    validate = rewrite_example(example("docs/operations.md", "hydrant validate /etc/hydrant/hydrant.yaml     #"),
                               paths, "operations.md's validate")
    assert "ok (1 delivery streams)" in run_example(validate, tmp_path, dict(os.environ)).stdout
    good = h.config_path.read_text()
    h.config_path.write_text(good.replace("DeliveryStreamName: first", "DeliveryStreamNam: first"))
    p = run_example(validate, tmp_path, dict(os.environ), check=False)
    assert p.returncode == 1 and "delivery_streams[0].DeliveryStreamNam: unknown field" in p.stderr, p.stderr

    h.write_config(config_yaml(first, s3_stream("second", "raw", store="default")))
    reload = rewrite_example(example("docs/operations.md", "hydrant validate /etc/hydrant/hydrant.yaml &&"),
                             [*paths, ('"$(pidof hydrant)"', str(h.proc.pid))], "operations.md's reload")
    run_example(reload, tmp_path, dict(os.environ))
    fh = h.firehose()
    wait_for(lambda: fh.list_delivery_streams()["DeliveryStreamNames"] == ["first", "second"], timeout=20,
             what="the reload to add `second`")
    quiet(h)


# --- docs/performance.md -----------------------------------------------------------------------


def test_benchmark_commands_use_flags_that_exist():
    """The benchmarks are not run here (each loads the machine for its duration); every flag
    they pass is one `hydrant bench` has."""
    commands = (example("docs/performance.md", "cargo build --release") + "\n"
                + example("docs/performance.md", "# the Kinesis API next to the Firehose path") + "\n"
                + example("docs/performance.md", "cargo build --bin hydrant") + "\n"
                + example("docs/performance.md", "# the console: the same command")).replace("\\\n", " ")
    flags = set(re.findall(r"(?<=\s)--[a-z0-9-]+", "\n".join(
        line for line in commands.splitlines() if "hydrant bench" in line)))
    assert len(flags) >= 10, flags
    usage = subprocess.run([hydrant_bin(), "bench", "--help"], capture_output=True, text=True, timeout=30).stdout
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"\b", usage))
    assert not missing, f"performance.md passes flags `hydrant bench` does not have: {missing}"


def test_the_kinesis_benchmark_runs_and_reports_every_figure():
    """A short run of `hydrant bench --api kinesis` (the figures are not checked, their presence
    is): ingest with refused records counted, latency, the read back, and the split's cost."""
    out = subprocess.run([hydrant_bin(), "bench", "--api", "kinesis", "--shards", "2", "--seconds", "2",
                          "--connections", "2", "--batch", "50"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for line in ("PutRecords ingest", "records refused for the shard limits", "PutRecords latency: p50",
                 "GetRecords read of every shard", "SplitShard under a load of"):
        assert line in out.stdout, out.stdout


def test_cluster_benchmark_commands_use_flags_that_exist():
    """scripts/bench-cluster.sh is not run here (it loads the machine); every option its
    documented commands pass is one the script takes, and every option after `--` is one
    `hydrant bench` has."""
    commands = example("docs/performance.md", "scripts/services.sh up && .").replace("\\\n", " ")
    runs = [line.split("#")[0] for line in commands.splitlines() if line.startswith("scripts/bench-cluster.sh")]
    assert len(runs) >= 3, commands
    script = (ROOT / "scripts" / "bench-cluster.sh").read_text()
    usage = subprocess.run([hydrant_bin(), "bench", "--help"], capture_output=True, text=True, timeout=30).stdout
    for run in runs:
        own, _, bench = run.partition(" -- ")
        for flag in re.findall(r"(?<=\s)--[a-z0-9-]+", own):
            assert f"{flag})" in script, f"scripts/bench-cluster.sh has no option {flag}"
        for flag in re.findall(r"(?<=\s)--[a-z0-9-]+", " " + bench):
            assert re.search(re.escape(flag) + r"\b", usage), f"hydrant bench has no option {flag}"
    help_text = subprocess.run([str(ROOT / "scripts" / "bench-cluster.sh"), "--help"], capture_output=True,
                               text=True, timeout=30)
    assert help_text.returncode == 0 and "--cpus" in help_text.stdout, help_text
