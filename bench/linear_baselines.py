"""flash-linear-attention's Triton chunk kernels and the memory floor for
issue 5's problem (B=4, T=8192, H=16, D=Dv=128, bf16), timed on the GPU
machine in one run: CUDA events, warm-up, median of 20 (bench/timing.py).
flash-linear-attention is not part of attnc: bench/prepare_device.sh copies
its `fla` package (fetched here) into devcarry/fla-src, which is git-ignored.
  python3 bench/linear_baselines.py devcarry/fla-src [out.json]"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timeit  # noqa: E402
from linear_gpu import fla_cases, memory_floor, timing_inputs  # noqa: E402


def main():
    sys.path.insert(0, sys.argv[1])
    B, T, H, D = 4, 8192, 16, 128
    q, k, v, g_tok, g_dim = timing_inputs(g_dim_dtype=torch.bfloat16)
    floor_ms, bw = memory_floor(B, T, H, D)
    rows = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
            "shape": {"B": B, "T": T, "H": H, "D": D, "Dv": D, "dtype": "bf16"},
            "copy_bandwidth_GBps": bw / 1e9, "floor_ms": floor_ms, "fla": {}}
    print(f"{rows['device']}: copy bandwidth {bw / 1e9:.0f} GB/s, floor (q, k, v, o once) {floor_ms:.3f} ms")
    try:
        cases = fla_cases(q, k, v, g_tok, g_dim)
    except Exception as e:  # noqa: BLE001 - report and stop
        print(f"FAIL cannot import flash-linear-attention: {type(e).__name__}: {e}")
        return 1
    fails = 0
    for name, f in cases.items():
        try:
            ms = timeit(f, [()])
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            fails += 1
            continue
        rows["fla"][name] = {"ms": ms, "ratio_to_floor": ms / floor_ms}
        print(f"TIME {name}: {ms:.3f} ms ({ms / floor_ms:.1f} x floor)")
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as fh:
            json.dump(rows, fh, indent=2)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
