#!/usr/bin/env bash
# Builds every transform module (release, wasm32-wasip1) and copies them to dist/.
# Needs the target once: rustup target add wasm32-wasip1
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --workspace "$@"
mkdir -p dist
for wasm in target/wasm32-wasip1/release/*.wasm; do
    cp "$wasm" dist/
    echo "dist/$(basename "$wasm") ($(stat -c %s "$wasm") bytes)"
done
