"""Gradients through attnc.linear_attention on CPU torch tensors: loss
L = sum(o * W) (+ sum(final_state * W2)) backpropagated through attnc's
chunked CPU backward, against torch autograd through a float64 quadratic
reference written here; traced feature maps (elu+1, relu^2), decays per
head, per token and per token and feature, normalize, bidirectional,
initial and final states.

usage: test_linear_autograd.py
  Without torch it prints `UNSUPPORTED: <why>` and exits 0.
"""
import torch_checks  # exits with UNSUPPORTED without torch
from torch_checks import grads_of, rand, rel_err, report, torch

import attnc  # noqa: E402
from linear_reference import reference  # noqa: E402


def case(name, B=2, H=2, N=37, D=8, Dv=6, phi=None, decay=None, normalize=False,
         causal=True, with_s0=False, final_state=False, scale=0.5):
    q64, k64, v64 = rand(B, H, N, D), rand(B, H, N, D), rand(B, H, N, Dv)
    g64 = None
    if decay == "head":
        g64 = rand(H, lo=-0.3, hi=-0.01)
    elif decay == "token":
        g64 = rand(B, H, N, lo=-0.3, hi=-0.01)
    elif decay == "feature":
        g64 = rand(B, H, N, D, lo=-0.3, hi=-0.01)
    s064 = rand(B, H, D, Dv) if with_s0 else None
    leaves64 = [x.requires_grad_() for x in (q64, k64, v64, g64, s064) if x is not None]
    leaves32 = [x.detach().float().requires_grad_() for x in leaves64]
    weights = [rand(B, H, N, Dv)] + ([rand(B, H, D, Dv)] if final_state else [])
    it32 = iter(leaves32)
    q, k, v = next(it32), next(it32), next(it32)
    g = next(it32) if g64 is not None else None
    s0 = next(it32) if with_s0 else None
    got, _ = grads_of(lambda: attnc.linear_attention(
        q, k, v, feature_map=phi, decay=g, scale=scale, normalize=normalize,
        causal=causal, initial_state=s0, output_final_state=final_state),
        leaves32, weights)
    want, _ = grads_of(lambda: reference(q64, k64, v64, phi, g64, scale, normalize, causal,
                                         s064, final_state), leaves64, weights)
    labels = ["dq", "dk", "dv"] + (["ddecay"] if g64 is not None else []) + \
        (["dinitial_state"] if with_s0 else [])
    worst = 0.0
    for label, a, w in zip(labels, got, want):
        err = rel_err(a, w)
        worst = max(worst, err)
        if not err <= 2e-4:
            report(f"{name} {label}", False, f"max relative error {err:.2e}")
    report(name, worst <= 2e-4, f"max relative error {worst:.2e} over {', '.join(labels)}")


def elu1(x):
    return torch.where(x > 0, x + 1, torch.exp(x))


def relu2(x):
    return torch.where(x > 0, x * x, x * 0)


case("identity map, per-head decay (RetNet)", decay="head")
case("elu+1 normalized causal, Dv != D", phi=elu1, normalize=True)
case("relu^2 normalized bidirectional", phi=relu2, normalize=True, causal=False)
case("per-token decay, initial and final state", decay="token", with_s0=True,
     final_state=True)
case("per-token-and-feature decay (GLA)", decay="feature", N=70)
case("bidirectional per-token decay", decay="token", causal=False)

# Gradients only where asked: v alone.
q, k, v = (rand(1, 2, 9, 8).float() for _ in range(3))
v.requires_grad_()
o = attnc.linear_attention(q, k, v)
o.sum().backward()
report("gradient of v alone", v.grad is not None and q.grad is None and
       bool(torch.isfinite(v.grad).all()))

# Without grad mode the result is a plain tensor.
with torch.no_grad():
    o = attnc.linear_attention(q, k, v)
report("no_grad: no graph", o.grad_fn is None)
torch_checks.finish()
