#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs and starts every real service the tests
# use (on 127.0.0.1), runs the Rust tests and the client tests (aws CLI v1/v2, boto3), and
# stops what it started, also on failure.
#
#   scripts/test.sh            everything
#   scripts/test.sh -k crash   pass arguments to the client tests' pytest (the Rust tests and the short
#                              chaos run still run)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

export SVC_DIR=${SVC_DIR:-/tmp/hydrant-test-services-$$}
trap 'scripts/services.sh down' EXIT
scripts/services.sh up
# shellcheck disable=SC1091
. "$SVC_DIR/env"
export HYDRANT_REQUIRE_SERVICES=1

echo "== transform modules (wasm32-wasip1)"
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
transforms/build.sh
echo "== transform unit tests (SDK, blueprint parsers; native)"
(cd transforms && cargo test --locked --workspace --target "$(rustc -vV | sed -n 's/^host: //p')" 2>&1)

echo "== cargo test"
# tests/log_jetstream.rs runs against the NATS cluster services.sh started (HYDRANT_NATS_URLS).
cargo test --workspace --locked 2>&1
echo "== fuzz targets, a few seconds each (docs/fuzzing.md)"
scripts/fuzz.sh smoke 3
echo "== client tests (pytest)"
export HYDRANT_BIN=$PWD/target/debug/hydrant
# Long cluster failure scenarios (`-m long`) run in scripts/chaos.sh's full variant.
"$FH_TEST_PYTHON" -m pytest tests/clients -q -p no:cacheprovider -m "not long" --durations=25 "$@"
echo "== chaos suite, short variant (scripts/chaos.sh for the full one)"
scripts/chaos.sh --short
