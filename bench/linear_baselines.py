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


def main():
    sys.path.insert(0, sys.argv[1])
    B, T, H, D = 4, 8192, 16, 128
    dev, dt = "cuda", torch.bfloat16
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, T, H, D, device=dev, dtype=dt) * 0.1 for _ in range(3))
    g_tok = torch.nn.functional.logsigmoid(torch.randn(B, T, H, device=dev, dtype=torch.float32)) / 16
    g_dim = torch.nn.functional.logsigmoid(torch.randn(B, T, H, D, device=dev, dtype=dt)) / 16
    nbytes = 4 * B * T * H * D * 2  # read q, k, v; write o
    # Achievable bandwidth: a large device-to-device copy (read + write).
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    copy_ms = timeit(lambda: dst.copy_(src), [()])
    bw = 2 * src.numel() / (copy_ms * 1e-3)
    floor_ms = nbytes / bw * 1e3
    rows = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
            "shape": {"B": B, "T": T, "H": H, "D": D, "Dv": D, "dtype": "bf16"},
            "copy_bandwidth_GBps": bw / 1e9, "floor_ms": floor_ms, "fla": {}}
    print(f"{rows['device']}: copy bandwidth {bw / 1e9:.0f} GB/s, floor (q, k, v, o once) {floor_ms:.3f} ms")
    try:
        from fla.ops.gla import chunk_gla
        from fla.ops.linear_attn import chunk_linear_attn
        from fla.ops.retention import chunk_retention
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception as e:  # noqa: BLE001 - report and stop
        print(f"FAIL cannot import flash-linear-attention: {type(e).__name__}: {e}")
        return 1
    cases = {
        "chunk_linear_attn": lambda: chunk_linear_attn(q, k, v, normalize=False),
        "chunk_linear_attn_normalized": lambda: chunk_linear_attn(q, k, v, normalize=True),
        "chunk_retention": lambda: chunk_retention(q, k, v),
        "chunk_simple_gla": lambda: chunk_simple_gla(q, k, v, g=g_tok),
        "chunk_gla": lambda: chunk_gla(q, k, v, g=g_dim),
    }
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
