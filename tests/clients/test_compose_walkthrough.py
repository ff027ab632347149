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

import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ROOT, Hydrant, example_env, require_env, rewrite_example, run_example
from test_deploy_assets import COMPOSE, DEPLOY, compose_env, load_yaml

README = DEPLOY / "README.md"
CONFIG = DEPLOY / "compose" / "hydrant.yaml"
POSTGRES_INIT = DEPLOY / "compose" / "postgres-init.sql"


def walkthrough_commands():
    """The shell commands of the README's compose walkthrough, `docker` ones left out."""
    text = README.read_text()
    section = text.split("## Docker Compose walkthrough", 1)[1].split("\n### ", 1)[0]
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


def replay_init_jobs(svc, s3_client):
    """minio-init's bucket, postgres-init.sql, and an empty index, as on a fresh `up`."""
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
        conn.execute("DROP TABLE IF EXISTS public.orders")
        conn.execute(POSTGRES_INIT.read_text())
    request = urllib.request.Request(svc["search"] + "/app-logs", method="DELETE")
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
            ("http://localhost:4573", h.endpoint),
            ("http://localhost:9000", svc["s3"]),
            ("AWS_ACCESS_KEY_ID=hydrant AWS_SECRET_ACCESS_KEY=hydrant-secret",
             f"AWS_ACCESS_KEY_ID={svc['s3_key']} AWS_SECRET_ACCESS_KEY={svc['s3_secret']}"),
            ("http://localhost:9200", svc["search"]),
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
