#!/usr/bin/env bash
# The GPU half of the reliability issue (13), one call on the GPU machine
# after bench/prepare_reliability.sh here (carry devcarry):
#   1. attn-run --backend=cuda on every example (bench/device_attn_run.sh)
#   2. random mask programs, with integer captures, through attn-run
#      --backend=cuda (bench/fuzz_gpu.sh on devcarry/fuzz)
#   3. compute-sanitizer memcheck and racecheck on every attn-aot kernel of
#      bench/specs.py (bench/sanitize.py at small ragged sizes)
#   4. attnc.load / attnc.compile's cache directories (python/tests/test_gpu*.py)
#   5. the numerics sweep on sm_90a (bench/numerics_sweep.py --prepared)
#   6. launch overhead against SDPA and FlexAttention (bench/launch_overhead.py)
#      and of the launch library's C API (attnc-launch-bench)
#   7. torch.compile, CUDA graphs and non-waiting value checks
#      (bench/torch_integration.py)
# Steps (all by default): examples fuzz memcheck racecheck load sweep launch
# torch. Python loads the launch library from devcarry/lib.
# Logs under $OUT; a summary table last. Exits 1 on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-/tmp}"
export ATTNC_LIB_DIR="$root/devcarry/lib"
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
want() { [ ${#steps[@]} -eq 0 ] || [[ " ${steps[*]} " == *" $1 "* ]]; }
steps=("$@")
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__)"
want examples && step attn-run-examples 420 bash "$root/bench/device_attn_run.sh" "$out/attn-run-examples.runs"
want fuzz && [ -f "$root/devcarry/fuzz/runs.txt" ] &&
  step fuzz-masks-gpu 420 bash "$root/bench/fuzz_gpu.sh" "$root/devcarry/fuzz"
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
names=$(ls "$root/devcarry/aot")
for tool in memcheck racecheck; do
  want $tool || continue
  if [ -z "$san" ]; then summary+=("compute-sanitizer not found"); rc=1; continue; fi
  # shellcheck disable=SC2086
  step sanitize-$tool 500 "$san" --tool $tool --error-exitcode 9 \
    python3 "$root/bench/sanitize.py" "$root/devcarry/aot" $names
done
want load && step attnc-load 140 python3 "$root/python/tests/test_gpu.py" "$root/devcarry/aot"
want load && [ -d "$root/devcarry/jit" ] &&
  step attnc-compile-dirs 60 python3 "$root/python/tests/test_gpu_jit.py" "$root/devcarry/jit"
if want load && [ -x "$root/devcarry/bin/attnc-gpu-launch-check" ]; then
  for d in jit/sm_80:strict jit/sm_90a:strict aot/causal:causal aot/full:none; do
    n=${d%%:*}
    [ -d "$root/devcarry/$n" ] && step "launch-check-${n//\//-}" 60 \
      "$root/devcarry/bin/attnc-gpu-launch-check" "$root/devcarry/${d%%:*}" "${d##*:}"
  done
fi
want sweep && [ -d "$root/devcarry/sweep" ] &&
  step numerics-sweep-gpu 400 python3 "$root/bench/numerics_sweep.py" --target sm_90a \
    --prepared "$root/devcarry/sweep" --specs 120 --sizes 9 --seed 1 --json "$out/sweep.json"
want launch && step launch-overhead 200 python3 "$root/bench/launch_overhead.py" \
  "$root/devcarry/aot/causal" "$out/launch_overhead.json"
if want launch && [ -x "$root/devcarry/bin/attnc-launch-bench" ]; then
  for bn in "1 512" "8 1024"; do
    # shellcheck disable=SC2086
    step "launch-capi-${bn// /-}" 60 "$root/devcarry/bin/attnc-launch-bench" \
      "$root/devcarry/aot/causal" causal $bn
  done
fi
lin=$(ls -d "$root"/devcarry/linear/* 2>/dev/null | head -1)
want torch && step torch-integration 300 python3 "$root/bench/torch_integration.py" \
  "$root/devcarry/aot/causal" $lin
printf '%s\n' "${summary[@]}"
exit $rc
