"""Launch overhead of attnc's Python path (issue 12): per-call time of an
attnc.load kernel against PyTorch SDPA (cuDNN, flash) and FlexAttention in
the same process, causal bf16, H=16, d=128, at B=1 N=512 and B=8 N=1024.

Two numbers per path: the device time of one call (CUDA events around the
call, median) and the host time of one call (wall clock of back-to-back
calls without synchronization, divided by their number: what the CPU
spends to issue a call). A launch path is as fast as its kernel when its
host time is below its device time.

  python3 bench/launch_overhead.py devcarry/aot/causal [OUT.json]
(OUT.json and OUT.md, the table with device, date and versions: bench/results.py)
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import attnc  # noqa: E402
import results  # noqa: E402
from timing import timeit  # noqa: E402


def host_us(fn, args, calls=200, rounds=5):
    """Median over rounds of the wall-clock per call of `calls` unsynchronized
    calls (the queue is drained between rounds)."""
    out = []
    for _ in range(rounds):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args)
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        out.append((t1 - t0) / calls * 1e6)
    return statistics.median(out)


def peers():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    res = {}
    for name, be in (("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
                     ("sdpa_flash", SDPBackend.FLASH_ATTENTION)):
        def f(q, k, v, be=be):
            with sdpa_kernel(be):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        res[name] = f
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention)
        masks = {}

        def fx(q, k, v):
            key = (q.shape[0], q.shape[2])
            if key not in masks:
                masks[key] = create_block_mask(lambda b, h, i, j: i >= j, None, None,
                                               q.shape[2], k.shape[2])
            return flex(q, k, v, block_mask=masks[key])
        res["flex"] = fx
    except Exception as e:  # pragma: no cover - depends on torch
        print("FlexAttention unavailable:", e)
    return res


def capi_rows(directory, name):
    """The launch library's C API (the path of the C++ JIT and the AOT
    launcher): bench/launch_bench.cpp, built here into devcarry/bin."""
    import subprocess
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "devcarry", "bin",
                       "attnc-launch-bench")
    rows = []
    if not os.path.exists(exe):
        return rows
    for B, N in ((1, 512), (8, 1024)):
        r = subprocess.run([exe, directory, name, str(B), str(N)], capture_output=True,
                           text=True, timeout=120)
        if r.returncode == 0:
            d = json.loads(r.stdout)
            rows.append({"B": B, "N": N, "path": "C API", "device_ms": d["ms_per_call"],
                         "host_us": d["host_us"], "rel_err": None})
        else:
            print("C API bench failed:", r.stderr.strip())
    return rows


def breakdown(kern, q, k, v):
    """Host microseconds of each step of the Python call (Kernel.launch) at
    one shape: what the per-call host time is made of."""
    from attnc import _aot
    inputs, dev = (q, k, v), q.get_device()
    outs = kern._outputs(inputs, (None, None), q)
    words = kern._fast_words(inputs, outs, dev)
    raw = _aot._raw_stream(torch)
    steps = {
        "whole call": lambda: kern(q, k, v),
        "is_compiling": lambda: _aot._is_compiling(),
        "allocate outputs": lambda: kern._outputs(inputs, (None, None), q),
        "pack tensors": lambda: kern._fast_words(inputs, outs, dev),
        "current stream": lambda: raw(dev),
        "launch library call": lambda: kern._run(words, dev, torch),
    }
    return [{"step": name, "host_us": host_us(fn, ())} for name, fn in steps.items()]


def main():
    kern = next(iter(attnc.load(sys.argv[1]).kernels.values()))
    rows = []
    for B, N in ((1, 512), (8, 1024)):
        sets = [tuple(torch.randn(B, 16, N, 128, device="cuda", dtype=torch.bfloat16)
                      for _ in range(3)) for _ in range(4)]
        q, k, v = sets[0]
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        err = ((kern(q, k, v).float() - ref).norm() / ref.norm()).item()
        paths = {"attnc (Python)": kern}
        paths.update(peers())
        for name, fn in paths.items():
            dev = timeit(fn, sets, warmup=10, reps=50)
            host = host_us(fn, sets[0])
            rows.append({"B": B, "N": N, "path": name, "device_ms": dev, "host_us": host,
                         "rel_err": err if name == "attnc (Python)" else None})
    rows += capi_rows(sys.argv[1], kern.name)
    q, k, v = (torch.randn(1, 16, 512, 128, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    steps = breakdown(kern, q, k, v)
    dev_name = torch.cuda.get_device_name()
    meta = results.metadata(device=dev_name)  # device, date, versions
    title = "launch overhead, causal bf16 H16 d128"
    print(f"{title}, {dev_name}, torch {torch.__version__}, {meta['date']}")
    columns = [("B", "B", "{}"), ("N", "N", "{}"), ("path", "path", "{}"),
               ("ms per call (events)", "device_ms", "{:.4f}"),
               ("host us per call", "host_us", "{:.1f}")]
    print("\n".join(results.table(rows, columns)))
    step_columns = [("step of the Python call (B1 N512)", "step", "{}"),
                    ("host us", "host_us", "{:.2f}")]
    print("\n".join(results.table(steps, step_columns)))
    if len(sys.argv) > 2:  # OUT.json and OUT.md
        results.write(sys.argv[2], rows, title=title, columns=columns, meta=meta,
                      fields={"device": dev_name, "torch": torch.__version__,
                              "date": meta["date"], "python_call_steps": steps})


if __name__ == "__main__":
    main()
