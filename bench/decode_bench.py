"""Split-KV decode on the GPU (issue 20): attnc's kernels (attn-aot on the
specs of bench/decode, built by bench/build_decode.sh) against PyTorch SDPA
(cuDNN and flash backends), FlexAttention and, where importable, flash-attn
and FlashInfer, in one process. bf16, d = 128.

For every case: the time of one call (CUDA events, warm-up, median), the
bytes it must move (K, V, Q, O), the fraction of the device-to-device copy
bandwidth measured in the same run, and attnc's error against a float32
reference on fresh random inputs (o, and lse where the spec returns it).
attnc runs twice: its launcher's choice (the split-KV kernels for Nq <= 64)
and the main kernel alone (ATTNC_SPLIT_KV=0), plus a sweep of the split
count on the first case.

  python3 bench/decode_bench.py devcarry/decode/aot [OUT.json]
(OUT.json and OUT.md, the table with device, date and versions: bench/results.py)
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))
sys.path.insert(0, here)
import attnc  # noqa: E402
import results  # noqa: E402
from timing import timeit  # noqa: E402

CASES = [  # name, B, Hq, Hkv, Nq, Nk
    ("B1 Nk32k", 1, 32, 8, 1, 32768),
    ("B1 Nk128k", 1, 32, 8, 1, 131072),
    ("B16 Nk8k", 16, 32, 8, 1, 8192),
    ("B64 Nk4k", 64, 32, 8, 1, 4096),
    ("B1 Nq4 Nk32k", 1, 32, 8, 4, 32768),
    ("B8 Nq16 Nk8k", 8, 32, 8, 16, 8192),
]
D = 128
SOFTCAP = 30.0
WINDOW = 4096


def copy_bandwidth():
    """GB/s of a device-to-device copy of 1 GiB (bytes read + written)."""
    x = torch.empty(1 << 28, device="cuda", dtype=torch.float32)
    y = torch.empty_like(x)
    ms = timeit(lambda a, b: b.copy_(a), [(x, y)], warmup=3, reps=10)
    return 2 * x.numel() * 4 / (ms * 1e-3) / 1e9


def reference(q, k, v, softcap=None, window=None):
    """float32 o and lse, heads expanded for GQA; `window`: causal with the
    queries at the last Nq key positions, at most `window` keys back."""
    g = q.shape[1] // k.shape[1]
    kf = k.float().repeat_interleave(g, 1)
    vf = v.float().repeat_interleave(g, 1)
    s = q.float() @ kf.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    if window:
        nq, nk = q.shape[2], k.shape[2]
        pos = torch.arange(nq, device=q.device)[:, None] + nk - nq
        d = pos - torch.arange(nk, device=q.device)[None, :]
        s = s.masked_fill(~((d >= 0) & (d < window)), float("-inf"))
    return torch.softmax(s, -1) @ vf, torch.logsumexp(s, -1)


def rel(a, b):
    return ((a.float() - b).norm() / b.norm()).item()


def peers(hq, hkv):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    out = {}
    for name, be in (("SDPA cuDNN", SDPBackend.CUDNN_ATTENTION),
                     ("SDPA flash", SDPBackend.FLASH_ATTENTION)):
        def f(q, k, v, be=be):
            with sdpa_kernel(be):
                return F.scaled_dot_product_attention(q, k, v, enable_gqa=hq != hkv)
        out[name] = f
    try:
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
        out["FlexAttention"] = lambda q, k, v: flex(q, k, v, enable_gqa=hq != hkv)
    except Exception as e:  # pragma: no cover - depends on torch
        print("FlexAttention unavailable:", e)
    try:
        from flash_attn import flash_attn_with_kvcache

        def fa(q, k, v):
            return flash_attn_with_kvcache(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2))
        out["flash-attn"] = fa
    except Exception as e:
        print("flash-attn unavailable:", type(e).__name__, e)
    try:
        import flashinfer  # noqa: F401
        print("flashinfer importable (not wired in this bench)")
    except Exception as e:
        print("flashinfer unavailable:", type(e).__name__)
    return out


def inputs(B, hq, hkv, nq, nk, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    mk = lambda h, n: torch.randn(B, h, n, D, device="cuda", dtype=torch.bfloat16,
                                  generator=g)
    return mk(hq, nq), mk(hkv, nk), mk(hkv, nk)


def time_case(fn, B, hq, hkv, nq, nk):
    # Distinct inputs per call, so no call finds K and V in L2.
    sets = [inputs(B, hq, hkv, nq, nk, 100 + i) for i in range(3)]
    return timeit(fn, sets, warmup=5, reps=30)


def check(kern, spec, B, hq, hkv, nq, nk, seed):
    q, k, v = inputs(B, hq, hkv, nq, nk, seed)
    res = kern(q, k, v)
    o, lse = res if isinstance(res, tuple) else (res, None)
    ro, rl = reference(q, k, v, SOFTCAP if spec == "decode_softcap" else None,
                       WINDOW if spec == "decode_window" else None)
    err = {"o_rel": rel(o, ro), "o_max_abs": (o.float() - ro).abs().max().item()}
    if lse is not None:
        err["lse_max_abs"] = (lse - rl).abs().max().item()
    return err


def with_env(var, value, fn):
    old = os.environ.get(var)
    if value is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = value
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old


def finish(title, dev, bw, rows, checks, columns):
    """Prints the markdown table of `rows` (`columns`: (header, key, format))
    and the correctness count; if argv[2] is given, writes the JSON there and
    its markdown table beside it (.md) through bench/results.py (device,
    date, versions added); exits 1 if a check failed."""
    meta = results.metadata(device=dev)
    date = meta["date"]
    print(f"\n{title}, {dev}, torch {torch.__version__}, {date}; "
          f"copy bandwidth {bw:.0f} GB/s")
    print("\n".join(results.table(rows, columns)))
    fails = [c for c in checks if not c["pass"]]
    verdict = f"correctness: {len(checks) - len(fails)}/{len(checks)} PASS"
    print(f"\n{verdict}")
    if len(sys.argv) > 2:
        results.write(sys.argv[2], rows, title=f"{title}; copy bandwidth {bw:.0f} GB/s",
                      columns=columns, meta=meta, notes=[verdict],
                      fields={"device": dev, "torch": torch.__version__, "date": date,
                              "copy_gbps": bw, "checks": checks})
    sys.exit(1 if fails else 0)


def main():
    aot = sys.argv[1]
    kernels = {}
    for spec in ("decode_gqa", "decode_softcap", "decode_mha_lse", "decode_window"):
        kernels[spec] = attnc.load(os.path.join(aot, spec)).kernels[spec]
    bw = copy_bandwidth()
    dev = torch.cuda.get_device_name()
    print(f"{dev}, torch {torch.__version__}, copy bandwidth {bw:.0f} GB/s")
    rows, checks = [], []
    for ci, (name, B, hq, hkv, nq, nk) in enumerate(CASES):
        for spec, (sh, skv) in (("decode_gqa", (hq, hkv)), ("decode_softcap", (hq, hkv)),
                                ("decode_mha_lse", (32, 32)), ("decode_window", (hq, hkv))):
            for mode, env in (("split", None), ("main", "0")):
                e = with_env("ATTNC_SPLIT_KV", env,
                             lambda: check(kernels[spec], spec, B, sh, skv, nq, nk, 7 + ci))
                ok = e["o_rel"] < 1e-2 and e.get("lse_max_abs", 0) < 1e-2
                checks.append({"case": name, "spec": spec, "mode": mode, **e, "pass": ok})
                print(("PASS" if ok else "FAIL"), name, spec, mode, e)
        nbytes = 2 * (2 * B * hkv * nk * D + 2 * B * hq * nq * D)
        floor = nbytes / (bw * 1e9) * 1e3
        paths = {"attnc": kernels["decode_gqa"]}
        paths.update(peers(hq, hkv))
        for pname, fn in paths.items():
            try:
                ms = time_case(fn, B, hq, hkv, nq, nk)
            except Exception as ex:
                print(f"{pname} failed on {name}: {type(ex).__name__}: {str(ex)[:200]}")
                continue
            rows.append({"case": name, "path": pname, "ms": ms, "bytes": nbytes,
                         "floor_ms": floor, "bw_frac": floor / ms})
        ms = with_env("ATTNC_SPLIT_KV", "0",
                      lambda: time_case(kernels["decode_gqa"], B, hq, hkv, nq, nk))
        rows.append({"case": name, "path": "attnc main kernel (no split)", "ms": ms,
                     "bytes": nbytes, "floor_ms": floor, "bw_frac": floor / ms})
        for spec, label in (("decode_softcap", "attnc softcap"),
                            ("decode_window", "attnc causal window 4096")):
            ms = time_case(kernels[spec], B, hq, hkv, nq, nk)
            rows.append({"case": name, "path": label, "ms": ms, "bytes": nbytes,
                         "floor_ms": floor, "bw_frac": floor / ms})
        if ci == 0:
            for splits in ("8", "16", "32", "64", "128", "256"):
                ms = with_env("ATTNC_SPLITS", splits,
                              lambda: time_case(kernels["decode_gqa"], B, hq, hkv, nq, nk))
                rows.append({"case": name, "path": f"attnc splits={splits}", "ms": ms,
                             "bytes": nbytes, "floor_ms": floor, "bw_frac": floor / ms})
    finish("split-KV decode, bf16 d128", dev, bw, rows, checks,
           [("case", "case", "{}"), ("path", "path", "{}"), ("ms", "ms", "{:.4f}"),
            ("floor ms", "floor_ms", "{:.4f}"),
            ("fraction of copy bandwidth", "bw_frac", "{:.2f}")])

if __name__ == "__main__":
    main()
