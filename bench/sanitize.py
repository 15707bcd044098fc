"""Runs a few attn-aot kernels once each at small, ragged sizes, for
compute-sanitizer on the GPU machine (issue 3: memcheck and racecheck on two
examples), and checks the results against the float32 reference:
  compute-sanitizer --tool memcheck python3 bench/sanitize.py devcarry/aot causal document_mask"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_device  # noqa: E402


def main():
    root, names = sys.argv[1], sys.argv[2:]
    gen = torch.Generator(device="cuda").manual_seed(99)
    fails = 0
    for name in names:
        kern = run_device.AotKernel(os.path.join(root, name))
        m = kern.meta
        for (B, nq, nk) in ((1, 300, 300), (2, 129, 257)):
            err, why = run_device.check(kern, name, B, nq, nk, m["heads_q"], m["heads_kv"],
                                        m["head_dim"], gen)
            ok = not why and err < 1e-2
            fails += not ok
            print(f"{'PASS' if ok else 'FAIL'} {name} B={B} Nq={nq} Nk={nk} rel_err={err:.2e} {why}",
                  flush=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
