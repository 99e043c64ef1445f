#!/usr/bin/env bash
# The paradigm table of docs/results.md (issues 18 and 19): every text-to-image family genvis trains,
# on the same data (`emoji`), scored by the same `genvis eval` settings on held-in and held-out
# captions: FID/KID/precision/recall and R-precision in the shipped contrastive encoder's space,
# R-precision in the shipped DAMSM's space (the AttnGAN papers' protocol), and the training compute
# each model's training.json records.
#   scripts/paradigm.sh [NAME=MODEL_DIR ...]      (default: the shipped models below)
# A row whose model folder is missing is skipped with a message. Results: eval/results/paradigm/
# <name>-<split>/result.json and eval/results/paradigm/table.md. About 10 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
OUT=eval/results/paradigm
DAMSM=${DAMSM:-models/genvis-damsm-emoji}
ENCODER=models/genvis-contrastive-emoji

rows=("$@")
if [[ ${#rows[@]} -eq 0 ]]; then
  rows=(
    "latent-diffusion-32=models/genvis-emoji-32"
    "latent-diffusion-64=models/genvis-emoji-64"
    "df-gan=models/genvis-dfgan-emoji"
    "attngan=models/genvis-attngan-emoji"
    "dalle=models/genvis-dalle-emoji"
  )
fi
[[ -d $DAMSM ]] || { echo "error: $DAMSM missing (the DAMSM judge; set DAMSM=DIR)" >&2; exit 1; }

judges=(--encoder "$ENCODER" --damsm "$DAMSM" --k 100 --reference-num 2000 --seed 0)
# Every family samples with its own defaults except these, fixed for the table: 20 Euler steps with
# CFG 7 for diffusion (the built-in model's eval settings), 16 candidates reranked for DALL-E.
gen_args() {
  case $1 in
    dalle*) echo "--cfg-scale 1 --extras {\"rerank\":16}" ;;
    *) echo "--steps 20 --cfg-scale 7 --sampler euler" ;;
  esac
}

files=()
score() {  # name split num model resolution [args...]
  local name=$1 split=$2 num=$3 model=$4 res=$5; shift 5
  "$GENVIS" -q eval --out "$OUT/$name-$split" --name "$name" --dataset emoji --split "$split" \
    --reference-split train --num "$num" --resolution "$res" "${judges[@]}" "$@" >/dev/null
  files+=("$OUT/$name-$split/result.json")
  echo "$name ($split): done"
}

for res in 32 64; do
  score "real-${res}px" train 200 "" "$res" --images-from-dataset
  score "real-${res}px" heldout 100 "" "$res" --images-from-dataset
done
for row in "${rows[@]}"; do
  name=${row%%=*}
  model=${row#*=}
  if [[ ! -f $model/model_index.json ]]; then
    echo "$name: $model not found, skipped" >&2
    continue
  fi
  read -r -a g <<<"$(gen_args "$name")"
  # The reference images are rendered at the model's own size (32 or 64 px).
  res=64
  [[ $name == *-32 ]] && res=32
  score "$name" train 200 "$model" "$res" --model "$model" "${g[@]}"
  score "$name" heldout 100 "$model" "$res" --model "$model" "${g[@]}"
done

"$GENVIS" -q eval table "${files[@]}" -o "$OUT/table.md" --columns "name,split,params,steps,wall_time,\
r_precision[genvis-contrastive-emoji],r_precision[genvis-damsm-emoji],FID[genvis-contrastive-emoji],\
KID[genvis-contrastive-emoji],precision[genvis-contrastive-emoji],recall[genvis-contrastive-emoji],\
clip_score[genvis-contrastive-emoji]"
cat "$OUT/table.md"
