"""attnc kernels inside torch (issue 12, item 3), on the GPU machine:
torch.compile with no graph break (torch._dynamo.explain), fullgraph
compilation, capture and replay in a CUDA graph, and value checks that do
not synchronize (a linear kernel's log-gates). Each check compares with a
float32 reference on fresh random inputs and prints PASS/FAIL.

  python3 bench/torch_integration.py ATTN_AOT_DIR [LINEAR_DIR]
ATTN_AOT_DIR: a causal attention kernel (bench/specs.py "causal");
LINEAR_DIR: a JIT cache entry of a linear kernel with log-gates (gla/mamba2).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import attnc  # noqa: E402

fails = 0


def report(ok, what):
    global fails
    fails += not ok
    print(("PASS " if ok else "FAIL ") + what, flush=True)


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def attention_checks(kern):
    B, H, N, D = 2, 16, 1024, 128
    mk = lambda: torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16)  # noqa: E731
    q, k, v = mk(), mk(), mk()
    ref = lambda q, k, v: F.scaled_dot_product_attention(  # noqa: E731
        q.float(), k.float(), v.float(), is_causal=True)
    err = rel(kern(q, k, v), ref(q, k, v))
    report(err < 1e-2, f"eager call rel_err={err:.2e}")

    def f(q, k, v):
        return kern(q, k, v) * 2.0

    torch._dynamo.reset()
    ex = torch._dynamo.explain(f)(q, k, v)
    report(ex.graph_break_count == 0 and ex.graph_count == 1,
           f"torch._dynamo.explain: {ex.graph_count} graph(s), "
           f"{ex.graph_break_count} graph break(s) {list(ex.break_reasons)[:1]}")
    cf = torch.compile(f, fullgraph=True)
    err = rel(cf(q, k, v), 2 * ref(q, k, v))
    report(err < 1e-2, f"torch.compile(fullgraph=True) rel_err={err:.2e}")
    q2, k2, v2 = mk(), mk(), mk()
    err = rel(cf(q2, k2, v2), 2 * ref(q2, k2, v2))
    report(err < 1e-2, f"torch.compile, new inputs rel_err={err:.2e}")
    # Another sequence length: dynamic shapes need no new attnc kernel.
    q3, k3, v3 = (torch.randn(1, H, 300, D, device="cuda", dtype=torch.bfloat16)
                  for _ in range(3))
    err = rel(cf(q3, k3, v3), 2 * ref(q3, k3, v3))
    report(err < 1e-2, f"torch.compile, N=300 rel_err={err:.2e}")

    # CUDA graph: capture on a side stream, replay with new data.
    sq, sk, sv = mk(), mk(), mk()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            kern(sq, sk, sv)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        sout = kern(sq, sk, sv)
    for trial in range(2):
        nq, nk, nv = mk(), mk(), mk()
        sq.copy_(nq)
        sk.copy_(nk)
        sv.copy_(nv)
        g.replay()
        torch.cuda.synchronize()
        err = rel(sout, ref(nq, nk, nv))
        report(err < 1e-2, f"CUDA graph replay {trial} rel_err={err:.2e}")
    # torch.compile's own CUDA graphs.
    torch._dynamo.reset()
    rf = torch.compile(f, mode="reduce-overhead")
    for _ in range(3):
        o = rf(q, k, v)
    err = rel(o, 2 * ref(q, k, v))
    report(err < 1e-2, f"torch.compile(mode='reduce-overhead') rel_err={err:.2e}")


def linear_checks(kern):
    names = kern.names
    B, H, N = 2, kern.abi["H"], 256
    D, Dv = kern.abi["D"], kern.abi["Dv"]
    ins = []
    for p in kern.inputs:
        shape = [B if (d < 0 and i == 0) else N if d < 0 else d
                 for i, d in enumerate(p["shape"])]
        dt = getattr(torch, {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[p["dtype"]])
        ins.append(torch.randn(shape, device="cuda", dtype=dt) * 0.1)
    gi = kern.checks["log_gates"][0]
    ins[gi] = -torch.rand_like(ins[gi]) * 0.1
    kern(*ins)
    torch.cuda.synchronize()
    try:
        kern.check_errors()
        report(True, "valid log-gates: no error flagged")
    except attnc.AttncError as e:
        report(False, f"valid log-gates flagged: {e}")
    bad = list(ins)
    bad[gi] = ins[gi].clone()
    bad[gi].view(-1)[7] = 0.5
    # The default check enqueues work and returns: no exception here.
    try:
        kern(*bad)
        report(True, "invalid log-gates, default check: the call does not wait")
    except attnc.AttncError as e:
        report(False, f"default check raised at once: {e}")
    try:
        kern.check_errors()
        report(False, "check_errors() missed the invalid log-gates")
    except attnc.AttncError as e:
        report("log-gates" in str(e), f"check_errors(): {e}")
    try:
        kern(*bad, check_values=True)
        report(False, "check_values=True accepted invalid log-gates")
    except attnc.AttncError as e:
        report("log-gates" in str(e), f"check_values=True: {e}")
    # Capturable with the default (device-side) check.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        kern(*ins)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            out = kern(*ins)
        g.replay()
        torch.cuda.synchronize()
        want = kern(*ins, check_values=False)
        out0 = out[0] if isinstance(out, tuple) else out
        want0 = want[0] if isinstance(want, tuple) else want
        err = rel(out0, want0)
        report(err < 1e-3, f"linear kernel in a CUDA graph (gate check on) rel_err={err:.2e}")
    except Exception as e:  # capture errors are the finding
        report(False, f"linear kernel in a CUDA graph: {type(e).__name__}: {e}")
    del names


def main():
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    kern = attnc.load(sys.argv[1])
    print(repr(next(iter(kern.kernels.values()))))
    attention_checks(next(iter(kern.kernels.values())))
    if len(sys.argv) > 2:
        lin = next(iter(attnc.load(sys.argv[2]).kernels.values()))
        print(repr(lin))
        linear_checks(lin)
    print("FAILURES", fails)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
