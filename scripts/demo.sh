#!/usr/bin/env bash
# attnc demo: set up, build, compile every example spec and run it on the CPU
# backend against the reference lowering. One line per example.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
attnc_install_deps
attnc_build attn-opt attn-run >/dev/null

cd "$ATTNC_ROOT"
backend=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "attnc: a GPU is present; the examples are f32 specs, so they run on the CPU backend (GPU kernels: attn-run --backend=cuda on bf16/f16 specs, see docs/gpu.md)"
fi
printf '%-22s %-34s %-12s %-11s %s\n' example sizes max_rel_err kernel_ms reference_ms
status=0
for spec in examples/*.mlir; do
  name=$(basename "$spec" .mlir)
  # A spec may name its own attn-run flags in a `// attn-run: ...` line.
  flags=$(sed -n 's|^// attn-run: ||p' "$spec" | head -1)
  # shellcheck disable=SC2086
  if ! out=$(build/bin/attn-run "$spec" --backend=$backend ${flags:---batch 2 --nq 301 --nk 301} 2>&1); then
    status=1
  fi
  summary=$(echo "$out" | grep -E 'backend=' | tail -1 || true)
  verdict=$(echo "$out" | tail -1 | cut -d' ' -f1)
  sizes=$(echo "$summary" | grep -oE 'B=[0-9]+ Nq=[0-9]+ Nk=[0-9]+' || true)
  err=$(echo "$summary" | grep -oE 'max_rel_err=[^ ]+' | cut -d= -f2 || true)
  kms=$(echo "$summary" | grep -oE '(tiled|chunked|recurrent)_ms=[^ ]+' | cut -d= -f2 || true)
  rms=$(echo "$summary" | grep -oE 'reference_ms=[^ ]+' | cut -d= -f2 || true)
  printf '%-22s %-34s %-12s %-11s %-12s %s\n' "$name" "$sizes" "$err" "$kms" "$rms" "$verdict"
done
exit $status
