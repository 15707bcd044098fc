#!/bin/bash
# Builds the PTX of the attention backward kernels for
# bench/grad_kernels_check.py: softmax examples as bf16 specs (and d = 128
# variants), attn-differentiate, attn-compile for TARGET (default sm_80).
# Usage: bench/build_grad_kernels.sh OUTDIR [TARGET]
set -euo pipefail
out=$1
target=${2:-sm_80}
root=$(cd "$(dirname "$0")/.." && pwd)
opt=$root/build/bin/attn-opt
mkdir -p "$out"
spec() { # name source sed-expr
  sed -e 's/x64xf32>/x64xbf16>/g' -e "$3" "$root/examples/$2.mlir" \
    | sed -e "s/@$2(/@$1(/" >"$out/$1.mlir"
}
spec full full ''
spec causal causal ''
spec gqa gqa ''
spec softcap softcap ''
spec relative_bias relative_bias ''
spec sliding_window sliding_window ''
spec causal128 causal 's/x64xbf16>/x128xbf16>/g'
spec full128 full 's/x64xbf16>/x128xbf16>/g; s/?x4x/?x16x/g'
spec full64 full 's/?x4x/?x16x/g'
spec causal64 causal 's/?x4x/?x16x/g'
for f in "$out"/*.mlir; do
  name=$(basename "$f" .mlir)
  "$opt" "$f" --attn-differentiate="func=$name" \
    | "$opt" --attn-compile="target=$target" \
    | python3 "$root/bench/extract_kernel_ptx.py" "${name}_backward_dq" \
        "$out/$name.ptx"
  echo '{"block_q": 64, "block_kv": 64}' >"$out/$name.json"
  /usr/local/cuda/bin/ptxas -arch="$target" -v "$out/$name.ptx" \
    -o /dev/null 2>&1 | grep -E "spill|Used" | sed "s/^/$name: /"
done
