"""GPU check (the GPU machine, torch): attn-aot directories that
attnc.compile's disk cache wrote load and run, for sm_90a (cubin) and sm_80
(on Hopper the cubin does not run and the launch library loads the PTX
instead; test/Unit/launch.test checks that sequence on a stand-in driver).
  python3 python/tests/test_gpu_jit.py devcarry/jit"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import attnc  # noqa: E402
print(torch.cuda.get_device_name(), torch.cuda.get_device_capability())
fails = 0
for t in sorted(os.listdir(sys.argv[1])):
    k = attnc.load(os.path.join(sys.argv[1], t))["lse_strict_causal"]
    B, H, N, D = 2, 4, 300, 64
    q, kk, v = (torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    o, lse = k(q, kk, v)
    i = torch.arange(N, device="cuda")
    s = torch.einsum("bhid,bhjd->bhij", q.float(), kk.float()) * D ** -0.5
    s = s.masked_fill(~(i[None, :] < i[:, None]), float("-inf"))
    r = torch.einsum("bhij,bhjd->bhid", torch.softmax(s[:, :, 1:], -1), v.float())
    err = ((o[:, :, 1:].float() - r).norm() / r.norm()).item()
    ok = err < 1e-2 and bool((o[:, :, 0] == 0).all()) and bool(torch.isinf(lse[:, :, 0]).all())
    fails += not ok
    print("PASS" if ok else "FAIL", t, f"rel_err={err:.2e}")
sys.exit(1 if fails else 0)
