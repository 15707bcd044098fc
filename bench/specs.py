"""Benchmark variants: each is an attn spec (MLIR text, generated here for
the benchmark's head count and head dim) and the same variant written as
PyTorch score/mask functions, used for the float32 reference and for
FlexAttention. Keep the two halves of each entry in step."""

import math

WINDOW = 1024      # sliding window
PREFIX = 2048      # prefix-LM prefix
GRID_W = 128       # 2D neighborhood: tokens on a grid of width GRID_W
RADIUS = 7         # 2D neighborhood radius
SOFTCAP = 30.0
BLOCK = 128        # block-sparse layout granularity
DILATED = 2048     # dilated window (every second key within it)
BUCKETS = 32       # relative-position bias buckets (|i - j| clamped)
FRAME_H, FRAME_W = 32, 32  # 3D window: frames of FRAME_H x FRAME_W tokens,
WIN_T, WIN_S = 1, 3        # keys within WIN_T frames and WIN_S rows/columns
BIAS_HEADS = 16    # relative_bias: the bias table's heads (the spec's hq)


def _types(hq, hkv, d, dtype):
    t = lambda h: f"tensor<?x{h}x?x{d}x{dtype}>"
    return t(hq), t(hkv), t(hkv), t(hq)


def spec(name, hq=16, hkv=None, d=128, dtype="bf16", fname=None):
    """MLIR text of variant `name`."""
    hkv = hkv or hq
    if name == "gqa":
        hkv = hq // 4
    tq, tk, tv, to = _types(hq, hkv, d, dtype)
    caps, capargs, score, mask = "", "", "", ""
    causal = """      %causal = arith.cmpi uge, %i, %j : index\n"""
    if name == "full":
        pass
    elif name in ("causal", "gqa"):
        mask = causal + "      attn.yield %causal : i1\n"
    elif name == "strict_causal_lse":
        # j < i: row 0 sees no key (o = 0, lse = -inf); lse is returned.
        mask = """      %strict = arith.cmpi ugt, %i, %j : index
      attn.yield %strict : i1
"""
    elif name == "sliding_window":
        mask = causal + f"""      %w = arith.constant {WINDOW} : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi slt, %d, %w : index
      %m = arith.andi %causal, %near : i1
      attn.yield %m : i1
"""
    elif name == "prefix_lm":
        mask = causal + f"""      %p = arith.constant {PREFIX} : index
      %pre = arith.cmpi ult, %j, %p : index
      %m = arith.ori %pre, %causal : i1
      attn.yield %m : i1
"""
    elif name == "document_mask":
        capargs = ", %docs: tensor<?xi32>"
        caps = " captures(%docs : tensor<?xi32>)"
        mask = causal + """      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %m = arith.andi %same, %causal : i1
      attn.yield %m : i1
"""
    elif name == "block_sparse":
        capargs = ", %layout: tensor<?x?xi8>"
        caps = " captures(%layout : tensor<?x?xi8>)"
        mask = f"""      %bs = arith.constant {BLOCK} : index
      %z = arith.constant 0 : i8
      %bi = arith.divui %i, %bs : index
      %bj = arith.divui %j, %bs : index
      %x = tensor.extract %layout[%bi, %bj] : tensor<?x?xi8>
      %m = arith.cmpi ne, %x, %z : i8
      attn.yield %m : i1
"""
    elif name == "dilated_window":
        mask = causal + f"""      %w = arith.constant {DILATED} : index
      %c2 = arith.constant 2 : index
      %c0 = arith.constant 0 : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi slt, %d, %w : index
      %r = arith.remsi %d, %c2 : index
      %even = arith.cmpi eq, %r, %c0 : index
      %a = arith.andi %causal, %near : i1
      %m = arith.andi %a, %even : i1
      attn.yield %m : i1
"""
    elif name == "relative_bias":
        assert hq == BIAS_HEADS, "relative_bias: the bias table has BIAS_HEADS heads"
        capargs = f", %bias: tensor<{hq}x{BUCKETS}xf32>"
        caps = f" captures(%bias : tensor<{hq}x{BUCKETS}xf32>)"
        score = f"""      %last = arith.constant {BUCKETS - 1} : index
      %d = arith.subi %i, %j : index
      %a = math.absi %d : index
      %bucket = arith.minsi %a, %last : index
      %bv = tensor.extract %bias[%h, %bucket] : tensor<{hq}x{BUCKETS}xf32>
      %r = arith.addf %s, %bv : f32
      attn.yield %r : f32
"""
    elif name == "neighborhood_2d":
        mask = f"""      %w = arith.constant {GRID_W} : index
      %r = arith.constant {RADIUS} : index
      %ri = arith.divui %i, %w : index
      %ci = arith.remui %i, %w : index
      %rj = arith.divui %j, %w : index
      %cj = arith.remui %j, %w : index
      %dr = arith.subi %ri, %rj : index
      %dc = arith.subi %ci, %cj : index
      %adr = math.absi %dr : index
      %adc = math.absi %dc : index
      %okr = arith.cmpi sle, %adr, %r : index
      %okc = arith.cmpi sle, %adc, %r : index
      %m = arith.andi %okr, %okc : i1
      attn.yield %m : i1
"""
    elif name == "window_3d":
        mask = f"""      %fs = arith.constant {FRAME_H * FRAME_W} : index
      %w = arith.constant {FRAME_W} : index
      %rt = arith.constant {WIN_T} : index
      %rs = arith.constant {WIN_S} : index
      %ti = arith.divui %i, %fs : index
      %tj = arith.divui %j, %fs : index
      %pi = arith.remui %i, %fs : index
      %pj = arith.remui %j, %fs : index
      %yi = arith.divui %pi, %w : index
      %yj = arith.divui %pj, %w : index
      %xi = arith.remui %pi, %w : index
      %xj = arith.remui %pj, %w : index
      %dt = arith.subi %ti, %tj : index
      %dy = arith.subi %yi, %yj : index
      %dx = arith.subi %xi, %xj : index
      %adt = math.absi %dt : index
      %ady = math.absi %dy : index
      %adx = math.absi %dx : index
      %okt = arith.cmpi sle, %adt, %rt : index
      %oky = arith.cmpi sle, %ady, %rs : index
      %okx = arith.cmpi sle, %adx, %rs : index
      %m0 = arith.andi %okt, %oky : i1
      %m = arith.andi %m0, %okx : i1
      attn.yield %m : i1
"""
    elif name == "alibi":
        score = f"""      %c1 = arith.constant 1 : index
      %k8 = arith.constant {-8.0 / hq} : f32
      %h1 = arith.addi %h, %c1 : index
      %h1i = arith.index_cast %h1 : index to i64
      %h1f = arith.uitofp %h1i : i64 to f32
      %e = arith.mulf %h1f, %k8 : f32
      %slope = math.exp2 %e : f32
      %d = arith.subi %i, %j : index
      %di = arith.index_cast %d : index to i64
      %df = arith.sitofp %di : i64 to f32
      %pen = arith.mulf %slope, %df : f32
      %r = arith.subf %s, %pen : f32
      attn.yield %r : f32
"""
        mask = causal + "      attn.yield %causal : i1\n"
    elif name == "softcap":
        score = f"""      %cap = arith.constant {SOFTCAP} : f32
      %x = arith.divf %s, %cap : f32
      %t = math.tanh %x : f32
      %r = arith.mulf %t, %cap : f32
      attn.yield %r : f32
"""
        mask = causal + "      attn.yield %causal : i1\n"
    else:
        raise KeyError(name)
    body = f"  %o = attn.attention %q, %k, %v{caps}\n"
    if score:
        body += ("    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {\n"
                 + score + "    }\n")
    if mask:
        body += ("    mask(%b: index, %h: index, %i: index, %j: index) {\n"
                 + mask + "    }\n")
    fname = fname or name
    if name == "strict_causal_lse":
        tl = f"tensor<?x{hq}x?xf32>"
        body = body.replace("%o = attn.attention", "%o, %lse = attn.attention")
        body += f"    : {tq}, {tk}, {tv} -> {to}, {tl}\n"
        return (f"// Generated by bench/specs.py: {name}, {dtype}, {hq}:{hkv} heads, d={d}.\n"
                f"func.func @{fname}(%q: {tq}, %k: {tk}, %v: {tv}) -> ({to}, {tl}) {{\n"
                f"{body}  return %o, %lse : {to}, {tl}\n}}\n")
    body += f"    : {tq}, {tk}, {tv} -> {to}\n"
    return (f"// Generated by bench/specs.py: {name}, {dtype}, {hq}:{hkv} heads, d={d}.\n"
            f"func.func @{fname}(%q: {tq}, %k: {tk}, %v: {tv}{capargs}) -> {to} {{\n"
            f"{body}  return %o : {to}\n}}\n")


VARIANTS = ["full", "causal", "sliding_window", "dilated_window", "prefix_lm",
            "document_mask", "block_sparse", "neighborhood_2d", "window_3d", "alibi",
            "softcap", "relative_bias", "gqa"]


# ---------------------------------------------------------------- PyTorch side
def captures(name, n, device, gen):
    """Captured tensors of `name` for sequence length n (same for q and k)."""
    import torch
    if name == "document_mask":
        # A handful of documents of random lengths.
        docs = torch.zeros(n, dtype=torch.int32)
        if n < 2:
            return [docs.to(device)]
        cuts = torch.randint(1, n, (7,), generator=gen).sort().values
        for c in cuts.tolist():
            docs[c:] += 1
        return [docs.to(device)]
    if name == "block_sparse":
        nb = (n + BLOCK - 1) // BLOCK
        layout = (torch.rand(nb, nb, generator=gen) < 0.5).to(torch.int8)
        layout.fill_diagonal_(1)
        return [layout.to(device)]
    if name == "relative_bias":
        return [torch.randn(BIAS_HEADS, BUCKETS, generator=gen).to(device)]
    return []


def mods(name, hq, caps):
    """(score_mod, mask_mod) in FlexAttention's signature; None if absent."""
    import torch
    score_mod = mask_mod = None
    causal = lambda b, h, i, j: i >= j
    if name in ("causal", "gqa", "alibi", "softcap"):
        mask_mod = causal
    if name == "strict_causal_lse":
        mask_mod = lambda b, h, i, j: i > j
    if name == "sliding_window":
        mask_mod = lambda b, h, i, j: (i >= j) & (i - j < WINDOW)
    if name == "prefix_lm":
        mask_mod = lambda b, h, i, j: (j < PREFIX) | (i >= j)
    if name == "document_mask":
        docs = caps[0]
        mask_mod = lambda b, h, i, j: (docs[i] == docs[j]) & (i >= j)
    if name == "block_sparse":
        layout = caps[0]
        mask_mod = lambda b, h, i, j: layout[i // BLOCK, j // BLOCK] != 0
    if name == "dilated_window":
        mask_mod = lambda b, h, i, j: (i >= j) & (i - j < DILATED) & ((i - j) % 2 == 0)
    if name == "relative_bias":
        bias = caps[0]

        def score_mod(s, b, h, i, j):
            return s + bias[h, torch.clamp((i - j).abs(), max=BUCKETS - 1)]
    if name == "neighborhood_2d":
        mask_mod = lambda b, h, i, j: (
            ((i // GRID_W - j // GRID_W).abs() <= RADIUS)
            & ((i % GRID_W - j % GRID_W).abs() <= RADIUS))
    if name == "window_3d":
        fs = FRAME_H * FRAME_W

        def mask_mod(b, h, i, j):
            pi, pj = i % fs, j % fs
            return (((i // fs - j // fs).abs() <= WIN_T)
                    & ((pi // FRAME_W - pj // FRAME_W).abs() <= WIN_S)
                    & ((pi % FRAME_W - pj % FRAME_W).abs() <= WIN_S))
    if name == "alibi":
        def score_mod(s, b, h, i, j):
            slope = torch.exp2(-8.0 / hq * (h + 1).to(torch.float32))
            return s - slope * (i - j).to(torch.float32)
    if name == "softcap":
        def score_mod(s, b, h, i, j):
            return SOFTCAP * torch.tanh(s / SOFTCAP)
    return score_mod, mask_mod


# Correctness-only variants: other dtypes and head dims ("<variant>@<tag>").
EXTRA = {"causal@f16": dict(dtype="f16"), "full@d64": dict(hq=8, d=64),
         "document_mask@f16_d64": dict(dtype="f16", hq=8, d=64),
         "alibi@d64": dict(hq=8, d=64), "strict_causal_lse": {},
         "strict_causal_lse@f16": dict(dtype="f16"),
         "causal@d32": dict(d=32), "causal@d96": dict(d=96),
         "gqa@f16_d96": dict(dtype="f16", d=96)}


def base(name):
    return name.split("@")[0]


if __name__ == "__main__":
    import os
    import sys
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for v in VARIANTS:
        with open(os.path.join(out, v + ".mlir"), "w") as f:
            f.write(spec(v))
    for v, kw in EXTRA.items():
        fname = v.replace("@", "_")
        with open(os.path.join(out, v + ".mlir"), "w") as f:
            f.write(spec(base(v), fname=fname, **kw))
