#!/usr/bin/env bash
# On the GPU machine (carry devcarry): gradients through attnc.flex_attention
# (python/tests/test_flex_autograd.py, the checks of
# test/Python/flex_autograd.test and flex_autograd_gpu.test): CUDA bf16
# tensors (the <f>_forward / <f>_backward kernels that attnc.compile
# differentiates and compiles for the device, dq/dk/dv and captured-tensor
# gradients against float64 torch autograd), the same under torch.compile,
# the CPU path on this machine's torch, and the forward-only torch test
# (test_flex_torch.py --cuda) as a regression check.
# Here, first: bench/build_device_tools.sh and bench/build_device_libattnc.sh
# (a self-contained libattnc.so: the GPU machine has no MLIR).
# Prints each script's PASS/FAIL lines into $1 (default
# /tmp/python-autograd.log) and a summary; exits 1 on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-/tmp/python-autograd.log}"
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
[ -e "$tools/lib/libattnc.so" ] || { echo "no libattnc.so: run bench/build_device_libattnc.sh here first" >&2; exit 1; }
work=$(mktemp -d)
export ATTNC_LIB_DIR="$tools/lib" PYTHONPATH="$root/python" ATTNC_CACHE_DIR="$work/cache"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee "$log"
failed=0
check() {
  echo "\$ python3 $*" | tee -a "$log"
  python3 "$@" > "$work/out.txt" 2>&1
  local rc=$?
  cat "$work/out.txt" >> "$log"
  grep -E '^(FAIL|UNSUPPORTED)|Error|FAILURES' "$work/out.txt"
  [ "$rc" -eq 0 ] || { failed=$((failed + 1)); tail -20 "$work/out.txt"; }
}
check "$root/python/tests/test_flex_autograd.py" --cuda
check "$root/python/tests/test_flex_autograd.py" --cuda --compile
check "$root/python/tests/test_flex_autograd.py"
check "$root/python/tests/test_flex_torch.py" --cuda
echo "python autograd on the GPU: $failed script(s) failed" | tee -a "$log"
rm -rf "$work"
[ "$failed" -eq 0 ]
