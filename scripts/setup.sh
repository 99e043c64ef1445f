#!/usr/bin/env bash
# Installs every Debian package genvis needs to build, test and fuzz. Idempotent and
# non-interactive: does nothing (not even apt-get update) when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev            # tensors, autograd, optimisers (1.13, CPU)
  libgloo-dev             # distributed training: the headers of libtorch's c10d Gloo backend
  nlohmann-json3-dev      # configs and safetensors headers
  libcli11-dev            # command line
  libcpp-httplib-dev      # genvis serve: HTTP server (and the tests' client)
  libpng-dev              # images
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev  # video: MP4/H.264 (libx264 inside Debian's FFmpeg), reading MP4/WebM/GIF
  libwebp-dev             # video: animated WebP (libwebp, libwebpmux, libwebpdemux)
  libfreetype-dev fonts-dejavu-core  # captions on image grids
  libzip-dev              # PyTorch .ckpt/.pt zip archives
  libssl-dev              # SHA-256 model hashes
  libicu-dev zlib1g-dev   # tokenizers: Unicode categories and normalisation, gzipped vocabularies
  libsentencepiece-dev    # tokenizers: T5/UMT5 spiece.model (Wan's text side), in a dlopen'ed module
  libharfbuzz-dev         # datasets: shaping emoji ZWJ / skin-tone / flag sequences
  fonts-noto-color-emoji unicode-data  # datasets: the emoji font and emoji-test.txt captions
  dataset-fashion-mnist   # datasets: Fashion-MNIST
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and benchmarks
  clang libclang-rt-14-dev  # libFuzzer targets
  procps                  # tests: pgrep/pkill find and stop the processes of a distributed run
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The server's real-client tests (tests/server/run_node_tests.sh): Node with npm (the official
# openai package and playwright-core come from the npm registry at test time) and Chromium. A
# Node from elsewhere (nodesource, nvm) that brings its own npm is used as it is.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present (and node, npm, chromium)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
