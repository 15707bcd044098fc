"""Paged KV caches on the GPU (issue 20): attnc's paged kernels (attn-aot on
bench/decode/decode_paged*.mlir and prefill_paged64.mlir, built by
bench/build_decode.sh) against attnc's contiguous-cache kernels and PyTorch
SDPA (cuDNN and flash backends) on the contiguous cache the pages hold, in
one process. bf16, d = 128, 32 query heads on 8 kv heads.

The pool holds B * M pages in a random order (the block table is a
permutation), so no two neighbouring keys share a page past its end. Every
case is checked against a float32 reference on the gathered contiguous
cache (fresh random inputs); times are CUDA-event medians over distinct
input sets (no call finds K and V in L2).

  python3 bench/paged_bench.py devcarry/decode/aot [OUT.json]
(OUT.json and OUT.md through decode_bench.finish and bench/results.py)
"""
import os
import sys

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))
sys.path.insert(0, here)
import attnc  # noqa: E402
from decode_bench import copy_bandwidth, finish, reference, rel  # noqa: E402
from timing import timeit  # noqa: E402

D, HQ, HKV = 128, 32, 8
DECODE = [  # name, B, Nq, Nk, page spec
    ("B64 Nk4k page16", 64, 1, 4096, "decode_paged16"),
    ("B64 Nk4k page64", 64, 1, 4096, "decode_paged64"),
    ("B16 Nk8k page16", 16, 1, 8192, "decode_paged16"),
    ("B1 Nk32k page16", 1, 1, 32768, "decode_paged16"),
    ("B1 Nk128k page16", 1, 1, 131072, "decode_paged16"),
    ("B8 Nq4 Nk8k page16", 8, 4, 8192, "decode_paged16"),
]
PREFILL = [  # name, B, Nq, Nk
    ("B4 Nq=Nk=4k", 4, 4096, 4096),
    ("B8 Nq512 Nk8k", 8, 512, 8192),
]


def paged_inputs(B, nq, nk, page, seed):
    """q, the k and v pools, the table, and the contiguous k and v."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    m = nk // page
    mk = lambda *s: torch.randn(*s, device="cuda", dtype=torch.bfloat16, generator=g)
    q = mk(B, HQ, nq, D)
    kp, vp = mk(B * m, HKV, page, D), mk(B * m, HKV, page, D)
    table = torch.randperm(B * m, device="cuda", generator=g).view(B, m).int()
    gather = lambda p: p[table.long()].permute(0, 2, 1, 3, 4).reshape(B, HKV, nk, D)
    return q, kp, vp, table, gather(kp), gather(vp)


def sdpa(backend, causal_end):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    be = getattr(SDPBackend, backend)

    def f(q, k, v):
        mask = None
        if causal_end and q.shape[2] != k.shape[2]:
            nq, nk = q.shape[2], k.shape[2]
            pos = torch.arange(nq, device=q.device)[:, None] + nk - nq
            mask = pos >= torch.arange(nk, device=q.device)[None, :]
        with sdpa_kernel(be):
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, enable_gqa=True,
                is_causal=causal_end and mask is None)
    return f


def run_case(rows, checks, kind, name, B, nq, nk, page, paged, dense, bw, causal):
    sets = [paged_inputs(B, nq, nk, page, 100 + i) for i in range(3)]
    q, kp, vp, table, k, v = paged_inputs(B, nq, nk, page, 7)
    o = paged(q, kp, vp, table)
    ro, _ = reference(q, k, v, window=nk if causal else None)
    err = rel(o, ro)
    checks.append({"case": name, "o_rel": err, "pass": err < 1e-2})
    print("PASS" if err < 1e-2 else "FAIL", kind, name, f"o_rel={err:.2e}")
    nbytes = 2 * (2 * B * HKV * nk * D + 2 * B * HQ * nq * D)
    flops = 4 * B * HQ * nq * nk * D * (0.5 if causal and nq == nk else 1.0)
    paths = {"attnc paged": lambda q, kp, vp, t, k, v: paged(q, kp, vp, t),
             "attnc contiguous": lambda q, kp, vp, t, k, v: dense(q, k, v)}
    for be in ("CUDNN_ATTENTION", "FLASH_ATTENTION"):
        f = sdpa(be, causal)
        paths["SDPA " + be.split("_")[0].lower()] = \
            lambda q, kp, vp, t, k, v, f=f: f(q, k, v)
    for pname, fn in paths.items():
        try:
            ms = timeit(fn, sets, warmup=5, reps=30)
        except Exception as ex:
            print(f"{pname} failed on {name}: {type(ex).__name__}: {str(ex)[:200]}")
            continue
        rows.append({"kind": kind, "case": name, "path": pname, "ms": ms,
                     "bw_frac": nbytes / (bw * 1e9) / (ms * 1e-3),
                     "tflops": flops / (ms * 1e-3) / 1e12})


def graph_check(checks, kern, B, nk, page):
    """A paged decode call (split-KV, workspace and combine) captured in a
    CUDA graph and replayed on new cache contents: equal to the eager call."""
    q, kp, vp, table, _, _ = paged_inputs(B, 1, nk, page, 11)
    kern(q, kp, vp, table)  # loads the module outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = kern(q, kp, vp, table)
    q2, kp2, vp2, table2, _, _ = paged_inputs(B, 1, nk, page, 12)
    for dst, src in ((q, q2), (kp, kp2), (vp, vp2), (table, table2)):
        dst.copy_(src)
    g.replay()
    torch.cuda.synchronize()
    err = rel(out, kern(q, kp, vp, table).float())
    ok = err == 0.0
    checks.append({"case": f"CUDA graph B{B} Nk{nk} page{page}", "o_rel": err, "pass": ok})
    print("PASS" if ok else "FAIL", "CUDA graph replay vs eager", f"o_rel={err:.2e}")


def merge_check(checks, kern):
    """Cascade attention: decode over two halves of the keys merged by
    attnc.merge_states (torch on the GPU) against one call over all keys."""
    g = torch.Generator(device="cuda").manual_seed(13)
    mk = lambda n: torch.randn(4, 32, n, D, device="cuda", dtype=torch.bfloat16, generator=g)
    q, k, v = mk(1), mk(8192), mk(8192)
    oa, la = kern(q, k[:, :, :3000], v[:, :, :3000])
    ob, lb = kern(q, k[:, :, 3000:], v[:, :, 3000:])
    o, lse = attnc.merge_states(oa, la, ob, lb)
    ro, rl = kern(q, k, v)
    err = rel(o, ro.float())
    lerr = (lse - rl).abs().max().item()
    ok = err < 1e-2 and lerr < 1e-3
    checks.append({"case": "merge_states B4 Nk8k split 3000", "o_rel": err,
                   "lse_max_abs": lerr, "pass": ok})
    print("PASS" if ok else "FAIL", "merge_states on the GPU", f"o_rel={err:.2e} lse={lerr:.2e}")


def main():
    aot = sys.argv[1]
    load = lambda s: attnc.load(os.path.join(aot, s)).kernels[s]
    kern = {s: load(s) for s in ("decode_gqa", "decode_paged16", "decode_paged64",
                                 "prefill_causal", "prefill_paged64", "decode_mha_lse")}
    bw = copy_bandwidth()
    dev = torch.cuda.get_device_name()
    print(f"{dev}, torch {torch.__version__}, copy bandwidth {bw:.0f} GB/s")
    rows, checks = [], []
    for name, B, nq, nk, spec in DECODE:
        page = int(spec.replace("decode_paged", ""))
        run_case(rows, checks, "decode", name, B, nq, nk, page, kern[spec],
                 kern["decode_gqa"], bw, causal=False)
    graph_check(checks, kern["decode_paged16"], 8, 4096, 16)
    merge_check(checks, kern["decode_mha_lse"])
    for name, B, nq, nk in PREFILL:
        run_case(rows, checks, "prefill", name, B, nq, nk, 64, kern["prefill_paged64"],
                 kern["prefill_causal"], bw, causal=True)
    finish("paged KV, bf16 d128 Hq32 Hkv8", dev, bw, rows, checks,
           [("kind", "kind", "{}"), ("case", "case", "{}"), ("path", "path", "{}"),
            ("ms", "ms", "{:.4f}"), ("fraction of copy bandwidth", "bw_frac", "{:.2f}"),
            ("TFLOP/s", "tflops", "{:.1f}")])


if __name__ == "__main__":
    main()
