#!/usr/bin/env bash
# Coverage-guided fuzzing of Hydrant's parsers of untrusted bytes (docs/fuzzing.md): libFuzzer
# through cargo-fuzz, on the stable toolchain (`--sanitizer none`). The targets are in fuzz/.
#
#   scripts/fuzz.sh install                  install cargo-fuzz (pinned; from crates.io)
#   scripts/fuzz.sh list                     the targets
#   scripts/fuzz.sh build                    build every target (instrumented, release)
#   scripts/fuzz.sh run <target> <seconds>   fuzz one target
#   scripts/fuzz.sh all <seconds>            fuzz every target in turn, <seconds> each
#   scripts/fuzz.sh ci [seconds]             the short run: an unoptimised build, then every
#                                            target for a few seconds (default 10) from its
#                                            committed corpus
#   scripts/fuzz.sh smoke [seconds]          what scripts/test.sh (and so CI) runs: every target
#                                            built like the tests (no instrumentation, sharing
#                                            target/), run from its corpus for a few seconds
#                                            (default 3)
#   scripts/fuzz.sh merge <target>           add the new inputs that reach new code to the
#                                            committed corpus fuzz/corpus/<target>
#   scripts/fuzz.sh repro <target> <input>   run one input (a crash) and show what happens
#
# `run` reads the committed corpus, writes new inputs to fuzz/target/corpus/<target> (not
# committed; `merge` picks the ones worth keeping) and crashes to fuzz/artifacts/<target>/.
# Exit status non-zero when a target crashed (panic, abort, timeout, out of memory).
# Environment: FUZZ_ARGS adds libFuzzer options (FUZZ_ARGS="-fork=1 -ignore_crashes=1" goes
# on past crashes, saving each); FUZZ_DEV=1 builds without optimisations (faster to build,
# slower to run).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(put_records config log_frames log_recovery snappy_framing encrypted_object
  transform_response sigv4 record_processing kinesis_requests)
# Largest input per target: a config file or a shard directory can be a few tens of KiB.
max_len() {
  case $1 in
    config | log_recovery | put_records) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

die() { echo "fuzz.sh: $*" >&2; exit 2; }

known() {
  local t
  for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
  die "unknown target '$1' (scripts/fuzz.sh list)"
}

install() {
  if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
  fi
}

build_flags() {
  # --sanitizer none: the only mode that works on stable Rust (every other flag cargo-fuzz
  # passes is a stable -C option). Hydrant has no unsafe code, so a sanitizer would only
  # watch its dependencies. Debug assertions on: integer overflow panics instead of wrapping.
  # --no-cfg-fuzzing: the dependencies are built as they ship (tokio and zip change code
  # under cfg(fuzzing)).
  local flags=(--sanitizer none --debug-assertions --no-cfg-fuzzing)
  [ "${FUZZ_DEV:-0}" = 1 ] && flags+=(--dev)
  echo "${flags[@]}"
}

build() {
  install
  # shellcheck disable=SC2046
  cargo fuzz build $(build_flags) "$@"
}

run() {
  local target=$1 seconds=$2
  known "$target"
  local work=fuzz/target/corpus/$target artifacts=fuzz/artifacts/$target
  mkdir -p "$work" "$artifacts" "fuzz/corpus/$target"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
    -max_len="$(max_len "$target")" -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "fuzz/dict/$target.dict" ] && args+=(-dict="fuzz/dict/$target.dict")
  echo "== fuzzing $target for ${seconds}s"
  # shellcheck disable=SC2046,SC2086
  cargo fuzz run $(build_flags) "$target" "$work" "fuzz/corpus/$target" -- \
    "${args[@]}" ${FUZZ_ARGS:-}
}

merge() {
  local target=$1
  known "$target"
  local work=fuzz/target/corpus/$target
  [ -d "$work" ] || die "no new inputs for $target (run it first)"
  # -use_counters=0: keep the inputs that reach new edges, not every new hit count (a tenth
  # of the files for the same code covered).
  # shellcheck disable=SC2046
  cargo fuzz run $(build_flags) "$target" "fuzz/corpus/$target" "$work" -- \
    -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$target")"
}

case ${1:-} in
  install) install ;;
  list) printf '%s\n' "${TARGETS[@]}" ;;
  build) shift; build "$@" ;;
  run)
    [ $# -eq 3 ] || die "usage: scripts/fuzz.sh run <target> <seconds>"
    build "$2"
    run "$2" "$3"
    ;;
  all)
    [ $# -eq 2 ] || die "usage: scripts/fuzz.sh all <seconds>"
    build
    failed=()
    for target in "${TARGETS[@]}"; do run "$target" "$2" || failed+=("$target"); done
    [ ${#failed[@]} -eq 0 ] || { echo "fuzz.sh: crashed: ${failed[*]}" >&2; exit 1; }
    ;;
  ci)
    seconds=${2:-10}
    # Unoptimised: builds in half the time, and a few seconds of fuzzing need no speed.
    export FUZZ_DEV=${FUZZ_DEV:-1}
    build
    failed=()
    for target in "${TARGETS[@]}"; do run "$target" "$seconds" || failed+=("$target"); done
    [ ${#failed[@]} -eq 0 ] || { echo "fuzz.sh: crashed: ${failed[*]}" >&2; exit 1; }
    echo "fuzz: ${#TARGETS[@]} targets, ${seconds}s each, no crash"
    ;;
  smoke)
    # Uninstrumented, so the dependencies the tests compiled are reused: about 1.5 CPU-minutes
    # instead of the 12 of `ci`. Without coverage feedback libFuzzer replays the corpus and
    # mutates at random; that proves every target builds and survives its corpus and a few
    # million mutations. Finding new inputs is `run`'s job.
    seconds=${2:-3}
    cargo build --manifest-path fuzz/Cargo.toml --target-dir target --bins --locked
    failed=()
    for target in "${TARGETS[@]}"; do
      scratch=$(mktemp -d)
      echo "== $target, ${seconds}s uninstrumented"
      target/debug/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$target")" -artifact_prefix="$scratch/" "$scratch" "fuzz/corpus/$target" \
        2>"$scratch/log" || { tail -30 "$scratch/log" >&2; failed+=("$target"); }
      grep -h "^Done" "$scratch/log" || true
      rm -rf "$scratch"
    done
    [ ${#failed[@]} -eq 0 ] || { echo "fuzz.sh: crashed: ${failed[*]}" >&2; exit 1; }
    echo "fuzz smoke: ${#TARGETS[@]} targets, ${seconds}s each, no crash"
    ;;
  merge)
    [ $# -eq 2 ] || die "usage: scripts/fuzz.sh merge <target>"
    build "$2"
    merge "$2"
    ;;
  repro)
    [ $# -eq 3 ] || die "usage: scripts/fuzz.sh repro <target> <input>"
    known "$2"
    build "$2"
    # shellcheck disable=SC2046
    RUST_BACKTRACE=1 cargo fuzz run $(build_flags) "$2" "$3" -- -runs=1
    ;;
  *) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
