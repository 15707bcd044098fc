"""attnc.flex_attention with torch: mods written with torch functions
(torch.where, torch.tanh, torch.exp, ..., dispatched to the tracer through
__torch_function__), captured torch tensors, against a float64 torch
reference computed in the test from index grids; torch-specific errors.

usage: test_flex_torch.py [--cuda]
  Without torch it prints `UNSUPPORTED: <why>` and exits 0 (lit marks the
  test UNSUPPORTED through the python-torch feature before that). --cuda:
  bf16 tensors on the GPU (the kernel compiled for the device's target),
  FlashAttention's bf16 tolerance against the float64 reference.
"""
import sys

from torch_checks import gen, torch  # exits with UNSUPPORTED without torch

import attnc  # noqa: E402

CUDA = "--cuda" in sys.argv
DEVICE = "cuda" if CUDA else "cpu"
DTYPE = torch.bfloat16 if CUDA else torch.float32
TOL = 2e-2 if CUDA else 1e-4
fails = 0


def report(name, ok, detail=""):
    global fails
    fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def rand(*shape):
    return (torch.rand(*shape, generator=gen) * 2 - 1).to(device=DEVICE, dtype=DTYPE)


def reference(q, k, v, score=None, keep=None):
    """float64 attention on the CPU with score(s, b, h, i, j) and keep(b, h,
    i, j) on broadcast index grids; empty rows give o = 0."""
    q, k, v = (x.detach().cpu().double() for x in (q, k, v))
    B, Hq, Nq, D = q.shape
    g = Hq // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    Nk = k.shape[2]
    b = torch.arange(B).view(B, 1, 1, 1)
    h = torch.arange(Hq).view(1, Hq, 1, 1)
    i = torch.arange(Nq).view(1, 1, Nq, 1)
    j = torch.arange(Nk).view(1, 1, 1, Nk)
    s = q @ k.transpose(-1, -2) / D ** 0.5
    if score is not None:
        s = score(s, b, h, i, j).expand_as(s)
    if keep is not None:
        s = s.masked_fill(~keep(b, h, i, j).expand_as(s), float("-inf"))
    mx = s.amax(-1, keepdim=True)
    mx = torch.where(torch.isinf(mx), torch.zeros_like(mx), mx)
    p = torch.exp(s - mx)
    den = p.sum(-1, keepdim=True)
    return (p @ v) / torch.where(den > 0, den, torch.ones_like(den))


def check(name, got, ref):
    got = got.detach().cpu().double()
    err = float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
    report(name, got.shape == ref.shape and err < TOL, f"shape {list(got.shape)}, max_rel={err:.1e}")


def run(name, B, Hq, Hkv, Nq, Nk, D, score_mod=None, mask_mod=None, score=None, keep=None):
    q, k, v = rand(B, Hq, Nq, D), rand(B, Hkv, Nk, D), rand(B, Hkv, Nk, D)
    bm = attnc.create_block_mask(mask_mod, B, None, Nq, Nk, device=DEVICE) if mask_mod else None
    out = attnc.flex_attention(q, k, v, score_mod=score_mod, block_mask=bm, enable_gqa=Hq != Hkv)
    report(f"{name} dtype", out.dtype == DTYPE and out.device.type == DEVICE,
           f"{out.dtype} on {out.device}")
    check(name, out, reference(q, k, v, score, keep))


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def numerics():
    doc = torch.sort(torch.randint(0, 5, (160,), generator=gen)).values.to(DEVICE)

    def document(b, h, q_idx, kv_idx):
        return torch.logical_and(doc[q_idx] == doc[kv_idx], q_idx >= kv_idx)

    docs = doc.cpu()
    run("document mask (captured torch ids)", 2, 4, 4, 160, 160, 64, mask_mod=document,
        keep=lambda b, h, i, j: (docs[i] == docs[j]) & (i >= j))

    slopes = torch.exp2(-8.0 * torch.arange(1, 9) / 8).to(DEVICE)

    def alibi(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)

    sl = slopes.cpu().double()
    run("alibi (captured torch slopes)", 1, 8, 8, 130, 130, 64, score_mod=alibi,
        mask_mod=causal, score=lambda s, b, h, i, j: s + sl[h] * (j - i),
        keep=lambda b, h, i, j: i >= j)

    def softcap(score, b, h, q_idx, kv_idx):
        return 20.0 * torch.tanh(score / 20.0)

    run("softcap torch.tanh, GQA 8:2", 2, 8, 2, 100, 140, 64, score_mod=softcap,
        score=lambda s, b, h, i, j: 20.0 * torch.tanh(s / 20.0))

    def where_exp(score, b, h, q_idx, kv_idx):
        far = torch.abs(q_idx - kv_idx) > 40
        return torch.where(far, -float("inf"),
                           score + torch.log(torch.exp(torch.clamp(score, -1.0, 1.0)) + 1.0))

    run("torch.where/abs/log/exp/clamp", 1, 4, 4, 120, 120, 64, score_mod=where_exp,
        score=lambda s, b, h, i, j: torch.where((i - j).abs() > 40, torch.tensor(-float("inf"),
                                                dtype=torch.float64),
                                                s + torch.log(torch.exp(s.clamp(-1, 1)) + 1)))

    def fills(score, b, h, q_idx, kv_idx):
        far = torch.div(q_idx - kv_idx, 7, rounding_mode="trunc") != 0
        return score.masked_fill(far, -float("inf")) + torch.zeros_like(score) + (h == 1)

    run("masked_fill, zeros_like, div trunc", 1, 4, 4, 100, 100, 64, score_mod=fills,
        score=lambda s, b, h, i, j: s.masked_fill(torch.div(i - j, 7, rounding_mode="trunc") != 0,
                                                  -float("inf")) + (h == 1))

    bias = rand(4, 32).float()

    def bucket(score, b, h, q_idx, kv_idx):
        return score + bias[h, torch.minimum(torch.abs(q_idx - kv_idx), torch.tensor(31))]

    bs = bias.cpu().double()
    run("relative bias torch.minimum", 1, 4, 4, 90, 90, 64, score_mod=bucket,
        score=lambda s, b, h, i, j: s + bs[h, torch.clamp((i - j).abs(), max=31)])


def no_recompile():
    before = attnc.flex_stats()["kernel_compiles"]
    for B, N in ((1, 64), (3, 200), (2, 333)):
        run(f"no recompile B={B} N={N}", B, 4, 4, N, N, 64, mask_mod=causal,
            keep=lambda b, h, i, j: i >= j)
    compiles = attnc.flex_stats()["kernel_compiles"] - before
    report("no recompile across B and N", compiles == 1, f"kernel_compiles +{compiles}")


def linear():
    """attnc.linear_attention with a torch feature map (elu + 1 through
    torch.where / torch.exp), normalized, against the float64 quadratic form."""
    q, k, v = rand(2, 4, 64, 64), rand(2, 4, 64, 64), rand(2, 4, 64, 64)

    def elu1(x):
        return torch.where(x > 0, x + 1.0, torch.exp(x))

    o = attnc.linear_attention(q, k, v, feature_map=elu1, normalize=True)
    qd, kd, vd = (x.detach().cpu().double() for x in (q, k, v))
    phi = lambda x: torch.where(x > 0, x + 1, torch.exp(x))  # noqa: E731
    a = (phi(qd) * 64 ** -0.5) @ phi(kd).transpose(-1, -2)
    a = a * torch.tril(torch.ones(64, 64, dtype=torch.float64))
    check("linear_attention, torch elu+1 map, normalized", o, (a @ vd) / a.sum(-1, keepdim=True))


def errors():
    def cumsum_mod(score, b, h, q_idx, kv_idx):
        return torch.cumsum(score, 0)  # LINE-cumsum

    try:
        attnc.trace(cumsum_mod, H=4, D=64)
        report("torch.cumsum refused", False, "no AttncError")
    except attnc.AttncError as e:
        line = [n for n, t in enumerate(open(__file__), 1) if t.rstrip().endswith("LINE-cumsum")][0]
        report("torch.cumsum refused, naming the line",
               "torch.cumsum" in str(e) and f"{__file__}:{line}:" in str(e), str(e).split("\n")[0])
    if not CUDA:
        q = rand(1, 4, 32, 64).requires_grad_()
        o = attnc.flex_attention(q, q, q)
        report("requires_grad: a differentiable result (test_flex_autograd.py)",
               o.requires_grad and o.grad_fn is not None)
        with torch.no_grad():
            o = attnc.flex_attention(q, q, q)
        report("no_grad runs", o.shape == q.shape)
        qb = rand(1, 4, 32, 64).bfloat16()
        report("bf16 CPU tensors give bf16", attnc.flex_attention(qb, qb, qb).dtype == torch.bfloat16)


def main():
    numerics()
    no_recompile()
    linear()
    errors()
    print(f"FAILURES {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
