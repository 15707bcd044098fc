#!/usr/bin/env bash
# The GPU half of the reliability issue (13), one call on the GPU machine
# after bench/prepare_reliability.sh here (carry devcarry):
#   1. attn-run --backend=cuda on every example (bench/device_attn_run.sh)
#   2. random mask programs, with integer captures, through attn-run
#      --backend=cuda (bench/fuzz_gpu.sh on devcarry/fuzz)
#   3. compute-sanitizer memcheck and racecheck on every attn-aot kernel of
#      bench/specs.py (bench/sanitize.py at small ragged sizes)
#   4. attnc.load / attnc.compile's cache directories (python/tests/test_gpu*.py)
# Logs under $OUT; a summary table last. Exits 1 on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-/tmp}"
rc=0
summary=()
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local r=$?
  [ $r -ne 0 ] && rc=1
  summary+=("$(printf '%-28s rc=%-3s %4ss  %s' "$name" "$r" $((SECONDS - t0)) \
    "$(grep -E 'passed|PASS|FAIL|ERROR' "$out/$name.log" | tail -1)")")
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__)"
step attn-run-examples 420 bash "$root/bench/device_attn_run.sh" "$out/attn-run-examples.runs"
[ -f "$root/devcarry/fuzz/runs.txt" ] &&
  step fuzz-masks-gpu 420 bash "$root/bench/fuzz_gpu.sh" "$root/devcarry/fuzz"
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
names=$(ls "$root/devcarry/aot")
if [ -n "$san" ]; then
  # shellcheck disable=SC2086
  step sanitize-memcheck 500 "$san" --tool memcheck --error-exitcode 9 \
    python3 "$root/bench/sanitize.py" "$root/devcarry/aot" $names
  # shellcheck disable=SC2086
  step sanitize-racecheck 500 "$san" --tool racecheck --error-exitcode 9 \
    python3 "$root/bench/sanitize.py" "$root/devcarry/aot" $names
else
  summary+=("compute-sanitizer not found")
  rc=1
fi
step attnc-load 140 python3 "$root/python/tests/test_gpu.py" "$root/devcarry/aot"
[ -d "$root/devcarry/jit" ] &&
  step attnc-compile-dirs 60 python3 "$root/python/tests/test_gpu_jit.py" "$root/devcarry/jit"
printf '%s\n' "${summary[@]}"
exit $rc
