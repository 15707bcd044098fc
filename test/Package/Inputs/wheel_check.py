"""Imports attnc as installed from its wheel and says where its libraries
came from (/proc/self/maps), then compiles the spec in argv[1] for the CPU
and compares its output with a float64 numpy softmax (causal)."""
import sys

import numpy as np

import attnc

spec = open(sys.argv[1]).read()
kernel = attnc.compile(spec, "cpu")
q, k, v = (np.random.default_rng(i).uniform(-1, 1, (1, 4, 37, 64)).astype(np.float32)
           for i in range(3))
o = kernel(q, k, v)
with open("/proc/self/maps") as maps:
    loaded = sorted({line.split()[-1] for line in maps if "libattnc" in line})
for path in loaded:
    print("loaded", path)
s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k) / 8.0
s = np.where(np.tril(np.ones((37, 37), bool)), s, -np.inf)
p = np.exp(s - s.max(-1, keepdims=True))
want = np.einsum("bhij,bhjd->bhid", p / p.sum(-1, keepdims=True), v)
err = float(np.abs(o - want).max() / np.abs(want).max())
print(f"{'PASS' if err < 1e-4 else 'FAIL'} attnc {attnc.__version__} from the wheel: "
      f"causal max relative error {err:.2e}")
