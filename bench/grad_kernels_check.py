"""Device check of the attention backward kernels (convert-attn-to-gpu on an
attn.attention_grad) launched raw from their PTX, against PyTorch autograd
in float64 on fresh random inputs; optionally times them against PyTorch's
SDPA backward (flash and cuDNN) in the same run.

Not the product path (attn-run --backward --backend=cuda and the launch
library are): this isolates the kernels. Usage on the device machine:

  python3 bench/grad_kernels_check.py DIR [--time]

DIR holds <case>.ptx files made by bench/build_grad_kernels.sh.
"""

import argparse
import ctypes
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_driver as cd  # noqa: E402
from timing import timeit  # noqa: E402

# name -> (Hq, Hkv, D, Dv, mod, capture shape or None)
CASES = {
    "full": (4, 4, 64, 64, "full", None),
    "causal": (4, 4, 64, 64, "causal", None),
    "gqa": (8, 2, 64, 64, "causal", None),
    "softcap": (4, 4, 64, 64, "softcap", None),
    "relative_bias": (4, 4, 64, 64, "relbias", (4, 32)),
    "sliding_window": (4, 4, 64, 64, "window", None),
    "causal128": (4, 4, 128, 128, "causal", None),
    "full128": (16, 16, 128, 128, "full", None),
    "full64": (16, 16, 64, 64, "full", None),
    "causal64": (16, 16, 64, 64, "causal", None),
}


def reference(q, k, v, mod, bias, scale):
    """o and lse of the forward in the inputs' dtype (float64 here)."""
    hq, hkv = q.shape[1], k.shape[1]
    if hq != hkv:
        k = k.repeat_interleave(hq // hkv, dim=1)
        v = v.repeat_interleave(hq // hkv, dim=1)
    s = torch.einsum("bhid,bhjd->bhij", q, k) * scale
    nq, nk = q.shape[2], k.shape[2]
    i = torch.arange(nq, device=q.device)[:, None]
    j = torch.arange(nk, device=q.device)[None, :]
    keep = torch.ones(nq, nk, dtype=torch.bool, device=q.device)
    if mod in ("causal", "softcap"):
        keep = i >= j
    if mod == "window":
        keep = (i >= j) & (i - j < 64)
    if mod == "softcap":
        s = torch.tanh(s / 30.0) * 30.0
    if mod == "relbias":
        bucket = (i - j).abs().clamp(max=31)
        s = s + bias[:, bucket][None]
    s = s.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None])
    return torch.einsum("bhij,bhjd->bhid", p, v), lse


def memref_words(t):
    """A memref argument: allocated, aligned, offset, sizes, strides."""
    ptr = t.data_ptr()
    return [ptr, ptr, 0] + list(t.shape) + list(t.stride())


def flat_words(t):
    return [t.data_ptr(), t.data_ptr(), 0, t.numel(), 1]


def launch_pair(mod, dims, tensors, caps, dcaps, delta, B, nq, nk,
                which=("dq", "dkdv")):
    q, k, v, o, do, lse, dq, dk, dv = tensors
    words = []
    for t in (q, k, v, o, do, lse, dq, dk, dv):
        words += flat_words(t)
    for c in caps:
        words += memref_words(c)
    for c in dcaps:
        words += memref_words(c)
    words += flat_words(delta)
    words += [B, nq, nk]
    for t in (q, k, v, o, do, dq, dk, dv):
        words += list(t.stride()[:3])
    params = [ctypes.c_int64(w) for w in words]
    hq, hkv, bq, bkv = dims
    stream = torch.cuda.current_stream().cuda_stream
    for c in dcaps:
        c.zero_()
    if "dq" in which:
        cd.launch(mod["dq"], ((nq + bq - 1) // bq, hq, B),
                  (bq // 16 * 32, 1, 1), params, stream)
    if "dkdv" in which:
        cd.launch(mod["dkdv"], ((nk + bkv - 1) // bkv, hkv, B),
                  (bkv // 16 * 32, 1, 1), params, stream)


def run_case(name, ptx_dir, B, N, dtype=torch.bfloat16, seed=0):
    hq, hkv, d, dv, mod, cap = CASES[name]
    scale = 1.0 / math.sqrt(d)
    g = torch.Generator(device="cuda").manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, device="cuda", generator=g)
    q = rnd(B, hq, N, d).to(dtype)
    k = rnd(B, hkv, N, d).to(dtype)
    v = rnd(B, hkv, N, dv).to(dtype)
    do = rnd(B, hq, N, dv).to(dtype)
    bias = rnd(*cap) if cap else None
    # The reference: float64 autograd on the same (rounded) inputs.
    q64, k64, v64 = (x.double().requires_grad_() for x in (q, k, v))
    b64 = bias.double().requires_grad_() if cap else None
    o64, lse64 = reference(q64, k64, v64, mod, b64, scale)
    o64.backward(do.double())
    o = o64.detach().to(dtype).contiguous()
    lse = lse64.detach().float().contiguous()
    dq, dk, dv_ = (torch.empty_like(x) for x in (q, k, v))
    delta = torch.empty(B * hq * N, device="cuda", dtype=torch.float32)
    caps = [bias] if cap else []
    dcaps = [torch.zeros(cap, device="cuda")] if cap else []
    image = open(os.path.join(ptx_dir, name + ".ptx"), "rb").read() + b"\0"
    m = cd.load_module(image)
    fns = {k_: cd.get_function(m, f"{name}_backward_{k_}")
           for k_ in ("dq", "dkdv")}
    meta = json.load(open(os.path.join(ptx_dir, name + ".json")))
    dims = (hq, hkv, meta["block_q"], meta["block_kv"])
    tensors = (q, k, v, o, do, lse, dq, dk, dv_)
    launch_pair(fns, dims, tensors, caps, dcaps, delta, B, N, N)
    torch.cuda.synchronize()
    refs = {"dq": q64.grad, "dk": k64.grad, "dv": v64.grad}
    got = {"dq": dq, "dk": dk, "dv": dv_}
    if cap:
        refs["dcapture0"] = b64.grad
        got["dcapture0"] = dcaps[0]
    base = baseline_grads(q, k, v, do, mod, bias, scale, dtype)
    ok = True
    for key, ref in refs.items():
        err = (got[key].double() - ref).abs().max().item()
        mx = ref.abs().max().item()
        rel = err / mx if mx > 0 else err
        finite = bool(torch.isfinite(got[key]).all())
        # FlashAttention's criterion: at most twice the error of PyTorch's
        # math path in the same dtype (plus a small absolute floor).
        berr = (base[key].double() - ref).abs().max().item()
        good = finite and rel <= 2e-2 and err <= 2 * berr + 1e-3 * mx
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} {name} B={B} N={N} {key} "
              f"max_abs_err={err:.3e} max_abs_ref={mx:.3e} rel={rel:.3e} "
              f"torch_bf16_err={berr:.3e} ratio={err / max(berr, 1e-30):.2f}")
        NUMERICS.append({"case": name, "B": B, "N": N, "grad": key,
                         "attnc_err": err, "torch_math_err": berr,
                         "max_ref": mx})
    return ok, (fns, dims, tensors, caps, dcaps, delta)


NUMERICS = []


def baseline_grads(q, k, v, do, mod, bias, scale, dtype):
    """Gradients of PyTorch's eager math path (the reference's ops:
    matmuls, softmax) in `dtype` on the same inputs."""
    qb, kb, vb = (x.detach().clone().requires_grad_() for x in (q, k, v))
    bb = bias.to(dtype).requires_grad_() if bias is not None else None
    o, _ = reference(qb, kb, vb, mod, bb, scale)
    o.backward(do)
    out = {"dq": qb.grad, "dk": kb.grad, "dv": vb.grad}
    if bb is not None:
        out["dcapture0"] = bb.grad
    return out


def time_case(name, ptx_dir, B, N):
    hq, hkv, d, dv, mod, cap = CASES[name]
    _, (fns, dims, tensors, caps, dcaps, delta) = run_case(name, ptx_dir, B, N)

    def ours():
        launch_pair(fns, dims, tensors, caps, dcaps, delta, B, N, N)

    q, k, v, o, do = tensors[:5]
    causal = mod != "full"
    qs, ks, vs = (x.detach().clone().requires_grad_() for x in (q, k, v))
    res = {"case": name, "B": B, "N": N, "H": hq, "D": d,
           "attnc_ms": bench(ours)}
    for part in ("dq", "dkdv"):
        res[part + "_ms"] = bench(lambda: launch_pair(
            fns, dims, tensors, caps, dcaps, delta, B, N, N, (part,)))
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for label, be in (("flash", SDPBackend.FLASH_ATTENTION),
                      ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel(be):
                out = torch.nn.functional.scaled_dot_product_attention(
                    qs, ks, vs, is_causal=causal, enable_gqa=hq != hkv)

                def theirs():
                    torch.autograd.grad(out, (qs, ks, vs), do,
                                        retain_graph=True)
                res[label + "_ms"] = bench(theirs)
        except Exception as e:  # a backend may not support the case
            res[label + "_ms"] = None
            res[label + "_error"] = str(e)[:120]
    if FLEX:
        res.update(time_flex(qs, ks, vs, do, causal))
    flops = 2.5 * 4 * B * hq * N * N * d * (0.5 if causal else 1.0)
    for key in ("attnc_ms", "flash_ms", "cudnn_ms", "flex_ms"):
        if res.get(key):
            res[key.replace("_ms", "_tflops")] = flops / res[key] / 1e9
    print(json.dumps(res))
    return res


FLEX = False


def time_flex(qs, ks, vs, do, causal):
    """FlexAttention's backward (torch.compile'd, block mask for causal)."""
    try:
        from torch.nn.attention.flex_attention import (create_block_mask,
                                                       flex_attention)
        flex = torch.compile(flex_attention)
        B, H, N = qs.shape[0], qs.shape[1], qs.shape[2]
        mask = None
        if causal:
            mask = create_block_mask(lambda b, h, q, kv: q >= kv, None, None,
                                     N, N)
        out = flex(qs, ks, vs, block_mask=mask)

        def theirs():
            torch.autograd.grad(out, (qs, ks, vs), do, retain_graph=True)
        return {"flex_ms": bench(theirs)}
    except Exception as e:  # report, do not fail the run
        return {"flex_ms": None, "flex_error": str(e)[:160]}


def bench(fn, warmup=5, reps=20):
    """The median ms of fn() (bench/timing.py: CUDA events, warm-up)."""
    return timeit(fn, [()], warmup=warmup, reps=reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--flex", action="store_true",
                    help="also time FlexAttention's backward")
    args = ap.parse_args()
    global FLEX
    FLEX = args.flex
    torch.zeros(1, device="cuda")  # a current context for the driver calls
    ok = True
    for name in CASES:
        if not os.path.exists(os.path.join(args.dir, name + ".ptx")):
            continue
        for B, N in ((2, 197), (1, 64), (1, 1000)):
            if args.time and name.endswith("64"):
                break
            try:
                good, _ = run_case(name, args.dir, B, N)
            except Exception as e:
                print(f"FAIL {name} B={B} N={N}: {e}")
                good = False
            ok &= good
    results = []
    if args.time:
        for name, B, N in (("full128", 2, 4096), ("causal128", 2, 4096),
                           ("full64", 2, 4096), ("causal64", 2, 4096),
                           ("relative_bias", 2, 1024)):
            if os.path.exists(os.path.join(args.dir, name + ".ptx")):
                results.append(time_case(name, args.dir, B, N))
    if NUMERICS:
        worst = {}
        for r in NUMERICS:
            ratio = r["attnc_err"] / max(r["torch_math_err"], 1e-30)
            key = (r["case"], r["grad"])
            worst[key] = max(worst.get(key, 0.0), ratio)
        print("numerics: worst attnc / torch-bf16-math error ratio per case "
              "and gradient:", json.dumps({f"{c}.{g}": round(x, 2)
                                           for (c, g), x in worst.items()}))
    if args.json:
        import datetime
        json.dump({"device": torch.cuda.get_device_name(),
                   "date": datetime.date.today().isoformat(),
                   "torch": torch.__version__,
                   "results": results, "numerics": NUMERICS},
                  open(args.json, "w"), indent=1)
    print("ALL PASS" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
