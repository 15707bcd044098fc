"""CI check (no GPU, no torch needed): attnc.load reads an attn-aot directory,
describes its kernels and reports a missing driver or bad input clearly.
usage: check_manifest.py AOT_DIR KERNEL"""
import sys

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])
import attnc  # noqa: E402

mod = attnc.load(sys.argv[1])
k = mod[sys.argv[2]]
print("KERNEL", repr(k))
print("ARGS", [a["name"] for a in k.meta["args"]])
try:
    attnc.load("/nonexistent")
except attnc.AttncError as e:
    print("ERROR", e)
try:
    k(1, 2, 3)
except attnc.AttncError as e:
    print("ERROR", e)
