"""Per-kernel GPU time of one attn-aot variant's call (torch.profiler, 10
calls after 5 warm-up calls, B=2 N=8192, the variant's own sizes), e.g. the
block-map kernel beside the attention kernel of a data-dependent mask:
  python3 bench/profile_kernels.py devcarry/aot document_mask"""
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_device  # noqa: E402
import specs  # noqa: E402


def main():
    root, name = sys.argv[1], sys.argv[2]
    kern = run_device.AotKernel(os.path.join(root, name))
    m = kern.meta
    B, N = 2, 8192
    caps = specs.captures(specs.base(name), N, "cuda", torch.Generator().manual_seed(7))
    q = torch.randn(B, m["heads_q"], N, m["head_dim"], device="cuda").to(kern.dtype)
    k = torch.randn(B, m["heads_kv"], N, m["head_dim"], device="cuda").to(kern.dtype)
    v = torch.randn(B, m["heads_kv"], N, m["value_dim"], device="cuda").to(kern.dtype)
    o = torch.empty(B, m["heads_q"], N, m["value_dim"], device="cuda", dtype=kern.dtype)
    for _ in range(5):
        kern(q, k, v, o, caps)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        for _ in range(10):
            kern(q, k, v, o, caps)
        torch.cuda.synchronize()
    print(p.key_averages().table(sort_by="cuda_time_total", row_limit=8))


if __name__ == "__main__":
    main()
