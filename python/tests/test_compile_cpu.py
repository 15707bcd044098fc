"""attnc.compile on the CPU target (no GPU, no torch): numpy kernels checked
against a float64 numpy reference, the argument checks, compile errors and
the disk cache. Exits nonzero when a check fails.

usage: test_compile_cpu.py [--gpu]
  (libattnc.so from $ATTNC_LIB_DIR or the build tree; the cache is
  $ATTNC_CACHE_DIR.) --gpu: compile for sm_80 / sm_90a instead (needs
  ptxas for the cubin checks) and check what calling the result without
  torch or a GPU says."""
import ctypes
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402

from numpy_checks import check_close, error, rand, report, rng, softmax_ref, state  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")


def example(name):
    return os.path.join(EXAMPLES, name + ".mlir")


def cpu_tests():
    print("VERSION", attnc.version())

    # causal, Nq != Nk, neither a multiple of 64.
    kc = attnc.compile(example("causal"))
    print("KERNEL", repr(kc))
    print("SIGNATURE", kc.signature["name"], kc.target, [p["shape"] for p in kc.signature["inputs"]])
    B, H, D, Nq, Nk = 2, 4, 64, 100, 130
    q, k, v = rand(B, H, Nq, D), rand(B, H, Nk, D), rand(B, H, Nk, D)
    i, j = np.arange(Nq)[:, None], np.arange(Nk)[None, :]
    o = kc(q, k, v)
    check_close("causal 100x130", o, softmax_ref(q, k, v, i >= j)[0])
    # Square, ragged.
    o = kc(q, k[:, :, :Nq], v[:, :, :Nq])
    check_close("causal 100x100", o, softmax_ref(q, k[:, :, :Nq], v[:, :, :Nq], i >= j[:, :Nq])[0])

    # Non-contiguous inputs ([B, N, H, D] transposed views; copied) and out=.
    qt = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    out = np.full((B, H, Nq, D), np.nan, dtype=np.float32)
    res = kc(qt, k, v, out=out)
    check_close("causal strided q, out=", out, softmax_ref(q, k, v, i >= j)[0])
    report("out= returns out", res is out)
    # A strided output view.
    big = np.zeros((B, H, Nq, 2 * D), dtype=np.float32)
    kc(q, k, v, out=big[..., ::2])
    check_close("causal strided out", big[..., ::2], softmax_ref(q, k, v, i >= j)[0])
    report("strided out left the gaps alone", not big[..., 1::2].any())

    # GQA: 8 query heads over 2 kv heads, Nq != Nk.
    kg = attnc.compile(example("gqa"))
    q, k, v = rand(1, 8, 70, D), rand(1, 2, 100, D), rand(1, 2, 100, D)
    o = kg(q, k, v)
    check_close("gqa 70x100", o, softmax_ref(q, k, v, np.arange(70)[:, None] >= np.arange(100))[0])

    # queries_at_end: the queries are the last Nq of Nk positions (prefill
    # against a cache, decode); a causal window of 256 over GQA 8:2.
    kw = attnc.compile(example("cached_window"))
    for nq, nk in ((1, 700), (5, 300), (64, 64), (40, 1000)):
        q, k, v = rand(2, 8, nq, D), rand(2, 2, nk, D), rand(2, 2, nk, D)
        pos = np.arange(nq)[:, None] + nk - nq
        m = (pos >= np.arange(nk)) & (pos - np.arange(nk) < 256)
        o, lse = kw(q, k, v)
        ro, rl = softmax_ref(q, k, v, m)
        check_close(f"cached_window {nq}x{nk} o", o, ro)
        check_close(f"cached_window {nq}x{nk} lse", lse, rl)
    q = rand(1, 8, 9, D)
    error("cached_window Nq > Nk", lambda: kw(q, rand(1, 2, 8, D), rand(1, 2, 8, D)))

    # Document mask with captured sorted doc ids.
    kd = attnc.compile(example("document_mask"))
    N = 100
    docs = np.sort(rng.integers(0, 4, N)).astype(np.int32)
    q, k, v = rand(2, 4, N, D), rand(2, 4, N, D), rand(2, 4, N, D)
    o = kd(q, k, v, docs)
    n = np.arange(N)
    m = (docs[:, None] == docs[None, :]) & (n[:, None] >= n[None, :])
    check_close(f"document_mask {N} ({len(set(docs.tolist()))} docs)", o,
                softmax_ref(q, k, v, m)[0])

    # lse with a fully masked row (row 0): o = 0, lse = -inf; Nq != Nk.
    kl = attnc.compile(example("lse_strict_causal"))
    print("KERNEL", repr(kl))
    Nq, Nk = 100, 77
    q, k, v = rand(2, 4, Nq, D), rand(2, 4, Nk, D), rand(2, 4, Nk, D)
    o, lse = kl(q, k, v)
    ro, rl = softmax_ref(q, k, v, np.arange(Nk)[None, :] < np.arange(Nq)[:, None])
    check_close("lse_strict_causal o 100x77", o, ro)
    check_close("lse_strict_causal lse 100x77", lse[:, :, 1:], rl[:, :, 1:])
    report("lse_strict_causal masked row", bool(np.isneginf(lse[:, :, 0]).all()
                                              and (o[:, :, 0] == 0).all()),
           f"o={o[0, 0, 0, :2]}, lse={lse[0, 0, 0]}")
    out = (np.empty_like(o), np.empty_like(lse))
    res = kl(q, k, v, out=out)
    report("lse out=(o, lse)", res[0] is out[0] and res[1] is out[1]
           and np.array_equal(out[0], o) and np.array_equal(out[1], lse))

    # A scan (not attn.attention): output shapes from the signature and inputs.
    ks = attnc.compile(example("mamba2_scan"))
    q, k, v = rand(2, 4, 50, D), rand(2, 4, 50, D), rand(2, 4, 50, D)
    g = -rng.uniform(0.01, 0.3, (2, 4, 50)).astype(np.float32)
    s0 = rand(2, 4, D, D)
    o, s = ks(q, k, v, g, s0)
    # Reference recurrence: S_t = exp(g_t) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t.
    S = s0.astype(np.float64).copy()
    ro = np.zeros(o.shape)
    for t in range(50):
        S = np.exp(g[:, :, t])[..., None, None] * S + \
            np.einsum("bhf,bhd->bhfd", k[:, :, t].astype(np.float64), v[:, :, t])
        ro[:, :, t] = np.einsum("bhfd,bhf->bhd", S, q[:, :, t])
    ok = o.shape == ro.shape and s.shape == (2, 4, D, D)
    report("mamba2_scan shapes", ok, f"o {list(o.shape)}, state {list(s.shape)}")
    check_close("mamba2_scan o", o, ro)
    check_close("mamba2_scan state", s, S)

    # Errors: each prints the AttncError message.
    q, k, v = rand(2, 4, 100, D), rand(2, 4, 100, D), rand(2, 4, 100, D)
    error("rank", lambda: kc(q[0], k, v))
    error("heads", lambda: kc(rand(2, 3, 100, D), k, v))
    error("dtype", lambda: kc(q.astype(np.float64), k, v))
    error("too few", lambda: kd(q, k, v))
    error("not an array", lambda: kc(q, k.tolist(), v))
    error("batch", lambda: kc(q, rand(1, 4, 100, D), v))
    error("out shape", lambda: kc(q, k, v, out=np.empty((2, 4, 99, D), np.float32)))
    error("target", lambda: attnc.compile(example("causal"), target="sm_70"))
    error("parse", lambda: attnc.compile("func.func @f(%q: tensor<?x4x?x64xf32>) {\n"
                                         "  %x = arith.bogus %q\n  return\n}\n"))
    error("no file", lambda: attnc.compile("examples/nonexistent.mlir"))
    error("gpu f32", lambda: attnc.compile(example("causal"), target="sm_80"))
    bf16 = open(example("causal")).read().replace("x64xf32>", "x64xbf16>")
    kb = attnc.compile(bf16)
    print("KERNEL", repr(kb))
    error("bf16 cpu", lambda: kb(q, k, v))
    # GPU kernels need no disk cache: they live in the launch library.
    kg = attnc.compile(bf16, target="sm_80", cache_dir="")
    print("GPU NO DISK CACHE", repr(kg), repr(kg.directory))

    # A compiler without a disk cache, then the memory cache.
    k0 = attnc.compile(example("causal"), cache_dir="")
    check_close("no disk cache", k0(q, k, v), softmax_ref(q, k, v, np.tri(100, dtype=bool))[0])
    attnc.compile(example("causal"), cache_dir="")
    st = attnc.cache_stats("")
    print(f"NOCACHE compiles={st['compiles']} memory_hits={st['memory_hits']} "
          f"disk_hits={st['disk_hits']}")

    st = attnc.cache_stats()
    print(f"STATS compiles={st['compiles']} disk_hits={st['disk_hits']} "
          f"memory_hits={st['memory_hits']} rebuilt={st['rebuilt']}")


def gpu_tests():
    ok, why = attnc.cuda_available()
    print("CUDA", ok, why)
    bf16 = open(example("lse_strict_causal")).read().replace("x64xf32>", "x64xbf16>")
    for target in ("sm_80", "sm_90a"):
        kern = attnc.compile(bf16, target=target)
        d = kern.signature["directory"]
        print("KERNEL", repr(kern))
        print("FILES", target, sorted(f for f in os.listdir(d) if not f.endswith(".json")))
        print("OUTPUTS", [(p["name"], p["dtype"], p["shape"]) for p in kern.signature["outputs"]])
        q = np.zeros((1, 4, 64, 64), np.float32)
        error(f"call {target}", lambda: kern(q, q, q))
    st = attnc.cache_stats()
    print(f"STATS compiles={st['compiles']} disk_hits={st['disk_hits']}")


if "--gpu" in sys.argv[1:]:
    gpu_tests()
else:
    cpu_tests()
print("FAILURES", state.fails)
sys.exit(1 if state.fails else 0)
