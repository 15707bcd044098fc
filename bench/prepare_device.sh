#!/usr/bin/env bash
# Prepares, on this machine (MLIR, no GPU), everything the GPU machine (no
# MLIR) needs for one call that checks the runtime products there:
#   devcarry/aot/<variant>   attn-aot kernels of bench/specs.py (sm_90a)
#   devcarry/jit/<target>    attn-aot directories written by attnc.compile's
#                            disk cache for sm_80 and sm_90a (the sm_80 cubin
#                            must fall back to PTX on Hopper)
#   devcarry/attnc-gpu-launch-check  the C++ JIT's launch path, MLIR-free
#   devcarry/consumer        examples/consumer built against the installed
#                            package (sm_90a)
#   devcarry/fla-src/        flash-linear-attention's Python package (a
#                            baseline for issue 5; fetched, never committed)
#   devcarry/sm90/           step kernels of docs/notes/sm90a-plan.md
#                            (test/Integration/sm90/*.mlir), for
#                            bench/sm90_checks.py
# Then on the GPU machine (carry devcarry): bash bench/device_checks.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/devcarry"
ninja -C "$root/build" > /dev/null
# The C++ JIT's GPU launch without MLIR (bench/gpu_launch_check.cpp).
cp "$root/build/bin/attnc-gpu-launch-check" "$out/"
"$root/bench/build_aot.sh" sm_90a causal document_mask strict_causal_lse > /dev/null
rm -rf "$out/jit" "$out/jit-cache" "$out/prefix" "$out/consumer-build"
for t in sm_80 sm_90a; do
  dir=$(ATTNC_LIB_DIR="$root/build/lib" ATTNC_CACHE_DIR="$out/jit-cache" \
        PYTHONPATH="$root/python" /usr/bin/python3 -c "
import attnc, sys
spec = open('$root/examples/lse_strict_causal.mlir').read().replace('x64xf32>', 'x64xbf16>')
k = attnc.compile(spec, target='$t')
print(k.directory)")
  mkdir -p "$out/jit"
  cp -r "$dir" "$out/jit/$t"
done
rm -rf "$out/jit-cache"
cmake --install "$root/build" --prefix "$out/prefix" > /dev/null
cmake -S "$root/examples/consumer" -B "$out/consumer-build" -G Ninja \
  -Dattnc_DIR="$out/prefix/lib/cmake/attnc" -DCONSUMER_ARCH=sm_90a > /dev/null
cmake --build "$out/consumer-build" > /dev/null
cp "$out/consumer-build/consumer" "$out/consumer"
rm -rf "$out/prefix" "$out/consumer-build"
mkdir -p "$out/sm90"
for k in "$root"/test/Integration/sm90/*.mlir; do
  n=$(basename "$k" .mlir)
  "$root/build/bin/attn-opt" "$k" --attn-compile="target=sm_90a" |
    /usr/bin/python3 "$root/test/Conversion/Inputs/extract_ptx.py" "$out/sm90/$n.ptx"
  /usr/local/cuda/bin/ptxas -arch=sm_90a -O3 "$out/sm90/$n.ptx" -o "$out/sm90/$n.cubin"
done
# flash-linear-attention's `fla` package for bench/linear_baselines.py (a
# baseline, never part of attnc): from a fetched mirror when there is one.
fla_repo=/work/.mirror/fla-org+flash-linear-attention/repo
if [ -d "$fla_repo" ]; then
  rm -rf "$out/fla-src" && mkdir -p "$out/fla-src"
  git --git-dir="$fla_repo" --work-tree="$out/fla-src" checkout HEAD -- fla 2>/dev/null ||
    (cd "$fla_repo" && git archive HEAD fla | tar -x -C "$out/fla-src")
fi
du -sh "$out"
