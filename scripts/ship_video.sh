#!/usr/bin/env bash
# Ships a finished `genvis train video` run as the built-in video model and measures it: the
# transformer and text encoder stored as f16 (cast to the compute dtype on load), the VAE,
# tokenizer and scheduler as trained, then `genvis eval` on held-in and held-out captions, at the
# trained durations and sizes and between and beyond them, and the README's frame strip.
#   scripts/ship_video.sh RUN_DIR [MODEL_DIR]     (default models/genvis-shapes-video)
#   EVAL_ONLY=1 scripts/ship_video.sh RUN_DIR     re-measure the shipped folder, copy nothing
# Results: MODEL_DIR/eval-<row>.json (each a `genvis eval` result.json) and eval.md (one table).
# About 15 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
RUN=${1:?usage: scripts/ship_video.sh RUN_DIR [MODEL_DIR]}
MODEL=${2:-models/genvis-shapes-video}
SRC=$RUN/model
[[ -f $SRC/model_index.json ]] || { echo "error: $SRC/model_index.json missing: the run has not exported its model" >&2; exit 1; }

if [[ -z ${EVAL_ONLY:-} ]]; then
  mkdir -p "$MODEL"/{transformer,text_encoder,tokenizer,vae,scheduler}
  "$GENVIS" -q convert "$SRC/transformer/diffusion_pytorch_model.safetensors" \
    "$MODEL/transformer/diffusion_pytorch_model.safetensors" --dtype f16 -f
  "$GENVIS" -q convert "$SRC/text_encoder/model.safetensors" "$MODEL/text_encoder/model.safetensors" --dtype f16 -f
  cp "$SRC/transformer/config.json" "$MODEL/transformer/"
  cp "$SRC/text_encoder/config.json" "$MODEL/text_encoder/"
  cp "$SRC"/tokenizer/* "$MODEL/tokenizer/"
  cp "$SRC"/vae/* "$MODEL/vae/"
  cp "$SRC"/scheduler/* "$MODEL/scheduler/"
  cp "$SRC/model_index.json" "$MODEL/"
  [[ -f $RUN/dit/loss.png ]] && cp "$RUN/dit/loss.png" "$MODEL/loss-transformer.png"
  last=$(ls "$RUN"/dit/samples/step-*.png 2>/dev/null | tail -1 || true)
  [[ -n $last ]] && cp "$last" "$MODEL/samples-$(basename "$last")"
fi

# row: name split frames width height
ROWS=(
  "held-in train 9 32 32"
  "held-out heldout 9 32 32"
  "held-in-5-frames train 5 32 32"
  "held-in-7-frames train 7 32 32"
  "held-in-13-frames train 13 32 32"
  "held-in-17-frames train 17 32 32"
  "held-in-48x32 train 9 48 32"
  "held-in-32x48 train 9 32 48"
  "held-in-48x48 train 9 48 48"
)
files=()
for row in "${ROWS[@]}"; do
  read -r name split frames width height <<<"$row"
  out=$(mktemp -d)
  "$GENVIS" -q eval --model "$MODEL" --dataset shapes-video --split "$split" --num 100 --reference-num 1000 \
    --steps 20 --cfg-scale 5 --sampler unipc --frames "$frames" --width "$width" --height "$height" \
    --name "$name" --out "$out"
  cp "$out/result.json" "$MODEL/eval-$name.json"
  [[ $name == held-in ]] && cp "$out/samples.png" "$MODEL/eval-samples.png"
  rm -rf "$out"
  files+=("$MODEL/eval-$name.json")
  echo "$name: done"
done
"$GENVIS" -q eval table "${files[@]}" --columns "name,split,frames,shapes_video_motion_accuracy,\
shapes_video_colour_shape_accuracy,FVD[genvis-shapes-video-encoder],motion_accuracy[genvis-shapes-video-encoder],\
frame_change_ratio_to_real" >"$MODEL/eval.md"
cat "$MODEL/eval.md"

# The README's frame strips: four held-in captions and a held-out one (circle x move left is never
# trained on), 9 frames each, one PNG strip per clip.
for p in "a red star moving to the left" "a blue circle growing" "a green square rotating counterclockwise" \
  "a triangle turning from yellow to purple" "a purple circle moving to the left"; do
  slug=$(echo "$p" | tr ' ' '-' | tr -cd 'a-z-')
  "$GENVIS" -q generate --model "$MODEL" -p "$p" --frames 9 --steps 20 --cfg-scale 5 --seed 1 -o "docs/video-$slug.png"
done
