#!/usr/bin/env bash
# On the GPU machine (carry devcarry; bench/build_device_tools.sh and
# bench/build_decode.sh): the short form of device_inference.sh for the
# kernels of packed sequences and sm_90a paged gathers, for a session with
# little device time: attn-run --backend=cuda on examples/varlen.mlir
# (wgmma and mma.sync), the CPU test's varlen sinks spec, and
# examples/paged_decode.mlir at prefill sizes with pages of 16, 64 and 256
# (the TMA page gathers of the wgmma kernel) and 4 (mma.sync); then
# bench/varlen_bench.py (JSON to $2) and bench/paged_bench.py (JSON to $3).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-/tmp/varlen-paged.log}"
work=$(mktemp -d)
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
export ATTNC_CACHE_DIR="$work/cache"
: > "$log"
show_args=1
sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/varlen.mlir" > "$work/varlen.mlir"
check "$work/varlen.mlir" --backend=cuda --batch 5 --nq 300 --nk 700
check "$work/varlen.mlir" --backend=cuda --batch 3 --nq 129 --nk 129 --block-q 64 --block-kv 64
check "$work/varlen.mlir" --backend=cuda --batch 9 --nq 1 --nk 40
awk '$0 == "#--- sinks.mlir" {on = 1; next} /^#--- / {on = 0} on' \
  "$root/test/Integration/cpu/varlen.test" |
  sed -e 's/x32xf32>/x32xbf16>/g' > "$work/varlen_sinks.mlir"
check "$work/varlen_sinks.mlir" --backend=cuda --batch 4 --nq 200 --nk 200
for s in 4 16 64 256; do
  f="$work/paged_$s.mlir"
  sed -e 's/x64xf32>/x64xbf16>/g' -e "s/x16x64x/x${s}x64x/g" \
    "$root/examples/paged_decode.mlir" > "$f"
  check "$f" --backend=cuda --batch 2 --nq 200 --nk $((s * 5 > 512 ? s * 5 : 512))
  check "$f" --backend=cuda --batch 3 --nq 65 --nk $((s * 7 > 256 ? s * 7 : 256))
done
echo "varlen and paged attn-run --backend=cuda: $pass passed, $fail failed" | tee -a "$log"
rm -rf "$work"
export ATTNC_LIB_DIR="$tools/lib"
timeout 170 python3 "$root/bench/varlen_bench.py" "$root/devcarry/decode/aot" ${2:+"$2"}
v=$?
timeout 150 python3 "$root/bench/paged_bench.py" "$root/devcarry/decode/aot" ${3:+"$3"}
p=$?
[ "$fail" -eq 0 ] && [ "$v" -eq 0 ] && [ "$p" -eq 0 ]
