#!/usr/bin/env bash
# Compiles the linear-attention / scan specs of bench/linear_gpu.py for
# sm_90a through Python's attnc.compile (libattnc; the disk-cache entries
# are the directories attnc.load reads) into devcarry/pylinear/ (git-ignored,
# carried to the GPU machine):
#   specs/<name>.mlir   the bf16 specs (bench/linear_gpu.py --write-specs)
#   cache/<key>/        attnc.compile's cache entries (manifest.json + PTX)
#   index.json          name -> {"dir": cache entry, "spec": spec}
# Then on the GPU machine (no MLIR needed):
#   python3 bench/python_linear_check.py devcarry/pylinear
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
out=$root/devcarry/pylinear
rm -rf "$out" && mkdir -p "$out/specs"
/usr/bin/python3 "$root/bench/linear_gpu.py" --write-specs "$out/specs"
# Attention specs (mate_tesa) are checked by run_device.py.
rm -f "$out/specs/mate_tesa.mlir"
ATTNC_LIB_DIR=$build/lib PYTHONPATH=$root/python /usr/bin/python3 - "$out" <<'PY'
import json, os, sys
import attnc
out = sys.argv[1]
index = {}
for f in sorted(os.listdir(os.path.join(out, "specs"))):
    name = f[:-5]
    k = attnc.compile(os.path.join(out, "specs", f), target="sm_90a",
                      cache_dir=os.path.join(out, "cache"))
    index[name] = {"dir": os.path.relpath(k.directory, out), "spec": "specs/" + f,
                   "function": k.name}
    print(f"{name}: {k!r}")
with open(os.path.join(out, "index.json"), "w") as fh:
    json.dump(index, fh, indent=1)
PY
du -sh "$out"
