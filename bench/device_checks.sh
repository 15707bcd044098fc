#!/usr/bin/env bash
# On the GPU machine, after bench/prepare_device.sh here (carry devcarry):
# the runtime products on a real GPU, each printing PASS/FAIL lines. Each
# part has a time limit (an untried kernel may hang on an mbarrier).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rc=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== attnc.load on attn-aot kernels"; timeout 140 python3 "$root/python/tests/test_gpu.py" "$root/devcarry/aot" || rc=1
echo "== attnc.compile's cache directories (sm_80 via PTX, sm_90a)"; timeout 60 python3 "$root/python/tests/test_gpu_jit.py" "$root/devcarry/jit" || rc=1
echo "== the C++ JIT's launch (GpuKernelImpl) on cache entries and AOT kernels"
for d in "$root/devcarry/jit/sm_80:strict" "$root/devcarry/jit/sm_90a:strict" "$root/devcarry/aot/causal:causal" "$root/devcarry/aot/full:none"; do
  [ -d "${d%%:*}" ] && { timeout 60 "$root/devcarry/attnc-gpu-launch-check" "${d%%:*}" "${d##*:}" || rc=1; }
done
echo "== a C program built with attnc_add_kernels"; timeout 30 "$root/devcarry/consumer" || rc=1
echo "== sm_90a plan, step kernels"; timeout 140 python3 "$root/bench/sm90_checks.py" "$root/devcarry/sm90" || rc=1
echo "== flash-linear-attention baselines (issue 5)"
timeout 170 python3 "$root/bench/linear_baselines.py" "$root/devcarry/fla-src" "${OUT:-/tmp}/linear_baselines.json" || rc=1
exit $rc
