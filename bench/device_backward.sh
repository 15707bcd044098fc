#!/usr/bin/env bash
# On the GPU machine (carry devcarry; see bench/build_device_tools.sh): the
# commands of test/Integration/cuda/backward.test, i.e. `attn-run --backward
# --backend=cuda` on every softmax example in bf16 (300 x 300) and f16
# (130 x 260), a single token and GQA with Nq > Nk. attn-run compiles each
# <f>_backward through libattnc's JIT for the device's target, runs its dq
# and dkdv kernels and compares every gradient with the CPU reference
# backward (f64). Prints each run's last line and a summary; the full output
# (one line per gradient, the timing line) goes to $1 (default
# /tmp/attn-run-backward.log). Exits 1 on any FAIL.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-/tmp/attn-run-backward.log}"
work=$(mktemp -d)
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
export ATTNC_CACHE_DIR="$work/cache"
: > "$log"
pass=0; fail=0
run() {
  local out line
  out=$("$tools/attn-run" "$@" --backward --backend=cuda 2>&1)
  echo "\$ attn-run $* --backward --backend=cuda" >> "$log"
  echo "$out" >> "$log"
  line=$(echo "$out" | tail -1)
  echo "$line"
  case "$line" in PASS*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
}
for f in full causal sliding_window dilated_window prefix_lm document_mask \
         alibi softcap relative_bias neighborhood_2d gqa block_sparse \
         lse_strict_causal; do
  sed -e 's/x64xf32>/x64xbf16>/g' "$root/examples/$f.mlir" > "$work/$f.mlir"
  sed -e 's/x64xf32>/x64xf16>/g' "$root/examples/$f.mlir" > "$work/$f.f16.mlir"
  run "$work/$f.mlir" --nq 300 --nk 300
  run "$work/$f.f16.mlir" --nq 130 --nk 260
done
run "$work/causal.mlir" --batch 1 --nq 1 --nk 1
run "$work/gqa.mlir" --batch 3 --nq 67 --nk 33
echo "attn-run --backward --backend=cuda: $pass passed, $fail failed" | tee -a "$log"
rm -rf "$work"
[ "$fail" -eq 0 ]
