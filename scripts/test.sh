#!/usr/bin/env bash
# Builds what the tests need (tests, libgenvis, API examples, benchmarks: scripts/build.sh all),
# then runs every test (ctest: unit, parity, integration, slow) and each libFuzzer target for
# FUZZ_SECONDS (default 20; 0 skips fuzzing).
# The last line is the total: "tests: N passed, M failed" (fuzz targets count as tests).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh all || { echo "tests: 0 passed, 1 failed (the build failed)"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-} 2>&1 | tee "$log"
ctest_status=${PIPESTATUS[0]}
total=$(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/p' "$log" | tail -n 1)
failed=$(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/p' "$log" | tail -n 1)
total=${total:-0}
failed=${failed:-0}
if [ "$ctest_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; total=$((total + 1)); fi
passed=$((total - failed))

if [ "${FUZZ_SECONDS:-20}" != "0" ]; then
  for target in safetensors_header_fuzz unpickler_fuzz png_text_fuzz exif_fuzz server_request_fuzz; do
    if scripts/fuzz.sh "${FUZZ_SECONDS:-20}" "$target"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
