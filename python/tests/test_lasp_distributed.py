"""LASP-2 through attnc.distributed on torch.distributed (gloo, CPU
processes). Each rank holds a contiguous chunk of the tokens (unequal
lengths, chunks of one token) and backpropagates L = sum(o * W) (+ sum(S
* W2) for a final state S):

- traced specs of attnc.distributed.linear_attention (GLA gates, RetNet
  per-head decays, elu+1 with per-token gates, no decay) against torch
  autograd through the float64 quadratic reference over the whole
  sequence (linear_reference.py);
- every causal linear example of examples/ (normalizers, initial and final
  states, captured projections, position-aware maps) through
  attnc.distributed.sequence_parallel, against the single-process attnc
  kernels `@f` and `@f_backward` on the whole sequence;
- LASP-2H: softmax examples (causal, sliding window, document mask with
  document ids over the whole sequence, softcap, ALiBi) against `@f_forward` /
  `@f_backward`, and a hybrid block (3 linear layers : 1 causal softmax
  layer) against torch float64 autograd;
- the delta rule through attnc.distributed.delta_rule (DeltaNet,
  per-token and per-head gates, initial and final states) against torch
  autograd through the float64 recurrence (delta_reference.py);

at world sizes 1, 2, 3, 4 and 8. Each rank compares its chunk of o and
of the gradients (and the whole of shared ones: per-head decays, initial
states, final states).

usage: test_lasp_distributed.py EXAMPLES_DIR
  Without torch or torch.distributed's gloo backend it prints
  `UNSUPPORTED: <why>` and exits 0.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

try:
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
except ImportError as e:
    print(f"UNSUPPORTED: torch is not installed for {sys.executable} ({e})")
    sys.exit(0)

import attnc  # noqa: E402
import attnc.distributed  # noqa: E402
from linear_reference import reference  # noqa: E402
from delta_reference import reference as delta_reference  # noqa: E402
from attnc._lasp_delta import phase_specs  # noqa: E402

TOL = 2e-4
EXAMPLES = ["cosformer", "gla", "hedgehog", "linear_elu", "mamba2_scan", "performer",
            "retnet"]


def elu1(x):
    return torch.where(x > 0, x + 1, torch.exp(x))


TRACED = {"traced_gla": ("feature", None), "traced_retnet": ("head", None),
          "traced_elu1": ("token", elu1), "traced_plain": (None, None)}


def bounds_of(chunks):
    b = [0]
    for n in chunks:
        b.append(b[-1] + n)
    return b


def rel(got, want):
    got, want = torch.as_tensor(got).double(), torch.as_tensor(want).double()
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


# Traced specs against the float64 reference --------------------------------

def whole_sequence(chunks, seed):
    """This rank, its rows [lo, hi) of the N tokens, and rand(*shape, lo=,
    hi=): float64 uniform draws, the same on every rank for one seed."""
    b = bounds_of(chunks)
    rank = dist.get_rank()
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    return rank, b[rank], b[rank + 1], b[-1], rand


def traced_case(name, chunks, seed):
    decay, phi = TRACED[name]
    _, lo, hi, N, rand = whole_sequence(chunks, seed)
    B, H, D, Dv = 2, 2, 8, 6
    q, k, v = rand(B, H, N, D), rand(B, H, N, D), rand(B, H, N, Dv)
    g = {"head": lambda: rand(H, lo=-0.3, hi=-0.01),
         "token": lambda: rand(B, H, N, lo=-0.3, hi=-0.01),
         "feature": lambda: rand(B, H, N, D, lo=-0.3, hi=-0.01), None: lambda: None}[decay]()
    w = rand(B, H, N, Dv)
    leaves = [x.requires_grad_() for x in (q, k, v, g) if x is not None]
    o64 = reference(q, k, v, phi, g, 0.5, False, True, None, False)
    (o64 * w).sum().backward()
    part = [x[:, :, lo:hi] for x in (q, k, v)]
    if g is not None:
        part.append(g if g.dim() == 1 else g[:, :, lo:hi])
    mine = [x.detach().float().requires_grad_() for x in part]
    o = attnc.distributed.linear_attention(*mine[:3], feature_map=phi, scale=0.5,
                                           decay=mine[3] if g is not None else None)
    (o.double() * w[:, :, lo:hi]).sum().backward()
    errs = {"o": rel(o.detach(), o64.detach()[:, :, lo:hi])}
    for label, got, full in zip(("dq", "dk", "dv", "ddecay"), mine, leaves):
        errs[label] = rel(got.grad, full.grad if full.dim() == 1 else full.grad[:, :, lo:hi])
    return errs


# The delta rule (LASP-2 with gathered transitions) against the float64
# recurrence -----------------------------------------------------------------

DELTA = {"delta_plain": (None, False, 2), "delta_gated": ("token", True, 2),
         "delta_head": ("head", False, 2), "delta_gva": ("token", True, 4)}


def delta_case(name, chunks, seed):
    decay, states, HV = DELTA[name]  # HV value heads over H = 2 q/k heads
    rank, lo, hi, N, rand = whole_sequence(chunks, seed)
    B, H, D, Dv = 2, 2, 8, 6
    q, v = rand(B, H, N, D), rand(B, HV, N, Dv)
    k = torch.nn.functional.normalize(rand(B, H, N, D), dim=-1)
    beta = rand(B, HV, N, lo=0.0, hi=1.0)
    g = {"head": lambda: rand(HV, lo=-0.3, hi=-0.01),
         "token": lambda: rand(B, HV, N, lo=-0.3, hi=-0.01), None: lambda: None}[decay]()
    s0 = rand(B, HV, D, Dv) * 0.3 if states else None
    w, w2 = rand(B, HV, N, Dv), rand(B, HV, D, Dv)
    full = [x for x in (q, k, v, beta, g, s0) if x is not None]
    for x in full:
        x.requires_grad_()
    o64, fin64 = delta_reference(q, k, v, beta, g, 0.5, s0, True)
    ((o64 * w).sum() + (fin64 * w2).sum() * states).backward()
    part = [x[:, :, lo:hi] for x in (q, k, v, beta)]
    if g is not None:
        part.append(g if g.dim() == 1 else g[:, :, lo:hi])
    if s0 is not None:
        part.append(s0)
    mine = [x.detach().float().requires_grad_() for x in part]
    o, fin = attnc.distributed.delta_rule(
        *mine[:4], decay=mine[4] if g is not None else None, scale=0.5,
        initial_state=mine[-1] if states else None, output_final_state=True)
    loss = (o.double() * w[:, :, lo:hi]).sum()
    if states:  # each rank returns the final state: its gradient counted once
        loss = loss + (fin.double() * w2).sum() * (rank == 0)
    loss.backward()
    errs = {"o": rel(o.detach(), o64.detach()[:, :, lo:hi]),
            "final_state": rel(fin.detach(), fin64.detach())}
    labels = ("dq", "dk", "dv", "dbeta") + (("ddecay",) if g is not None else ()) + \
        (("dinitial_state",) if states else ())
    for label, got, x in zip(labels, mine, full):
        whole = x.dim() == 1 or label == "dinitial_state"
        errs[label] = rel(got.grad, x.grad if whole else x.grad[:, :, lo:hi])
    return errs


# Examples against the single-process attnc kernels --------------------------

def example_inputs(kernel, layout, seed, N):
    """f's arguments for the whole sequence (B = 1), float32 numpy."""
    rng = np.random.default_rng(seed)
    arrays = []
    for i, p in enumerate(kernel.inputs):
        shape = [1 if d < 0 and j == 0 else N if d < 0 else d for j, d in enumerate(p["shape"])]
        lo, hi = (-0.3, -0.01) if i == layout.decay else (-1.0, 1.0)
        if i == layout.init:
            lo, hi = -0.1, 0.1
        arrays.append(rng.uniform(lo, hi, shape).astype(np.float32))
    return arrays


def example_case(name, chunks, seed, spec):
    b = bounds_of(chunks)
    rank = dist.get_rank()
    lo, hi = b[rank], b[rank + 1]
    sp = attnc.distributed.sequence_parallel(spec, name)
    L = sp.layout
    f = attnc.compile(spec, "cpu", function=name)
    fb = attnc.compile(spec, "cpu", function=name + "_backward")
    args = example_inputs(f, L, seed, b[-1])
    rng = np.random.default_rng(seed + 1)
    o_shape = (1,) + tuple(f.outputs[0]["shape"][1:2]) + (b[-1], f.outputs[0]["shape"][3])
    w = rng.uniform(-1, 1, o_shape).astype(np.float32)
    outs = [np.empty(o_shape, np.float32)]
    if L.final:
        outs.append(np.empty(args[L.init].shape if L.init is not None else
                             tuple(max(d, 1) for d in f.outputs[1]["shape"]), np.float32))
        w2 = rng.uniform(-1, 1, outs[1].shape).astype(np.float32)
    full = f(*args, out=tuple(outs) if L.final else outs[0])
    full = full if L.final else (full,)
    cot = [w] + ([w2] if L.final else [])
    shapes = [tuple(b[-1] if d < 0 and j == 2 else 1 if d < 0 else d
                    for j, d in enumerate(p["shape"])) for p in fb.outputs]
    grads = fb(*args, *cot, out=tuple(np.empty(s, np.float32) for s in shapes))
    # This rank: its chunk of the sequence arguments, the rest whole.
    seq = {L.q, L.k, L.v} | ({L.decay} if L.decay is not None and args[L.decay].ndim > 1
                             else set())
    mine = [torch.from_numpy(a[:, :, lo:hi].copy() if i in seq else a.copy()).requires_grad_()
            for i, a in enumerate(args)]
    res = sp(*mine)
    o, s = (res if L.final else (res, None))
    # The global loss is the sum of the ranks' losses: the final state (the
    # same on every rank) enters rank 0's.
    loss = (o * torch.from_numpy(w[:, :, lo:hi])).sum()
    if L.final and rank == 0:
        loss = loss + (s * torch.from_numpy(w2)).sum()
    loss.backward()
    errs = {"o": rel(o.detach(), full[0][:, :, lo:hi])}
    if L.final:
        errs["final_state"] = rel(s.detach(), full[1])
    labels = ["dq", "dk", "dv", "ddecay"][:len(L.grad_args())]
    for label, i, g in zip(labels, L.grad_args(), grads):
        if i is not None:
            errs[label] = rel(mine[i].grad, g[:, :, lo:hi] if i in seq else g)
    if L.init is not None:
        errs["dinitial_state"] = rel(mine[L.init].grad, grads[-1])
    return errs


# LASP-2H: softmax examples and a hybrid block ------------------------------

SOFTMAX = ["causal", "sliding_window", "document_mask", "softcap", "alibi"]


def softmax_case(name, chunks, seed, spec):
    """A softmax example: the rank's queries against gathered keys and
    values, against `@f_forward` / `@f_backward` on the whole sequence."""
    b = bounds_of(chunks)
    rank = dist.get_rank()
    lo, hi = b[rank], b[rank + 1]
    N = b[-1]
    rng = np.random.default_rng(seed)
    q, k, v, w = (rng.uniform(-1, 1, (1, 4, N, 64)).astype(np.float32) for _ in range(4))
    extra = [np.sort(rng.integers(0, 4, N)).astype(np.int32)] if name == "document_mask" else []
    fwd = attnc.compile(spec, "cpu", function=name + "_forward")
    bwd = attnc.compile(spec, "cpu", function=name + "_backward")
    o, lse = fwd(q, k, v, *extra, out=(np.empty_like(q), np.empty((1, 4, N), np.float32)))
    dq, dk, dv = bwd(q, k, v, *extra, o, lse, w,
                     out=(np.empty_like(q), np.empty_like(k), np.empty_like(v)))
    mine = [torch.from_numpy(x[:, :, lo:hi].copy()).requires_grad_() for x in (q, k, v)]
    got = attnc.distributed.sequence_parallel(spec, name)(
        *mine, *[torch.from_numpy(x) for x in extra])
    (got * torch.from_numpy(w[:, :, lo:hi])).sum().backward()
    errs = {"o": rel(got.detach(), o[:, :, lo:hi])}
    for label, t, full in zip(("dq", "dk", "dv"), mine, (dq, dk, dv)):
        errs[label] = rel(t.grad, full[:, :, lo:hi])
    return errs


def causal_softmax64(q, k, v):
    """float64 causal softmax attention, scale 1/sqrt(D)."""
    N = q.shape[2]
    s = (q @ k.transpose(-1, -2)) * q.shape[3] ** -0.5
    s = s.masked_fill(torch.ones(N, N, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


def hybrid_case(name, chunks, seed, specs):
    """A hybrid block, 3 linear layers : 1 causal softmax layer (LASP-2 and
    LASP-2H), against torch float64 autograd over the whole sequence:
    a = LA(q, k, v; per-token gates), b = LA(a, k, a), c = LA(b, b, v;
    per-token gates), o = softmax(c, k, c)."""
    b = bounds_of(chunks)
    rank = dist.get_rank()
    lo, hi = b[rank], b[rank + 1]
    N = b[-1]
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    q, k, v = (rand(1, 4, N, 64) for _ in range(3))
    g1, g3 = rand(1, 4, N, lo=-0.3, hi=-0.01), rand(1, 4, N, lo=-0.3, hi=-0.01)
    w = rand(1, 4, N, 64)
    full = [x.requires_grad_() for x in (q, k, v, g1, g3)]

    def block(q, k, v, g1, g3, la, sm):
        a = la(q, k, v, g1)
        b_ = la(a, k, a, None)
        c = la(b_, b_, v, g3)
        return sm(c, k, c)
    ref = block(*full, lambda q, k, v, g: reference(q, k, v, None, g, 0.125, False, True,
                                                    None, False),
                causal_softmax64)
    (ref * w).sum().backward()
    part = [x.detach()[:, :, lo:hi].float().requires_grad_() for x in full]
    causal = attnc.distributed.sequence_parallel(specs["causal"], "causal")
    got = block(*part, lambda q, k, v, g: attnc.distributed.linear_attention(
        q, k, v, decay=g, scale=0.125), causal)
    (got.double() * w[:, :, lo:hi]).sum().backward()
    errs = {"o": rel(got.detach(), ref.detach()[:, :, lo:hi])}
    for label, t, x in zip(("dq", "dk", "dv", "dg1", "dg3"), part, full):
        errs[label] = rel(t.grad, x.grad[:, :, lo:hi])
    return errs


def worker(rank, world, init, cases, specs, results):
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank,
                            world_size=world)
    try:
        for case in cases:
            name, chunks, seed = case
            try:
                if name in TRACED:
                    errs = traced_case(name, chunks, seed)
                elif name in DELTA:
                    errs = delta_case(name, chunks, seed)
                elif name == "hybrid":
                    errs = hybrid_case(name, chunks, seed, specs)
                elif name in SOFTMAX:
                    errs = softmax_case(name, chunks, seed, specs[name])
                else:
                    errs = example_case(name, chunks, seed, specs[name])
            except Exception as e:  # reported by the parent
                errs = {"error": f"{type(e).__name__}: {e}"}
            results.put((name, rank, errs))
    finally:
        dist.destroy_process_group()


def run_world(chunks, names, specs):
    """Runs `names` at world size len(chunks) in one group of processes."""
    world = len(chunks)
    seed = int.from_bytes(os.urandom(4), "little") % (1 << 30)
    cases = [(n, chunks, seed + i) for i, n in enumerate(names)]
    results = mp.get_context("spawn").SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(worker, args=(world, os.path.join(tmp, "init"), cases, specs,
                                         results),
                           nprocs=world, join=True, start_method="spawn")
    got = {}
    for _ in range(world * len(cases)):
        name, rank, errs = results.get()
        got.setdefault(name, {})[rank] = errs
    fails = 0
    for name in names:
        worst, bad = 0.0, []
        for rank in range(world):
            errs = got[name][rank]
            if "error" in errs:
                bad.append(f"rank {rank}: {errs['error']}")
                continue
            for label, err in errs.items():
                worst = max(worst, err)
                if not err <= TOL:
                    bad.append(f"rank {rank} {label} {err:.2e}")
        ok = not bad
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} W={world} {name} chunks {chunks}: max relative "
              f"error {worst:.2e}{'; ' + ', '.join(bad) if bad else ''}", flush=True)
    return fails


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    if not dist.is_available() or not dist.is_gloo_available():
        print("UNSUPPORTED: this torch has no torch.distributed gloo backend")
        return 0
    specs = {n: open(os.path.join(sys.argv[1], n + ".mlir")).read()
             for n in EXAMPLES + SOFTMAX}
    # Compiled once here into the disk cache ($ATTNC_CACHE_DIR), which the
    # ranks' processes then load instead of each compiling every phase.
    for name, spec in specs.items():
        attnc.distributed.sequence_parallel(spec, name)
        for fn in (name, name + "_forward", name + "_backward"):
            attnc.compile(spec, "cpu", function=fn)
    for decay, _, HV in DELTA.values():
        for forward, backward, fn in phase_specs((2, HV, 8, 6), 0.5, decay):
            attnc.compile(forward, "cpu", function=fn)
            attnc.compile(backward, "cpu", function=fn + "_backward")
    fails = 0
    fails += run_world([37], ["gla", "linear_elu", "mamba2_scan", "delta_gated"], specs)
    fails += run_world([16, 21], ["traced_plain", "traced_retnet", "linear_elu", "cosformer"],
                       specs)
    fails += run_world([20, 1, 17], list(TRACED) + EXAMPLES + list(DELTA), specs)
    fails += run_world([10, 1, 15, 9], ["traced_elu1", "gla", "mamba2_scan", "hedgehog",
                                        "delta_gated", "delta_head"], specs)
    fails += run_world([5, 4, 6, 1, 3, 7, 2, 9], ["gla", "retnet", "performer", "mamba2_scan",
                                                  "causal", "hybrid", "delta_gated"], specs)
    fails += run_world([13, 1, 10], SOFTMAX + ["hybrid"], specs)
    fails += run_world([12, 12], ["hybrid", "document_mask"], specs)
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
