#!/usr/bin/env bash
# Checks the layering of the source tree (docs/architecture.md): a file may include project headers
# only from its own layer or from the layers below it, transitively.
#
#   scripts/check_layers.sh [ROOT]     ROOT defaults to the repository root
#   scripts/check_layers.sh --table    prints what each layer may include, then exits
#
# Scans ROOT/src/<layer>/**, ROOT/include/genvis/** and ROOT/apps/** (.h .hpp .hh .inl .cpp .cc .c
# .h.in). A quoted include "a/b.h" names layer a when a is in the table below; any other first
# component is not checked (a same-folder "commands.h"), nor are <...> system includes, except that
# the public headers may not include libtorch. Prints one line per violation,
#   FILE:LINE: <layer> may not include "<path>" (layer <other>)
# (FILE relative to the repository root, or ROOT/FILE when ROOT is given), then a summary line.
# Exit status: 0 no violation, 1 violations, 2 usage error or nothing to scan.

# The layer table: one line per layer, "name: the layers it builds on directly" (as its CMake DEPS
# in src/CMakeLists.txt). The layers below those are allowed transitively, and every layer may
# include itself. A layer's name is both its folder (src/<name>) and its include prefix
# ("<name>/..."); two are not under src/:
#   genvis  the public headers include/genvis (included as "genvis/..."); may include only
#           themselves and system headers, and never libtorch (GENVIS_FORBIDDEN_SYSTEM below)
#   apps    apps/* (apps/cli, ...): may include anything in src and include
# To add a layer, add its line here (and to the lines of the layers that may use it).
LAYERS=(
  "core:"
  "io:         core"
  "nn:         io"
  "tokenizers: core"
  "models:     nn tokenizers"
  "schedulers: core"
  "pipelines:  models schedulers"
  "data:       io"
  "eval:       pipelines data"
  "train:      eval"
  "api:        train genvis"
  "genvis:"
  "apps:       api genvis"
)
# Headers any layer may include (generated, dependency-free).
ALWAYS_ALLOWED=("genvis/version.h")
# First path components the public headers must not include, even as <...> (the API hides libtorch).
GENVIS_FORBIDDEN_SYSTEM=(torch ATen c10)
# File types scanned.
EXTENSIONS=(h hpp hh inl cpp cc c h.in)

set -uo pipefail
export LC_ALL=C

declare -A DEPS=() ALLOWED=()
for row in "${LAYERS[@]}"; do
  DEPS[${row%%:*}]=${row#*:}
done

# ALLOWED[layer] = " layer dep1 dep2 ... " (transitive closure of DEPS).
resolve() {
  local layer=$1 dep acc
  [[ -n ${ALLOWED[$layer]+x} ]] && return 0
  ALLOWED[$layer]=" $layer "  # marks it in progress (a cycle stops here)
  acc=" $layer "
  for dep in ${DEPS[$layer]}; do
    if [[ -z ${DEPS[$dep]+x} ]]; then
      echo "check_layers.sh: layer table: $layer builds on unknown layer $dep" >&2
      exit 2
    fi
    resolve "$dep"
    local d
    for d in ${ALLOWED[$dep]}; do
      [[ $acc == *" $d "* ]] || acc+="$d "
    done
  done
  ALLOWED[$layer]=$acc
}
for row in "${LAYERS[@]}"; do
  resolve "${row%%:*}"
done

if [[ ${1:-} == --table ]]; then
  for row in "${LAYERS[@]}"; do
    name=${row%%:*}
    allowed=${ALLOWED[$name]# }
    printf '%-11s may include %s\n' "$name" "${allowed% }"
  done
  exit 0
fi
if [[ ${1:-} == -h || ${1:-} == --help || $# -gt 1 ]]; then
  usage=$(sed -n "2,15p" "$0" | sed "s/^# \{0,1\}//")
  if [[ $# -gt 1 ]]; then echo "$usage" >&2; exit 2; fi
  echo "$usage"
  exit 0
fi

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Files are shown relative to the repository root, or prefixed with ROOT as given.
show_prefix=""
[[ $# -eq 1 ]] && show_prefix="${1%/}/"
if ! cd "$ROOT" 2>/dev/null; then
  echo "check_layers.sh: no such directory: $ROOT" >&2
  exit 2
fi

dirs=()
for d in src include/genvis apps; do
  [[ -d $d ]] && dirs+=("$d")
done
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "check_layers.sh: $ROOT has none of src/, include/genvis/, apps/" >&2
  exit 2
fi

find_args=()
grep_args=()
for ext in "${EXTENSIONS[@]}"; do
  [[ ${#find_args[@]} -gt 0 ]] && find_args+=(-o)
  find_args+=(-name "*.$ext")
  grep_args+=("--include=*.$ext")
done
files=$(find "${dirs[@]}" -type f \( "${find_args[@]}" \) | sort)
nfiles=$(grep -c . <<<"$files")
if [[ $nfiles -eq 0 ]]; then
  echo "check_layers.sh: no source files under $ROOT/{src,include/genvis,apps}" >&2
  exit 2
fi

# Sets $layer to the layer a scanned file belongs to ("" when it lies in no known layer).
file_layer() {
  local path=$1
  case $path in
    src/*/*) layer=${path#src/}; layer=${layer%%/*} ;;
    include/genvis/*) layer=genvis ;;
    apps/*) layer=apps ;;
    *) layer="" ;;
  esac
  if [[ -n $layer && -z ${DEPS[$layer]+x} ]]; then layer=""; fi
}

violations=0
declare -A bad_files=() unknown_reported=()
report() {  # file line message
  echo "$show_prefix$1:$2: $3"
  violations=$((violations + 1))
  bad_files[$1]=1
}

# Files outside any layer (src/foo.cpp, src/newlayer/...) are errors: the table must name them.
while IFS= read -r f; do
  file_layer "$f"
  if [[ -z $layer ]]; then
    case $f in
      src/*/*) top=${f#src/}; top=${top%%/*}
               why="src/$top is not a layer: add \"$top\" to the layer table in scripts/check_layers.sh" ;;
      *) why="not in any layer: move it into src/<layer>/" ;;
    esac
    report "$f" 1 "$why"
    unknown_reported[$f]=1
  fi
done <<<"$files"

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*(["<])([^">]+)[">]'
forbidden_system=" ${GENVIS_FORBIDDEN_SYSTEM[*]} "
always_allowed=" ${ALWAYS_ALLOWED[*]} "

# One grep over the whole tree: "file:line:text" for every #include line.
while IFS= read -r hit; do
  file=${hit%%:*}
  rest=${hit#*:}
  line=${rest%%:*}
  text=${rest#*:}
  [[ -n ${unknown_reported[$file]+x} ]] && continue
  [[ $text =~ $include_re ]] || continue
  delim=${BASH_REMATCH[1]}
  path=${BASH_REMATCH[2]}
  [[ $path == */* ]] || continue  # same-folder or system header without a prefix
  top=${path%%/*}
  file_layer "$file"
  if [[ $layer == genvis && $forbidden_system == *" $top "* ]]; then
    if [[ $delim == '<' ]]; then shown="<$path>"; else shown="\"$path\""; fi
    report "$file" "$line" "genvis may not include $shown (libtorch: the public API hides it)"
    continue
  fi
  [[ $delim == '"' ]] || continue  # <...> includes are system includes
  [[ -n ${DEPS[$top]+x} ]] || continue  # not a layer prefix
  [[ $always_allowed == *" $path "* ]] && continue
  [[ ${ALLOWED[$layer]} == *" $top "* ]] && continue
  report "$file" "$line" "$layer may not include \"$path\" (layer $top)"
done < <(grep -rnE "${grep_args[@]}" '^[[:space:]]*#[[:space:]]*include' "${dirs[@]}" | sort -t: -k1,1 -k2,2n)

if [[ $violations -eq 0 ]]; then
  echo "layers: $nfiles files checked, no upward include"
  exit 0
fi
echo "layers: $nfiles files checked, $violations violation(s) in ${#bad_files[@]} file(s)"
exit 1
