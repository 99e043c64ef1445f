#!/usr/bin/env bash
# Build genvis against a CUDA libtorch 2.x and check it on the GPU: the whole test suite (CPU
# code paths, on libtorch 2.x), txt2img on CUDA against the same run on the CPU, and bench_sd on
# CUDA. Developer tool for a machine with an NVIDIA GPU and a CUDA PyTorch; not used by CI.
#   TORCH_DIR=/path/to/share/cmake/Torch scripts/cuda-check.sh   (default: python3's torch)
# Optional: .deps/debs/*.deb (Debian packages of genvis' build dependencies) are unpacked into
# /opt/genvis-deps for machines without them; .deps/shared stands in for ../shared.
# Logs and results go to $OUT (default /tmp/cuda-check).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp/cuda-check}
mkdir -p "$out"
build=$root/build-cuda
jobs=$(nproc)
step() { echo "== $* ($(date +%T))"; }

TORCH_DIR=${TORCH_DIR:-$(python3 -c 'import torch, os; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')}
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
g++ --version | head -1
prefix_args=()
if compgen -G "$root/.deps/debs/*.deb" >/dev/null; then
  step "unpacking build dependencies into /opt/genvis-deps"
  for f in "$root"/.deps/debs/*.deb; do dpkg -x "$f" /opt/genvis-deps; done
  export LD_LIBRARY_PATH=/opt/genvis-deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  prefix_args=(-DCMAKE_PREFIX_PATH=/opt/genvis-deps/usr -DCMAKE_LIBRARY_PATH=/opt/genvis-deps/usr/lib/x86_64-linux-gnu)
fi
if [ ! -e "$root/../shared" ] && [ -d "$root/.deps/shared" ]; then ln -s "$root/.deps/shared" "$root/../shared"; fi

step "configure against $TORCH_DIR"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$TORCH_DIR" \
  -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_CUDA_ARCHITECTURES=90 "${prefix_args[@]}" >"$out/configure.log" 2>&1 ||
  { tail -60 "$out/configure.log"; exit 1; }
grep -i "genvis: libtorch" "$out/configure.log"
step "build"
if ! cmake --build "$build" -j"$jobs" -- -k 0 >"$out/build.log" 2>&1; then
  grep -B2 -A12 "error" "$out/build.log" | head -150
  exit 1
fi

step "txt2img on CUDA vs CPU"
f=$root/../shared/fixtures
common=(--text-encoder "$f/clip_l" --unet "$f/unet_sd1" --vae "$f/vae" --vocab "$root/../shared/data/bpe_simple_vocab_16e6.txt.gz"
  -p "a photo of an astronaut riding a horse on mars" --steps 4 --width 64 --height 48 --seed 1)
for dev in cpu cuda; do  # f32 on CUDA runs without TF32
  "$build/genvis" --quiet generate "${common[@]}" --device $dev --dtype f32 -o "$out/e2e_$dev.png" --dump "$out/e2e_$dev.safetensors" || echo "generate on $dev failed"
done
"$build/genvis" --quiet generate "${common[@]}" --device cuda --dtype bf16 -o "$out/e2e_cuda_bf16.png" --dump "$out/e2e_cuda_bf16.safetensors" || echo "generate bf16 on cuda failed"
python3 - "$out" <<'PY'
import sys
from safetensors.torch import load_file
o = sys.argv[1]
try:
    cpu = load_file(f"{o}/e2e_cpu.safetensors")
    for name in ("cuda", "cuda_bf16"):
        g = load_file(f"{o}/e2e_{name}.safetensors")
        for k in ("latents", "image"):
            d = (g[k].float() - cpu[k].float()).abs().max().item()
            print(f"{name} vs cpu {k}: max_abs {d:.3g}")
except Exception as e:
    print("compare failed:", e)
PY

step "ctest (CPU code paths on libtorch 2.x)"
(cd "$build" && timeout ${CTEST_TIMEOUT:-200} ctest -j"$jobs" --timeout 120 --output-on-failure ${CTEST_ARGS:-} >"$out/ctest.log" 2>&1)
echo "ctest rc=$?"
grep -E "tests passed|tests failed|\(Failed\)|\(Timeout\)|\*\*\*" "$out/ctest.log" | head -40
step "bench_sd on CUDA"
[ "${BENCH_TIMEOUT:-120}" = 0 ] || timeout ${BENCH_TIMEOUT:-120} "$build/bench/bench_sd" --device cuda --size 256,512 --dtype f32,bf16 --steps 3 >"$out/bench_sd_cuda.json" 2>"$out/bench_sd_cuda.err"
echo "bench rc=$?"; cat "$out/bench_sd_cuda.json" | head -c 3000; tail -5 "$out/bench_sd_cuda.err"

step "done"
