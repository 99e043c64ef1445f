#!/usr/bin/env bash
# Ships a finished `genvis train dfgan|attngan` run as a model folder: the generator stored as f16
# (cast to the compute dtype on load), the DAMSM text encoder it conditions on, the run's loss curve
# and last sample grid; and, when models/genvis-damsm-emoji is not there yet, the run's whole DAMSM
# (text and image encoders: the second R-precision judge of the paradigm table).
#   scripts/ship_gan.sh RUN_DIR MODEL_DIR
# e.g. scripts/ship_gan.sh runs/dfgan-emoji models/genvis-dfgan-emoji. SRC=RUN_DIR/model-no-ema ships
# the generator without its EMA instead (better after short runs: docs/results.md). The metrics of the model
# card come from scripts/paradigm.sh; MODEL_DIR/training.json (data, steps, wall time, hardware)
# is written by hand from the run's log and kept if present.
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
RUN=${1:?usage: scripts/ship_gan.sh RUN_DIR MODEL_DIR}
MODEL=${2:?usage: scripts/ship_gan.sh RUN_DIR MODEL_DIR}
SRC=${SRC:-$RUN/model}
DAMSM_MODEL=${DAMSM_MODEL:-models/genvis-damsm-emoji}
[[ -f $SRC/model_index.json ]] || { echo "error: $SRC/model_index.json missing: the run has not exported its model" >&2; exit 1; }

mkdir -p "$MODEL/generator" "$MODEL/text_encoder"
for f in "$SRC"/generator/*.safetensors; do
  "$GENVIS" -q convert "$f" "$MODEL/generator/$(basename "$f")" --dtype f16 -f
done
cp "$SRC"/generator/*.json "$MODEL/generator/"
cp -r "$SRC"/text_encoder/. "$MODEL/text_encoder/"
cp "$SRC/model_index.json" "$MODEL/"
for f in "$RUN"/train/loss-*.png; do [[ -f $f ]] && cp "$f" "$MODEL/"; done
[[ -f $RUN/train/validation.jsonl ]] && cp "$RUN/train/validation.jsonl" "$MODEL/validation.jsonl"
last=$(ls "$RUN"/samples/step-*.png 2>/dev/null | tail -1 || true)
[[ -n $last ]] && cp "$last" "$MODEL/samples-$(basename "$last")"

if [[ ! -d $DAMSM_MODEL && -d $RUN/damsm/model ]]; then
  mkdir -p "$DAMSM_MODEL"
  cp -r "$RUN"/damsm/model/. "$DAMSM_MODEL/"
  [[ -f $RUN/damsm/train/loss.png ]] && cp "$RUN/damsm/train/loss.png" "$DAMSM_MODEL/loss.png"
  echo "DAMSM: $DAMSM_MODEL"
fi
du -sh "$MODEL"
# The shipped folder loads and generates (the sample sheets of the model card come from
# scripts/paradigm.sh's evaluation: eval/results/paradigm/<name>-train/samples.png).
check=$(mktemp -d)
"$GENVIS" -q generate --model "$MODEL" -p "grinning face" -o "$check/check.png"
rm -rf "$check"
echo "shipped: $MODEL"
