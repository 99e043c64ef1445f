#!/usr/bin/env bash
# Runs every test (ctest: unit, parity, integration, slow) and then each libFuzzer target for
# FUZZ_SECONDS (default 60; 0 skips fuzzing). Build first with scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-}
if [ "${FUZZ_SECONDS:-60}" != "0" ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
