#!/usr/bin/env bash
# Real-client tests of `genvis serve`: the official OpenAI Node client (node/openai_client.test.mjs)
# and the web UI in Chromium through playwright-core (node/browser.test.mjs).
#
#   tests/server/run_node_tests.sh GENVIS_BINARY [SCREENSHOT_DIR]
#
# Trains a toy video model with `GENVIS_BINARY train video` (a few seconds), starts
# GENVIS_BINARY serve on a free port of 127.0.0.1 with an API key, the built-in image model as the
# start model and --models-dir holding the toy video model as `toy-video`, runs both test files
# against it, stops it with SIGTERM (it must exit cleanly) and exits with the tests' status.
# Exit 77 (skipped) when node >= 18, npm or Chromium are missing. Installs node/node_modules with
# `npm ci` when it is missing or older than node/package-lock.json (needs the npm registry once).
# CHROMIUM overrides the browser (default: chromium on PATH, or /usr/bin/chromium).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 GENVIS_BINARY [SCREENSHOT_DIR]" >&2
  exit 2
fi
genvis=$1
screenshot_dir=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
node_dir=$here/node
api_key=test-key

skip() { echo "SKIP: $*"; exit 77; }
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
(( node_major >= 18 )) || skip "node $(node --version) is older than 18"
if [[ -z ${CHROMIUM:-} ]]; then
  CHROMIUM=$(command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)
fi
[[ -x $CHROMIUM ]] || skip "chromium is not installed (set CHROMIUM to a Chromium binary)"
export CHROMIUM

[[ -x $genvis ]] || { echo "error: $genvis is not an executable" >&2; exit 2; }
genvis=$(cd "$(dirname "$genvis")" && pwd)/$(basename "$genvis")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/genvis-node-tests.XXXXXX")
server_pid=
status=1

# Stops the server: SIGTERM, then SIGKILL after 60 s.
# Sets server_rc to the server's exit status, or "hung" when it had to be killed.
server_rc=
stop_server() {
  local pid=$server_pid
  server_pid=
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    server_rc=hung
    return 0
  fi
  server_rc=0
  wait "$pid" 2>/dev/null || server_rc=$?
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- dependencies (openai, playwright-core), pinned by package-lock.json
if [[ ! -f $node_dir/node_modules/.package-lock.json || $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
  if ! (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1; then
    echo "error: npm ci failed in $node_dir:" >&2
    cat "$tmp/npm.log" >&2
    exit 1
  fi
fi

# ---- a toy video model (16x16, 5 frames natively, 2 training steps per stage) for the web UI's
# video tests, listed by the server's --models-dir as `toy-video`
cat >"$tmp/toy-video.json" <<'EOF'
{"seed": 5, "dataset": {"name": "shapes-video", "resolution": 16, "size": 16}, "buckets": [{"frames": 5, "height": 16, "width": 16}], "tokenizer": {"vocab_size": 600}, "vae": {"config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [true]}, "batch_size": 4, "train": {"steps": 2, "lr": 1e-3, "warmup_steps": 1}}, "transformer": {"config": {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 8, "ffn_dim": 32, "freq_dim": 16, "num_layers": 1}}, "text_encoder": {"config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}}, "dit": {"batch_size": 4, "train": {"steps": 2, "lr": 1e-3, "warmup_steps": 1}}}
EOF
if ! nice -n 10 "$genvis" -q train video --config "$tmp/toy-video.json" --out "$tmp/toy-run" >"$tmp/train.log" 2>&1 \
    || [[ ! -f $tmp/toy-run/model/model_index.json ]]; then
  echo "error: training the toy video model failed:" >&2
  cat "$tmp/train.log" >&2
  exit 1
fi
mkdir -p "$tmp/models"
ln -s "$tmp/toy-run/model" "$tmp/models/toy-video"

# ---- server
mkdir -p "$tmp/out"
"$genvis" serve --host 127.0.0.1 --port 0 --api-key "$api_key" --output-dir "$tmp/out" --models-dir "$tmp/models" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

port=
for _ in $(seq 600); do
  port=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$tmp/server.log" | head -n1 | sed 's/.*:\([0-9]*\)\/$/\1/' || true)
  [[ -n $port ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: genvis serve exited before listening:" >&2
    cat "$tmp/server.log" >&2
    server_pid=
    exit 1
  fi
  sleep 0.1
done
if [[ -z $port ]]; then
  echo "error: genvis serve printed no http://127.0.0.1:PORT/ line within 60 s:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi
echo "genvis serve listening on http://127.0.0.1:$port/ (log: $tmp/server.log)"

# ---- tests, one file at a time (the server runs one job at a time anyway)
status=0
for file in openai_client.test.mjs browser.test.mjs; do
  (cd "$node_dir" && SERVER="http://127.0.0.1:$port" API_KEY="$api_key" SCREENSHOT_DIR="$screenshot_dir" \
    nice -n 10 node --test "$file") || status=1
done

# ---- clean shutdown on SIGTERM
stop_server
if [[ $server_rc != 0 ]]; then
  echo "FAIL: genvis serve did not exit cleanly on SIGTERM (exit status: $server_rc)" >&2
  status=1
fi
if [[ $status != 0 ]]; then
  echo "---- server log (last 40 lines)" >&2
  tail -n 40 "$tmp/server.log" >&2
fi
exit "$status"
