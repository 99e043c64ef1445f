#!/usr/bin/env bash
# run_example.sh EXAMPLE GENVIS WORKDIR: runs an API example with the built-in model and checks
# that it wrote a PNG of the model's native size whose parameters name the prompt and the seed,
# and that it reported the refused request.
set -euo pipefail
example=$1 genvis=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
out="$work/example.png"
log="$work/log.txt"
GENVIS_LOG=warn "$example" "$out" "a smiling cat face" > "$log" 2>&1 || { cat "$log"; echo "FAIL: $example exited $?"; exit 1; }
cat "$log"
[ -s "$out" ] || { echo "FAIL: no $out"; exit 1; }
info=$("$genvis" info --json "$out")
for want in '"width": 32' '"height": 32' 'a smiling cat face' 'Seed: 42' 'Steps: 20'; do
  grep -q -- "$want" <<<"$info" || { echo "FAIL: '$want' not in the PNG's info:"; echo "$info"; exit 1; }
done
grep -q "refused as expected" "$log" || { echo "FAIL: the bad request was not refused"; exit 1; }
echo "PASS: $out"
