#!/usr/bin/env bash
# Builds the decode benchmark's kernels (bench/decode/*.mlir) here with
# attn-aot into devcarry/decode/aot/<spec>/, which travels to the GPU
# machine for bench/decode_bench.py (attnc.load: the launch library only).
#   bench/build_decode.sh [sm_90a|sm_80]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-sm_90a}"
out="$root/devcarry/decode/aot"
mkdir -p "$out"
for f in "$root"/bench/decode/*.mlir; do
  v="$(basename "$f" .mlir)"
  "$root/build/bin/attn-aot" "$f" --target="$target" -o "$out/$v" \
    | grep -E -- "->|registers|spill" || exit 1
done
