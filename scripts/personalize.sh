#!/usr/bin/env bash
# Personalisation on the held-out subject (examples/red-star: a large red star drawn by the shapes
# generator, never in the default model's emoji training data): DreamBooth with and without prior
# preservation, DreamBooth + LoRA with and without it, and Textual Inversion, each trained on the
# built-in model and scored by `genvis eval personalization`. Runs land in runs/personalize/,
# results in eval/results/personalization/<row>/ and the "Personalisation" section of
# docs/results.md. About 15 minutes on 2 CPU cores.
#   scripts/personalize.sh              train, evaluate, rewrite the section
#   scripts/personalize.sh --table      rewrite the section from existing results only
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
G=("$GENVIS"); [[ -n "${THREADS:-}" ]] && G+=(--threads "$THREADS")  # THREADS=1: leave a core free
RUNS=runs/personalize
OUT=eval/results/personalization
ROWS=(base dreambooth dreambooth-no-prior dreambooth-lora dreambooth-lora-no-prior textual-inversion)

section() {
  echo "## Personalisation (held-out subject: examples/red-star)"
  echo
  echo "Made by \`scripts/personalize.sh\`: 4 instance images of a large red star (shapes generator, not in the"
  echo "default model's training data), instance prompt \"a sks star\", class prompt \"a star\" (32 class images"
  echo "from the frozen model), judged by genvis-contrastive-emoji with \"sks\" read as \"red\". Subject and"
  echo "prompt fidelity: higher is better; class drift: change of \"a star\" images (same seeds) from the base"
  echo "model, lower is better; diversity of \"a star\" images before/after. Recipes: see the script."
  echo "\`base\` is the built-in model itself (no tuning: \"sks\" means nothing to it), the floor for the"
  echo "fidelity columns."
  echo
  echo "Reading: prior preservation cuts class drift about threefold (full DreamBooth 0.61 -> 0.23,"
  echo "DreamBooth + LoRA 0.55 -> 0.14): without it \"a star\" collapses onto the red star on gray (the"
  echo "sample sheets' last row), the language drift the DreamBooth paper describes; with it, \"a star\""
  echo "still draws the base model's stars. Both DreamBooth variants put the red star into new"
  echo "backgrounds (yellow works, blue rarely: the 32-px model's weak point). Textual Inversion cannot"
  echo "change the model (drift 0 by construction) and, with two vectors in this small text encoder,"
  echo "learns the gray framing and some red but not the star shape (prompt fidelity near zero); it is"
  echo "the weakest of the three here, as in the literature. Prompt fidelity stays near the base"
  echo "model's (which draws the backgrounds but no red star): the subject costs little text alignment."
  echo "Numbers are from one training seed per row, measured on the built-in model v1 (7,000 diffusion"
  echo "steps; the current v2 was trained further after this run: rerun the script to update)."
  echo
  local files=()
  for r in "${ROWS[@]}"; do [[ -f "$OUT/$r/result.json" ]] && files+=("$OUT/$r/result.json"); done
  if ((${#files[@]})); then
    "${G[@]}" -q eval table "${files[@]}" \
      --columns "name,subject_fidelity,prompt_fidelity,class_drift,class_diversity_before,class_diversity_after"
  else
    echo "(no results yet)"
  fi
  echo
  echo "Samples (rows: training images, \"a sks star\", new contexts, \"a star\" before and after):"
  for r in "${ROWS[@]}"; do [[ -f "$OUT/$r/samples.png" ]] && echo "- $r: ![$r](../$OUT/$r/samples.png)"; done
  return 0
}
# Replaces the Personalisation section in place (up to the next "## " heading), or appends it;
# the sections after it are kept.
rewrite_section() {
  local tmp; tmp=$(mktemp)
  awk '/^## Personalisation/ { exit } { print }' docs/results.md > "$tmp"
  section >> "$tmp"
  echo >> "$tmp"
  awk '/^## Personalisation/ { inside = 1; next } inside && /^## / { inside = 0; after = 1 } after' docs/results.md >> "$tmp"
  mv "$tmp" docs/results.md
  echo "wrote docs/results.md"
}
if [[ "${1:-}" == "--table" ]]; then rewrite_section; exit 0; fi

common=(--instance-dir examples/red-star --instance-prompt "a sks star" --validation-prompt "a sks star"
        --validation-prompt "a sks star on a blue background" --validation-prompt "a star")
prior=(--class-prompt "a star" --num-class-images 32 --class-dir "$RUNS/class_images")
train() { local row=$1; shift; [[ -e "$RUNS/$row/done" ]] && return 0; rm -rf "${RUNS:?}/$row"
  "${G[@]}" -q train "$@" "${common[@]}" --out "$RUNS/$row" >/dev/null && touch "$RUNS/$row/done"; }
train dreambooth dreambooth "${prior[@]}" --steps 300 --lr 2e-4
train dreambooth-no-prior dreambooth "${prior[@]}" --prior-loss-weight 0 --steps 300 --lr 2e-4
train dreambooth-lora dreambooth --lora --rank 8 "${prior[@]}" --steps 400 --lr 3e-3 --output-name sks-star
train dreambooth-lora-no-prior dreambooth --lora --rank 8 "${prior[@]}" --prior-loss-weight 0 --steps 400 --lr 3e-3 \
  --output-name sks-star
train textual-inversion textual-inversion --placeholder sks --initializer star --num-vectors 2 --steps 400 --lr 5e-2

judge=(--instance-dir examples/red-star --subject-prompt "a sks star" --class-prompt "a star" --placeholder sks
       --judge-words red --context-prompt "a sks star on a blue background" --context-prompt "a sks star on a yellow background"
       --context-prompt "a small sks star" --num 16)
score() { local row=$1; shift; "${G[@]}" -q eval personalization "${judge[@]}" --name "$row" --out "$OUT/$row" "$@" >/dev/null; }
score base --tuned-model models/genvis-emoji-32
score dreambooth --tuned-model "$RUNS/dreambooth/model"
score dreambooth-no-prior --tuned-model "$RUNS/dreambooth-no-prior/model"
score dreambooth-lora --lora "$RUNS/dreambooth-lora/sks-star.safetensors"
score dreambooth-lora-no-prior --lora "$RUNS/dreambooth-lora-no-prior/sks-star.safetensors"
mkdir -p "$RUNS/embeddings" && cp "$RUNS/textual-inversion/sks.safetensors" "$RUNS/embeddings/"
score textual-inversion --embeddings-dir "$RUNS/embeddings"

rewrite_section
