"""The Docker Compose walkthrough of deploy/README.md, run without Docker.

The machines this suite runs on have no container engine and no image registry, so the
walkthrough runs against the same kinds of services on loopback: s3s-fs stands in for MinIO,
the suite's PostgreSQL 15 for the `postgres` service and osmem for OpenSearch. Hydrant is the
binary, started with deploy/compose/hydrant.yaml and the environment compose gives the
`hydrant` service. The init jobs are replayed (the bucket minio-init creates,
compose/postgres-init.sql). Then every command of the walkthrough's ```sh blocks that does not
call `docker` runs as written with the aws CLI v2, after rewriting only addresses and
credentials (conftest.rewrite_example: each must match, so a changed README or compose file
fails here).
"""

import contextlib
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ROOT, Hydrant, assert_no_panic, example_env, new_namespace, require_env, rewrite_example, run_example
from test_deploy_assets import COMPOSE, DEPLOY, compose_env, load_yaml

README = DEPLOY / "README.md"
CONFIG = DEPLOY / "compose" / "hydrant.yaml"
POSTGRES_INIT = DEPLOY / "compose" / "postgres-init.sql"
CLUSTER_CONFIG = DEPLOY / "compose" / "hydrant-cluster.yaml"
CLUSTER_INIT = DEPLOY / "compose" / "postgres-init-cluster.sql"
CLUSTER_HEADING = "## Cluster mode with Compose"


def service_rewrites(svc):
    """The walkthrough's MinIO and OpenSearch addresses and credentials, as the services here have them."""
    return [
        ("http://localhost:9000", svc["s3"]),
        ("AWS_ACCESS_KEY_ID=hydrant AWS_SECRET_ACCESS_KEY=hydrant-secret",
         f"AWS_ACCESS_KEY_ID={svc['s3_key']} AWS_SECRET_ACCESS_KEY={svc['s3_secret']}"),
        ("http://localhost:9200", svc["search"]),
    ]


def walkthrough_commands(heading="## Docker Compose walkthrough", end="\n### "):
    """The shell commands of the README's compose walkthrough (or of the section under
    `heading`, up to `end`), `docker` ones left out."""
    text = README.read_text()
    assert heading in text, f"deploy/README.md has no section {heading!r}"
    section = text.split(heading, 1)[1].split(end, 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            stripped = command.strip()
            if stripped and not stripped.startswith(("#", "docker ")):
                commands.append(stripped)
    return commands


@pytest.fixture
def services():
    s3_endpoint, s3_key, s3_secret, pg_url, search = require_env(
        "FH_TEST_S3_ENDPOINT", "FH_TEST_S3_ACCESS_KEY", "FH_TEST_S3_SECRET_KEY",
        "FH_TEST_DATABASE_URL", "FH_TEST_OPENSEARCH_ENDPOINT")
    return dict(s3=s3_endpoint, s3_key=s3_key, s3_secret=s3_secret, pg=pg_url, search=search)


def replay_init_jobs(svc, s3_client, table="orders", init_sql=POSTGRES_INIT, index="app-logs"):
    """minio-init's bucket, postgres-init.sql (or the cluster-init job's script), and an empty
    index, as on a fresh `up`."""
    import psycopg
    import urllib.request

    bucket = "hydrant"
    try:
        s3_client.create_bucket(Bucket=bucket)
    except s3_client.exceptions.ClientError:
        pass  # left by an earlier run: empty it
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=obj["Key"])
    with psycopg.connect(svc["pg"], autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{table}")
        conn.execute(init_sql.read_text())
    request = urllib.request.Request(f"{svc['search']}/{index}", method="DELETE")
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except OSError:
        pass  # no such index yet


def test_the_compose_walkthrough_delivers_to_minio_postgres_and_opensearch(services, s3, tmp_path, monkeypatch):
    svc = services
    replay_init_jobs(svc, s3)
    pg = urlparse(svc["pg"])
    search = urlparse(svc["search"])

    # The hydrant service's environment, with the loopback services' credentials.
    env = compose_env(load_yaml().safe_load(COMPOSE.read_text())["services"]["hydrant"])
    env.update(MINIO_ROOT_USER=svc["s3_key"], MINIO_ROOT_PASSWORD=svc["s3_secret"],
               POSTGRES_USER=pg.username or "postgres", POSTGRES_PASSWORD=pg.password or "")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The harness sets listen and data_dir (a free port, a temporary directory).
    config = "\n".join(line for line in CONFIG.read_text().splitlines()
                       if not line.startswith(("listen:", "data_dir:")))
    config = rewrite_example(config, [
        ("http://minio:9000", svc["s3"]),
        ("jdbc:postgresql://postgres:5432/hydrant", f"jdbc:postgresql://{pg.hostname}:{pg.port}{pg.path}"),
        ("http://opensearch:9200", svc["search"]),
    ], "deploy/compose/hydrant.yaml")
    h = Hydrant(tmp_path, config)
    h.start()
    try:
        script = rewrite_example("\n".join(walkthrough_commands()), [
            ("http://localhost:4573", h.endpoint), *service_rewrites(svc),
        ], "deploy/README.md's walkthrough")
        out = run_example(script, ROOT, example_env(tmp_path)).stdout

        # clicks: the four records, read back from MinIO by the walkthrough's gunzip loop.
        for user in range(1, 5):
            assert f'{{"user":{user}}}' in out, out
        assert re.search(r'hydrant_delivery_to_s3_records_total\{stream="clicks"\} 4\b', out), out
        # app-logs: the walkthrough's search finds the document.
        assert "hello from firehose" in out, out
        # orders: the walkthrough reads the table with `docker compose exec postgres psql`; read
        # it here instead.
        import psycopg
        with psycopg.connect(svc["pg"]) as conn:
            rows = conn.execute("SELECT id, customer, amount::float8 FROM orders ORDER BY id").fetchall()
        assert rows == [(1, "ada", 12.5), (2, "bob", 7.0)], rows
    finally:
        h.stop()
    assert "panicked" not in h.log()


def test_the_walkthrough_extraction_sees_every_step():
    """The extraction above is what the test runs: it must find the put, read and metric steps
    and leave out exactly the docker commands."""
    commands = walkthrough_commands()
    joined = "\n".join(commands)
    for step in ("put-record --endpoint-url", "put-record-batch", "--delivery-stream-name orders",
                 "--delivery-stream-name app-logs", "aws s3 ls", "gunzip", "/metrics", "_search"):
        assert step in joined, f"walkthrough step {step!r} not found"
    assert not any(c.startswith("docker") for c in commands)
    assert shutil.which("bash")
    assert Path(README).exists()


def test_the_cluster_walkthrough_delivers_through_either_node(services, s3, tmp_path):
    """The `cluster` profile's walkthrough: hydrant-a and hydrant-b are two `hydrant` processes
    with compose/hydrant-cluster.yaml and the environment compose gives each, on the suite's
    three-node NATS cluster (HYDRANT_NATS_URLS, standing in for nats-1..3, whose config
    test_deploy_assets.py starts on its own) in a namespace of this test's. The README's
    non-docker commands put through both nodes and read back from MinIO and OpenSearch."""
    import psycopg

    svc = services
    (nats_urls,) = require_env("HYDRANT_NATS_URLS")
    replay_init_jobs(svc, s3, table="cluster_orders", init_sql=CLUSTER_INIT, index="cluster-app-logs")
    pg = urlparse(svc["pg"])
    compose = load_yaml().safe_load(COMPOSE.read_text())["services"]
    text = "\n".join(line for line in CLUSTER_CONFIG.read_text().splitlines()
                     if not line.startswith(("listen:", "data_dir:")))
    config = rewrite_example(text, [
        ("[nats://nats-1:4222, nats://nats-2:4222, nats://nats-3:4222]", f"[{', '.join(nats_urls.split(','))}]"),
        ("namespace: hydrant ", f"namespace: {new_namespace()} "),   # buckets of this run's own
        ("http://minio:9000", svc["s3"]),
        ("jdbc:postgresql://postgres:5432/hydrant", f"jdbc:postgresql://{pg.hostname}:{pg.port}{pg.path}"),
        ("http://opensearch:9200", svc["search"]),
    ], "deploy/compose/hydrant-cluster.yaml")

    nodes = {}
    try:
        for name in ("hydrant-a", "hydrant-b"):
            env = compose_env(compose[name])
            env.update(MINIO_ROOT_USER=svc["s3_key"], MINIO_ROOT_PASSWORD=svc["s3_secret"],
                       POSTGRES_USER=pg.username or "postgres", POSTGRES_PASSWORD=pg.password or "")
            workdir = tmp_path / name
            workdir.mkdir()
            node = Hydrant(workdir, config)
            nodes[name] = node
            with patched_environ(env):
                node.start(timeout=60)
        a, b = nodes["hydrant-a"], nodes["hydrant-b"]
        script = rewrite_example("\n".join(walkthrough_commands(CLUSTER_HEADING, "\n## ")), [
            ("http://localhost:4581", a.endpoint), ("http://localhost:4582", b.endpoint),
            *service_rewrites(svc),
        ], "deploy/README.md's cluster walkthrough")
        out = run_example(script, ROOT, example_env(tmp_path)).stdout

        # clicks: the records put through hydrant-a and hydrant-b, read back from cluster/clicks/.
        for user in range(1, 4):
            assert f'{{"user":{user}}}' in out, out
        # app-logs: the document put through hydrant-a is in the cluster's own index.
        assert "hello from the cluster" in out, out
        # The two nodes share the work: each holds leases, and both name themselves by the
        # node_id compose gives them.
        owners = re.findall(r'^hydrant_lease_owner\{[^}]*node="([^"]+)"[^}]*\} 1$', out, re.M)
        assert sorted(set(owners)) == ["hydrant-a", "hydrant-b"], out
        # orders (put through hydrant-b): the walkthrough reads it with `docker compose exec`.
        with psycopg.connect(svc["pg"]) as conn:
            rows = conn.execute("SELECT id, customer, amount::float8 FROM cluster_orders ORDER BY id").fetchall()
        assert rows == [(1, "ada", 12.5), (2, "bob", 7.0)], rows
        # Nothing reached the single node's destinations.
        assert not s3.list_objects_v2(Bucket="hydrant", Prefix="clicks/").get("KeyCount"), "written outside cluster/"
    finally:
        for node in nodes.values():
            node.stop()
    for node in nodes.values():
        assert_no_panic(node)


@contextlib.contextmanager
def patched_environ(env):
    """os.environ with `env` while a node starts (Hydrant copies it into the child)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_cluster_walkthrough_extraction_sees_every_step():
    commands = walkthrough_commands(CLUSTER_HEADING, "\n## ")
    joined = "\n".join(commands)
    for step in ("--endpoint-url http://localhost:4581", "--endpoint-url http://localhost:4582",
                 "--delivery-stream-name orders", "--delivery-stream-name app-logs",
                 "s3://hydrant/cluster/clicks/", "gunzip", "cluster-app-logs/_search", "hydrant_lease_owner"):
        assert step in joined, f"cluster walkthrough step {step!r} not found"
    assert not any(c.startswith("docker") for c in commands)
    # The section starts the profile as the compose file says.
    assert "docker compose -f deploy/docker-compose.yml --profile cluster up -d" in README.read_text()
