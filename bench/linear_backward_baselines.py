"""flash-linear-attention's chunk kernels forward and forward + backward on
issue 16's problem (B=4, T=8192, H=16, D=Dv=128, bf16), the targets of
attnc's linear backward, timed on the GPU machine in one run (CUDA events,
warm-up, median of 20: bench/timing.py), with the memory floor. The delta
rule and the gated delta rule (q, k l2-normalized, beta in (0, 1)) are
included: issue 16 asks for >= 1.0x of them. fla is not part of attnc:
its `fla` package is copied into devcarry/fla-src (git-ignored) from a
fetched checkout (bench/prepare_device.sh).
  python3 bench/linear_backward_baselines.py devcarry/fla-src [out.json [k1,k2,...]]
Prints one table row per kernel (only the named ones when a list is
given) and rewrites out.json after each, so a run cut short keeps what it
timed (the first call of each kernel compiles and autotunes its Triton
code: minutes); a kernel whose backward fails on this Triton is reported
as such (issue 16 then compares against the floor)."""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timeit  # noqa: E402
from linear_gpu import fla_cases, memory_floor, timing_inputs  # noqa: E402


def delta_cases(q, k, v, g_tok):
    """fla's delta-rule kernels on l2-normalized q, k and betas in (0, 1)."""
    from fla.ops.delta_rule import chunk_delta_rule
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    qn = torch.nn.functional.normalize(q.float(), dim=-1).to(q.dtype)
    kn = torch.nn.functional.normalize(k.float(), dim=-1).to(k.dtype)
    beta = torch.rand(q.shape[:3], device=q.device, dtype=q.dtype).sigmoid()
    return {
        "chunk_delta_rule": lambda: chunk_delta_rule(qn, kn, v, beta),
        "chunk_gated_delta_rule": lambda: chunk_gated_delta_rule(qn, kn, v, g_tok, beta),
    }, (qn, kn, beta)


def output_of(result):
    return result[0] if isinstance(result, tuple) else result


def time_case(f, leaves):
    """(forward ms, forward + backward ms) of f, gradients of `leaves`."""
    fwd = timeit(lambda: f(), [()])
    do = torch.randn_like(output_of(f()))

    def step():
        for x in leaves:
            x.grad = None
        output_of(f()).backward(do)
    return fwd, timeit(step, [()])


def main():
    sys.path.insert(0, sys.argv[1])
    B, T, H, D = 4, 8192, 16, 128
    q, k, v, g_tok, g_dim = timing_inputs(g_dim_dtype=torch.bfloat16)
    floor_ms, bw = memory_floor(B, T, H, D)
    rows = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
            "shape": {"B": B, "T": T, "H": H, "D": D, "Dv": D, "dtype": "bf16"},
            "copy_bandwidth_GBps": bw / 1e9, "floor_ms": floor_ms, "fla": {}}
    print(f"{rows['device']}: copy bandwidth {bw / 1e9:.0f} GB/s, floor (q, k, v, o once) "
          f"{floor_ms:.3f} ms")
    leaves = [x.requires_grad_() for x in (q, k, v, g_tok, g_dim)]
    cases = fla_cases(q, k, v, g_tok, g_dim)
    extra, more_leaves = delta_cases(q.detach(), k.detach(), v, g_tok)
    for x in more_leaves:
        x.requires_grad_()
    cases.update(extra)
    if len(sys.argv) > 3:
        wanted = sys.argv[3].split(",")
        cases = {name: cases[name] for name in wanted if name in cases}
    print("| kernel | fwd ms | fwd+bwd ms | bwd ms | bwd / fwd |")
    print("|---|---|---|---|---|")
    fails = 0
    for name, f in cases.items():
        try:
            fwd, both = time_case(f, leaves + list(more_leaves))
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"| {name} | FAIL {type(e).__name__}: {str(e)[:120]} | | | |")
            rows["fla"][name] = {"error": f"{type(e).__name__}: {e}"}
            fails += 1
            continue
        rows["fla"][name] = {"fwd_ms": fwd, "fwd_bwd_ms": both, "bwd_ms": both - fwd}
        print(f"| {name} | {fwd:.3f} | {both:.3f} | {both - fwd:.3f} | "
              f"{(both - fwd) / fwd:.2f} |", flush=True)
        if len(sys.argv) > 2:
            with open(sys.argv[2], "w") as out:
                json.dump(rows, out, indent=1)
    return 1 if fails == len(cases) else 0


if __name__ == "__main__":
    sys.exit(main())
