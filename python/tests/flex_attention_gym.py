"""Runs every mask_mod of attention-gym's attn_gym/masks and score_mod of
attn_gym/mods through attnc.flex_attention on the CPU (float32) against a
reference that evaluates the mod element by element in eager torch
(float64 softmax). Prints one row per mod: name | traced | matches | first
call (trace + compile + run).

usage: flex_attention_gym.py GYM_DIR [--gpu-compile]
  GYM_DIR: a checkout of the public attention-gym repository (outside this
  tree, or git-ignored: its code is not part of attnc). Needs torch (1.13
  works: the FlexAttention names attention-gym imports are shimmed).
  Not a lit test: attention-gym is not vendored. --gpu-compile: instead,
  compile each traced mod (bf16, d=64) for sm_80 and sm_90a (needs ptxas,
  no GPU) and print one line per mod and target.
"""
import sys
import time
import types

import torch

import attnc

GYM_DIR = ([a for a in sys.argv[1:] if not a.startswith("--")] or ["attention-gym"])[0]
# torch 1.13 has no flex_attention: a shim module with what attn_gym imports.
fa = types.ModuleType("torch.nn.attention.flex_attention")
fa._mask_mod_signature = fa._score_mod_signature = object
fa.and_masks, fa.or_masks = attnc.and_masks, attnc.or_masks
fa._vmap_for_bhqkv = None
fa.noop_mask = lambda b, h, q, kv: torch.ones((), dtype=torch.bool)
fa.BlockMask, fa.create_block_mask, fa.flex_attention = attnc.BlockMask, attnc.create_block_mask, attnc.flex_attention
att = types.ModuleType("torch.nn.attention"); att.flex_attention = fa
sys.modules["torch.nn.attention"] = att; sys.modules["torch.nn.attention.flex_attention"] = fa
for m in ("torch._inductor", "torch._inductor.lowering", "torch._inductor.virtualized"):
    sys.modules[m] = types.ModuleType(m)
sys.modules["torch._inductor.lowering"].make_pointwise = lambda *a, **k: (lambda f: f)
sys.modules["torch._inductor.lowering"].register_lowering = lambda *a, **k: (lambda f: f)
sys.modules["torch._inductor.virtualized"].ops = None
if not hasattr(torch.library, "custom_op"):
    torch.library.custom_op = lambda *a, **k: (lambda f: types.SimpleNamespace(register_fake=lambda g: g, __call__=f))
torch.ops.approx = types.SimpleNamespace(tanh="stub")
sys.path.insert(0, GYM_DIR)
u = types.ModuleType("attn_gym.utils"); u.visualize_attention_scores = None
u.cdiv = lambda a, b: (a + b - 1) // b
sys.modules["attn_gym.utils"] = u
from attn_gym.masks import *  # noqa
from attn_gym.masks.batchify import batchify_mask_mod
from attn_gym.masks.flamingo import generate_vision_cross_attention_mask_mod
from attn_gym.masks.svg import generate_spatial_head_mask_mod, generate_temporal_head_mask_mod
from attn_gym.masks.natten import generate_natten, generate_tiled_natten, generate_morton_natten
from attn_gym.masks.document_mask import length_to_offsets
from attn_gym.mods import generate_alibi_bias, generate_tanh_softcap
from attn_gym.mods.latent_attention import generate_mla_rope_score_mod

N, H, D = 128, 2, 32
offsets = length_to_offsets([30, 50, 48], "cpu")
intervals = torch.tensor([[0, 40], [30, 100]])
qpe, kpe = torch.randn(1, H, N, 8), torch.randn(1, 1, N, 8)
masks = {
    "causal": causal_mask,
    "sliding_window": generate_sliding_window(20),
    "prefix_lm": generate_prefix_lm_mask(16),
    "document_causal": generate_doc_mask_mod(causal_mask, offsets),
    "dilated_sliding_window": generate_dilated_sliding_window(16, 2),
    "natten": generate_natten(16, 8, 5, 3),
    "tiled_natten": generate_tiled_natten(16, 8, 5, 3, 4, 2),
    "morton_natten": generate_morton_natten(16, 8, 5, 3),
    "sta_2d": generate_sta_mask_mod_2d((8, 8), (4, 4), (2, 2), text_seq_len=64),
    "sta_3d": generate_sta_mask_mod_3d((2, 8, 8), (2, 4, 4), (1, 2, 2), text_seq_len=0),
    "batchify_causal": batchify_mask_mod(causal_mask, 32),
    "flamingo": generate_vision_cross_attention_mask_mod(intervals, 64),
    "svg_spatial": generate_spatial_head_mask_mod(16, 4, 28, 1, round_width=8),
    "svg_temporal": generate_temporal_head_mask_mod(16, 4, 28, 2),
}
mods = {
    "alibi": generate_alibi_bias(H),
    "softcap": generate_tanh_softcap(2),
    "mla_rope": generate_mla_rope_score_mod(qpe, kpe, H),
}
q, k, v = (torch.randn(1, H, N, D) for _ in range(3))
def reference(score_mod, mask_mod):
    s = (q.double() @ k.double().transpose(-1, -2)) / D ** 0.5
    keep = torch.ones(1, H, N, N, dtype=torch.bool)
    z = torch.tensor(0)
    torch.manual_seed(0)
    for h in range(H):
        for i in range(N):
            for j in range(N):
                hi, ii, jj = torch.tensor(h), torch.tensor(i), torch.tensor(j)
                if mask_mod is not None:
                    keep[0, h, i, j] = bool(mask_mod(z, hi, ii, jj))
                if score_mod is not None:
                    s[0, h, i, j] = float(score_mod(s[0, h, i, j].float(), z, hi, ii, jj))
    s = s.masked_fill(~keep, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return p @ v.double()


def gpu_compile():
    for name, fn in list(masks.items()) + list(mods.items()):
        is_mask = name in masks
        for target in ("sm_80", "sm_90a"):
            try:
                spec = attnc.trace(None if is_mask else fn, fn if is_mask else None, H=H, D=64,
                                   dtype="bf16")
                print(f"{name} {target} compiles: {attnc.compile(spec, target)}", flush=True)
            except Exception as e:
                print(f"{name} {target} FAILS: {str(e).splitlines()[0][:300]}", flush=True)


if "--gpu-compile" in sys.argv:
    gpu_compile()
    sys.exit(0)

rows = []
for name, fn in list(masks.items()) + list(mods.items()):
    is_mask = name in masks
    try:
        t = time.perf_counter()
        bm = attnc.create_block_mask(fn, 1, H, N, N, "cpu") if is_mask else None
        o = attnc.flex_attention(q, k, v, score_mod=None if is_mask else fn, block_mask=bm)
        first = time.perf_counter() - t
        ref = reference(None if is_mask else fn, fn if is_mask else None)
        err = float((o.double() - ref).abs().max() / ref.abs().max())
        rows.append((name, "yes", "yes" if err < 1e-4 else f"NO ({err:.1e})", f"{first*1e3:.0f} ms"))
    except Exception as e:
        rows.append((name, "NO", str(e).split("\n")[0][:200], ""))
print("mod | traced | matches | first call")
for r in rows:
    print(" | ".join(r))
