"""Packed variable-length prefill on the GPU (issue 20): attnc's varlen
kernel (bench/decode/prefill_varlen.mlir through attn-aot, built by
bench/build_decode.sh) against, in one process and on the same data:
  - attnc's dense causal kernel on the batch padded to the longest
    sequence (what a user without varlen runs; TF/s counts useful work),
    and on an equal-length batch of about the same tokens (the TF/s the
    dense kernel reaches);
  - FlexAttention with a causal document mask on the packed tokens;
  - FlashAttention-2's varlen kernel (torch.ops.aten._flash_attention_
    forward with cumulative lengths), where the build exposes it.
bf16, d = 128, 32 query heads on 8 kv heads, causal within each sequence.

Correctness: a mix with sequences of length 0 and 1 against a float32
reference per sequence; the benchmark mix against SDPA per sequence.
Times are CUDA-event medians (bench/timing.py).

  python3 bench/varlen_bench.py devcarry/decode/aot [OUT.json]
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


def mix(n, lo, hi, seed):
    """`n` lengths, log-uniform in [lo, hi]."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g)
    lens = torch.exp(torch.log(torch.tensor(float(lo))) +
                     u * (torch.log(torch.tensor(float(hi))) -
                          torch.log(torch.tensor(float(lo)))))
    return [int(x) for x in lens.round()]


def packed(lens, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    t = sum(lens)
    mk = lambda h: torch.randn(1, h, t, D, device="cuda", dtype=torch.bfloat16, generator=g)
    cu = torch.zeros(len(lens) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(lens), 0)
    return mk(HQ), mk(HKV), mk(HKV), cu.cuda()


def pieces(x, cu, b):
    return x[:, :, int(cu[b]):int(cu[b + 1])]


def check_small(checks, kern):
    """Lengths 0 and 1, ragged ones and one past a tile, against float32."""
    lens = [0, 1, 37, 128, 129, 0, 300, 1, 64, 513]
    q, k, v, cu = packed(lens, 5)
    o = kern(q, k, v, cu, cu)
    worst = 0.0
    for b, n in enumerate(lens):
        if n == 0:
            continue
        ro, _ = reference(pieces(q, cu, b), pieces(k, cu, b), pieces(v, cu, b), window=n)
        worst = max(worst, rel(pieces(o, cu, b), ro))
    ok = worst < 1e-2
    checks.append({"case": "varlen lengths " + " ".join(map(str, lens)),
                   "o_rel_worst": worst, "pass": ok})
    print("PASS" if ok else "FAIL", "varlen small mix vs float32", f"o_rel_worst={worst:.2e}")


def check_against_sdpa(checks, kern, lens, q, k, v, cu):
    o = kern(q, k, v, cu, cu)
    worst = 0.0
    for b in range(len(lens)):
        qb, kb, vb = pieces(q, cu, b), pieces(k, cu, b), pieces(v, cu, b)
        r = F.scaled_dot_product_attention(qb, kb, vb, is_causal=True, enable_gqa=True)
        worst = max(worst, rel(pieces(o, cu, b), r.float()))
    ok = worst < 2e-2
    checks.append({"case": f"varlen {len(lens)} sequences vs SDPA", "o_rel_worst": worst,
                   "pass": ok})
    print("PASS" if ok else "FAIL", "varlen bench mix vs SDPA per sequence",
          f"o_rel_worst={worst:.2e}")


def flex_document(lens, t):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    doc = torch.repeat_interleave(torch.arange(len(lens), device="cuda"),
                                  torch.tensor(lens, device="cuda"))
    def mask_mod(b, h, i, j):
        return (doc[i] == doc[j]) & (i >= j)
    # _compile: the mask is evaluated block by block, never as a T x T tensor.
    bm = create_block_mask(mask_mod, 1, 1, t, t, device="cuda", _compile=True)
    flex = torch.compile(flex_attention, dynamic=False)
    return lambda q, k, v, cu: flex(q, k, v, block_mask=bm, enable_gqa=True)


def fa2_varlen(maxlen):
    op = torch.ops.aten._flash_attention_forward

    def f(q, k, v, cu):
        qt, kt, vt = (x[0].transpose(0, 1) for x in (q, k, v))
        return op(qt, kt, vt, cu, cu, maxlen, maxlen, 0.0, True, False)[0]
    return f


def time_path(rows, name, fn, sets, useful_flops, tokens):
    try:
        ms = timeit(fn, sets, warmup=3, reps=15)
    except Exception as ex:
        print(f"{name} failed: {type(ex).__name__}: {str(ex)[:300]}")
        return
    rows.append({"path": name, "ms": ms, "tokens": tokens,
                 "tflops": useful_flops / (ms * 1e-3) / 1e12})
    print(f"{name}: {ms:.3f} ms, {rows[-1]['tflops']:.1f} TF/s")


def main():
    aot = sys.argv[1]
    load = lambda s: attnc.load(os.path.join(aot, s)).kernels[s]
    varlen, dense = load("prefill_varlen"), load("prefill_causal")
    bw = copy_bandwidth()
    dev = torch.cuda.get_device_name()
    print(f"{dev}, torch {torch.__version__}")
    rows, checks = [], []
    check_small(checks, varlen)
    lens = mix(64, 128, 8192, 1)
    t, maxlen = sum(lens), max(lens)
    print(f"mix: {len(lens)} sequences, {t} tokens, {min(lens)}-{maxlen}")
    useful = sum(4 * HQ * n * n * D * 0.5 for n in lens)
    sets = [packed(lens, 100 + i) for i in range(2)]
    check_against_sdpa(checks, varlen, lens, *sets[0])
    time_path(rows, "attnc varlen", lambda q, k, v, cu: varlen(q, k, v, cu, cu), sets,
              useful, t)
    padded = [(torch.zeros(len(lens), HQ, maxlen, D, device="cuda", dtype=torch.bfloat16),
               torch.zeros(len(lens), HKV, maxlen, D, device="cuda", dtype=torch.bfloat16),
               torch.zeros(len(lens), HKV, maxlen, D, device="cuda", dtype=torch.bfloat16))]
    time_path(rows, f"attnc dense, padded to B{len(lens)} N{maxlen} (useful TF/s)",
              dense, padded, useful, t)
    del padded
    n_eq = 4096
    b_eq = max(1, t // n_eq)
    eq = [tuple(torch.randn(b_eq, h, n_eq, D, device="cuda", dtype=torch.bfloat16)
                for h in (HQ, HKV, HKV)) for _ in range(2)]
    time_path(rows, f"attnc dense, equal lengths B{b_eq} N{n_eq}", dense, eq,
              b_eq * 4 * HQ * n_eq * n_eq * D * 0.5, b_eq * n_eq)
    del eq
    try:
        time_path(rows, "FlexAttention, document mask", flex_document(lens, t), sets, useful, t)
    except Exception as ex:
        print("FlexAttention unavailable:", type(ex).__name__, str(ex)[:300])
    time_path(rows, "FA2 varlen (aten._flash_attention_forward)", fa2_varlen(maxlen),
              sets, useful, t)
    finish(f"varlen prefill, {len(lens)} sequences of {min(lens)}-{maxlen} tokens "
           f"({t} in all), causal, bf16 d128 Hq32 Hkv8", dev, bw, rows, checks,
           [("path", "path", "{}"), ("ms", "ms", "{:.3f}"), ("tokens", "tokens", "{}"),
            ("TFLOP/s (useful)", "tflops", "{:.1f}")])


if __name__ == "__main__":
    main()
