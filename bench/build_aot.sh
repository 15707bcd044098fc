#!/usr/bin/env bash
# Builds the benchmark kernels here (MLIR is on this machine only) into
# devcarry/aot/<variant>/, which is carried to the GPU machine.
#   bench/build_aot.sh [sm_90a|sm_80] [variants...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-sm_90a}"
shift || true
out="$root/devcarry"
mkdir -p "$out/specs" "$out/aot"
/usr/bin/python3 "$root/bench/specs.py" "$out/specs"
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
  for f in "$out"/specs/*.mlir; do variants+=("$(basename "$f" .mlir)"); done
fi
for v in "${variants[@]}"; do
  "$root/build/bin/attn-aot" "$out/specs/$v.mlir" --target="$target" \
    ${BQ:+--block-q $BQ} ${BKV:+--block-kv $BKV} -o "$out/${AOT_DIR:-aot}/$v" | grep -E -- "->|registers|spill" || exit 1
done
