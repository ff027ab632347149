#!/usr/bin/env bash
# The chaos suite: kill -9 at random points under load for every destination, destination
# outages of minutes, a real full disk, and slow-client attacks, each counting acknowledged,
# delivered, missing and duplicated records (tests/chaos/). Not part of scripts/test.sh's default
# run because the full version takes about half an hour; scripts/test.sh runs the short variant.
#
#   scripts/chaos.sh            full run: 20 kills per destination, 3-minute outages, 60 s of full disk,
#                               then the client tests marked `long` (NATS quorum loss, a JetStream
#                               leader's kill -9, rolling restarts, a SIGSTOP zombie, on-demand merges)
#   scripts/chaos.sh --short    the CI variant: 3 kills, 20 s outages, 15 s of full disk (~5 min)
#   scripts/chaos.sh [--short] -k kill     extra arguments go to pytest
#
# Knobs (environment): CHAOS_KILLS, CHAOS_SEED, CHAOS_OUTAGE_SECONDS, CHAOS_FULL_DISK_SECONDS,
# CHAOS_ATTACK_SECONDS, CHAOS_REPORT (where the per-run JSON lines go), HYDRANT_BIN.
# Services: reuses those of the calling scripts/test.sh when its environment is exported,
# otherwise starts its own (scripts/services.sh) and stops them at the end.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--short" ]; then
  shift
  export CHAOS_SHORT=1
  export CHAOS_KILLS=${CHAOS_KILLS:-3} CHAOS_OUTAGE_SECONDS=${CHAOS_OUTAGE_SECONDS:-20}
  export CHAOS_FULL_DISK_SECONDS=${CHAOS_FULL_DISK_SECONDS:-15} CHAOS_ATTACK_SECONDS=${CHAOS_ATTACK_SECONDS:-15}
fi

if [ -z "${FH_TEST_S3_ENDPOINT:-}" ]; then
  export SVC_DIR=${SVC_DIR:-/tmp/hydrant-chaos-services-$$}
  trap 'scripts/services.sh down' EXIT
  scripts/services.sh up
  # shellcheck disable=SC1091
  . "$SVC_DIR/env"
  export HYDRANT_REQUIRE_SERVICES=1
fi
if [ -z "${HYDRANT_BIN:-}" ]; then
  cargo build --locked --bin hydrant
  export HYDRANT_BIN=$PWD/target/debug/hydrant
fi

export CHAOS_REPORT=${CHAOS_REPORT:-$(mktemp /tmp/hydrant-chaos-XXXXXX.jsonl)}
echo "== chaos suite (kills ${CHAOS_KILLS:-20}, outage ${CHAOS_OUTAGE_SECONDS:-180}s, full disk ${CHAOS_FULL_DISK_SECONDS:-60}s); report: $CHAOS_REPORT"
pytest_status=0
"$FH_TEST_PYTHON" -m pytest tests/chaos -q -p no:cacheprovider -s "$@" || pytest_status=$?
if [ -z "${CHAOS_SHORT:-}" ]; then
  echo "== long cluster failure scenarios of the client tests (-m long)"
  "$FH_TEST_PYTHON" -m pytest tests/clients -m long -q -p no:cacheprovider "$@" || pytest_status=$?
fi
echo "== summary (missing must be 0; duplicated must be 0 where exactly-once is promised)"
"$FH_TEST_PYTHON" - "$CHAOS_REPORT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["scenario", "destination", "acknowledged", "delivered", "missing", "duplicated",
        "duplicated_by_producer_resends"]
print("  ".join(f"{c:>14}" for c in cols))
for r in rows:
    print("  ".join(f"{str(r.get(c, '')):>14}" for c in cols))
PY
exit "$pytest_status"
