"""GPU checks of attnc.load (run on the GPU machine, needs torch):
  python3 python/tests/test_gpu.py devcarry/aot"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import attnc  # noqa: E402

root = sys.argv[1]
torch.manual_seed(0)
fails = 0


def ref(q, k, v, mask, scale):
    s = torch.einsum("bhid,bhjd->bhij", q.float(), k.float()) * scale
    s = s.masked_fill(~mask, float("-inf"))
    mx = s.amax(-1, keepdim=True)
    empty = torch.isinf(mx)
    p = torch.exp(s - torch.where(empty, torch.zeros_like(mx), mx))
    l = p.sum(-1, keepdim=True)
    o = torch.einsum("bhij,bhjd->bhid", p, v.float()) / torch.where(l > 0, l, torch.ones_like(l))
    return o, torch.where(empty, mx, mx + torch.log(l)).squeeze(-1)


def report(name, ok, detail):
    global fails
    fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")


# causal, [B,N,H,D] layout through strides
k_ = attnc.load(os.path.join(root, "causal"))
print(repr(k_["causal"]))
B, N, H, D = 2, 777, 16, 128
q, k, v = (torch.randn(B, N, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
           for _ in range(3))
o = k_(q, k, v)
i = torch.arange(N, device="cuda")
r, _ = ref(q, k, v, i[:, None] >= i[None, :], D ** -0.5)
err = ((o.float() - r).norm() / r.norm()).item()
report("causal bnhd", err < 1e-2, f"rel_err={err:.2e}")

# lse and a fully masked row
kl = attnc.load(os.path.join(root, "strict_causal_lse"))
q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
o, lse = kl(q, k, v)
r, rl = ref(q, k, v, i[:, None] > i[None, :], D ** -0.5)
err = ((o.float() - r).norm() / r.norm()).item()
ok = (err < 1e-2 and torch.isinf(lse[:, :, 0]).all().item() and (o[:, :, 0] == 0).all().item()
      and (lse[:, :, 1:] - rl[:, :, 1:]).abs().max().item() < 1e-2)
report("strict causal lse", ok, f"rel_err={err:.2e}")

# captured document ids (block map kernel)
kd = attnc.load(os.path.join(root, "document_mask"))
docs = (torch.rand(N, device="cuda") < 0.01).cumsum(0).to(torch.int32)
o = kd(q, k, v, docs)
m = (docs[:, None] == docs[None, :]) & (i[:, None] >= i[None, :])
r, _ = ref(q, k, v, m, D ** -0.5)
err = ((o.float() - r).norm() / r.norm()).item()
report("document mask", err < 1e-2, f"rel_err={err:.2e}")

# clear errors
bad = {
    "dtype": lambda: k_(q.half(), k.half(), v.half()),
    "device": lambda: k_(q.cpu(), k.cpu(), v.cpu()),
    "heads": lambda: k_(q[:, :8], k[:, :8], v[:, :8]),
    "stride": lambda: k_(torch.randn(B, H, N, 2 * D, device="cuda",
                                     dtype=torch.bfloat16)[..., ::2], k, v),
    "captures": lambda: kd(q, k, v),
    "not a tensor": lambda: k_(q, "k", v),
    "other device": lambda: k_(q, k.cpu(), v),
    "output dtype": lambda: k_(q, k, v, out=torch.empty_like(q, dtype=torch.float16)),
}
for name, call in bad.items():
    try:
        call()
        report(f"error {name}", False, "no error raised")
    except attnc.AttncError as e:
        report(f"error {name}", True, str(e))
print(f"{fails} failure(s)")
sys.exit(1 if fails else 0)
