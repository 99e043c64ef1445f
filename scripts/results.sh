#!/usr/bin/env bash
# Regenerates docs/results.md: every shipped model and the real-data reference rows, scored by
# `genvis eval` with the shipped judges. Results land in eval/results/<row>/; about 10 minutes
# on 2 CPU cores. Pass --inception FILE (pytorch-fid's weights) to add standard FID columns.
set -euo pipefail
cd "$(dirname "$0")/.."
GENVIS=${GENVIS:-build/genvis}
OUT=eval/results
extra=("$@")
run() { local name=$1; shift; "$GENVIS" -q eval --out "$OUT/$name" --name "$name" "$@" "${extra[@]}" >/dev/null; }

# emoji: the built-in model on held-in and held-out captions, and the real images (ceiling).
run emoji-real-train --images-from-dataset --dataset emoji --split train --resolution 32 --num 200
run emoji-real-heldout --images-from-dataset --dataset emoji --split heldout --reference-split train --resolution 32 --num 100
run genvis-emoji-32-train --model default --dataset emoji --split train --num 200
run genvis-emoji-32-heldout --model default --dataset emoji --split heldout --reference-split train --num 100
# fashion-mnist: the t10k test images against the train images (the real-data row).
run fashion-mnist-real-test --images-from-dataset --dataset fashion-mnist --split heldout --reference-split train \
  --num 2000 --reference-num 2000

# The hand-measured sections (everything from the shapes section on: runs that take hours, each
# with its own date and machine) are kept as they are; only the generated tables above them change.
manual=$(mktemp)
trap 'rm -f "$manual" docs/results.md.tmp' EXIT
sed -n '/^## shapes: why `ldm-shapes-tiny` learned nothing/,$p' docs/results.md > "$manual"
if [ ! -s "$manual" ]; then
  echo "scripts/results.sh: docs/results.md has no '## shapes: why ...' section to keep; not rewriting it" >&2
  exit 1
fi
{
  echo "# Results"
  echo
  echo "Made by \`scripts/results.sh\` on $(date -u +%Y-%m-%d) with $("$GENVIS" --version 2>/dev/null | head -1)."
  echo "Metrics in brackets are computed in a genvis-trained judge's space (named in the brackets) and"
  echo "are comparable only with other numbers in the same column; plain FID/KID columns (InceptionV3,"
  echo "pytorch-fid weights) appear only when the script is given \`--inception FILE\`. \`real\` rows"
  echo "score the dataset's own images: the best a generator can reach with these judges."
  echo
  echo "## emoji (judge: genvis-contrastive-emoji)"
  echo
  "$GENVIS" -q eval table "$OUT"/emoji-real-train/result.json "$OUT"/emoji-real-heldout/result.json \
    "$OUT"/genvis-emoji-32-train/result.json "$OUT"/genvis-emoji-32-heldout/result.json \
    --columns "name,params,steps,wall_time,split,num,r_precision[genvis-contrastive-emoji],clip_score[genvis-contrastive-emoji],FID[genvis-contrastive-emoji],KID[genvis-contrastive-emoji],precision[genvis-contrastive-emoji],recall[genvis-contrastive-emoji],FID,KID"
  echo
  echo "## fashion-mnist (judge: genvis-fmnist-classifier)"
  echo
  "$GENVIS" -q eval table "$OUT"/fashion-mnist-real-test/result.json
  echo
  echo "Per-row details (judges, reference sizes, generation settings): \`$OUT/<row>/result.json\`."
  echo
  cat "$manual"
} > docs/results.md.tmp
mv docs/results.md.tmp docs/results.md
echo "wrote docs/results.md"
scripts/personalize.sh --table  # the personalisation section from eval/results/personalization
