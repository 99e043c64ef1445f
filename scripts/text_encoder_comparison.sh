#!/usr/bin/env bash
# Joint vs contrastive-first text encoder for the default model's recipe (issue 4, deliverable 3).
# Diffusion runs (configs/experiments/te-<variant>.json: configs/ldm-emoji.json with fewer
# diffusion steps) sharing one tokenizer, VAE and latent cache:
#   joint-3k        text encoder from a random start, trained jointly with the UNet (what ships)
#   contrastive-3k  text encoder = the text tower of a contrastive text-image encoder trained first
#                   (text_encoder.pretrain: 480 steps, the LDM's own tokenizer), then fine-tuned jointly
#   frozen-3k       the same tower, frozen (the UNet learns to read a fixed contrastive encoder, as
#                   Stable Diffusion reads CLIP)
#   joint-4600      joint with 1,600 more diffusion steps: about the compute of the pretraining
#                   (480 contrastive steps took as long as ~1,600 diffusion steps on this machine)
# Each is scored by its last validation loss and by R-precision with genvis-contrastive-emoji
# (500 train captions, all 118 held-out ones, k = 100, 20 Euler steps, CFG 7).
# Results: eval/results/text-encoder/<variant>-{train,heldout}.json and summary.md.
# Runs land in $RUNS/te-<variant> (RUNS=runs).
#   BASE=runs/emoji-long scripts/text_encoder_comparison.sh   reuse a finished run's tokenizer/VAE/latents
#   BASE=models/genvis-emoji-32 scripts/...                   the shipped model's tokenizer and VAE (the same)
#   scripts/text_encoder_comparison.sh                        train them once (the joint run does)
#   scripts/text_encoder_comparison.sh --table                rewrite summary.md from existing results
# About 2 hours on 2 CPU cores (13,600 diffusion steps, one contrastive pretraining, 8 evaluations).
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
G=("$GENVIS"); [[ -n "${THREADS:-}" ]] && G+=(--threads "$THREADS")
RUNS=${RUNS:-runs}
OUT=eval/results/text-encoder
VARIANTS=(joint-3k contrastive-3k frozen-3k joint-4600)
mkdir -p "$OUT"

table() {
  echo "| variant | diffusion steps | validation loss | R-precision train (N=500) | mean rank | R-precision held-out (N=118) | mean rank |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for v in "${VARIANTS[@]}"; do
    [[ -f "$OUT/$v-heldout.json" ]] || continue
    if [[ ! -f "$RUNS/te-$v/diffusion/validation.jsonl" ]]; then  # run deleted: keep its recorded row
      grep -F "| $v |" "$OUT/summary.md" || true
      continue
    fi
    last=$(tail -n 1 "$RUNS/te-$v/diffusion/validation.jsonl")
    steps=$(jq -r .step <<< "$last")
    val=$(jq -r '.loss * 10000 | round / 10000' <<< "$last")
    tr=$(jq -r '"\(.value * 1000 | round / 1000) | \(.mean_rank * 10 | round / 10)"' "$OUT/$v-train.json")
    ho=$(jq -r '"\(.value * 1000 | round / 1000) | \(.mean_rank * 10 | round / 10)"' "$OUT/$v-heldout.json")
    echo "| $v | $steps | $val | $tr | $ho |"
  done
}

if [[ "${1:-}" != --table ]]; then
  # The shared stages: copied from BASE, or from the first run that trained them.
  # FROM is a run folder (model/ and its latent cache) or a model folder (tokenizer/, vae/: the
  # recipe then only recomputes the latent cache with that VAE).
  seed_run() {  # seed_run FROM TO
    local from=$1 to=$2 model=$1/model
    [[ -f "$to/latents.safetensors" || -d "$to/model/vae" ]] && return 0
    [[ -f "$from/model_index.json" ]] && model=$from
    mkdir -p "$to/model"
    cp -r "$model/tokenizer" "$model/vae" "$to/model/"
    if [[ -f "$from/latents.safetensors" ]]; then cp "$from/latents.json" "$from/latents.safetensors" "$to/"; fi
  }
  [[ -n "${BASE:-}" ]] && seed_run "$BASE" "$RUNS/te-joint-3k"

  for v in "${VARIANTS[@]}"; do
    run="$RUNS/te-$v"
    [[ "$v" != joint-3k ]] && seed_run "$RUNS/te-joint-3k" "$run"
    # The frozen variant starts from the same pretrained tower as the fine-tuned one.
    if [[ "$v" == frozen-3k && -f "$RUNS/te-contrastive-3k/text_pretrain/eval.json" && ! -d "$run/text_pretrain" ]]; then
      cp -r "$RUNS/te-contrastive-3k/text_pretrain" "$run/"
    fi
    "${G[@]}" train ldm --config "configs/experiments/te-$v.json" --out "$run" --resume
    for split in train heldout; do
      num=500; [[ $split == heldout ]] && num=0
      [[ -f "$OUT/$v-$split.json" ]] && continue
      "${G[@]}" -q eval r-precision --encoder models/genvis-contrastive-emoji --model "$run/model" \
        --split "$split" --num "$num" --seed 0 -o "$OUT/$v-$split.json" > /dev/null
    done
  done
fi
table > "$OUT/summary.md.new"
mv "$OUT/summary.md.new" "$OUT/summary.md"
cat "$OUT/summary.md"
