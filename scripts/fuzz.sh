#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan) and runs each for the given
# number of seconds (default 60) on a copy of its seed corpus. Exits non-zero on any crash,
# leak, undefined behaviour or timeout; the reproducer is left in fuzz-build/.
#   scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
OUT=${FUZZ_BUILD_DIR:-fuzz-build}
mkdir -p "$OUT"
CXX=${FUZZ_CXX:-clang++}
FLAGS=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Iapps/server)

declare -A SOURCES=(
  [safetensors_header_fuzz]="src/io/safetensors_header.cpp src/io/dtype.cpp"
  [gguf_header_fuzz]="src/io/gguf_format.cpp src/io/dtype.cpp"
  [unpickler_fuzz]="src/io/pickle.cpp src/io/dtype.cpp src/core/file.cpp"
  [png_text_fuzz]="src/io/png.cpp src/io/infotext.cpp src/core/file.cpp"
  [exif_fuzz]="src/io/exif.cpp"
  [server_request_fuzz]="apps/server/request_fields.cpp src/io/png.cpp src/core/file.cpp"
)
declare -A LIBS=([png_text_fuzz]="-lpng" [server_request_fuzz]="-lpng -lcrypto")

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_header_fuzz gguf_header_fuzz unpickler_fuzz png_text_fuzz exif_fuzz server_request_fuzz)

status=0
for t in "${targets[@]}"; do
  echo "fuzz: building $t"
  # shellcheck disable=SC2086
  "$CXX" "${FLAGS[@]}" "fuzz/$t.cpp" ${SOURCES[$t]} ${LIBS[$t]:-} -o "$OUT/$t"
  corpus="$OUT/corpus-$t"
  mkdir -p "$corpus"
  seeds="fuzz/corpus/${t%_fuzz}"
  echo "fuzz: running $t for ${SECONDS_EACH}s"
  # A fixed seed (FUZZ_SEED, default 1) makes CI runs repeatable; set FUZZ_SEED=0 for a random one.
  if ! (cd "$OUT" && ./"$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "corpus-$t" "../$seeds" 2>"$t.log"); then
    echo "fuzz: $t FAILED; see $OUT/$t.log" >&2
    tail -n 40 "$OUT/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$t.log" | sed "s/^/fuzz: $t /"
  fi
done
exit $status
