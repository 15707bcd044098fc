#!/usr/bin/env bash
# On the GPU machine (carry devcarry; bench/build_device_tools.sh and
# bench/build_decode.sh): issue 20's paged-KV and sinks checks and the
# paged benchmark.
#  1. `attn-run --backend=cuda` on examples/paged_decode.mlir in bf16 with
#     pages of 1, 16, 32, 64, 128 and 256 tokens (a shuffled permutation of
#     the pool as the table): decode and speculative sizes (the split-KV
#     kernels, Nq <= 64) and prefill chunks (the main kernel), against the
#     CPU reference;
#  2. kv_lens without paging (the wgmma main kernel; a mask on captured
#     data, which gets no block map with kv_lens), and the same sizes on
#     examples/sinks.mlir (the sink in the main kernels'
#     epilogue, wgmma and mma.sync, and in the split-KV combine kernel);
#  3. packed variable-length sequences (cu_seqlens) through attn-run;
#  4. bench/paged_bench.py (JSON to $2) and bench/varlen_bench.py (JSON to
#     $3) on devcarry/decode/aot.
# Prints one line per run and a summary; exits 1 on any FAIL.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-/tmp/inference.log}"
work=$(mktemp -d)
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
export ATTNC_CACHE_DIR="$work/cache"
: > "$log"
show_args=1
for s in 1 16 32 64 128 256; do
  f="$work/paged_$s.mlir"
  sed -e 's/x64xf32>/x64xbf16>/g' -e "s/x16x64x/x${s}x64x/g" \
    "$root/examples/paged_decode.mlir" > "$f"
  check "$f" --backend=cuda --batch 3 --nq 1 --nk $((s * 40))
  check "$f" --backend=cuda --batch 2 --nq 4 --nk $((s * 13))
  check "$f" --backend=cuda --nq 64 --nk $((s * 9 > 64 ? s * 9 : 64))
  check "$f" --backend=cuda --nq 65 --nk $((s * 7 > 65 ? s * 7 : 256))
  check "$f" --backend=cuda --nq 200 --nk $((s * 5 > 200 ? s * 5 : 512))
done
sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/sinks.mlir" > "$work/sinks.mlir"
check "$work/sinks.mlir" --backend=cuda --batch 3 --nq 1 --nk 3000
check "$work/sinks.mlir" --backend=cuda --nq 16 --nk 700
check "$work/sinks.mlir" --backend=cuda --nq 300 --nk 300
check "$work/sinks.mlir" --backend=cuda --nq 1000 --nk 1000 --block-q 64 --block-kv 64
check "$work/sinks.mlir" --backend=cuda --nq 300 --nk 100
# kv_lens without paging: the wgmma main kernel (cached_window, prefill
# sizes) and a mask on captured data (no block map: every tile partial).
sed -e 's/x64xf32>/x64xbf16>/g' \
    -e 's/%v: tensor<?x2x?x64xbf16>)/%v: tensor<?x2x?x64xbf16>, %n: tensor<?xi32>)/' \
    -e 's/queries_at_end$/kv_lens(%n : tensor<?xi32>) queries_at_end/' \
    -e 's/%k, %v queries_at_end/%k, %v kv_lens(%n : tensor<?xi32>) queries_at_end/' \
    "$root/examples/cached_window.mlir" > "$work/window_lens.mlir"
sed -e 's/x64xf32>/x64xbf16>/g' \
    -e 's/"sorted:0:3"})/"sorted:0:3"}, %n: tensor<?xi32>)/' \
    -e 's/captures(%docs/kv_lens(%n : tensor<?xi32>) captures(%docs/' \
    "$root/examples/document_mask.mlir" > "$work/doc_lens.mlir"
for f in window_lens doc_lens; do
  check "$work/$f.mlir" --backend=cuda --batch 3 --nq 1 --nk 3000
  check "$work/$f.mlir" --backend=cuda --batch 3 --nq 16 --nk 900
  check "$work/$f.mlir" --backend=cuda --batch 3 --nq 300 --nk 700
  check "$work/$f.mlir" --backend=cuda --batch 2 --nq 512 --nk 512
done
# Packed variable-length sequences (test/Integration/cuda/varlen.test):
# the varlen example (wgmma and mma.sync kernels) and the CPU test's
# prefix-LM (a capture read by sequence) and sinks specs, in bf16.
sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/varlen.mlir" > "$work/varlen.mlir"
check "$work/varlen.mlir" --backend=cuda --batch 5 --nq 300 --nk 700
check "$work/varlen.mlir" --backend=cuda --batch 3 --nq 129 --nk 129 --block-q 64 --block-kv 64
check "$work/varlen.mlir" --backend=cuda --batch 9 --nq 1 --nk 40
check "$work/varlen.mlir" --backend=cuda --batch 16 --nq 600 --nk 600
for spec in prefix sinks; do
  awk -v f="#--- $spec.mlir" '$0 == f {on = 1; next} /^#--- / {on = 0} on' \
    "$root/test/Integration/cpu/varlen.test" |
    sed -e 's/x32xf32>/x32xbf16>/g' > "$work/varlen_$spec.mlir"
  check "$work/varlen_$spec.mlir" --backend=cuda --batch 4 --nq 200 --nk 200
  check "$work/varlen_$spec.mlir" --backend=cuda --batch 7 --nq 65 --nk 65 --block-q 64 --block-kv 64
done
echo "paged, kv_lens, sinks and varlen attn-run --backend=cuda: $pass passed, $fail failed" | tee -a "$log"
rm -rf "$work"
ATTNC_LIB_DIR="$tools/lib" python3 "$root/bench/paged_bench.py" \
  "$root/devcarry/decode/aot" ${2:+"$2"}
bench=$?
ATTNC_LIB_DIR="$tools/lib" python3 "$root/bench/varlen_bench.py" \
  "$root/devcarry/decode/aot" ${3:+"$3"}
vbench=$?
[ "$fail" -eq 0 ] && [ "$bench" -eq 0 ] && [ "$vbench" -eq 0 ]
