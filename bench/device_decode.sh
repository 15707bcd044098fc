#!/usr/bin/env bash
# On the GPU machine (carry devcarry; bench/build_device_tools.sh and
# bench/build_decode.sh): issue 20's decode checks and benchmark.
#  1. `attn-run --backend=cuda` at decode sizes (Nq of 1, 4, 16 and 64, the
#     split-KV form's limit, against Nk up to 5000; Nq = 65 takes the main
#     kernel) on every softmax example and examples/cached_window.mlir
#     (queries_at_end), bf16: the split-KV kernels through the JIT against
#     the CPU reference; the backward of cached_window;
#  2. bench/decode_bench.py on devcarry/decode/aot (JSON to $2).
# Prints one line per run and a summary; exits 1 on any FAIL.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-/tmp/decode.log}"
work=$(mktemp -d)
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
export ATTNC_CACHE_DIR="$work/cache"
: > "$log"
show_args=1
for f in full causal sliding_window dilated_window prefix_lm document_mask \
         alibi softcap relative_bias neighborhood_2d gqa block_sparse \
         lse_strict_causal cached_window; do
  sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/$f.mlir" > "$work/$f.mlir"
  check "$work/$f.mlir" --backend=cuda --batch 2 --nq 1 --nk 3000
  check "$work/$f.mlir" --backend=cuda --nq 4 --nk 1000
  check "$work/$f.mlir" --backend=cuda --nq 16 --nk 5000
  check "$work/$f.mlir" --backend=cuda --nq 64 --nk 777
  check "$work/$f.mlir" --backend=cuda --nq 65 --nk 600
done
check "$work/cached_window.mlir" --backend=cuda --batch 3 --nq 1 --nk 1
check "$work/cached_window.mlir" --backend=cuda --nq 300 --nk 1000
check "$work/cached_window.mlir" --backend=cuda --backward --nq 40 --nk 300
check "$work/cached_window.mlir" --backend=cuda --backward --nq 200 --nk 200
echo "decode attn-run --backend=cuda: $pass passed, $fail failed" | tee -a "$log"
rm -rf "$work"
ATTNC_LIB_DIR="$tools/lib" python3 "$root/bench/decode_bench.py" \
  "$root/devcarry/decode/aot" ${2:+"$2"}
bench=$?
[ "$fail" -eq 0 ] && [ "$bench" -eq 0 ]
