#!/usr/bin/env bash
# On the GPU machine (carry devcarry; see bench/build_device_tools.sh):
# `attn-run --backend=cuda` on every softmax example, in bf16 and f16, at
# the sizes of test/Integration/cuda/examples.test plus a batched ragged
# one, on every linear-attention / scan example in bf16, and on MATE's
# three layers (programs of several kernels). attn-run compiles each spec through libattnc's JIT for the device's
# target (ptxas from the CUDA toolkit), runs it, and compares with the CPU
# reference lowering. Prints one line per run and a summary; exits 1 on
# any FAIL. Writes the log to $1 (default /tmp/attn-run-cuda.log).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-/tmp/attn-run-cuda.log}"
work=$(mktemp -d)
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
export ATTNC_CACHE_DIR="$work/cache"
: > "$log"
for f in full causal sliding_window dilated_window prefix_lm document_mask \
         alibi softcap relative_bias neighborhood_2d gqa block_sparse \
         lse_strict_causal; do
  sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/$f.mlir" > "$work/$f.mlir"
  sed -e 's/x64xf32>/x64xf16>/g' "$root/examples/$f.mlir" > "$work/$f.f16.mlir"
  check "$work/$f.mlir" --backend=cuda --nq 300 --nk 300
  check "$work/$f.f16.mlir" --backend=cuda --nq 130 --nk 260
  check "$work/$f.mlir" --backend=cuda --batch 2 --nq 1000 --nk 777
done
# Linear attention and scans (convert-attn-linear-to-gpu through the JIT):
# bf16 q, k, v (gates and states stay f32), a ragged batched length and a
# longer one; T = 1 (decode) where the spec takes an initial state.
for f in linear_elu retnet mamba2_scan bidirectional_mamba2 gla relu_squared \
         hedgehog performer cosformer; do
  linear_bf16 "$f" "$work"
  check "$work/$f.mlir" --backend=cuda --batch 2 --nq 200 --nk 200
  check "$work/$f.mlir" --backend=cuda --nq 1000 --nk 1000
  if grep -q initial_state "$work/$f.mlir"; then
    check "$work/$f.mlir" --backend=cuda --batch 2 --nq 1 --nk 1
  fi
done
# MATE (examples/mate.mlir): each layer is a program of the JIT (the scan's
# kernel, the TESA attention's kernel, an elementwise sum), at the grid's
# length (a token order fixes it).
sed -e 's/?x4x?x64xf32>/?x4x?x64xbf16>/g' "$root/examples/mate.mlir" > "$work/mate.mlir"
for l in 0 1 2; do
  check "$work/mate.mlir" --func "mate_layer$l" --backend=cuda --batch 2 --nq 196 --nk 196
done
echo "attn-run --backend=cuda: $pass passed, $fail failed" | tee -a "$log"
rm -rf "$work"
[ "$fail" -eq 0 ]
