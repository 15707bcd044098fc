"""attnc.flex_attention on numpy arrays (the CPU kernel), no torch needed:
FlexAttention mods written with Python operators and numpy functions,
checked against a float64 numpy reference that the test computes from the
same definitions written as index grids (not through the tracer), on fresh
random inputs. Also: no recompile when B or N change, and the compiler's
counters (a second process with the same ATTNC_CACHE_DIR hits the disk
cache). Prints PASS/FAIL lines and `FAILURES <n>`; exits nonzero on a
failure.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402

TOL = 1e-4
fails = 0
rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))


def report(name, ok, detail=""):
    global fails
    fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def rand(*shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def reference(q, k, v, score=None, keep=None, scale=None):
    """float64 attention: score(s, b, h, i, j) and keep(b, h, i, j) take
    broadcastable index grids; GQA by h // (Hq / Hkv); rows that keep no key
    give o = 0 and lse = -inf."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    B, Hq, Nq, D = q.shape
    g = Hq // k.shape[1]
    k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    Nk = k.shape[2]
    b = np.arange(B).reshape(B, 1, 1, 1)
    h = np.arange(Hq).reshape(1, Hq, 1, 1)
    i = np.arange(Nq).reshape(1, 1, Nq, 1)
    j = np.arange(Nk).reshape(1, 1, 1, Nk)
    s = np.einsum("bhid,bhjd->bhij", q, k) * (1 / np.sqrt(D) if scale is None else scale)
    if score is not None:
        s = np.broadcast_to(score(s, b, h, i, j), s.shape)
    if keep is not None:
        s = np.where(np.broadcast_to(keep(b, h, i, j), s.shape), s, -np.inf)
    mx = s.max(-1, keepdims=True)
    empty = np.isinf(mx) & (mx < 0)
    p = np.exp(s - np.where(empty, 0.0, mx))
    den = p.sum(-1, keepdims=True)
    o = np.einsum("bhij,bhjd->bhid", p, v) / np.where(den > 0, den, 1.0)
    lse = np.where(empty, -np.inf, mx + np.log(np.where(den > 0, den, 1.0)))[..., 0]
    return o, lse


def check(name, got, ref):
    """Relative error of got against the float64 reference."""
    if got.shape != ref.shape:
        report(name, False, f"shape {list(got.shape)}, expected {list(ref.shape)}")
        return
    finite = np.isfinite(ref)
    same_inf = np.array_equal(np.isfinite(got), finite) and np.array_equal(got[~finite],
                                                                            ref[~finite])
    diff = np.abs(got[finite].astype(np.float64) - ref[finite])
    worst = float(diff.max() / max(np.abs(ref[finite]).max(), 1e-30)) if diff.size else 0.0
    report(name, same_inf and worst < TOL, f"shape {list(got.shape)}, max_rel={worst:.1e}")


def run(name, B, Hq, Hkv, Nq, Nk, D, Dv, score_mod=None, mask_mod=None, score=None,
        keep=None, scale=None, lse=False, queries_at_end=False):
    """flex_attention against the reference; returns the output. With
    queries_at_end the reference's query positions are i + Nk - Nq."""
    q, k, v = rand(B, Hq, Nq, D), rand(B, Hkv, Nk, D), rand(B, Hkv, Nk, Dv)
    bm = None
    if mask_mod is not None:
        bm = attnc.create_block_mask(mask_mod, None, None, Nq, Nk, device="cpu")
    out = attnc.flex_attention(q, k, v, score_mod=score_mod, block_mask=bm, scale=scale,
                               enable_gqa=Hq != Hkv, return_lse=lse,
                               queries_at_end=queries_at_end)
    off = Nk - Nq if queries_at_end else 0
    shift = (lambda f: f and (lambda *a: f(*a[:-2], a[-2] + off, a[-1])))
    ref_o, ref_lse = reference(q, k, v, shift(score), shift(keep), scale)
    if lse:
        check(name + " o", out[0], ref_o)
        check(name + " lse", out[1], ref_lse)
    else:
        check(name, out, ref_o)


# -- the mods ---------------------------------------------------------------------

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


WINDOW = 37


def sliding_window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx < WINDOW)


def test_causal():
    run("causal 2x4x130x130", 2, 4, 4, 130, 130, 64, 64, mask_mod=causal,
        keep=lambda b, h, i, j: i >= j)


def test_sliding_window():
    run(f"sliding_window {WINDOW}", 1, 4, 4, 200, 200, 64, 64, mask_mod=sliding_window,
        keep=lambda b, h, i, j: (i >= j) & (i - j < WINDOW))


def test_queries_at_end():
    # Decode and a prefill chunk against a cache: the queries are the last
    # Nq key positions; a causal window and an ALiBi-like distance score.
    def distance(score, b, h, q_idx, kv_idx):
        return score - 0.05 * (q_idx - kv_idx)

    for nq, nk in ((1, 300), (7, 200)):
        run(f"queries_at_end window {nq}x{nk}", 2, 8, 2, nq, nk, 64, 64,
            score_mod=distance, mask_mod=sliding_window, lse=True, queries_at_end=True,
            score=lambda s, b, h, i, j: s - 0.05 * (i - j),
            keep=lambda b, h, i, j: (i >= j) & (i - j < WINDOW))
    try:
        run("queries_at_end Nq > Nk", 1, 4, 4, 9, 8, 64, 64, mask_mod=causal,
            queries_at_end=True)
        report("queries_at_end Nq > Nk refused", False, "no AttncError")
    except attnc.AttncError as e:
        report("queries_at_end Nq > Nk refused", "Nq <= Nk" in str(e), str(e))
    spec = attnc.trace(mask_mod=causal, H=4, D=64, queries_at_end=True)
    report("trace writes queries_at_end", " queries_at_end" in spec)


def test_document():
    n = 150
    doc_ids = np.sort(rng.integers(0, 5, n)).astype(np.int32)

    def document_causal(b, h, q_idx, kv_idx):
        return (doc_ids[q_idx] == doc_ids[kv_idx]) & (q_idx >= kv_idx)

    run("document mask (captured ids)", 2, 4, 4, n, n, 64, 64, mask_mod=document_causal,
        keep=lambda b, h, i, j: (doc_ids[i] == doc_ids[j]) & (i >= j))


def test_alibi():
    H = 8
    slopes = np.exp2(-8.0 * np.arange(1, H + 1) / H).astype(np.float32)

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx)

    run("alibi (captured slopes)", 2, H, H, 120, 120, 32, 32, score_mod=alibi,
        mask_mod=causal, score=lambda s, b, h, i, j: s - slopes[h].astype(np.float64) * (i - j),
        keep=lambda b, h, i, j: i >= j)


def test_softcap():
    cap = 5.0

    def softcap(score, b, h, q_idx, kv_idx):
        return cap * np.tanh(score / cap)

    run("softcap tanh", 1, 4, 4, 90, 110, 64, 64, score_mod=softcap, scale=1.0,
        score=lambda s, b, h, i, j: cap * np.tanh(s / cap))


def test_relative_bias():
    H, N = 4, 96
    bias = rand(H, 2 * N - 1)

    def rel_bias(score, b, h, q_idx, kv_idx):
        return score + bias[h, q_idx - kv_idx + (N - 1)]

    run("relative bias table", 2, H, H, N, N, 64, 64, score_mod=rel_bias,
        score=lambda s, b, h, i, j: s + bias[h, i - j + N - 1].astype(np.float64))


def test_bucketed_bias():
    H = 4
    table = rand(H, 32)

    def bucketed(score, b, h, q_idx, kv_idx):
        return score + table[h][min(abs(q_idx - kv_idx), 31)]

    run("clipped-distance bias (min/abs, partial indexing)", 1, H, H, 80, 80, 64, 64,
        score_mod=bucketed,
        score=lambda s, b, h, i, j: s + table[h, np.minimum(np.abs(i - j), 31)])


def test_captures_in_defaults_partials_and_globals():
    """Captured tensors reached through a default argument, a
    functools.partial and a module global, with kv_idx // 16 on a bool table."""
    import functools
    H = 4
    scale_by_head = rand(H) + 2.0

    def head_scale(score, b, h, q_idx, kv_idx, table=scale_by_head):
        return score * table[h]

    def banded(b, h, q_idx, kv_idx, width):
        return GLOBAL_KEEP[kv_idx // 16] | (abs(q_idx - kv_idx) < width)

    run("captures in defaults, partials, globals", 1, H, H, 64, 64, 32, 32,
        score_mod=head_scale, mask_mod=functools.partial(banded, width=5),
        score=lambda s, b, h, i, j: s * scale_by_head[h],
        keep=lambda b, h, i, j: GLOBAL_KEEP[j // 16] | (np.abs(i - j) < 5))


GLOBAL_KEEP = np.array([True, False, False, True])


def test_constant_indices():
    """Python integer indices read as Python reads them: -1 is the last entry."""
    bounds = np.array([7, 19, 40], dtype=np.int32)

    def between(b, h, q_idx, kv_idx):
        return (kv_idx >= bounds[0]) & (kv_idx < bounds[-1]) | (q_idx == kv_idx)

    run("constant and negative constant indices", 1, 4, 4, 50, 50, 32, 32, mask_mod=between,
        keep=lambda b, h, i, j: (j >= 7) & (j < 40) | (i == j))


def test_gqa():
    run("gqa 8:2 causal Nq != Nk", 2, 8, 2, 70, 150, 64, 64, mask_mod=causal,
        keep=lambda b, h, i, j: i >= j, lse=True)


def test_prefix_lm_and_where():
    prefix = 20

    def prefix_lm(b, h, q_idx, kv_idx):
        return (kv_idx < prefix) | (q_idx >= kv_idx)

    def masked_score(score, b, h, q_idx, kv_idx):
        return np.where((q_idx + kv_idx) % 7 == 3, -float("inf"), score * 2.0)

    run("prefix-LM mask, np.where(-inf) score, Dv != D", 1, 4, 4, 100, 100, 64, 32,
        score_mod=masked_score, mask_mod=prefix_lm,
        score=lambda s, b, h, i, j: np.where((i + j) % 7 == 3, -np.inf, s * 2.0),
        keep=lambda b, h, i, j: (j < prefix) | (i >= j))


def test_neighborhood():
    W, R = 12, 2

    def natten(b, h, q_idx, kv_idx):
        dr = q_idx // W - kv_idx // W
        dc = q_idx % W - kv_idx % W
        return (abs(dr) <= R) & (abs(dc) <= R)

    run("2D neighborhood (// and %)", 1, 4, 4, 144, 144, 64, 64, mask_mod=natten,
        keep=lambda b, h, i, j: (np.abs(i // W - j // W) <= R) & (np.abs(i % W - j % W) <= R))


def test_signed_floor_mod():
    def odd_diagonals(b, h, q_idx, kv_idx):
        return ((q_idx - kv_idx) // 3) % 2 == 0

    run("floor division and Python remainder of negative indices", 1, 4, 4, 60, 60, 64, 64,
        mask_mod=odd_diagonals, keep=lambda b, h, i, j: ((i - j) // 3) % 2 == 0)


def test_block_layout_and_heads():
    layout = rng.random((4, 3)) < 0.6
    layout[:, 0] = True

    def block_sparse(b, h, q_idx, kv_idx):
        return layout[q_idx // 32, kv_idx // 32] & ~((h == 1) & (kv_idx > q_idx))

    run("bool block layout, ~, per-head mask, lse with empty rows", 2, 4, 4, 128, 96, 64, 64,
        mask_mod=block_sparse, lse=True,
        keep=lambda b, h, i, j: layout[i // 32, j // 32] & ~((h == 1) & (j > i)))


def test_empty_rows():
    def strict(b, h, q_idx, kv_idx):
        return kv_idx < q_idx

    run("strictly causal lse (row 0 sees nothing)", 1, 4, 4, 50, 50, 64, 64,
        mask_mod=strict, keep=lambda b, h, i, j: j < i, lse=True)


def test_batch_dependent():
    per_batch_len = np.array([40, 75, 90], dtype=np.int64)

    def padding(score, b, h, q_idx, kv_idx):
        return np.where(kv_idx < per_batch_len[b], score, -float("inf"))

    run("per-batch lengths (score masks by b)", 3, 4, 4, 90, 90, 64, 64, score_mod=padding,
        score=lambda s, b, h, i, j: np.where(j < per_batch_len[b], s, -np.inf))


def test_no_recompile():
    """One kernel serves every B and N: flex_stats()['kernel_compiles'] and
    the compiler's compiles grow by at most one over four shapes."""
    before, cbefore = attnc.flex_stats(), attnc.cache_stats()
    shapes = [(1, 50, 50), (3, 200, 200), (2, 70, 130), (4, 33, 17)]
    for B, Nq, Nk in shapes:
        run(f"no recompile B={B} Nq={Nq} Nk={Nk}", B, 4, 4, Nq, Nk, 16, 16,
            mask_mod=sliding_window, keep=lambda b, h, i, j: (i >= j) & (i - j < WINDOW))
    after, cafter = attnc.flex_stats(), attnc.cache_stats()
    compiles = after["kernel_compiles"] - before["kernel_compiles"]
    hits = after["kernel_hits"] - before["kernel_hits"]
    jit = cafter["compiles"] - cbefore["compiles"]
    report("no recompile across B and N", compiles == 1 and hits == len(shapes) - 1 and jit <= 1,
           f"kernel_compiles +{compiles}, kernel_hits +{hits}, JIT compiles +{jit}")


RADIUS = 10


def test_trace_reuse_and_invalidation():
    """A trace is reused while nothing the mod reads changed; a changed
    global or closure constant, or a new captured array, retraces; an array
    changed in place is read at the call without a retrace."""
    global RADIUS
    cap = 5.0
    table = rand(4)

    def near(b, h, q_idx, kv_idx):
        return abs(q_idx - kv_idx) <= RADIUS

    def mod(score, b, h, q_idx, kv_idx):
        return cap * np.tanh(score / cap) + table[h]

    def case(name):
        before = attnc.flex_stats()
        r, c, t = RADIUS, cap, table.copy()
        run(name, 1, 4, 4, 60, 60, 32, 32, score_mod=mod, mask_mod=near,
            score=lambda s, b, h, i, j: c * np.tanh(s / c) + t[h],
            keep=lambda b, h, i, j: np.abs(i - j) <= r)
        after = attnc.flex_stats()
        return after["traces"] - before["traces"], after["trace_hits"] - before["trace_hits"]

    first = case("trace cache: first call")
    again = case("trace cache: same mods again")
    RADIUS = 20
    cap = 2.0
    changed = case("trace cache: global and closure constants changed")
    table = rand(4)
    new_array = case("trace cache: a new captured array")
    table[:] = rand(4)
    in_place = case("trace cache: the array changed in place")
    RADIUS = 10
    report("trace cache counts", (first, again, changed, new_array, in_place)
           == ((2, 0), (0, 2), (2, 0), (1, 1), (0, 2)),
           f"(traces, trace_hits) per call: {first} {again} {changed} {new_array} {in_place}")


def test_trace_then_compile():
    """attnc.trace's spec compiles by itself and takes the captures after q, k, v."""
    ids = np.sort(rng.integers(0, 3, 64)).astype(np.int32)

    def doc(b, h, q_idx, kv_idx):
        return ids[q_idx] == ids[kv_idx]

    spec = attnc.trace(mask_mod=doc, H=2, D=16)
    kernel = attnc.compile(spec)
    q, k, v = rand(1, 2, 64, 16), rand(1, 2, 64, 16), rand(1, 2, 64, 16)
    got = kernel(q, k, v, *spec.arguments())
    check("trace + compile + spec.arguments()", got,
          reference(q, k, v, keep=lambda b, h, i, j: ids[i] == ids[j])[0])


def main():
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
            except Exception as e:  # a crash is a failure, not a skip
                report(name, False, f"{type(e).__name__}: {e}")
    s = attnc.cache_stats()
    print(f"STATS compiles={s['compiles']} disk_hits={s['disk_hits']}")
    print(f"FAILURES {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
