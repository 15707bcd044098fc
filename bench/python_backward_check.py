"""On the GPU machine: the attention backward's kernels of `attn-aot
--backward` directories (bench/prepare_python_backward.sh) through
attnc.load on torch tensors, against float64 torch autograd of the spec's
definition (causal, gqa, relative_bias). Checks q, dq and dO given as
[B, N, H, D] storage viewed as [B, H, N, D] (strided), Nq != Nk, the
relative-bias table gradient, and that Nk = 0 / Nq = 0 zero the gradients
(and the table's) without launching. Prints one line per check; exits 1 on
any FAIL.

  ATTNC_LIB_DIR=devcarry/tools/lib PYTHONPATH=python \\
    python3 bench/python_backward_check.py devcarry/grad_aot/*/*
"""
import math
import os
import sys

import torch

import attnc

TOL = 1e-2  # bf16, as attn-run --backward


def reference(spec, q, k, v, bias, do):
    """o, lse and the gradients of q, k, v (and bias) in float64."""
    q, k, v, do = (t.detach().double().requires_grad_() for t in (q, k, v, do))
    leaves = [q, k, v]
    group = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = q @ kk.transpose(-1, -2) / math.sqrt(q.shape[-1])
    i = torch.arange(q.shape[2], device=q.device)[:, None]
    j = torch.arange(k.shape[2], device=q.device)[None, :]
    if spec in ("causal", "gqa"):
        s = s.masked_fill(j > i, float("-inf"))
    if spec == "relative_bias":
        bias = bias.detach().double().requires_grad_()
        leaves.append(bias)
        s = s + bias[:, (i - j).abs().clamp(max=31)]
    o = torch.softmax(s, -1) @ vv
    lse = torch.logsumexp(s, -1)
    grads = torch.autograd.grad(o, leaves, do)
    return o.detach(), lse.detach(), grads


def strided(shape, dtype):
    """A [B, H, N, D] view of [B, N, H, D] storage."""
    b, h, n, d = shape
    return torch.randn(b, n, h, d, device="cuda").to(dtype).permute(0, 2, 1, 3)


def check_one(kernel, spec, b, nq, nk):
    sig = {p["name"]: p for p in kernel.inputs}
    hq, hk = sig["q"]["shape"][1], sig["k"]["shape"][1]
    d = sig["q"]["shape"][3]
    dt = torch.bfloat16
    q = strided((b, hq, nq, d), dt)
    k = torch.randn(b, hk, nk, d, device="cuda").to(dt)
    v = torch.randn(b, hk, nk, d, device="cuda").to(dt)
    do = strided((b, hq, nq, d), dt)
    bias = (torch.randn(4, 32, device="cuda") if spec == "relative_bias"
            else None)
    o, lse, want = reference(spec, q, k, v, bias, do)
    inputs = [q, k, v] + ([bias] if bias is not None else [])
    inputs += [o.to(dt), lse.float(), do]
    dq = strided((b, hq, nq, d), dt)  # written through its strides
    outs = kernel.launch(tuple(inputs), given=(dq,))
    torch.cuda.synchronize()
    ok = outs[0].data_ptr() == dq.data_ptr()
    worst = 0.0
    for name, got, ref in zip(("dq", "dk", "dv", "dcapture0"), outs, want):
        err = (got.double() - ref).abs().max().item()
        scale = ref.abs().max().item()
        rel = err / scale if scale > 0 else err
        worst = max(worst, rel)
        ok &= rel <= TOL
    return ok, f"max_rel_err={worst:.3e}"


def check_empty(kernel, spec, nq, nk):
    """Nq = 0 or Nk = 0: the gradients are zero (filled with NaN before)."""
    sig = {p["name"]: p for p in kernel.inputs}
    hq, hk = sig["q"]["shape"][1], sig["k"]["shape"][1]
    d = sig["q"]["shape"][3]
    dt = torch.bfloat16
    q = torch.randn(2, hq, nq, d, device="cuda").to(dt)
    k = torch.randn(2, hk, nk, d, device="cuda").to(dt)
    v = torch.randn(2, hk, nk, d, device="cuda").to(dt)
    inputs = [q, k, v]
    if spec == "relative_bias":
        inputs.append(torch.randn(4, 32, device="cuda"))
    inputs += [torch.randn_like(q), torch.zeros(2, hq, nq, device="cuda"),
               torch.randn_like(q)]
    given = tuple(torch.full_like(t, float("nan"))
                  for t in (q, k, v) + ((inputs[3],) if len(inputs) > 6 else ()))
    outs = kernel.launch(tuple(inputs), given=given)
    torch.cuda.synchronize()
    ok = all(bool((t == 0).all()) for t in outs)
    return ok, "gradients zeroed" if ok else "gradients not zeroed"


def main(dirs):
    torch.manual_seed(0)
    fails = 0
    for path in dirs:
        spec = os.path.basename(path.rstrip("/"))
        module = attnc.load(path)
        kernel = module[spec + "_backward"]
        target = kernel.target
        cases = [("B=2 Nq=200 Nk=333", lambda: check_one(kernel, spec, 2, 200, 333)),
                 ("B=1 Nq=1 Nk=1", lambda: check_one(kernel, spec, 1, 1, 1)),
                 ("Nk=0", lambda: check_empty(kernel, spec, 64, 0)),
                 ("Nq=0", lambda: check_empty(kernel, spec, 0, 64))]
        for what, run in cases:
            try:
                ok, detail = run()
            except Exception as e:  # a refusal or a driver error
                ok, detail = False, f"{type(e).__name__}: {e}"
            fails += not ok
            print(f"{'PASS' if ok else 'FAIL'} {spec} {target} {what}: {detail}")
    print(f"python backward checks: {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
