"""LASP-2 through attnc.distributed on torch.distributed (gloo, CPU
processes): each rank holds a contiguous chunk of the tokens (unequal
lengths, a chunk of one token), runs attnc.distributed.linear_attention
and backpropagates L = sum(o * W); its output chunk and its gradients
(dq, dk, dv, the decay's) are compared with torch autograd through the
float64 quadratic reference over the whole sequence (linear_reference.py).

usage: test_distributed.py
  Without torch or torch.distributed's gloo backend it prints
  `UNSUPPORTED: <why>` and exits 0.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

try:
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
except ImportError as e:
    print(f"UNSUPPORTED: torch is not installed for {sys.executable} ({e})")
    sys.exit(0)

import attnc  # noqa: E402
import attnc.distributed  # noqa: E402
from linear_reference import reference  # noqa: E402

TOL = 2e-4


def elu1(x):
    return torch.where(x > 0, x + 1, torch.exp(x))


def inputs(seed, B, H, N, D, Dv, decay):
    """The whole problem in float64, the same on every rank."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    q, k, v = rand(B, H, N, D), rand(B, H, N, D), rand(B, H, N, Dv)
    g = {"head": lambda: rand(H, lo=-0.3, hi=-0.01),
         "token": lambda: rand(B, H, N, lo=-0.3, hi=-0.01),
         "feature": lambda: rand(B, H, N, D, lo=-0.3, hi=-0.01),
         None: lambda: None}[decay]()
    return q, k, v, g, rand(B, H, N, Dv)


def worker(rank, world, init, case, results):
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank,
                            world_size=world)
    try:
        results.put((rank, run_rank(rank, case)))
    except Exception as e:  # reported by the parent
        results.put((rank, {"error": f"{type(e).__name__}: {e}"}))
    finally:
        dist.destroy_process_group()


def run_rank(rank, case):
    bounds = [0]
    for n in case["chunks"]:
        bounds.append(bounds[-1] + n)
    lo, hi = bounds[rank], bounds[rank + 1]
    B, H, D, Dv = 2, 2, 8, 6
    q, k, v, g, w = inputs(case["seed"], B, H, bounds[-1], D, Dv, case["decay"])
    phi = case["phi"]
    # The reference over the whole sequence.
    leaves = [x.requires_grad_() for x in (q, k, v, g) if x is not None]
    o64 = reference(q, k, v, phi, g, 0.5, False, True, None, False)
    (o64 * w).sum().backward()
    # This rank's chunk through attnc.distributed.
    part = [x[:, :, lo:hi] for x in (q, k, v)]
    if g is not None:
        part.append(g if g.dim() == 1 else g[:, :, lo:hi])
    mine = [x.detach().float().requires_grad_() for x in part]
    o = attnc.distributed.linear_attention(*mine[:3], feature_map=phi,
                                           decay=mine[3] if g is not None else None,
                                           scale=0.5)
    (o.double() * w[:, :, lo:hi]).sum().backward()
    errs = {"o": rel(o.detach(), o64.detach()[:, :, lo:hi])}
    for label, got, full in zip(("dq", "dk", "dv", "ddecay"), mine, leaves):
        want = full.grad if full.dim() == 1 else full.grad[:, :, lo:hi]
        errs[label] = rel(got.grad, want)
    return errs


def rel(got, want):
    return ((got.double() - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


def run(name, chunks, decay=None, phi=None):
    world = len(chunks)
    case = {"chunks": chunks, "decay": decay, "phi": phi,
            "seed": int.from_bytes(os.urandom(4), "little")}
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(worker, args=(world, os.path.join(tmp, "init"), case, results),
                           nprocs=world, join=True, start_method="spawn")
    by_rank = dict(results.get() for _ in range(world))
    worst, bad = 0.0, []
    for rank in range(world):
        errs = by_rank[rank]
        if "error" in errs:
            bad.append(f"rank {rank}: {errs['error']}")
            continue
        for label, err in errs.items():
            worst = max(worst, err)
            if not err <= TOL:
                bad.append(f"rank {rank} {label} {err:.2e}")
    ok = not bad
    detail = f"max relative error {worst:.2e} over o and gradients, {world} ranks"
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}{'; ' + ', '.join(bad) if bad else ''}",
          flush=True)
    return ok


def main():
    if not dist.is_available() or not dist.is_gloo_available():
        print("UNSUPPORTED: this torch has no torch.distributed gloo backend")
        return 0
    fails = 0
    fails += not run("per-token-and-feature decay (GLA), unequal chunks", [20, 13, 17],
                     decay="feature")
    fails += not run("per-head decay (RetNet): gradient summed over ranks", [24, 24],
                     decay="head")
    fails += not run("elu+1 map, per-token decay, a one-token chunk", [10, 1, 15, 9],
                     decay="token", phi=elu1)
    fails += not run("no decay, two ranks", [16, 21])
    # Without a process group: a clear error, not a hang.
    try:
        x = torch.zeros(1, 2, 4, 8)
        attnc.distributed.linear_attention(x, x, x)
        print("FAIL no process group: no error")
        fails += 1
    except attnc.AttncError as e:
        print(f"PASS no process group: {e}")
    print(f"FAILURES {fails}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
