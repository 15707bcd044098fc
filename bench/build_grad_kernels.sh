#!/bin/bash
# Builds the PTX of the attention backward kernels for
# bench/grad_kernels_check.py: softmax examples as bf16 specs (and d = 128
# variants), attn-differentiate, attn-compile for TARGET (default sm_80).
# Usage: bench/build_grad_kernels.sh OUTDIR [TARGET]; BQ and BKV (default
# 64) force the dq kernel's q tile and the dkdv kernel's kv tile.
set -euo pipefail
out=$1
target=${2:-sm_80}
bq=${BQ:-64}
bkv=${BKV:-64}
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
  # Only the backward function: forced tiles apply to every op.
  "$opt" "$f" --attn-differentiate="func=$name" \
    | python3 -c 'import re, sys
text = sys.stdin.read()
funcs = re.split(r"\n(?=  func\.func )", text)
keep = [f for f in funcs[1:] if "_backward(" in f.split("\n")[0]]
print(funcs[0] + "\n" + "\n".join(keep) if keep else text)' \
    | "$opt" --attn-compile="target=$target block-q=$bq block-kv=$bkv" \
    | python3 "$root/bench/extract_kernel_ptx.py" "${name}_backward_dq" \
        "$out/$name.ptx"
  echo "{\"block_q\": $bq, \"block_kv\": $bkv}" >"$out/$name.json"
  /usr/local/cuda/bin/ptxas -arch="$target" -v "$out/$name.ptx" \
    -o /dev/null 2>&1 | grep -E "spill|Used" | sed "s/^/$name: /"
done
