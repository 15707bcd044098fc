"""Gradients through attnc.flex_attention (python/attnc/_autograd.py):
loss.backward() reaches q, k, v and the captured float tensors that a
score_mod reads (relative-position bias tables, ALiBi slopes, an
nn.Parameter of a module), checked against torch float64 autograd of an
eager reference written independently as index grids. Causal, tanh
softcap, relative bias, GQA (dk, dv of k/v's shape), ragged lengths
(Nq != Nk, per-batch key lengths with empty rows), a bias indexed through
integer document ids; no recompile on the second call; errors: a loss that
reads lse, double backward.

usage: test_flex_autograd.py [--cuda] [--compile]
  Without torch it prints `UNSUPPORTED: <why>` and exits 0. --cuda: bf16
  tensors on the GPU (the backward kernels compiled for the device), at
  bf16 tolerance; --compile: the loss function under torch.compile (needs
  torch >= 2.4 and --cuda).
"""
import math
import sys

from torch_checks import gen, torch  # exits with UNSUPPORTED without torch

import attnc  # noqa: E402

CUDA = "--cuda" in sys.argv
COMPILE = "--compile" in sys.argv
DEVICE = "cuda" if CUDA else "cpu"
DTYPE = torch.bfloat16 if CUDA else torch.float32
TOL = 3e-2 if CUDA else 1e-4
# Gradients of captured tensors sum dS over many elements with heavy
# cancellation (sum_j dS_ij = 0 for every row): in bf16 their error relative
# to the largest element is larger (ALiBi slopes: 1.6e-2 to 3.4e-2 on an
# H100, 2026-12-06).
CAPTURE_TOL = 6e-2 if CUDA else 1e-4
fails = 0


def report(name, ok, detail=""):
    global fails
    fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def rand(*shape, scale=1.0, dtype=None):
    x = (torch.rand(*shape, generator=gen) * 2 - 1) * scale
    return x.to(device=DEVICE, dtype=dtype or DTYPE).requires_grad_()


def reference(q, k, v, score=None, keep=None):
    """float64 attention of float64 leaves, differentiable: score(s, b, h,
    i, j) and keep(b, h, i, j) on broadcast index grids; rows that keep no
    key give o = 0 (and no gradient)."""
    B, Hq, Nq, D = q.shape
    g = Hq // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    Nk = k.shape[2]
    b = torch.arange(B).view(B, 1, 1, 1)
    h = torch.arange(Hq).view(1, Hq, 1, 1)
    i = torch.arange(Nq).view(1, 1, Nq, 1)
    j = torch.arange(Nk).view(1, 1, 1, Nk)
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    if score is not None:
        s = score(s, b, h, i, j).expand_as(s)
    if keep is not None:
        s = s.masked_fill(~keep(b, h, i, j).expand_as(s), float("-inf"))
    mx = s.detach().amax(-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isinf(mx), torch.zeros_like(mx), mx))
    den = p.sum(-1, keepdim=True)
    return (p @ v) / torch.where(den > 0, den, torch.ones_like(den))


def close(name, got, want, like, tol=TOL):
    """got (a gradient or output) against the float64 want (relative error
    below `tol`); the dtype and shape of `like`."""
    if got is None:
        report(name, False, "no gradient")
        return
    err = float((got.detach().cpu().double() - want).abs().max()
                / want.abs().max().clamp_min(1e-30))
    same = got.shape == like.shape and got.dtype == like.dtype and got.device == like.device
    report(name, same and err < tol,
           f"shape {list(got.shape)} {got.dtype}, max_rel={err:.1e}")


def case(name, shape, score_mod=None, mask_mod=None, score=None, keep=None, params=None,
         q_scale=1.0):
    """flex_attention on fresh q, k, v of shape (B, Hq, Hkv, Nq, Nk, D),
    loss = sum(out * dO); every gradient (q, k, v and the captured
    `params`, dict name -> tensor, that score_mod reads) against the float64
    reference, whose `score` gets the float64 params after the indices."""
    params = params or {}
    B, Hq, Hkv, Nq, Nk, D = shape
    q, k, v = rand(B, Hq, Nq, D, scale=q_scale), rand(B, Hkv, Nk, D), rand(B, Hkv, Nk, D)
    bm = attnc.create_block_mask(mask_mod, B, None, Nq, Nk, device=DEVICE) if mask_mod else None
    do = rand(B, Hq, Nq, D).detach()

    def loss(q, k, v):
        o = attnc.flex_attention(q, k, v, score_mod=score_mod, block_mask=bm,
                                 enable_gqa=Hq != Hkv)
        return (o.float() * do.float()).sum(), o

    fn = torch.compile(loss) if COMPILE else loss
    total, o = fn(q, k, v)
    total.backward()
    leaves = [t.detach().cpu().double().requires_grad_() for t in (q, k, v, *params.values())]
    ref_score = None
    if score is not None:
        def ref_score(s, b, h, i, j):
            return score(s, b, h, i, j, *leaves[3:])
    ref = reference(*leaves[:3], ref_score, keep)
    (ref * do.cpu().double()).sum().backward()
    close(f"{name} out", o, ref.detach(), q)
    for n, (what, t, leaf) in enumerate(zip(("dq", "dk", "dv", *params),
                                            (q, k, v, *params.values()), leaves)):
        close(f"{name} {what}", t.grad, leaf.grad, t, TOL if n < 3 else CAPTURE_TOL)


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def masks_and_mods():
    case("causal", (2, 4, 4, 130, 130, 64), mask_mod=causal, keep=lambda b, h, i, j: i >= j)

    def softcap(score, b, h, q_idx, kv_idx):
        return 20.0 * torch.tanh(score / 20.0)

    # Scores large enough that tanh' matters (q scaled up).
    case("softcap, Nq != Nk", (1, 4, 4, 67, 150, 64), score_mod=softcap,
         score=lambda s, b, h, i, j: 20.0 * torch.tanh(s / 20.0), q_scale=30.0)

    n = 96
    bias = rand(4, 2 * n - 1, dtype=torch.float32)

    def relative(score, b, h, q_idx, kv_idx):
        return score + bias[h, q_idx - kv_idx + n - 1]

    case("relative bias table + causal", (2, 4, 4, n, n, 64), score_mod=relative,
         mask_mod=causal,
         score=lambda s, b, h, i, j, t: s + t[h, i - j + n - 1],
         keep=lambda b, h, i, j: i >= j, params={"dbias": bias})

    slopes = rand(8, scale=0.5, dtype=torch.float64)  # float64: its gradient too

    def alibi(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)

    case("alibi slopes (float64 capture), GQA 8:2", (2, 8, 2, 77, 120, 64), score_mod=alibi,
         score=lambda s, b, h, i, j, t: s + t[h] * (j - i), params={"dslopes": slopes})


def ragged_and_documents():
    lengths = torch.tensor([0, 33, 90]).to(DEVICE)  # batch 0 sees no key: empty rows

    def padding(score, b, h, q_idx, kv_idx):
        return torch.where(kv_idx < lengths[b], score, -float("inf"))

    ln = lengths.cpu()
    case("per-batch key lengths, empty rows", (3, 4, 4, 50, 90, 64), score_mod=padding,
         keep=lambda b, h, i, j: j < ln[b])

    doc = torch.sort(torch.randint(0, 4, (120,), generator=gen)).values.to(DEVICE)
    doc_bias = rand(4, 4, dtype=torch.float32)

    def per_document(score, b, h, q_idx, kv_idx):
        return score + doc_bias[h, doc[kv_idx]]

    def earlier_documents(b, h, q_idx, kv_idx):
        return doc[q_idx] >= doc[kv_idx]

    dc = doc.cpu()
    case("bias indexed by integer document ids, document mask", (1, 4, 4, 120, 120, 64),
         score_mod=per_document, mask_mod=earlier_documents,
         score=lambda s, b, h, i, j, t: s + t[h, dc[j]],
         keep=lambda b, h, i, j: dc[i] >= dc[j], params={"ddoc_bias": doc_bias})


class RelativeBias(torch.nn.Module):
    """A learned bias table as an nn.Parameter, read through self."""

    def __init__(self, heads, n):
        super().__init__()
        self.n = n
        self.table = torch.nn.Parameter(torch.zeros(heads, 2 * n - 1, device=DEVICE))

    def forward(self, q, k, v):
        def mod(score, b, h, q_idx, kv_idx):
            return score + self.table[h, q_idx - kv_idx + self.n - 1]
        return attnc.flex_attention(q, k, v, score_mod=mod)


def module_parameter():
    """An optimizer step moves the table: its gradient is the sum of dS over
    the diagonals, compared with the float64 reference."""
    m = RelativeBias(4, 64)
    with torch.no_grad():
        m.table.copy_(torch.rand(4, 127, generator=gen).to(DEVICE) - 0.5)
    q, k, v = rand(2, 4, 64, 64), rand(2, 4, 64, 64), rand(2, 4, 64, 64)
    m(q, k, v).float().pow(2).sum().backward()
    leaves = [t.detach().cpu().double().requires_grad_() for t in (q, k, v, m.table)]
    ref = reference(*leaves[:3], lambda s, b, h, i, j: s + leaves[3][h, i - j + 63])
    ref.pow(2).sum().backward()
    close("nn.Parameter bias table dtable", m.table.grad, leaves[3].grad, m.table)
    before = m.table.detach().clone()
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    report("optimizer step moves the table", bool((m.table.detach() != before).any()))


def reuse_and_no_grad():
    counts = [attnc.flex_stats()["kernel_compiles"]]
    for n in (40, 70, 70):
        q = rand(1, 4, n, 32)
        attnc.flex_attention(q, q, q, block_mask=attnc.create_block_mask(
            causal, None, None, n, n, device=DEVICE)).sum().backward()
        counts.append(attnc.flex_stats()["kernel_compiles"])
    report("no recompile across N (forward + backward kernels)",
           counts[1] - counts[0] == 2 and counts[1] == counts[-1], f"kernel_compiles {counts}")
    q = rand(1, 4, 32, 64)
    with torch.no_grad():
        o = attnc.flex_attention(q, q, q)
    report("no_grad: no graph", not o.requires_grad)
    table = rand(4, 8, dtype=torch.float32)
    x = rand(1, 4, 32, 64).detach()
    o = attnc.flex_attention(x, x, x, score_mod=lambda s, b, h, i, j: s + table[h, 0])
    o.sum().backward()
    if not CUDA:
        qb = rand(1, 4, 32, 64, dtype=torch.bfloat16)
        attnc.flex_attention(qb, qb, qb).float().sum().backward()
        report("bf16 CPU tensors get bf16 gradients",
               qb.grad is not None and qb.grad.dtype == torch.bfloat16)
    report("only a captured table requires grad", table.grad is not None and o.requires_grad,
           f"table.grad {None if table.grad is None else list(table.grad.shape)}")


def expect_error(name, fn, words):
    try:
        fn()
        report(name, False, "no AttncError")
    except attnc.AttncError as e:
        report(name, all(w in str(e) for w in words), str(e).split("\n")[0])


def errors():
    q = rand(1, 4, 32, 64)

    def lse_loss():
        o, lse = attnc.flex_attention(q, q, q, return_lse=True)
        (o.sum() + lse.sum()).backward()
    expect_error("a loss that reads lse is refused", lse_loss, ["lse", "detach"])
    o, lse = attnc.flex_attention(q, q, q, return_lse=True)
    q.grad = None
    (o.sum() + lse.detach().sum()).backward()
    report("return_lse with lse detached", q.grad is not None and lse.requires_grad)

    def double_backward():
        o = attnc.flex_attention(q, q, q)
        g, = torch.autograd.grad(o.sum(), q, create_graph=True)
        g.sum().backward()
    expect_error("double backward refused", double_backward, ["double backward"])


def main():
    if COMPILE and not (CUDA and hasattr(torch.library, "custom_op")):
        print(f"UNSUPPORTED: --compile needs --cuda and torch >= 2.4 (torch {torch.__version__})")
        return 0
    masks_and_mods()
    ragged_and_documents()
    module_parameter()
    reuse_and_no_grad()
    if not COMPILE:
        errors()
    print(f"FAILURES {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
