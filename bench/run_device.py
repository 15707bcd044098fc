#!/usr/bin/env python3
"""attnc device harness (runs on the GPU machine; needs torch and the CUDA
driver, no MLIR; kernels are launched through python/attnc). Loads attn-aot directories through their manifests, checks each
kernel against a float32 reference on fresh random inputs, and times it
against PyTorch SDPA (flash and cuDNN backends, where the variant is one
they support) and FlexAttention (compiled, with the same score/mask
functions), all in one run: CUDA events, warm-up, medians, rotated inputs.

usage: run_device.py AOT_ROOT [--variants a,b] [--out DIR] [--check-only]
AOT_ROOT holds one attn-aot output directory per variant (named after it).
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timeit  # noqa: E402
import results as results_io  # noqa: E402
import specs  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "python"))
import attnc  # noqa: E402


class AotKernel:
    """An attn-aot directory's kernel through attnc.load (the same launch
    code users get), with the harness's calling convention."""

    def __init__(self, path):
        module = attnc.load(path)
        (self.kernel,) = module.kernels.values()
        self.meta = self.kernel.meta
        self.target = module.target
        self.dtype = {"bf16": torch.bfloat16, "f16": torch.float16}[self.meta["dtype"]]

    def __call__(self, q, k, v, o, caps, lse=None):
        self.kernel(q, k, v, *caps, out=o, lse=lse)


def reference(q, k, v, scale, score_mod, mask_mod, rows):
    """float32 attention for query rows `rows` of every (b, h)."""
    B, Hq, Nq, D = q.shape
    Hk = k.shape[1]
    kf = k.float().repeat_interleave(Hq // Hk, dim=1)
    vf = v.float().repeat_interleave(Hq // Hk, dim=1)
    out, lses = [], []
    dev = q.device
    hi = torch.arange(Hq, device=dev)[:, None, None]
    ii = rows[None, :, None]
    jj = torch.arange(k.shape[2], device=dev)[None, None, :]
    for b in range(B):
        s = torch.einsum("hrd,hnd->hrn", q[b][:, rows].float(), kf[b]) * scale
        bt = torch.tensor(b, device=dev)
        if score_mod is not None:
            s = score_mod(s, bt, hi, ii, jj)
        if mask_mod is not None:
            s = s.masked_fill(~mask_mod(bt, hi, ii, jj), float("-inf"))
        mx = s.amax(-1, keepdim=True)
        empty = torch.isinf(mx) & (mx < 0)
        p = torch.exp(s - torch.where(empty, torch.zeros_like(mx), mx))
        l = p.sum(-1, keepdim=True)
        o = torch.einsum("hrn,hnd->hrd", p, vf[b]) / torch.where(l > 0, l, torch.ones_like(l))
        out.append(o)
        lses.append(torch.where(empty, mx, mx + torch.log(l)).squeeze(-1))
    return torch.stack(out), torch.stack(lses)


def density(mask_mod, hq, nq, nk, dev):
    if mask_mod is None:
        return 1.0
    total = 0
    hi = torch.arange(hq, device=dev)[:, None, None]
    for r0 in range(0, nq, 512):
        ii = torch.arange(r0, min(nq, r0 + 512), device=dev)[None, :, None]
        jj = torch.arange(nk, device=dev)[None, None, :]
        total += mask_mod(torch.tensor(0, device=dev), hi, ii, jj).expand(hq, -1, -1).sum().item()
    return total / (hq * nq * nk)


def check(kern, name, B, nq, nk, hq, hkv, d, gen, layout="bhnd", rows_cap=512):
    dev = "cuda"
    dt = kern.dtype

    def make(h, n):
        if layout == "bhnd":
            return torch.randn(B, h, n, d, generator=gen, device=dev).to(dt)
        return torch.randn(B, n, h, d, generator=gen, device=dev).to(dt).transpose(1, 2)

    q, k, v = make(hq, nq), make(hkv, nk), make(hkv, nk)
    name = specs.base(name)
    caps = specs.captures(name, max(nq, nk), dev, torch.Generator().manual_seed(7))
    o = torch.full((B, hq, nq, d), float("nan"), device=dev, dtype=dt)
    lse = None
    if kern.meta["lse"]:
        lse = torch.full((B, hq, nq), float("nan"), device=dev, dtype=torch.float32)
    kern(q, k, v, o, caps, lse)
    torch.cuda.synchronize()
    rows = torch.arange(nq, device=dev)
    if nq > rows_cap:
        rows = torch.randperm(nq, generator=gen, device=dev)[:rows_cap].sort().values
    score_mod, mask_mod = specs.mods(name, hq, caps)
    ref, ref_lse = reference(q, k, v, kern.meta["scale"], score_mod, mask_mod, rows)
    got = o[:, :, rows].float()
    if torch.isnan(got).any():
        return float("nan"), "unwritten or NaN outputs"
    err = ((got - ref).norm() / ref.norm().clamp_min(1e-30)).item()
    if lse is not None:
        gl = lse[:, :, rows]
        if torch.isnan(gl).any():
            return float("nan"), "unwritten lse"
        inf_ref = torch.isinf(ref_lse)
        if not torch.equal(inf_ref, torch.isinf(gl)):
            return float("nan"), "lse -inf rows differ"
        if inf_ref.any() and got[inf_ref.unsqueeze(-1).expand_as(got)].abs().max() != 0:
            return float("nan"), "fully masked rows are not 0"
        fin = ~inf_ref
        if fin.any():
            lerr = ((gl[fin] - ref_lse[fin]).abs().max()
                    / ref_lse[fin].abs().max().clamp_min(1e-30)).item()
            err = max(err, lerr)
    return err, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--variants", default=",".join(specs.VARIANTS))
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seqlen", type=int, default=8192)
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--extra", action="store_true",
                    help="also check the correctness-only variants (f16, d=64, lse)")
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    # One FlexAttention compilation per variant: lift dynamo's recompile cap.
    import torch._dynamo as dynamo
    dynamo.config.cache_size_limit = 256
    dynamo.config.recompile_limit = 256
    dev_name = torch.cuda.get_device_name()
    gen = torch.Generator(device="cuda").manual_seed(1234)
    results = []
    names = args.variants.split(",")
    if args.extra:
        names += list(specs.EXTRA)
    for name in names:
        path = os.path.join(args.root, name)
        if not os.path.isdir(path):
            print(f"{name}: no AOT directory, skipped")
            continue
        kern = AotKernel(path)
        m = kern.meta
        hq, hkv, d = m["heads_q"], m["heads_kv"], m["head_dim"]
        tol = 1e-2 if m["dtype"] == "bf16" else 5e-3
        row = {"variant": name, "dtype": m["dtype"], "heads_q": hq, "heads_kv": hkv,
               "head_dim": d, "tile": [m["block_q"], m["block_kv"]]}
        row["tolerance"] = 1e-2 if m["dtype"] == "bf16" else 5e-3
        checks = []
        sizes = [(2, 1000, 1000, "bhnd"), (1, 333, 333, "bnhd"), (3, 64, 64, "bhnd"),
                 (1, 1, 1, "bhnd")]
        if specs.base(name) in ("full", "causal", "gqa", "strict_causal_lse"):
            sizes += [(2, 257, 1031, "bhnd"), (1, 700, 130, "bnhd")]
        sizes.append((args.batch, args.seqlen, args.seqlen, "bhnd"))
        ok = True
        for (B, nq, nk, lay) in sizes:
            err, why = check(kern, name, B, nq, nk, hq, hkv, d, gen, lay)
            passed = (not why) and err < tol
            ok &= passed
            checks.append({"B": B, "Nq": nq, "Nk": nk, "layout": lay, "rel_err": err,
                           "pass": passed, "why": why})
            print(f"{name:16s} check B={B} Nq={nq} Nk={nk} {lay}: rel_err={err:.2e} "
                  f"{'PASS' if passed else 'FAIL ' + why}", flush=True)
        row["checks"] = checks
        row["correct"] = ok
        if not args.check_only and name in specs.VARIANTS:
            B, N = args.batch, args.seqlen
            caps = specs.captures(name, N, "cuda", torch.Generator().manual_seed(7))
            score_mod, mask_mod = specs.mods(name, hq, caps)
            dens = density(mask_mod, hq, N, N, "cuda")
            flops = 4.0 * B * hq * N * N * d * dens
            sets = []
            for _ in range(3):
                q = torch.randn(B, hq, N, d, generator=gen, device="cuda").to(kern.dtype)
                k = torch.randn(B, hkv, N, d, generator=gen, device="cuda").to(kern.dtype)
                v = torch.randn(B, hkv, N, d, generator=gen, device="cuda").to(kern.dtype)
                o = torch.empty(B, hq, N, d, device="cuda", dtype=kern.dtype)
                sets.append((q, k, v, o))
            t = {"attnc": timeit(lambda q, k, v, o: kern(q, k, v, o, caps), sets)}
            causal = name in ("causal", "gqa")
            if name in ("full", "causal", "gqa"):
                from torch.nn.attention import SDPBackend, sdpa_kernel
                for label, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION),
                                  ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
                    def run(q, k, v, o, be=be):
                        with sdpa_kernel([be]):
                            return F.scaled_dot_product_attention(
                                q, k, v, is_causal=causal, enable_gqa=hq != hkv)
                    try:
                        t[label] = timeit(run, sets)
                    except Exception as ex:  # backend unavailable for this shape
                        t[label] = None
                        print(f"  {label}: unavailable ({type(ex).__name__}: {ex})"[:200])
            if not args.no_flex:
                try:
                    from torch.nn.attention.flex_attention import (create_block_mask,
                                                                   flex_attention)
                    flex = torch.compile(flex_attention, dynamic=False)
                    bm = (create_block_mask(mask_mod, None, None, N, N, device="cuda")
                          if mask_mod is not None else None)
                    t["flex"] = timeit(lambda q, k, v, o: flex(
                        q, k, v, score_mod=score_mod, block_mask=bm,
                        enable_gqa=hq != hkv), sets)
                except Exception as ex:
                    t["flex"] = None
                    print(f"  flex: unavailable ({type(ex).__name__}: {ex})"[:300])
            row["density"] = dens
            row["B"], row["N"] = B, N
            row["ms"] = t
            row["tflops"] = {kk: (flops / (vv * 1e-3) / 1e12 if vv else None)
                             for kk, vv in t.items()}
            print(f"{name:16s} B={B} N={N} density={dens:.3f} " + " ".join(
                f"{kk}={vv:.3f}ms/{row['tflops'][kk]:.0f}TF" if vv else f"{kk}=n/a"
                for kk, vv in t.items()), flush=True)
        results.append(row)

    meta = results_io.metadata(device=dev_name)  # device, date, versions
    stamp = meta["date"]
    report = dict(meta)
    report.update({"device": dev_name, "date": stamp, "torch": torch.__version__,
                   "target": kern.target if results else None, "results": results})
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    lines = [f"# attnc benchmark: {dev_name}, {stamp}, torch {torch.__version__}", "",
             results_io.header(meta), "",
             "| variant | correct | density | attnc ms | attnc TF/s | FA2 (SDPA flash) TF/s "
             "| cuDNN TF/s | FlexAttention TF/s | attnc / FA2 | attnc / cuDNN | attnc / Flex |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "ms" not in r:
            lines.append(f"| {r['variant']} | {r['correct']} | | | | | | | | | |")
            continue
        tf = r["tflops"]
        f = lambda x: f"{x:.0f}" if x else "n/a"
        ratio = lambda a, b: f"{tf[a] / tf[b]:.2f}" if tf.get(a) and tf.get(b) else "n/a"
        lines.append(f"| {r['variant']} | {r['correct']} | {r['density']:.3f} | "
                     f"{r['ms']['attnc']:.3f} | {f(tf['attnc'])} | {f(tf.get('sdpa_flash'))} | "
                     f"{f(tf.get('sdpa_cudnn'))} | {f(tf.get('flex'))} | "
                     f"{ratio('attnc', 'sdpa_flash')} | {ratio('attnc', 'sdpa_cudnn')} | "
                     f"{ratio('attnc', 'flex')} |")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["correct"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
