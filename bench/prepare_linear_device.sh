#!/usr/bin/env bash
# Builds attnc's linear-attention / scan GPU kernels for bench/linear_gpu.py
# into devcarry/linear/ (git-ignored, carried to the GPU machine):
#   specs/<name>.mlir          the bf16 specs (examples + benchmark shape;
#                              hedgehog, performer, cosformer: a feature kernel
#                              <name>_phi in the same cubin, launched first)
#                              mate_layer0..2: the token-ordered bidirectional
#                              scan of each examples/mate.mlir layer alone;
#                              mate_big: the same on an 8 x 16 x 16 grid;
#                              cosformer_ordered: cosformer with a token order
#                              (through the feature kernel)
#                              mate_tesa: the TESA attention of mate.mlir
#   tesa/                       attn-aot directory of mate_tesa (sm_90a), for
#                               the MATE check (scan kernel + TESA kernel)
#   ds64/<name>.{ptx,cubin}     kernels with 64 value columns per block
#   ds32/<name>.{ptx,cubin}     ... with 32 (twice the blocks)
#   manifest.json               per kernel: spec, cubin, ABI (attn.abi), ptxas -v
# Each kernel: attn-opt spec --attn-select-schedule=target=sm_80
#   --convert-attn-linear-to-gpu=dv-slice=S (ABI read from here), then
#   --attn-compile=target=sm_80 on that output (the marked op is not
#   rebuilt), PTX extracted, ptxas -arch=sm_90a (the H100) -> cubin.
# Then on the GPU machine:
#   python3 bench/linear_gpu.py devcarry/linear devcarry/fla-src
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
opt=$build/bin/attn-opt
ptxas=${PTXAS:-$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)}
py=/usr/bin/python3
out=$root/devcarry/linear
rm -rf "$out" && mkdir -p "$out/specs"
$py "$root/bench/linear_gpu.py" --write-specs "$out/specs"
names="linear_elu retnet mamba2_scan bidirectional_mamba2 gla relu_squared hedgehog performer cosformer lin128 elu128 retnet128 sgla128 gla128 bimamba128 mate_layer0 mate_layer1 mate_layer2 mate_big cosformer_ordered"
entries=()
for ds in 64 32; do
  mkdir -p "$out/ds$ds"
  for n in $names; do
    spec=$out/specs/$n.mlir
    step1=$out/ds$ds/$n.step1.mlir
    "$opt" "$spec" --attn-select-schedule=target=sm_80 \
      --convert-attn-linear-to-gpu="dv-slice=$ds" -o "$step1"
    "$opt" "$step1" --attn-compile=target=sm_80 |
      $py "$root/test/Conversion/Inputs/extract_ptx.py" "$out/ds$ds/$n.ptx"
    info=$("$ptxas" -arch=sm_90a -v "$out/ds$ds/$n.ptx" -o "$out/ds$ds/$n.cubin" 2>&1 |
      grep -E "Used|spill" | tr -s ' ' | tr '\n' ';')
    echo "ds$ds $n: $info"
    entries+=("$n ds$ds/$n.cubin specs/$n.mlir $step1 $info")
  done
done
# MATE's TESA branch (specs/mate_tesa.mlir) through attn-aot for the H100.
"$build/bin/attn-aot" "$out/specs/mate_tesa.mlir" --target=sm_90a -o "$out/tesa" |
  grep -E -- "-> |Used [0-9]+ registers|spill"
# manifest.json: the ABI JSON of each kernel from its attn.abi attribute
# (#attn.kernel_abi: the kernel's record, whose "abi" is the linear ABI).
printf '%s\n' "${entries[@]}" > "$out/entries.txt"
$py - "$out" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
kernels = []
for line in open(os.path.join(out, "entries.txt")):
    name, cubin, spec, step1, info = line.rstrip("\n").split(" ", 4)
    text = open(step1).read()
    m = re.search(r'attn\.abi = #attn\.kernel_abi<"((?:[^"\\]|\\.)*)">', text)
    # MLIR string escapes: \XX (hex) and \\.
    raw = re.sub(r"\\([0-9A-Fa-f]{2})", lambda x: chr(int(x.group(1), 16)), m.group(1))
    abi = json.loads(raw.replace("\\\\", "\\"))["abi"]
    kernels.append({"name": name, "cubin": cubin, "spec": spec, "abi": abi, "ptxas": info.strip()})
json.dump({"kernels": kernels}, open(os.path.join(out, "manifest.json"), "w"), indent=1)
print(f"{len(kernels)} kernels -> {out}/manifest.json")
EOF
rm -f "$out"/ds*/*.step1.mlir "$out/entries.txt"
