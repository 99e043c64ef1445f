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

results="$BUILD_DIR/test-results"  # one JSON per GoogleTest shard (tests/CMakeLists.txt)
rm -rf "$results"

# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-} 2>&1 | tee "$log"
ctest_status=${PIPESTATUS[0]}

# Count GoogleTest cases, not shards: a shard's JSON holds its cases and failures; a shard that
# failed without one (a crash, a timeout) counts as one failure. Other ctest tests count as one.
passed=0
failed=0
while read -r name status; do
  if [[ "$name" =~ _tests_[0-9]+_of_[0-9]+$ ]] && [ -f "$results/$name.json" ]; then
    cases=$(grep -m1 -oE '"tests": [0-9]+' "$results/$name.json" | grep -oE '[0-9]+$')
    bad=$(grep -m1 -oE '"failures": [0-9]+' "$results/$name.json" | grep -oE '[0-9]+$')
    cases=${cases:-0}
    bad=${bad:-0}
    if [ "$status" != Passed ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + cases - bad))
    failed=$((failed + bad))
  elif [ "$status" = Passed ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done < <(sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) [ .]*(\**)([A-Za-z]+).*/\1 \3/p' "$log")
if [ "$ctest_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

if [ "${FUZZ_SECONDS:-20}" != "0" ]; then
  for target in safetensors_header_fuzz gguf_header_fuzz unpickler_fuzz png_text_fuzz exif_fuzz server_request_fuzz; do
    if scripts/fuzz.sh "${FUZZ_SECONDS:-20}" "$target"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
