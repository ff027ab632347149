#!/usr/bin/env bash
# Benchmarks Hydrant's cluster mode (docs/performance.md, "Cluster mode"): starts N release-build
# nodes on the NATS JetStream cluster of scripts/services.sh (or the embedded log, one node),
# each in a cgroup of its own capped at --cpus cores, then drives all of them with
# `hydrant bench --target <every node>` and prints its report.
#
#   scripts/services.sh up && . "$SVC_DIR/env"        # the 3-node NATS cluster (HYDRANT_NATS_URLS)
#   cargo build --release
#   scripts/bench-cluster.sh --nodes 3 --replicas 3 --cpus 0.4 -- --seconds 20 --connections 12
#   scripts/bench-cluster.sh --core embedded --cpus 0.4          # the same cap on the embedded log
#
# Options: --nodes N (1), --replicas R (3), --cpus C (no cap), --shards S (4),
# --core jetstream|embedded (jetstream), --compression GZIP|UNCOMPRESSED (GZIP); after `--`,
# options for `hydrant bench` (its --target and --stream are set here). CPU caps need a writable
# cgroup cpu controller (v1 /sys/fs/cgroup/cpu or v2 cpu.max), which root has on this machine.
set -euo pipefail

NODES=1 REPLICAS=3 CPUS="" SHARDS=4 CORE=jetstream COMPRESSION=GZIP
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --core) CORE=$2; shift 2 ;;
    --compression) COMPRESSION=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
BIN=${HYDRANT_BIN:-$(dirname "$0")/../target/release/hydrant}
[ -x "$BIN" ] || { echo "no release binary at $BIN: run cargo build --release" >&2; exit 1; }
if [ "$CORE" = jetstream ]; then
  [ -n "${HYDRANT_NATS_URLS:-}" ] || { echo "HYDRANT_NATS_URLS is not set: scripts/services.sh up, then source its env" >&2; exit 1; }
elif [ "$NODES" != 1 ]; then
  echo "--core embedded runs one node (each node's log is its own)" >&2; exit 2
fi

WORK=$(mktemp -d /tmp/hydrant-bench-cluster.XXXXXX)
NAMESPACE="bench$(date +%s)"
PIDS=() CGROUPS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for cg in "${CGROUPS[@]}"; do rmdir "$cg" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Puts process $2 in a new cgroup named $1 capped at $CPUS cores.
cap() {
  [ -n "$CPUS" ] || return 0
  local quota; quota=$(awk -v c="$CPUS" 'BEGIN { printf "%d", c * 100000 }')
  if [ -w /sys/fs/cgroup/cpu ]; then            # cgroup v1
    local cg=/sys/fs/cgroup/cpu/$1
    mkdir -p "$cg"; echo 100000 >"$cg/cpu.cfs_period_us"; echo "$quota" >"$cg/cpu.cfs_quota_us"
    echo "$2" >"$cg/cgroup.procs"
  elif [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then   # cgroup v2
    local cg=/sys/fs/cgroup/$1
    echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    mkdir -p "$cg"; echo "$quota 100000" >"$cg/cpu.max"; echo "$2" >"$cg/cgroup.procs"
  else
    echo "no writable cgroup cpu controller: cannot cap CPU" >&2; exit 1
  fi
  CGROUPS+=("$cg")
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

TARGETS=()
for i in $(seq 1 "$NODES"); do
  port=$(free_port)
  core=""
  if [ "$CORE" = jetstream ]; then
    core="node_id: n$i
core: { type: jetstream, servers: [${HYDRANT_NATS_URLS}], replicas: $REPLICAS, namespace: $NAMESPACE }"
  fi
  cat >"$WORK/n$i.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $WORK/data-n$i
$core
object_stores:
  bench: { type: local, root: $WORK/buckets }
delivery_streams:
  - DeliveryStreamName: bench
    ExtendedS3DestinationConfiguration:
      BucketARN: arn:aws:s3:::bench
      Prefix: bench/n$i/
      BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 1 }
      CompressionFormat: $COMPRESSION
    hydrant: { object_store: bench, shards: $SHARDS }
YAML
  RUST_LOG=warn "$BIN" serve --config "$WORK/n$i.yaml" >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
  cap "hydrant-bench-$$-n$i" "$!"
  TARGETS+=("http://127.0.0.1:$port")
done
for t in "${TARGETS[@]}"; do
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$t/healthz" && break; sleep 0.1; done
  curl -sf -o /dev/null "$t/healthz" || { echo "node $t did not start:"; cat "$WORK"/n*.log; exit 1; }
done
# Let every node take its share of the leases before the load starts.
sleep 3
echo "bench-cluster: $NODES node(s), core $CORE, replicas $REPLICAS, cpus per node ${CPUS:-uncapped}, $SHARDS shards, $COMPRESSION"
IFS=,; "$BIN" bench --target "${TARGETS[*]}" --stream bench --compression "$COMPRESSION" --shards "$SHARDS" "$@"
