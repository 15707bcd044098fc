"""Inference forms on the CPU target (no GPU, no torch), against float64
numpy references:
- paged KV caches: attn.attention with pages(%table) against the contiguous
  cache the pages hold. Pages are shuffled, shared between sequences (a
  common prefix) and mixed with unused pages; page sizes 1, 16 and 64;
  decode (Nq = 1), speculative (Nq = 4) and a prefill chunk; and the errors
  a serving loop can make: a table entry outside the pool, a table row per
  batch missing, k and v pools that differ;
- packed variable-length sequences (examples/varlen.mlir) and their
  offset errors;
- attention sinks (examples/sinks.mlir): o and lse with the per-head sink
  logit in the denominator, including rows whose keys are all masked;
- attnc.merge_states: attention over two halves of the keys merged by
  their lse equals attention over all of them (numpy, and torch when
  importable), rows empty in one or both halves, and its argument errors.
Exits nonzero when a check fails."""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402
from numpy_checks import check_close, error, rand, report, softmax_ref, state  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")

HQ, HKV, D = 8, 2, 64
rng = np.random.default_rng(7)


def spec(page, lens=False):
    t = f"tensor<?x{HKV}x{page}x{D}xf32>"
    arg = ", %lens: tensor<?xi32>" if lens else ""
    op = " kv_lens(%lens : tensor<?xi32>)" if lens else ""
    return f"""
func.func @paged(%q: tensor<?x{HQ}x?x{D}xf32>, %k: {t}, %v: {t},
                 %table: tensor<?x?xi32>{arg})
    -> (tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HQ}x?xf32>) {{
  %o, %lse = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>){op}
      queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {{
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    }} : tensor<?x{HQ}x?x{D}xf32>, {t}, {t}
      -> tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HQ}x?xf32>
  return %o, %lse : tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HQ}x?xf32>
}}
"""


def make_cache(B, pages, page, spare):
    """A pool of B * pages + spare pages, shuffled; sequences 0 and 1 share
    their first page (a common prefix). Returns the pool, the table and the
    contiguous k and v each sequence sees."""
    P = B * pages + spare
    kp, vp = rand(P, HKV, page, D), rand(P, HKV, page, D)
    table = rng.permutation(P)[: B * pages].reshape(B, pages).astype(np.int32)
    if B > 1 and pages > 1:
        table[1, 0] = table[0, 0]
    k = kp[table].transpose(0, 2, 1, 3, 4).reshape(B, HKV, pages * page, D)
    v = vp[table].transpose(0, 2, 1, 3, 4).reshape(B, HKV, pages * page, D)
    return kp, vp, table, k, v


def lens_mask(nq, nk, lens, at_end):
    """[B, 1, Nq, Nk]: key j < lens[b], causal at positions shifted by
    lens[b] - Nq (at_end) or a document mask given by the caller."""
    j = np.arange(nk)[None, None, None, :]
    n = lens[:, None, None, None]
    pos = np.arange(nq)[None, None, :, None] + (n - nq if at_end else 0)
    return (j < n) & (pos >= j)


def kv_lens_tests():
    kernel = attnc.compile(spec(16, lens=True))
    for B, pages, nq in ((4, 10, 1), (3, 6, 5), (2, 4, 33)):
        kp, vp, table, k, v = make_cache(B, pages, 16, spare=3)
        nk = pages * 16
        lens = rng.integers(nq, nk + 1, B).astype(np.int32)
        lens[0], lens[-1] = nk, nq
        q = rand(B, HQ, nq, D)
        o, lse = kernel(q, kp, vp, table, lens)
        ro, rl = softmax_ref(q, k, v, lens_mask(nq, nk, lens, True))
        name = f"paged kv_lens B={B} Nq={nq} Nk={nk} lens={lens.tolist()}"
        check_close(name + " o", o, ro)
        check_close(name + " lse", lse, rl)
    kp, vp, table, k, v = make_cache(2, 4, 16, spare=0)
    q = rand(2, HQ, 4, D)
    error("kv_lens above Nk", lambda: kernel(q, kp, vp, table, np.array([64, 65], np.int32)))
    error("kv_lens below Nq", lambda: kernel(q, kp, vp, table, np.array([3, 64], np.int32)))
    # A mask on captured data (documents) with kv_lens: no block map, every
    # tile evaluated per element; top-left positions.
    text = open(os.path.join(EXAMPLES, "document_mask.mlir")).read()
    text = text.replace('"sorted:0:3"})', '"sorted:0:3"}, %lens: tensor<?xi32>)', 1)
    text = text.replace("captures(%docs", "kv_lens(%lens : tensor<?xi32>) captures(%docs", 1)
    docs = attnc.compile(text)
    N = 150
    ids = np.sort(rng.integers(0, 3, N)).astype(np.int32)
    q, k, v = rand(3, 4, N, D), rand(3, 4, N, D), rand(3, 4, N, D)
    lens = np.array([N, 0, 77], np.int32)
    o = docs(q, k, v, ids, lens)
    m = lens_mask(N, N, lens, False) & (ids[:, None] == ids[None, :])
    check_close("document_mask kv_lens=[150, 0, 77]", o, softmax_ref(q, k, v, m)[0])


def varlen_tests():
    """examples/varlen.mlir: packed sequences (lengths 0 and 1 among them,
    keys >= queries per sequence, queries at the end of their keys, causal
    with a 256-key window) against float64 per sequence; the rows past the
    last sequence; bad offsets refused before any work."""
    kernel = attnc.compile(os.path.join(EXAMPLES, "varlen.mlir"))
    nqs, nks = [5, 0, 1, 40, 129, 0], [7, 3, 1, 300, 129, 0]
    cu_q = np.concatenate([[0], np.cumsum(nqs)]).astype(np.int32)
    cu_k = np.concatenate([[0], np.cumsum(nks)]).astype(np.int32)
    tail = 3  # rows past the last sequence
    q = rand(1, HQ, int(cu_q[-1]) + tail, D)
    k, v = rand(1, HKV, int(cu_k[-1]), D), rand(1, HKV, int(cu_k[-1]), D)
    o, lse = kernel(q, k, v, cu_q, cu_k)
    worst_o = worst_l = 0.0
    for b, (nq, nk) in enumerate(zip(nqs, nks)):
        if nq == 0:
            continue
        qs, ks = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        pos = np.arange(nq)[:, None] + nk - nq
        j = np.arange(nk)[None, :]
        ro, rl = softmax_ref(q[:, :, qs], k[:, :, ks], v[:, :, ks],
                             (pos >= j) & (pos < j + 256))
        worst_o = max(worst_o, float(np.abs(o[:, :, qs] - ro).max()))
        worst_l = max(worst_l, float(np.abs(lse[:, :, qs] - rl).max()))
    report(f"varlen q lens {nqs} k lens {nks} o (max err {worst_o:.1e})", worst_o < 1e-4)
    report(f"varlen lse (max err {worst_l:.1e})", worst_l < 1e-4)
    report("varlen rows past the last sequence: o = 0, lse = -inf",
           bool((o[:, :, -tail:] == 0).all() and np.isneginf(lse[:, :, -tail:]).all()))
    bad = cu_q.copy()
    bad[0] = 1
    error("cu_seqlens first", lambda: kernel(q, k, v, bad, cu_k))
    bad = cu_q.copy()
    bad[3] = bad[2] - 1
    error("cu_seqlens decreasing", lambda: kernel(q, k, v, bad, cu_k))
    bad = cu_k.copy()
    bad[-1] = k.shape[2] + 1
    error("cu_seqlens past the tokens", lambda: kernel(q, k, v, cu_q, bad))
    error("cu_seqlens sizes", lambda: kernel(q, k, v, cu_q, cu_k[:-1]))
    # A capture read per sequence needs an entry per sequence.
    prefix = attnc.compile(PREFIX_SPEC)
    n = int(cu_k[-1])
    pq, pk, pv = rand(1, 4, n, 32), rand(1, 4, n, 32), rand(1, 4, n, 32)
    lens = np.zeros(len(nks), np.int32)
    prefix(pq, pk, pv, cu_k, cu_k, lens)
    error("per-sequence capture too short",
          lambda: prefix(pq, pk, pv, cu_k, cu_k, lens[:-1]))


PREFIX_SPEC = """
func.func @prefix(%q: tensor<1x4x?x32xf32>, %k: tensor<1x4x?x32xf32>,
                  %v: tensor<1x4x?x32xf32>, %cu_q: tensor<?xi32>,
                  %cu_k: tensor<?xi32>, %prefix: tensor<?xi32>)
    -> tensor<1x4x?x32xf32> {
  %o = attn.attention %q, %k, %v cu_seqlens_q(%cu_q : tensor<?xi32>)
      cu_seqlens_k(%cu_k : tensor<?xi32>) captures(%prefix : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %p = tensor.extract %prefix[%b] : tensor<?xi32>
      %pi = arith.index_cast %p : i32 to index
      %in = arith.cmpi ult, %j, %pi : index
      %causal = arith.cmpi uge, %i, %j : index
      %c = arith.ori %in, %causal : i1
      attn.yield %c : i1
    } : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>
      -> tensor<1x4x?x32xf32>
  return %o : tensor<1x4x?x32xf32>
}
"""


def sinks_ref(q, k, v, sink, mask):
    """o, lse with sink[h] in every row's denominator (float64)."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    g = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    s = np.einsum("bhid,bhjd->bhij", q, k) / np.sqrt(q.shape[3])
    s = np.where(mask, s, -np.inf)
    sk = sink.astype(np.float64)[None, :, None, None]
    mx = np.maximum(s.max(-1, keepdims=True), sk)
    p = np.exp(s - mx)
    l = p.sum(-1, keepdims=True) + np.exp(sk - mx)
    return np.einsum("bhij,bhjd->bhid", p, v) / l, (mx + np.log(l))[..., 0]


def sinks_tests():
    kernel = attnc.compile(os.path.join(EXAMPLES, "sinks.mlir"))
    for B, nq, nk in ((2, 200, 200), (1, 1, 300), (2, 70, 40)):
        q, k, v = rand(B, HQ, nq, D), rand(B, HKV, nk, D), rand(B, HKV, nk, D)
        sink = (3 * rand(HQ)).astype(np.float32)
        i, j = np.arange(nq)[:, None], np.arange(nk)[None, :]
        o, lse = kernel(q, k, v, sink)
        ro, rl = sinks_ref(q, k, v, sink, (i >= j) & (i - j < 128))
        check_close(f"sinks B={B} Nq={nq} Nk={nk} o", o, ro)
        check_close(f"sinks B={B} Nq={nq} Nk={nk} lse", lse, rl)
    # Nq > Nk: rows past the keys see none of them: o = 0, lse = the sink.
    q, k, v = rand(1, HQ, 300, D), rand(1, HKV, 100, D), rand(1, HKV, 100, D)
    sink = rand(HQ)
    o, lse = kernel(q, k, v, sink)
    rows = slice(228, 300)  # i - j >= 128 for every key j < 100
    report("sinks empty rows: o = 0, lse = sink",
           bool((o[0, :, rows] == 0).all()) and
           bool(np.allclose(lse[0, :, rows], sink[:, None], atol=1e-6)))


MERGE_SPEC = f"""
func.func @plain(%q: tensor<?x{HQ}x?x{D}xf32>, %k: tensor<?x{HKV}x?x{D}xf32>,
                 %v: tensor<?x{HKV}x?x{D}xf32>)
    -> (tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HQ}x?xf32>) {{
  %o, %lse = attn.attention %q, %k, %v
    : tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HKV}x?x{D}xf32>, tensor<?x{HKV}x?x{D}xf32>
      -> tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HQ}x?xf32>
  return %o, %lse : tensor<?x{HQ}x?x{D}xf32>, tensor<?x{HQ}x?xf32>
}}
"""


def merge_tests():
    kernel = attnc.compile(MERGE_SPEC)
    q, k, v = rand(2, HQ, 7, D), rand(2, HKV, 300, D), rand(2, HKV, 300, D)
    oa, la = kernel(q, k[:, :, :120], v[:, :, :120])  # a shared prefix
    ob, lb = kernel(q, k[:, :, 120:], v[:, :, 120:])  # the rest
    o, lse = attnc.merge_states(oa, la, ob, lb)
    ro, rl = softmax_ref(q, k, v, np.ones((7, 300), bool))
    check_close("merge_states o", o, ro)
    check_close("merge_states lse", lse, rl)
    # Rows that saw no key in one half (lse -inf, o 0), or in both.
    empty_o, empty_l = np.zeros_like(ob), np.full_like(lb, -np.inf)
    o1, l1 = attnc.merge_states(oa, la, empty_o, empty_l)
    report("merge_states with an empty half", bool(np.allclose(o1, oa) and np.allclose(l1, la)))
    o2, l2 = attnc.merge_states(empty_o, empty_l, empty_o, empty_l)
    report("merge_states empty rows: o = 0, lse = -inf",
           bool((o2 == 0).all() and np.isneginf(l2).all()))
    error("merge_states shapes", lambda: attnc.merge_states(oa, la, ob[:, :, :3], lb))
    error("merge_states lse shape", lambda: attnc.merge_states(oa, la[..., :2], ob, lb))
    try:
        import torch
    except ImportError:
        print("UNSUPPORTED merge_states torch: torch is not importable")
        return
    t = [torch.from_numpy(x) for x in (oa, la, ob, lb)]
    to, tl = attnc.merge_states(*t)
    check_close("merge_states torch o", to.numpy(), ro)
    check_close("merge_states torch lse", tl.numpy(), rl)
    error("merge_states mixed", lambda: attnc.merge_states(t[0], la, ob, lb))


ORDER_SPEC = """
func.func @order(%q: tensor<?x4x?x64xELEM>, %k: tensor<?x4x?x64xELEM>,
                 %v: tensor<?x4x?x64xELEM>, %docs: tensor<?xi32>,
                 %sink: tensor<4xf32>) -> tensor<?x4x?x64xELEM> {
  %o = attn.attention %q, %k, %v sinks(%sink : tensor<4xf32>)
      captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %c = arith.cmpi eq, %di, %dj : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xELEM>, tensor<?x4x?x64xELEM>, tensor<?x4x?x64xELEM>
      -> tensor<?x4x?x64xELEM>
  return %o : tensor<?x4x?x64xELEM>
}
"""


def order_tests():
    """The sinks after a capture among the function's arguments (the op
    lists sinks first): one kernel on the CPU and the GPU alike."""
    kernel = attnc.compile(ORDER_SPEC.replace("ELEM", "f32"))
    q, k, v = rand(2, 4, 90, D), rand(2, 4, 90, D), rand(2, 4, 90, D)
    docs = np.sort(rng.integers(0, 3, 90)).astype(np.int32)
    sink = rand(4)
    o = kernel(q, k, v, docs, sink)
    check_close("sinks after a capture", o,
                sinks_ref(q, k, v, sink, docs[:, None] == docs[None, :])[0])
    gpu = attnc.compile(ORDER_SPEC.replace("ELEM", "bf16"), target="sm_80")
    print("GPU ORDER", [p["name"] for p in gpu.inputs])


def main():
    for page in (1, 16, 64):
        kernel = attnc.compile(spec(page))
        for B, pages, nq in ((3, 160 // page or 1, 1), (2, 192 // page, 4),
                             (2, 256 // page, 37)):
            kp, vp, table, k, v = make_cache(B, pages, page, spare=5)
            nk = pages * page
            q = rand(B, HQ, nq, D)
            o, lse = kernel(q, kp, vp, table)
            pos = np.arange(nq)[:, None] + nk - nq
            ro, rl = softmax_ref(q, k, v, pos >= np.arange(nk))
            name = f"paged page={page} B={B} Nq={nq} Nk={nk}"
            check_close(name + " o", o, ro)
            check_close(name + " lse", lse, rl)

    kernel = attnc.compile(spec(16))
    kp, vp, table, k, v = make_cache(2, 4, 16, spare=0)
    q = rand(2, HQ, 1, D)
    bad = table.copy()
    bad[1, 2] = 99
    error("entry out of range", lambda: kernel(q, kp, vp, bad))
    bad[1, 2] = -1
    error("negative entry", lambda: kernel(q, kp, vp, bad))
    error("rows", lambda: kernel(q, kp, vp, table[:1]))
    error("pools differ", lambda: kernel(q, kp, vp[:-1], table))
    error("Nq > Nk", lambda: kernel(rand(2, HQ, 65, D), kp, vp, table))
    sinks_tests()
    kv_lens_tests()
    varlen_tests()
    merge_tests()
    order_tests()
    print("FAILURES", state.fails)
    return 1 if state.fails else 0


if __name__ == "__main__":
    sys.exit(main())
