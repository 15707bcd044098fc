#!/usr/bin/env bash
# On the GPU machine (carry devcarry, bench/build_device_tools.sh): the
# linear-attention and scan examples (bf16, as in bench/device_attn_run.sh)
# through attn-run --backend=cuda under compute-sanitizer TOOL (memcheck or
# racecheck), at a small ragged size; one line per spec, exit 1 on any error.
#   bash bench/sanitize_linear.sh memcheck
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool=${1:-memcheck}
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer | head -1)
work=$(mktemp -d)
export ATTNC_CACHE_DIR="$work/cache"
rc=0
for f in linear_elu retnet mamba2_scan bidirectional_mamba2 gla relu_squared \
         hedgehog performer cosformer; do
  linear_bf16 "$f" "$work"
  out=$("$san" --tool "$tool" --error-exitcode 9 "$tools/attn-run" "$work/$f.mlir" \
        --backend=cuda --batch 2 --nq 77 --nk 77 2>&1)
  r=$?
  [ $r -ne 0 ] && rc=1
  echo "$f rc=$r :: $(echo "$out" | grep -E '^(PASS|FAIL)' | tail -1) :: $(echo "$out" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' | tail -1)"
done
rm -rf "$work"
exit $rc
