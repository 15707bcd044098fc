#!/usr/bin/env bash
# Prepares here (MLIR, no GPU) what bench/device_reliability.sh needs on the
# GPU machine: the self-contained attn-run (bench/build_device_tools.sh),
# attn-aot kernels of every bench/specs.py variant for compute-sanitizer
# (devcarry/aot), attnc.compile's cache directories (devcarry/jit) and
# random mask programs with integer captures (devcarry/fuzz).
#   bench/prepare_reliability.sh [N_FUZZ_SPECS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/devcarry"
n="${1:-40}"
bash "$root/bench/build_device_tools.sh"
cp "$root/build/bin/attnc-gpu-launch-check" "$out/"
rm -rf "$out/aot" "$out/fuzz" "$out/jit"
bash "$root/bench/build_aot.sh" sm_90a > /dev/null
/usr/bin/python3 "$root/bench/fuzz_masks.py" "$out/fuzz" "$n" --seed 5000 --dtype bf16
for t in sm_80 sm_90a; do
  dir=$(ATTNC_LIB_DIR="$root/build/lib" ATTNC_CACHE_DIR="$out/jit-cache" \
        PYTHONPATH="$root/python" /usr/bin/python3 -c "
import attnc
spec = open('$root/examples/lse_strict_causal.mlir').read().replace('x64xf32>', 'x64xbf16>')
print(attnc.compile(spec, target='$t').directory)")
  mkdir -p "$out/jit"
  cp -r "$dir" "$out/jit/$t"
done
rm -rf "$out/jit-cache"
du -sh "$out"
