#!/usr/bin/env bash
# Runs the layering check on a tree that holds planted violations and fails unless the check
# rejects it for exactly those violations:
#
#   expect_violations.sh CHECK_SCRIPT ROOT FILE:LINE...
#
# Passes when CHECK_SCRIPT ROOT exits 1, prints a violation line "ROOT/FILE:LINE: ..." for every
# FILE:LINE given (FILE relative to ROOT), and prints no other violation line.
set -uo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 CHECK_SCRIPT ROOT FILE:LINE..." >&2
  exit 2
fi
check=$1
root=${2%/}
shift 2

output=$(bash "$check" "$root" 2>&1)
status=$?
echo "$output"
echo "--"

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

[[ $status -eq 1 ]] || fail "$check $root exited $status, expected 1 (violations found)"

for expected in "$@"; do
  grep -qF -- "$root/$expected: " <<<"$output" || fail "no violation reported at $root/$expected"
done

reported=$(grep -cE "^$(printf '%s' "$root/" | sed 's/[][\.*^$/]/\\&/g')[^:]+:[0-9]+: " <<<"$output")
[[ $reported -eq $# ]] || fail "$reported violation line(s) reported, expected $#"

if [[ $failures -gt 0 ]]; then
  exit 1
fi
echo "OK: the $# planted violation(s) were reported, and nothing else"
