"""Runs every mask_mod of attention-gym's attn_gym/masks and score_mod of
attn_gym/mods through attnc.flex_attention on the CPU (float32) against a
reference that evaluates the mod element by element in eager torch
(float64 softmax). Prints one row per mod: name | traced | matches | first
call (trace + compile + run).

usage: flex_attention_gym.py GYM_DIR [--backward] [--gpu-compile] [--dump-specs DIR]
       flex_attention_gym.py --specs DIR --gpu-compile [--backward]
  GYM_DIR: a checkout of the public attention-gym repository (outside this
  tree, or git-ignored: its code is not part of attnc). Needs torch (1.13
  works: the FlexAttention names attention-gym imports are shimmed).
  Not a lit test by itself: attention-gym is not vendored
  (test/Python/flex_gym_backward.test runs it where ATTNC_GYM_DIR names a
  checkout).
  --backward: gradients instead of the forward check. For each mod, on CPU
  float32 tensors that require grad, loss = (out * dO).sum() through
  attnc.flex_attention; dq, dk, dv and the gradients of the captured float
  tensors that the score_mod reads (mla_rope's query_rope and key_rope)
  against torch float64 autograd of the same element-by-element reference.
  Shapes: B=2, H=4, Nq=Nk=77; GQA 4:2; Nq=77, Nk=100 (D=64). One
  PASS/FAIL line per mod and gradient (max relative error over the shapes,
  tolerance 1e-4); a mod whose backward attnc refuses prints UNSUPPORTED
  with the AttncError; `FAILURES <n>` at the end.
  --gpu-compile: instead, compile each traced mod (bf16, H=2, d=64) for
  sm_80 and sm_90a (needs ptxas, no GPU) and print one line per mod and
  target; with --backward, the backward kernels (<f>_backward, what
  flex_attention's autograd runs), each checked for its cubin and
  assembled again by ptxas when one is found.
  --dump-specs DIR: write those bf16 specs to DIR/<mod>.mlir (the inputs
  of test/Python/flex_gym_gpu_compile.test). --specs DIR: compile the specs
  of DIR instead of tracing (no torch, no attention-gym needed).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("gym_dir", nargs="?", default="attention-gym")
ap.add_argument("--gpu-compile", action="store_true")
ap.add_argument("--backward", action="store_true")
ap.add_argument("--dump-specs")
ap.add_argument("--specs")
ap.add_argument("--only", help="comma-separated mod names")
ap.add_argument("--seed", type=int, help="--backward's inputs (default: random, printed)")
ARGS = ap.parse_args()

# The 17 mods, in the order of the output.
NAMES = ["causal", "sliding_window", "prefix_lm", "document_causal", "dilated_sliding_window",
         "natten", "tiled_natten", "morton_natten", "sta_2d", "sta_3d", "batchify_causal",
         "flamingo", "svg_spatial", "svg_temporal", "alibi", "softcap", "mla_rope"]
if ARGS.only:
    NAMES = [n for n in NAMES if n in ARGS.only.split(",")]
TARGETS = ("sm_80", "sm_90a")
failures = 0


def ptxas_path():
    cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    p = shutil.which("ptxas") or os.path.join(cuda_home, "bin", "ptxas")
    return p if os.path.exists(p) else None


def gpu_compile_one(name, spec, function, target):
    """attnc.compile(spec, target, function=...) for a GPU target (the
    compiler runs ptxas into the cache entry); with --backward, the cubin is
    checked and the PTX assembled again by ptxas. Prints one line."""
    global failures
    try:
        kernel = attnc.compile(spec, target, function=function)
        line = f"{name} {target} compiles: {kernel}"
        if ARGS.backward:
            d = kernel.signature.get("directory", "")
            files = os.listdir(d) if d and os.path.isdir(d) else []
            ptx = [f for f in files if f.endswith(".ptx")]
            cubin = [f for f in files if f.endswith(".cubin")]
            grads = " ".join(f"{p['name']}~{kernel.names[i]}"
                             for p, i in zip(kernel.outputs, kernel._out_like))
            log = "".join(open(os.path.join(d, f)).read() for f in files
                          if f.endswith(".ptxas.txt"))
            entries = re.findall(r"Compiling entry function '(\w+)'", log)
            spills = sum(int(x) for x in re.findall(r"(\d+) bytes spill stores", log))
            if kernel.kind != "attention_grad" or len(ptx) != 1 or len(cubin) != 1:
                raise attnc.AttncError(f"not a backward kernel with a cubin: {kernel.kind}, "
                                       f"files {sorted(files)}")
            ptxas = ptxas_path()
            check = "ptxas not found"
            if ptxas:
                with tempfile.TemporaryDirectory() as tmp:
                    r = subprocess.run([ptxas, f"-arch={target}", os.path.join(d, ptx[0]),
                                        "-o", os.path.join(tmp, "k.cubin")],
                                       capture_output=True, text=True)
                if r.returncode:
                    raise attnc.AttncError(f"ptxas failed on {ptx[0]}: {r.stderr[:300]}")
                check = "ptxas ok"
            line = (f"{name} {target} backward compiles: {kernel} {grads}; cubin "
                    f"{'/'.join(e.rsplit('_', 1)[-1] for e in entries)}, "
                    f"{spills} bytes spill stores; {check}")
        print(line, flush=True)
    except Exception as e:
        failures += 1
        print(f"{name} {target} FAILS: {type(e).__name__}: {str(e).splitlines()[0][:300]}",
              flush=True)


def gpu_compile(specs):
    """specs: name -> spec text (bf16, H=2, d=64)."""
    for name, spec in specs.items():
        function = re.search(r"func\.func @(\w+)", spec).group(1)
        for target in TARGETS:
            gpu_compile_one(name, spec, function + "_backward" if ARGS.backward else None,
                            target)
    if ARGS.backward:
        print(f"FAILURES {failures}")


if ARGS.specs:
    # No torch, no attention-gym: the specs that --dump-specs wrote.
    if not ARGS.gpu_compile:
        sys.exit("--specs needs --gpu-compile")
    gpu_compile({n: open(os.path.join(ARGS.specs, n + ".mlir")).read() for n in NAMES})
    sys.exit(1 if failures else 0)

import torch  # noqa: E402

GYM_DIR = ARGS.gym_dir
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
# Score mods by their factories: (heads, captured float tensors) -> mod, and
# the shapes of those captures for (B, Hq, N). The backward check builds
# each twice, on float32 leaves for attnc and float64 leaves for the
# reference.
score_mods = {
    "alibi": (lambda H: generate_alibi_bias(H), lambda B, Hq, N: []),
    "softcap": (lambda H: generate_tanh_softcap(2), lambda B, Hq, N: []),
    "mla_rope": (lambda H, query_rope, key_rope: generate_mla_rope_score_mod(query_rope, key_rope, H),
                 lambda B, Hq, N: [("query_rope", (B, Hq, N, 8)), ("key_rope", (B, 1, N, 8))]),
}
mods = {
    "alibi": score_mods["alibi"][0](H),
    "softcap": score_mods["softcap"][0](H),
    "mla_rope": score_mods["mla_rope"][0](H, qpe, kpe),
}
q, k, v = (torch.randn(1, H, N, D) for _ in range(3))


def reference(q, k, v, score_mod=None, mask_mod=None, keep=None):
    """float64 attention with the mods evaluated element by element in eager
    torch, as FlexAttention's vmap calls them (0-d index tensors, the score
    a 0-d float64 tensor). Differentiable in q, k, v and in the tensors the
    score_mod reads (pass float64 leaves). GQA: query head h reads kv head
    h // (Hq / Hkv). Rows that keep no key give 0 (and no gradient).
    keep: the mask, when evaluated already (mask_grid)."""
    q, k, v = q.double(), k.double(), v.double()
    B, Hq, Nq, D = q.shape
    g = Hq // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    Nk = k.shape[2]
    s = q @ k.transpose(-1, -2) / D ** 0.5
    idx = [torch.tensor(n) for n in range(max(B, Hq, Nq, Nk))]
    torch.manual_seed(0)
    if score_mod is not None:
        # Each score a leaf of its own (autograd through unbind's views is
        # quadratic in this torch); the mod's derivative in its score is
        # then taken per element and chained back into s by hand (the mod
        # is elementwise in the score), while the captures it reads keep
        # their own graph.
        grad = torch.is_grad_enabled() and s.requires_grad
        elems = [x.clone().requires_grad_(grad) for x in s.detach().reshape(-1).unbind(0)]
        out, n = [], 0
        for b in range(B):
            for h in range(Hq):
                for i in range(Nq):
                    for j in range(Nk):
                        out.append(score_mod(elems[n], idx[b], idx[h], idx[i], idx[j]))
                        n += 1
        r = torch.stack(out).to(torch.float64)
        if grad:
            ds = torch.autograd.grad(r.sum(), elems, retain_graph=True, allow_unused=True)
            ds = torch.stack([torch.zeros((), dtype=s.dtype) if g is None else g for g in ds])
            r = r + ds * (s - s.detach()).reshape(-1)
        s = r.view(B, Hq, Nq, Nk)
    if keep is None and mask_mod is not None:
        keep = mask_grid(mask_mod, B, Hq, Nq, Nk)
    if keep is not None:
        s = s.masked_fill(~keep, float("-inf"))
    mx = s.detach().amax(-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isinf(mx), torch.zeros_like(mx), mx))
    den = p.sum(-1, keepdim=True)
    return (p @ v) / torch.where(den > 0, den, torch.ones_like(den))


def mask_grid(mask_mod, B, Hq, Nq, Nk):
    """mask_mod at every (b, h, q_idx, kv_idx), element by element: bool [B, Hq, Nq, Nk]."""
    idx = [torch.tensor(n) for n in range(max(B, Hq, Nq, Nk))]
    return torch.tensor([bool(mask_mod(idx[b], idx[h], idx[i], idx[j]))
                         for b in range(B) for h in range(Hq)
                         for i in range(Nq) for j in range(Nk)]).view(B, Hq, Nq, Nk)


def traced_specs():
    """The bf16 specs (H=2, d=64) of --gpu-compile and --dump-specs."""
    specs = {}
    for name in NAMES:
        fn = masks.get(name) or mods[name]
        is_mask = name in masks
        specs[name] = attnc.trace(None if is_mask else fn, fn if is_mask else None, H=H, D=64,
                                  dtype="bf16")
    return specs


# --backward on the CPU -------------------------------------------------------

SHAPES = [  # (label, (B, Hq, Hkv, Nq, Nk))
    ("B2 H4 77x77", (2, 4, 4, 77, 77)),
    ("GQA 4:2", (2, 4, 2, 77, 77)),
    ("Nq77 Nk100", (2, 4, 4, 77, 100)),
]
BD = 64
TOL = 1e-4
SEED = ARGS.seed if ARGS.seed is not None else int.from_bytes(os.urandom(3), "little")


def backward_case(name, case, keep_cache):
    """One shape of one mod: {gradient name: (max rel err, shape and dtype ok)}."""
    B, Hq, Hkv, Nq, Nk = SHAPES[case][1]
    gen = torch.Generator().manual_seed(SEED + 1000 * NAMES.index(name) + case)
    scale = 3.0 if name == "softcap" else 1.0  # scores where tanh' matters

    def leaf(*s, scale=1.0):
        return (torch.randn(*s, generator=gen) * scale).requires_grad_()

    qq, kk, vv = leaf(B, Hq, Nq, BD, scale=scale), leaf(B, Hkv, Nk, BD), leaf(B, Hkv, Nk, BD)
    do = torch.randn(B, Hq, Nq, BD, generator=gen, dtype=torch.float64)
    mask_mod = masks.get(name)
    score_mod, caps, names = None, [], []
    if name in score_mods:
        factory, cap_shapes = score_mods[name]
        names = [n for n, _ in cap_shapes(B, Hq, N)]
        caps = [leaf(*s) for _, s in cap_shapes(B, Hq, N)]
        score_mod = factory(Hq, *caps)
    bm = attnc.create_block_mask(mask_mod, None, None, Nq, Nk, "cpu") if mask_mod else None
    o = attnc.flex_attention(qq, kk, vv, score_mod=score_mod, block_mask=bm,
                             enable_gqa=Hq != Hkv)
    (o.double() * do).sum().backward()
    leaves = [t.detach().double().requires_grad_() for t in (qq, kk, vv, *caps)]
    keep = None
    if mask_mod is not None:
        key = (name, B, Hq, Nq, Nk)
        if key not in keep_cache:
            keep_cache[key] = mask_grid(mask_mod, B, Hq, Nq, Nk)
        keep = keep_cache[key]
    ref_mod = score_mods[name][0](Hq, *leaves[3:]) if name in score_mods else None
    ref = reference(*leaves[:3], ref_mod, keep=keep)
    (ref * do).sum().backward()
    res = {}

    def err(got, want):
        return float((got.detach().double() - want).abs().max()
                     / want.abs().max().clamp_min(1e-30))

    res["out"] = (err(o, ref.detach()), tuple(o.shape) == tuple(qq.shape))
    for what, t, lf in zip(["dq", "dk", "dv"] + ["d" + n for n in names],
                           (qq, kk, vv, *caps), leaves):
        if t.grad is None:
            res[what] = (float("inf"), False)
        else:
            res[what] = (err(t.grad, lf.grad),
                         t.grad.shape == t.shape and t.grad.dtype == t.dtype)
    return res


def backward():
    global failures
    unsupported = []
    keep_cache = {}
    print(f"# seed {SEED}", flush=True)
    for name in NAMES:
        t0 = time.perf_counter()
        worst = {}
        try:
            for case, (label, _) in enumerate(SHAPES):
                for what, (e, ok) in backward_case(name, case, keep_cache).items():
                    w = worst.setdefault(what, [0.0, True, ""])
                    if e >= w[0]:
                        w[0], w[2] = e, label
                    w[1] = w[1] and ok
        except attnc.AttncError as e:
            unsupported.append(name)
            print(f"UNSUPPORTED {name}: attnc error: {str(e).splitlines()[0][:300]}", flush=True)
            continue
        except Exception as e:
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {str(e).splitlines()[0][:300]}", flush=True)
            continue
        for what, (e, ok, label) in worst.items():
            good = ok and e < TOL
            failures += not good
            print(f"{'PASS' if good else 'FAIL'} {name} {what}: max_rel={e:.1e} ({label})"
                  f"{'' if ok else ', wrong shape or dtype'}", flush=True)
        print(f"# {name}: {len(SHAPES)} shapes, {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"UNSUPPORTED mods: {', '.join(unsupported) or 'none'}")
    print(f"FAILURES {failures}")


if ARGS.dump_specs:
    os.makedirs(ARGS.dump_specs, exist_ok=True)
    for name, spec in traced_specs().items():
        with open(os.path.join(ARGS.dump_specs, name + ".mlir"), "w") as f:
            f.write(spec if spec.endswith("\n") else spec + "\n")
    sys.exit(0)

if ARGS.gpu_compile:
    gpu_compile(traced_specs())
    sys.exit(1 if failures and ARGS.backward else 0)

if ARGS.backward:
    backward()
    sys.exit(1 if failures else 0)

rows = []
for name in NAMES:
    fn = masks.get(name) or mods[name]
    is_mask = name in masks
    try:
        t = time.perf_counter()
        bm = attnc.create_block_mask(fn, 1, H, N, N, "cpu") if is_mask else None
        o = attnc.flex_attention(q, k, v, score_mod=None if is_mask else fn, block_mask=bm)
        first = time.perf_counter() - t
        with torch.no_grad():
            ref = reference(q, k, v, None if is_mask else fn, fn if is_mask else None)
        err = float((o.double() - ref).abs().max() / ref.abs().max())
        rows.append((name, "yes", "yes" if err < 1e-4 else f"NO ({err:.1e})", f"{first*1e3:.0f} ms"))
    except Exception as e:
        rows.append((name, "NO", str(e).split("\n")[0][:200], ""))
print("mod | traced | matches | first call")
for r in rows:
    print(" | ".join(r))
