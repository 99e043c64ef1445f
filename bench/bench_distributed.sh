#!/usr/bin/env bash
# Data-parallel scaling on this machine: the same training run (the emoji contrastive encoder's
# model and the global batch of 2 micro-batches of BATCH images) as
#   one process with all the threads,  N processes with threads / N each (--nproc N),
#   and one process with threads / N (what each of the N processes has),
# timed from the metrics log after a warm-up, printed as JSON (seconds per step, images per
# second, and the speed-up and scaling efficiency of N processes against one).
#   bench/bench_distributed.sh [STEPS] [BATCH]       (defaults 40 and 64; N = 2)
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
STEPS=${1:-40}
BATCH=${2:-64}
N=${NPROC:-2}
THREADS=${THREADS:-$(nproc)}
WARMUP=5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/config.json" <<EOF
{
  "seed": 0,
  "dataset": {"name": "emoji", "resolution": 32, "split": "train", "size": 1024},
  "tokenizer": {"vocab_size": 1024},
  "model": {"projection_dim": 128,
            "vision_config": {"block_out_channels": [32, 64, 128, 256], "layers_per_block": 1, "norm_num_groups": 8},
            "text_config": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 3,
                            "num_attention_heads": 4, "max_position_embeddings": 32}},
  "batch_size": $BATCH,
  "eval": {"num": 16, "k": 8},
  "train": {"steps": $STEPS, "grad_accum": $N, "lr": 0.0015, "warmup_steps": 5, "checkpoint_every": 100000,
            "log_every": 100000, "autocast": "bf16"}
}
EOF
# Seconds per step after the warm-up steps, from the run's metrics log.
per_step() {
  awk -v w="$WARMUP" -F'"seconds":' '{ split($2, a, /[,}]/); s[NR] = a[1] } END { printf "%.4f", (s[NR] - s[w]) / (NR - w) }' \
    "$1/train/metrics.jsonl"
}
"$GENVIS" -q --threads "$THREADS" train contrastive --config "$work/config.json" --out "$work/one" >/dev/null
"$GENVIS" -q --threads $((THREADS / N > 0 ? THREADS / N : 1)) train contrastive --config "$work/config.json" \
  --out "$work/many" --nproc "$N" >/dev/null
"$GENVIS" -q --threads $((THREADS / N > 0 ? THREADS / N : 1)) train contrastive --config "$work/config.json" \
  --out "$work/small" >/dev/null
one=$(per_step "$work/one")
many=$(per_step "$work/many")
small=$(per_step "$work/small")
images=$((BATCH * N))
awk -v one="$one" -v many="$many" -v small="$small" -v n="$N" -v t="$THREADS" -v img="$images" -v cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1)" 'BEGIN {
  printf "{\"bench\": \"distributed\", \"cpu\": \"%s\", \"threads\": %d, \"processes\": %d, \"images_per_step\": %d,\n", cpu, t, n, img
  printf " \"one_process_s_per_step\": %s, \"n_processes_s_per_step\": %s, \"one_process_with_1_of_n_threads_s_per_step\": %s,\n", one, many, small
  printf " \"images_per_s_one\": %.1f, \"images_per_s_n\": %.1f,\n", img / one, img / many
  printf " \"speedup_n_vs_one\": %.3f, \"scaling_efficiency_vs_one_small_process\": %.3f}\n", one / many, small / (n * many)
}'
