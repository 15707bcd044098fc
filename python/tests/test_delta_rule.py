"""attnc.delta_rule (DeltaNet, Gated DeltaNet) on the CPU: outputs, final
states and gradients (loss L = sum(o * W) (+ sum(final_state * W2))
backpropagated through attnc's CPU backward) against torch autograd
through the recurrence written here in float64, on fresh random inputs
(l2-normalized keys, betas in (0, 1)); numpy inputs; errors.

usage: test_delta_rule.py
  Without torch it prints `UNSUPPORTED: <why>` and exits 0.
"""
import torch_checks  # exits with UNSUPPORTED without torch
from torch_checks import grads_of, rand, rel_err, report, torch

import attnc  # noqa: E402
from delta_reference import reference  # noqa: E402


def case(name, B=2, H=2, N=37, D=8, Dv=6, decay=None, with_s0=False, final_state=False,
         scale=0.5, l2norm=False, HV=None):
    HV = HV or H
    q64, k64, v64 = rand(B, H, N, D), rand(B, H, N, D), rand(B, HV, N, Dv)
    if not l2norm:
        k64 = torch.nn.functional.normalize(k64, dim=-1)
    b64 = rand(B, HV, N, lo=0.0, hi=1.0)
    g64 = {"head": lambda: rand(HV, lo=-0.3, hi=-0.01),
           "token": lambda: rand(B, HV, N, lo=-0.3, hi=-0.01)}.get(decay, lambda: None)()
    s064 = rand(B, HV, D, Dv) * 0.3 if with_s0 else None
    leaves64 = [x.requires_grad_() for x in (q64, k64, v64, b64, g64, s064) if x is not None]
    leaves32 = [x.detach().float().requires_grad_() for x in leaves64]
    weights = [rand(B, HV, N, Dv)] + ([rand(B, HV, D, Dv)] if final_state else [])
    it32 = iter(leaves32)
    q, k, v, b = next(it32), next(it32), next(it32), next(it32)
    g = next(it32) if g64 is not None else None
    s0 = next(it32) if with_s0 else None
    got, outs = grads_of(lambda: attnc.delta_rule(
        q, k, v, b, decay=g, scale=scale, initial_state=s0,
        output_final_state=final_state, use_qk_l2norm_in_kernel=l2norm),
        leaves32, weights)
    want, refs = grads_of(lambda: reference(q64, k64, v64, b64, g64, scale, s064,
                                            final_state, l2norm), leaves64, weights)
    labels = ["dq", "dk", "dv", "dbeta"] + (["ddecay"] if g64 is not None else []) + \
        (["dinitial_state"] if with_s0 else [])
    pairs = [(f"o{'' if i == 0 else ' final_state'}", a.detach().double(), w.detach())
             for i, (a, w) in enumerate(zip(outs, refs))] + list(zip(labels, got, want))
    worst = 0.0
    for label, a, w in pairs:
        err = rel_err(a, w)
        worst = max(worst, err)
        if not err <= 1e-4:
            report(f"{name} {label}", False, f"max relative error {err:.2e}")
    report(name, worst <= 1e-4, f"max relative error {worst:.2e} over "
           f"o{', final_state' if final_state else ''}, {', '.join(labels)}")


case("DeltaNet, Dv != D")
case("Gated DeltaNet (per-token gates), initial and final state, 2 chunks", decay="token",
     with_s0=True, final_state=True, N=70)
case("per-head gates", decay="head", N=20, B=1)
case("q, k l2-normalized in the call", l2norm=True, N=25)
case("one token", N=1, decay="token", with_s0=True, final_state=True)
case("grouped value heads (2 q/k heads, 6 value heads)", HV=6, decay="token", with_s0=True,
     final_state=True, N=40)

# numpy in, numpy out: the forward only, against the float64 recurrence.
q, k, v = rand(1, 2, 50, 16), torch.nn.functional.normalize(rand(1, 2, 50, 16), dim=-1), \
    rand(1, 2, 50, 16)
b, g = rand(1, 2, 50, lo=0.0, hi=1.0), rand(1, 2, 50, lo=-0.3, hi=-0.01)
o, s = attnc.delta_rule(*(x.float().numpy() for x in (q, k, v, b)), decay=g.float().numpy(),
                        output_final_state=True)
ro, rs = reference(q, k, v, b, g, 16 ** -0.5, None, True)
err = max(float(abs(o - ro.numpy()).max() / abs(ro.numpy()).max()),
          float(abs(s - rs.numpy()).max() / abs(rs.numpy()).max()))
report("numpy arrays (default scale D^-1/2)", err <= 1e-4 and o.dtype.name == "float32",
       f"max relative error {err:.2e}")

# Gradients only where asked: beta alone.
qf, kf, vf = (x.float() for x in (q, k, v))
bf = b.float().requires_grad_()
attnc.delta_rule(qf, kf, vf, bf).sum().backward()
report("gradient of beta alone", bf.grad is not None and qf.grad is None and
       bool(torch.isfinite(bf.grad).all()))

# Errors name the problem.
for what, call in (
        ("beta shape", lambda: attnc.delta_rule(qf, kf, vf, bf[:, :, :10])),
        ("decay shape", lambda: attnc.delta_rule(qf, kf, vf, bf, decay=torch.zeros(3))),
        ("k shape", lambda: attnc.delta_rule(qf, kf[:, :1], vf, bf))):
    try:
        call()
        report(f"error on bad {what}", False, "no error")
    except attnc.AttncError as e:
        report(f"error on bad {what}", True, str(e))
torch_checks.finish()
