#!/usr/bin/env bash
# On the GPU machine (carry devcarry, bench/build_device_tools.sh): the
# linear-attention and scan examples (bf16, as in bench/device_attn_run.sh)
# through attn-run --backend=cuda under compute-sanitizer TOOL (memcheck or
# racecheck), at a small ragged size; one line per spec, exit 1 on any error.
#   bash bench/sanitize_linear.sh memcheck
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool=${1:-memcheck}
tools="$root/devcarry/tools"
if [ ! -x "$tools/attn-run" ]; then
  python3 -c "import lzma, shutil, sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], 'wb') as g:
    shutil.copyfileobj(f, g)" "$tools/attn-run.xz" "$tools/attn-run"
  chmod +x "$tools/attn-run"
fi
for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do
  [ -x "$d/ptxas" ] && export PATH="$PATH:$d" && break
done
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer | head -1)
work=$(mktemp -d)
export ATTNC_CACHE_DIR="$work/cache"
rc=0
for f in linear_elu retnet mamba2_scan bidirectional_mamba2 gla relu_squared \
         hedgehog performer cosformer; do
  sed -e 's/?x4x?x64xf32>/?x4x?x64xbf16>/g' \
      -e 's/%g: tensor<?x4x?x64xbf16>/%g: tensor<?x4x?x64xf32>/' \
      -e 's/decay(%g : tensor<?x4x?x64xbf16>)/decay(%g : tensor<?x4x?x64xf32>)/' \
      "$root/examples/$f.mlir" > "$work/$f.mlir"
  out=$("$san" --tool "$tool" --error-exitcode 9 "$tools/attn-run" "$work/$f.mlir" \
        --backend=cuda --batch 2 --nq 77 --nk 77 2>&1)
  r=$?
  [ $r -ne 0 ] && rc=1
  echo "$f rc=$r :: $(echo "$out" | grep -E '^(PASS|FAIL)' | tail -1) :: $(echo "$out" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' | tail -1)"
done
rm -rf "$work"
exit $rc
