#!/usr/bin/env bash
# installed_tree.sh BUILD_DIR EXAMPLES_DIR WORKDIR: installs genvis from BUILD_DIR into a fresh
# prefix, builds the API examples against it with find_package(genvis) alone (no source tree, no
# libtorch headers), and runs both with the installed built-in model.
set -euo pipefail
build=$1 examples=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/genvis include/genvis/genvis.hpp include/genvis/genvis.h include/genvis/version.h \
         share/genvis/models/genvis-emoji-32/model_index.json; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $prefix/$f was not installed"; exit 1; }
done
ls "$prefix"/lib*/libgenvis.so* > /dev/null || { echo "FAIL: no libgenvis.so installed"; exit 1; }
cmake -S "$examples" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
# The examples must not have needed libtorch's headers: the public headers include none.
if grep -rqE '#include *[<"](torch|ATen|c10)/' "$prefix/include/genvis"; then echo "FAIL: public headers include libtorch"; exit 1; fi
cd "$work"
for example in genvis_example_cpp genvis_example_c; do
  env -u GENVIS_DEFAULT_MODEL GENVIS_LOG=warn "$work/build/$example" "$work/$example.png" "a smiling cat face" > "$work/$example.log" 2>&1 \
    || { cat "$work/$example.log"; echo "FAIL: $example"; exit 1; }
  [ -s "$work/$example.png" ] || { echo "FAIL: $example wrote nothing"; exit 1; }
  "$prefix/bin/genvis" info "$work/$example.png" | grep -q "a smiling cat face" || { echo "FAIL: $example's PNG has no parameters"; exit 1; }
  echo "PASS: $example against $prefix"
done
