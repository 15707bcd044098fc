#!/usr/bin/env bash
# Prepares, on this machine (MLIR, no GPU), what bench/python_backward_check.py
# needs on the GPU machine: `attn-aot --backward` directories of causal, gqa
# and relative_bias in bf16 for sm_90a and sm_80 (an sm_80 cubin falls back
# to its PTX on Hopper) under devcarry/grad_aot/<target>/<spec>, and the
# launch library in devcarry/tools/lib (bench/build_device_tools.sh).
# Then on the GPU machine (carry devcarry):
#   ATTNC_LIB_DIR=devcarry/tools/lib PYTHONPATH=python \
#     python3 bench/python_backward_check.py devcarry/grad_aot/*/*
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/devcarry/grad_aot"
ninja -C "$root/build" attn-aot attnc_runtime > /dev/null
rm -rf "$out"
mkdir -p "$root/devcarry/tools/lib"
cp "$root/build/lib/libattnc_runtime.so" "$root/devcarry/tools/lib/"
for t in sm_90a sm_80; do
  for f in causal gqa relative_bias; do
    mkdir -p "$out/$t/$f"
    sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/$f.mlir" > "$out/$t/$f/$f.spec.mlir"
    "$root/build/bin/attn-aot" "$out/$t/$f/$f.spec.mlir" --backward \
      --target="$t" -o "$out/$t/$f" > /dev/null
  done
done
du -sh "$out"
