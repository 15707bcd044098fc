"""Numerics sweep: random attention specs (random mask programs from
bench/fuzz_masks.py, random score programs: scale, captured relative-bias
tables, ALiBi-like slopes, soft-capping, masking selects in the score) at
random sizes (B, GQA ratio Hq/Hkv in 1, 2, 4, Nq != Nk, lengths that are no
multiple of any tile, 1 included, head dims 16, 32, 64, 80, 128, Dv != D at
times), in f32, f16 and bf16, o and lse checked against an independent
reference: float64 numpy on the CPU (the spec's mask and score programs are
interpreted over numpy arrays of b, h, i, j; nothing of attnc's reference
lowering is used), float32 torch on a GPU. Fully masked rows must give
o = 0 and lse = -inf.

CPU (CI: test/Python/numerics_sweep.test, about 1,000 configurations):
  ATTNC_LIB_DIR=build/lib PYTHONPATH=python python3 bench/numerics_sweep.py \
      --specs 120 --sizes 9 --seed 1 [--json bench/results/NAME.json] [-v]

GPU (sm_90a, torch CUDA tensors, float32 torch reference). Where libattnc.so
and a GPU are on one machine, one command:
  python3 bench/numerics_sweep.py --target sm_90a --cache-dir /tmp/sweep \
      --specs 120 --sizes 9 --seed 1 --json bench/results/NAME-h100-sweep.json
On the project's GPU machine (no MLIR): compile here into a carried
directory, then run there through attnc.load (no libattnc needed):
  python3 bench/numerics_sweep.py --target sm_90a --prepare devcarry/sweep --specs 120 --seed 1
  python3 bench/numerics_sweep.py --target sm_90a --prepared devcarry/sweep \
      --specs 120 --sizes 9 --seed 1 --json $OUT/sweep.json
(GPU kernels are 16-bit: f32 is left out there; a spec the GPU compiler
refuses, e.g. a head dim it does not support, counts as `refused`, not as a
failure, and is listed with its message.)

Tolerances (|out - ref| <= atol + rtol |ref|, inputs rounded to the spec's
dtype first, so only the kernel's own rounding counts; |o| <= max |v| = 1):
  f32:  o 1e-4 + 1e-4|ref|. f32 scores carry ~1e-7 relative error (up to
        ~1e-5 absolute for ALiBi scores of ~100), exp/tanh a few ulp; one
        lost or extra key of <= 300 moves o by ~1e-3, well above.
  f16:  o 2e-3 + 2e-3|ref|: o is rounded to f16 (half ulp 2^-11 ~ 5e-4 at
        |o| ~ 1); GPU kernels also round P to f16 before P V (2^-11
        relative each, <= 5e-4 |v - o| in all), ~4x headroom. attn-run's
        default is 5e-3.
  bf16: o 1e-2 + 1e-2|ref|: the same with bf16's 2^-9 half-ulp (2e-3 at
        |o| ~ 1) on o and on P, ~2.5x headroom (attn-run's default).
  The CPU kernels compute in f32 and round only o: the measured maxima
  (2.5e-4 f16, 2e-3 bf16 over 2,700 configurations) are one half-ulp.
  lse (f32 in every spec): 1e-4 + 1e-5|ref| for f32, 2e-3 + 1e-4|ref| for
        16-bit specs (their scores may be formed from 16-bit rounded
        products).
The measured maxima are in the JSON (max_err per dtype), far below these.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import fuzz_masks  # noqa: E402  (the random mask generator)

TOL = {  # dtype: (o atol, o rtol, lse atol, lse rtol)
    "f32": (1e-4, 1e-4, 1e-4, 1e-5),
    "f16": (2e-3, 2e-3, 2e-3, 1e-4),
    "bf16": (1e-2, 1e-2, 2e-3, 1e-4),
}
HEAD_DIMS = [16, 32, 64, 80, 128]
LENGTHS = [1, 2, 3, 5, 7, 13, 17, 31, 33, 47, 63, 65, 97, 100, 127, 129, 150, 200, 257]


# ---------------------------------------------------------------------------
# Spec generation
# ---------------------------------------------------------------------------

class SpecCase:
    """One random spec: its MLIR text and what the reference needs."""

    def __init__(self, seed, dtypes):
        r = random.Random(seed * 7919 + 13)
        self.seed = seed
        self.name = f"sweep{seed}"
        self.dtype = r.choice(dtypes)
        self.hkv = r.choice([1, 1, 2, 3])
        self.ratio = r.choice([1, 2, 4])
        self.hq = self.hkv * self.ratio
        self.d = r.choice(HEAD_DIMS)
        self.dv = self.d if r.random() < 0.7 else r.choice(HEAD_DIMS)
        self.lse = r.random() < 0.6
        self.input_scale = r.choice([1.0, 1.0, 2.0, 4.0])
        self.scale = r.choice([None, None, 0.05, 0.125, 0.3, 0.5, 1.0])
        # Mask: a fuzz_masks program (80%), else none.
        self.mask_lines, self.mask_value = None, None
        if r.random() < 0.8:
            g = fuzz_masks.Gen(r)
            self.mask_value = g.boolean(r.choice([1, 2, 3, 4, 5]))
            self.mask_lines = list(g.lines)
        # Score: a chain of transforms.
        self.score = []
        self.bias = None  # (kind, table) for a captured relative-bias table
        if r.random() < 0.35:
            kind = r.choice(["abs", "signed"])
            nb = r.choice([4, 8, 16, 32])
            rows = 2 * nb + 1 if kind == "signed" else nb
            table = np.random.default_rng(seed).standard_normal((self.hq, rows)).astype(np.float32)
            self.bias = (kind, nb, table)
            self.score.append(("bias",))
        if r.random() < 0.35:
            self.score.append(("alibi", r.choice([0.5, 1.0, 2.0, 8.0 / max(1, self.hq)]),
                               r.choice(["signed", "abs"])))
        if r.random() < 0.35:
            self.score.append(("softcap", r.choice([5.0, 15.0, 30.0, 50.0])))
        self.score_mask_lines, self.score_mask_value = None, None
        if r.random() < 0.15:
            g = fuzz_masks.Gen(r)
            g.n = 1000  # names apart from the mask region's
            self.score_mask_value = g.boolean(r.choice([1, 2, 3]))
            self.score_mask_lines = list(g.lines)
            self.score.append(("select",))
        r.shuffle(self.score)
        self.text = self._mlir()

    def _mlir(self):
        et = self.dtype

        def t(h, dd):
            return f"tensor<?x{h}x?x{dd}x{et}>"
        q, k, v, o = t(self.hq, self.d), t(self.hkv, self.d), t(self.hkv, self.dv), t(self.hq, self.dv)
        lse = f"tensor<?x{self.hq}x?xf32>"
        args = [f"%q: {q}", f"%k: {k}", f"%v: {v}"]
        caps = ""
        if self.bias:
            bt = f"tensor<{self.hq}x{self.bias[2].shape[1]}xf32>"
            args.append(f"%bias: {bt}")
            caps = f" captures(%bias : {bt})"
        res = [o] + ([lse] if self.lse else [])
        out = [f"func.func @{self.name}({', '.join(args)}) -> ({', '.join(res)}) {{"]
        names = "%o, %lse" if self.lse else "%o"
        head = f"  {names} = attn.attention %q, %k, %v{caps}"
        if self.scale is not None:
            head += f" scale = {self.scale!r}"
        out.append(head)
        if self.score:
            out.append("    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {")
            out += ["      " + line for line in self._score_lines()]
            out.append("    }")
        if self.mask_lines is not None:
            out.append("    mask(%b: index, %h: index, %i: index, %j: index) {")
            out += ["      " + line for line in self.mask_lines]
            out.append(f"      attn.yield {self.mask_value} : i1")
            out.append("    }")
        out.append(f"    : {q}, {k}, {v}")
        out.append(f"      -> {', '.join(res)}")
        out.append(f"  return {names} : {', '.join(res)}")
        out.append("}")
        return "\n".join(out) + "\n"

    def _score_lines(self):
        L, cur = [], "%s"
        for n, tr in enumerate(self.score):
            p = f"%t{n}_"
            nxt = f"%s{n + 1}"
            if tr[0] == "bias":
                kind, nb, table = self.bias
                bt = f"tensor<{self.hq}x{table.shape[1]}xf32>"
                L.append(f"{p}d = arith.subi %i, %j : index")
                if kind == "abs":
                    L += [f"{p}c = arith.constant {nb - 1} : index",
                          f"{p}a = math.absi {p}d : index",
                          f"{p}k = arith.minsi {p}a, {p}c : index"]
                else:
                    L += [f"{p}c = arith.constant {nb} : index",
                          f"{p}m = arith.constant {-nb} : index",
                          f"{p}lo = arith.maxsi {p}d, {p}m : index",
                          f"{p}hi = arith.minsi {p}lo, {p}c : index",
                          f"{p}k = arith.addi {p}hi, {p}c : index"]
                L += [f"{p}v = tensor.extract %bias[%h, {p}k] : {bt}",
                      f"{nxt} = arith.addf {cur}, {p}v : f32"]
            elif tr[0] == "alibi":
                _, c, kind = tr
                L += [f"{p}one = arith.constant 1 : index",
                      f"{p}h1 = arith.addi %h, {p}one : index",
                      f"{p}hi = arith.index_cast {p}h1 : index to i64",
                      f"{p}hf = arith.sitofp {p}hi : i64 to f32",
                      f"{p}m = arith.constant {-c!r} : f32",
                      f"{p}e = arith.mulf {p}hf, {p}m : f32",
                      f"{p}slope = math.exp2 {p}e : f32",
                      f"{p}d0 = arith.subi %i, %j : index"]
                d = f"{p}d0"
                if kind == "abs":
                    L.append(f"{p}d = math.absi {p}d0 : index")
                    d = f"{p}d"
                L += [f"{p}di = arith.index_cast {d} : index to i64",
                      f"{p}df = arith.sitofp {p}di : i64 to f32",
                      f"{p}pen = arith.mulf {p}slope, {p}df : f32",
                      f"{nxt} = arith.subf {cur}, {p}pen : f32"]
            elif tr[0] == "softcap":
                L += [f"{p}cap = arith.constant {tr[1]!r} : f32",
                      f"{p}x = arith.divf {cur}, {p}cap : f32",
                      f"{p}t = math.tanh {p}x : f32",
                      f"{nxt} = arith.mulf {p}t, {p}cap : f32"]
            else:  # select: a masking select in the score (from_score)
                L += self.score_mask_lines
                L += [f"{p}ninf = arith.constant 0xFF800000 : f32",
                      f"{nxt} = arith.select {self.score_mask_value}, {cur}, {p}ninf : f32"]
            cur = nxt
        L.append(f"attn.yield {cur} : f32")
        return L

    def describe(self):
        parts = [f"{self.dtype} Hq={self.hq} Hkv={self.hkv} D={self.d} Dv={self.dv}",
                 "lse" if self.lse else "o", f"scale={self.scale}",
                 "mask" if self.mask_lines is not None else "nomask",
                 "score=" + "+".join(s[0] for s in self.score) if self.score else "noscore"]
        return " ".join(parts)


def sizes_for(seed, n, case):
    """n random (B, Nq, Nk), the first two always Nq != Nk and one with a 1."""
    r = random.Random(seed * 104729 + 7)
    out = []
    budget = 2.5e7  # B Hq Nq Nk (D + Dv): keeps a spec's runs ~0.1 s on 2 cores
    while len(out) < n:
        b = r.choice([1, 1, 2, 3])
        nq, nk = r.choice(LENGTHS), r.choice(LENGTHS)
        if len(out) == 0:
            nq = 1 if r.random() < 0.5 else nq
            nk = 1 if nq != 1 else nk
        if len(out) < 2 and nq == nk:
            continue
        if b * case.hq * nq * nk * (case.d + case.dv) > budget:
            continue
        out.append((b, nq, nk))
    return out


# ---------------------------------------------------------------------------
# The reference: the generated programs interpreted over numpy arrays
# ---------------------------------------------------------------------------

M64 = (1 << 64) - 1


def _wrap32(x):
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _u(x):
    return np.asarray(x, dtype=np.int64).view(np.uint64) if isinstance(x, np.ndarray) \
        else np.uint64(int(x) & M64)


def _s(x):
    return x.view(np.int64) if isinstance(x, np.ndarray) else np.int64(int(x) - (1 << 64) if int(x) >= 1 << 63 else int(x))


def _tdiv(a, c):
    """Signed division truncating toward zero (arith.divsi), c a constant != 0."""
    q = np.abs(a) // abs(c)
    return np.where((np.asarray(a) < 0) != (c < 0), -q, q)


def _binop(op, a, b, ty):
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if op == "addi":
        r = a + b
    elif op == "subi":
        r = a - b
    elif op == "muli":
        r = a * b
    elif op == "divsi":
        r = _tdiv(a, int(b))
    elif op == "remsi":
        r = a - _tdiv(a, int(b)) * int(b)
    elif op == "floordivsi":
        r = a // b
    elif op == "ceildivsi":
        r = -((-a) // b)
    elif op == "divui":
        r = (a.view(np.uint64) // b.view(np.uint64)).view(np.int64)
    elif op == "remui":
        r = (a.view(np.uint64) % b.view(np.uint64)).view(np.int64)
    elif op == "minsi":
        r = np.minimum(a, b)
    elif op == "maxsi":
        r = np.maximum(a, b)
    elif op == "minui":
        r = np.minimum(a.view(np.uint64), b.view(np.uint64)).view(np.int64)
    elif op == "maxui":
        r = np.maximum(a.view(np.uint64), b.view(np.uint64)).view(np.int64)
    elif op == "shli":
        r = a << b
    elif op == "shrsi":
        r = a >> b
    elif op == "shrui":
        r = (a.view(np.uint64) >> b.view(np.uint64)).view(np.int64)
    else:
        raise ValueError(f"interpreter: no op {op}")
    if ty == "i32":
        if op in ("divui", "remui", "minui", "maxui", "shrui"):
            raise ValueError(f"interpreter: unsigned i32 {op}")
        r = _wrap32(r)
    return r


_CMP = {"eq": np.equal, "ne": np.not_equal, "slt": np.less, "sle": np.less_equal,
        "sgt": np.greater, "sge": np.greater_equal}


def interpret(lines, result, env):
    """Evaluates fuzz_masks.Gen lines over numpy int64 / bool arrays; `env`
    maps %b, %h, %i, %j to broadcastable int64 arrays."""
    env = dict(env)
    with np.errstate(over="ignore"):
        for line in lines:
            name, rhs = line.split(" = ", 1)
            op, rest = rhs.split(" ", 1)
            if op == "arith.constant":
                tok = rest.split(" : ")[0].strip()
                env[name] = (np.bool_(tok == "true") if tok in ("true", "false")
                             else np.int64(int(tok)))
                continue
            body, ty = rest.rsplit(" : ", 1)
            if op == "arith.index_cast":
                x = env[body.strip()]
                env[name] = _wrap32(np.asarray(x, dtype=np.int64)) if ty == "index to i32" \
                    else np.asarray(x, dtype=np.int64)
                continue
            if op == "arith.cmpi":
                pred, a, b = [s.strip() for s in body.split(",")]
                a, b = np.asarray(env[a], np.int64), np.asarray(env[b], np.int64)
                if pred.startswith("u"):
                    a, b = a.view(np.uint64), b.view(np.uint64)
                    pred = "s" + pred[1:]
                env[name] = _CMP[pred](a, b)
                continue
            if op == "arith.select":
                c, a, b = [env[s.strip()] for s in body.split(",")]
                env[name] = np.where(c, a, b)
                continue
            a, b = [env[s.strip()] for s in body.split(",")]
            o = op[len("arith."):]
            if o in ("andi", "ori", "xori"):
                env[name] = {"andi": np.logical_and, "ori": np.logical_or,
                             "xori": np.logical_xor}[o](a, b)
                continue
            env[name] = _binop(o, a, b, ty.strip())
    return env[result]


def index_env(B, H, Nq, Nk):
    return {"%b": np.arange(B, dtype=np.int64).reshape(B, 1, 1, 1),
            "%h": np.arange(H, dtype=np.int64).reshape(1, H, 1, 1),
            "%i": np.arange(Nq, dtype=np.int64).reshape(1, 1, Nq, 1),
            "%j": np.arange(Nk, dtype=np.int64).reshape(1, 1, 1, Nk)}


def reference_mask(case, B, Nq, Nk):
    """The visible keys (B, Hq, Nq, Nk), mask region and score selects."""
    env = index_env(B, case.hq, Nq, Nk)
    vis = np.ones((B, case.hq, Nq, Nk), dtype=bool)
    if case.mask_lines is not None:
        vis &= np.broadcast_to(interpret(case.mask_lines, case.mask_value, env), vis.shape)
    return vis, env


def score_mask(case, env, shape):
    if case.score_mask_lines is None:
        return None
    return np.broadcast_to(interpret(case.score_mask_lines, case.score_mask_value, env), shape)


def reference(case, q, k, v, B, Nq, Nk, xp="numpy"):
    """o, lse in float64 numpy (xp="numpy") or float32 torch (xp="torch":
    q, k, v are CUDA tensors)."""
    vis, env = reference_mask(case, B, Nq, Nk)
    smask = score_mask(case, env, vis.shape)
    i = env["%i"]
    j = env["%j"]
    h = env["%h"]
    scale = case.scale if case.scale is not None else 1.0 / math.sqrt(case.d)
    if xp == "torch":
        import torch
        dev = q.device
        kk = k.float().repeat_interleave(case.ratio, dim=1)
        vv = v.float().repeat_interleave(case.ratio, dim=1)
        s = torch.einsum("bhqd,bhkd->bhqk", q.float(), kk) * scale

        def T(a, dtype=torch.float32):
            return torch.as_tensor(np.asarray(a), device=dev).to(dtype)
        tanh, exp2, absf = torch.tanh, torch.exp2, torch.abs
    else:
        kk = np.repeat(k.astype(np.float64), case.ratio, axis=1)
        vv = np.repeat(v.astype(np.float64), case.ratio, axis=1)
        s = np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), kk) * scale

        def T(a, dtype=None):
            return np.asarray(a, dtype=np.float64)
        tanh, exp2, absf = np.tanh, np.exp2, np.abs
    for tr in case.score:
        if tr[0] == "bias":
            kind, nb, table = case.bias
            d = i - j
            idx = np.minimum(np.abs(d), nb - 1) if kind == "abs" else np.clip(d, -nb, nb) + nb
            s = s + T(table[np.broadcast_to(h, (1, case.hq, 1, 1)), idx])
        elif tr[0] == "alibi":
            _, c, kind = tr
            slope = exp2(T(-(h + 1) * c))
            d = T(i - j)
            if kind == "abs":
                d = absf(d)
            s = s - slope * d
        elif tr[0] == "softcap":
            s = tanh(s / tr[1]) * tr[1]
        else:
            s = s + T(np.where(smask, 0.0, -np.inf))
    s = s + T(np.where(vis, 0.0, -np.inf))
    if xp == "torch":
        import torch
        m = s.amax(dim=-1, keepdim=True)
        dead = torch.isinf(m) & (m < 0)
        m = torch.where(dead, torch.zeros_like(m), m)
        p = torch.exp(s - m)
        lsum = p.sum(-1, keepdim=True)
        o = torch.einsum("bhqk,bhkd->bhqd", p, vv) / torch.where(dead, torch.ones_like(lsum), lsum)
        lse = torch.where(dead, torch.full_like(m, -math.inf), m + torch.log(lsum))[..., 0]
        return o, lse
    m = s.max(axis=-1, keepdims=True)
    dead = np.isneginf(m)
    m = np.where(dead, 0.0, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.exp(s - m)
        lsum = p.sum(-1, keepdims=True)
        o = np.einsum("bhqk,bhkd->bhqd", p, vv) / np.where(dead, 1.0, lsum)
        lse = np.where(dead, -np.inf, m + np.log(lsum))[..., 0]
    return o, lse


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------

def compare(case, o, lse, ro, rlse):
    """(ok, o max error, lse max error, message); numpy float64 arrays."""
    oat, ort, lat, lrt = TOL[case.dtype]
    msgs = []
    dead = np.isneginf(rlse) if rlse is not None else None
    if not np.all(np.isfinite(o)):
        msgs.append(f"o has {int(np.sum(~np.isfinite(o)))} non-finite values")
    err = np.abs(o - ro)
    oerr = float(np.nanmax(err)) if err.size else 0.0
    bad = ~(err <= oat + ort * np.abs(ro))
    if bad.any():
        w = np.argwhere(bad)[0]
        msgs.append(f"o: {int(bad.sum())} of {bad.size} off, max err {oerr:.3g}, first at "
                    f"{tuple(int(x) for x in w)}: {o[tuple(w)]!r} vs {ro[tuple(w)]!r}")
    lerr = 0.0
    if lse is not None:
        rd = np.isneginf(rlse)
        kd = np.isneginf(lse)
        if (rd != kd).any():
            w = np.argwhere(rd != kd)[0]
            msgs.append(f"lse: -inf rows differ ({int((rd != kd).sum())}), first at "
                        f"{tuple(int(x) for x in w)}: {lse[tuple(w)]!r} vs {rlse[tuple(w)]!r}")
        live = ~rd & ~kd
        e = np.abs(lse[live] - rlse[live])
        lerr = float(e.max()) if e.size else 0.0
        lbad = ~(e <= lat + lrt * np.abs(rlse[live]))
        if lbad.any():
            msgs.append(f"lse: {int(lbad.sum())} off, max err {lerr:.3g}")
        if np.isnan(lse).any():
            msgs.append("lse has NaN")
    if dead is not None and dead.any():
        if (o[np.broadcast_to(dead[..., None], o.shape)] != 0).any():
            msgs.append("a fully masked row has o != 0")
    return not msgs, oerr, lerr, "; ".join(msgs)


# ---------------------------------------------------------------------------
# Inputs and dtypes
# ---------------------------------------------------------------------------

def to_bf16_bits(x):
    """float32 -> bf16 bits (round to nearest even), as uint16."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def make_inputs(case, B, Nq, Nk, seed):
    """q, k, v rounded to the spec's dtype: (kernel arrays, float64 values)."""
    g = np.random.default_rng(seed)
    shapes = [(B, case.hq, Nq, case.d), (B, case.hkv, Nk, case.d), (B, case.hkv, Nk, case.dv)]
    f32 = [g.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    f32[0] *= case.input_scale
    f32[1] *= case.input_scale
    if case.dtype == "f32":
        return f32, [a.astype(np.float64) for a in f32]
    if case.dtype == "f16":
        h = [a.astype(np.float16) for a in f32]
        return h, [a.astype(np.float64) for a in h]
    bits = [to_bf16_bits(a) for a in f32]
    return bits, [from_bf16_bits(b).astype(np.float64) for b in bits]


def launch_cpu(kernel, case, ins, B, Nq):
    """Runs a CPU kernel; bf16 through the C API directly (numpy has no
    bf16: the arrays are uint16 bit patterns)."""
    import attnc
    caps = [case.bias[2]] if case.bias else []
    if case.dtype != "bf16":
        out = kernel(*ins, *caps)
        o, lse = (out if case.lse else (out, None))
        return o.astype(np.float64), lse
    import ctypes
    from attnc import _jit, _runtime
    o = np.empty((B, case.hq, Nq, case.dv), dtype=np.uint16)
    lse = np.empty((B, case.hq, Nq), dtype=np.float32) if case.lse else None
    keep = []

    def tensors(arrs, codes):
        ts = (_runtime.Tensor * len(arrs))()
        for t, a, c in zip(ts, arrs, codes):
            shape = (ctypes.c_int64 * a.ndim)(*a.shape)
            keep.append(shape)
            t.data, t.dtype, t.rank, t.shape, t.strides = a.ctypes.data, c, a.ndim, shape, None
        return ts
    ia = list(ins) + caps
    oa = [o] + ([lse] if case.lse else [])
    ti = tensors(ia, [2, 2, 2] + [0] * len(caps))
    to = tensors(oa, [2] + [0] * (len(oa) - 1))
    err = ctypes.create_string_buffer(1 << 16)
    with kernel._compiler.launch_lock:
        rc = kernel._lib.attnc_kernel_launch(kernel._handle, ti, len(ia), to, len(oa), None,
                                             err, len(err))
    if rc:
        raise attnc.AttncError(err.value.decode(errors="replace"))
    return from_bf16_bits(o).astype(np.float64), lse


# ---------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.by_dtype = {}
        self.failures, self.compile_errors, self.refused = [], [], []
        self.configs = self.specs = self.masked_rows = self.configs_with_masked_rows = 0

    def add(self, case, size, ok, oerr, lerr, msg, dead_rows):
        d = self.by_dtype.setdefault(case.dtype, dict(configs=0, failures=0, max_o_err=0.0,
                                                      max_lse_err=0.0))
        d["configs"] += 1
        d["max_o_err"] = max(d["max_o_err"], oerr)
        d["max_lse_err"] = max(d["max_lse_err"], lerr)
        self.configs += 1
        self.masked_rows += dead_rows
        self.configs_with_masked_rows += dead_rows > 0
        if not ok:
            d["failures"] += 1
            self.failures.append(dict(spec=case.name, seed=case.seed, desc=case.describe(),
                                      size=dict(B=size[0], Nq=size[1], Nk=size[2]), error=msg))


def run_case(stats, case, run, sizes, xp, verbose):
    for si, (B, Nq, Nk) in enumerate(sizes):
        ins, vals = make_inputs(case, B, Nq, Nk, case.seed * 1000 + si)
        try:
            o, lse = run(ins, B, Nq)
        except Exception as e:  # noqa: BLE001 - a launch error is a failure
            o, lse, err = None, None, f"launch error: {e}"
        if xp == "torch":
            import torch
            ro, rl = reference(case, *[torch.as_tensor(x, device="cuda").float()
                                       for x in vals], B, Nq, Nk, xp="torch")
            ro, rl = ro.double().cpu().numpy(), rl.double().cpu().numpy()
        else:
            ro, rl = reference(case, *vals, B, Nq, Nk)
        dead = int(np.isneginf(rl).sum())
        if o is None:
            ok, oerr, lerr, msg = False, 0.0, 0.0, err
        else:
            ok, oerr, lerr, msg = compare(case, o, lse if case.lse else None, ro,
                                          rl if case.lse else None)
            if not case.lse:  # o only: fully masked rows must still be 0
                if dead and (o[np.broadcast_to(np.isneginf(rl)[..., None], o.shape)] != 0).any():
                    ok, msg = False, (msg + "; " if msg else "") + "a fully masked row has o != 0"
        stats.add(case, (B, Nq, Nk), ok, oerr, lerr, msg, dead)
        if verbose or not ok:
            print(f"{'PASS' if ok else 'FAIL'} {case.name} [{case.describe()}] B={B} Nq={Nq} "
                  f"Nk={Nk} o_err={oerr:.2e} lse_err={lerr:.2e} masked_rows={dead}"
                  + (f": {msg}" if msg else ""), flush=True)


def sweep_cpu(a, stats):
    import attnc
    dtypes = a.dtypes.split(",")
    for s in range(a.seed, a.seed + a.specs):
        case = SpecCase(s, dtypes)
        stats.specs += 1
        try:
            kernel = attnc.compile(case.text, cache_dir=a.cache_dir if a.cache_dir else "")
        except attnc.AttncError as e:
            stats.compile_errors.append(dict(spec=case.name, seed=s, desc=case.describe(),
                                             error=str(e)[:2000]))
            print(f"COMPILE-ERROR {case.name} [{case.describe()}]: {str(e)[:500]}", flush=True)
            if a.verbose:
                print(case.text)
            continue
        run_case(stats, case, lambda ins, B, Nq: launch_cpu(kernel, case, ins, B, Nq),
                 sizes_for(s, a.sizes, case), "numpy", a.verbose)


def _gpu_kernel(a, case, index):
    import attnc
    if a.prepared:
        ent = index.get(case.name)
        if ent is None:
            raise attnc.AttncError(f"{case.name}: not in {a.prepared}/index.json")
        if "refused" in ent:
            raise attnc.AttncError(ent["refused"])
        return attnc.load(os.path.join(a.prepared, ent["dir"]))[ent["function"]]
    return attnc.compile(case.text, target=a.target, cache_dir=a.cache_dir)


def prepare_gpu(a):
    """Compiles every spec for a.target into a.prepare (cache/ + index.json)."""
    import attnc
    os.makedirs(a.prepare, exist_ok=True)
    index = {}
    for s in range(a.seed, a.seed + a.specs):
        case = SpecCase(s, a.dtypes.split(","))
        try:
            k = attnc.compile(case.text, target=a.target,
                              cache_dir=os.path.join(a.prepare, "cache"))
            index[case.name] = {"dir": os.path.relpath(k.directory, a.prepare),
                                "function": k.name}
        except attnc.AttncError as e:
            index[case.name] = {"refused": str(e)[:2000]}
        print(f"{case.name}: {'refused' if 'refused' in index[case.name] else 'ok'}", flush=True)
    with open(os.path.join(a.prepare, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    # attnc.load needs manifest.json and the cubin / PTX: the C launchers
    # (most of the bytes) stay behind, so the directory fits a carry.
    for d, _, files in os.walk(os.path.join(a.prepare, "cache")):
        for n in files:
            if n.endswith("_launcher.c"):
                os.remove(os.path.join(d, n))


def sweep_gpu(a, stats):
    import torch
    import attnc
    index = {}
    if a.prepared:
        with open(os.path.join(a.prepared, "index.json")) as f:
            index = json.load(f)
    tdt = {"f16": torch.float16, "bf16": torch.bfloat16}
    for s in range(a.seed, a.seed + a.specs):
        case = SpecCase(s, a.dtypes.split(","))
        stats.specs += 1
        try:
            kernel = _gpu_kernel(a, case, index)
        except attnc.AttncError as e:
            stats.refused.append(dict(spec=case.name, seed=s, desc=case.describe(),
                                      error=str(e)[:2000]))
            print(f"REFUSED {case.name} [{case.describe()}]: {str(e).splitlines()[0][:300]}",
                  flush=True)
            continue
        caps = [torch.as_tensor(case.bias[2], device="cuda")] if case.bias else []

        def run(ins, B, Nq, kernel=kernel, caps=caps, case=case):
            t = [torch.as_tensor(x.astype(np.float32), device="cuda").to(tdt[case.dtype])
                 for x in _as_f32(ins, case)]
            out = kernel(*t, *caps)
            torch.cuda.synchronize()
            o, lse = out if case.lse else (out, None)
            return (o.double().cpu().numpy(),
                    lse.double().cpu().numpy() if lse is not None else None)
        run_case(stats, case, run, sizes_for(s, a.sizes, case), "torch", a.verbose)


def _as_f32(ins, case):
    if case.dtype == "bf16":
        return [from_bf16_bits(x) for x in ins]
    return [x.astype(np.float32) for x in ins]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--specs", type=int, default=120)
    ap.add_argument("--sizes", type=int, default=9, help="sizes (B, Nq, Nk) per spec")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target", default="cpu", help="cpu, sm_80 or sm_90a")
    ap.add_argument("--dtypes", default=None, help="comma list (default f32,f16,bf16 on the "
                    "CPU, f16,bf16 on GPUs)")
    ap.add_argument("--cache-dir", default="", help="attnc.compile's cache_dir ('' none on CPU)")
    ap.add_argument("--prepare", help="GPU targets: only compile into this directory")
    ap.add_argument("--prepared", help="GPU targets: run kernels compiled by --prepare")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--print-spec", type=int, help="print the spec of this seed and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    gpu = a.target != "cpu"
    if a.dtypes is None:
        a.dtypes = "f16,bf16" if gpu else "f32,f16,bf16"
    if a.print_spec is not None:
        print(SpecCase(a.print_spec, a.dtypes.split(",")).text)
        return 0
    if gpu and a.prepare:
        prepare_gpu(a)
        return 0
    if gpu and not a.prepared and not a.cache_dir:
        a.cache_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), "attnc-sweep-cache")
    stats = Stats()
    t0 = time.time()
    if gpu:
        import torch
        if not torch.cuda.is_available():
            print("SKIP no CUDA device (torch.cuda.is_available() is False)")
            return 0
        sweep_gpu(a, stats)
    else:
        sweep_cpu(a, stats)
    wall = time.time() - t0
    res = dict(target=a.target, seed=a.seed, specs=stats.specs, sizes_per_spec=a.sizes,
               configs=stats.configs, failures=len(stats.failures),
               compile_errors=len(stats.compile_errors), refused=len(stats.refused),
               fully_masked_rows=stats.masked_rows,
               configs_with_fully_masked_rows=stats.configs_with_masked_rows,
               by_dtype=stats.by_dtype,
               tolerances={k: dict(o_atol=v[0], o_rtol=v[1], lse_atol=v[2], lse_rtol=v[3])
                           for k, v in TOL.items()},
               reference="float32 torch" if gpu else "float64 numpy",
               wall_s=round(wall, 1), failure_list=stats.failures[:200],
               compile_error_list=stats.compile_errors[:200], refused_list=stats.refused[:200])
    for dt, d in sorted(stats.by_dtype.items()):
        print(f"DTYPE {dt} configs={d['configs']} failures={d['failures']} "
              f"max_o_err={d['max_o_err']:.2e} max_lse_err={d['max_lse_err']:.2e}")
    print(f"SWEEP target={a.target} specs={stats.specs} configs={stats.configs} "
          f"failures={len(stats.failures)} compile_errors={len(stats.compile_errors)} "
          f"refused={len(stats.refused)} fully_masked_rows={stats.masked_rows} "
          f"(in {stats.configs_with_masked_rows} configs) wall={wall:.1f}s")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    return 1 if stats.failures or stats.compile_errors else 0


if __name__ == "__main__":
    sys.exit(main())
