#!/usr/bin/env bash
# Configures and builds genvis into ./build (override with BUILD_DIR). Extra CMake arguments
# come from GENVIS_CMAKE_ARGS, e.g. GENVIS_CMAKE_ARGS="-DTorch_DIR=/opt/libtorch/share/cmake/Torch".
# Builds only the genvis command (the layers it links) unless targets are named:
#   scripts/build.sh            # build/genvis
#   scripts/build.sh all        # everything: libgenvis, tests, examples, benchmarks (scripts/test.sh does this)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
jobs=$(nproc)
# libtorch translation units take ~1.5 GB each to compile; keep within memory.
mem_gb=$(awk '/MemAvailable/ {print int($2/1024/1024)}' /proc/meminfo)
if [ "$jobs" -gt $((mem_gb / 2)) ] && [ $((mem_gb / 2)) -ge 1 ]; then jobs=$((mem_gb / 2)); fi
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${GENVIS_CMAKE_ARGS:-} >/dev/null
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(genvis)
cmake --build "$BUILD_DIR" -j "$jobs" --target "${targets[@]}"
