"""LASP-2's communication, measured and modelled (issue 17).

measure: runs one GLA-style layer (per-feature gates, identity map) forward
and backward through attnc.distributed on W gloo CPU processes at several
sequence lengths per rank, reads the bytes each rank handed to collectives
(attnc.distributed.comm_stats) and checks them against the formula

    forward   all_gather  B H F Dv * 4   (the chunk's state)
                         + B H F * 4     (its log-decays, per feature)
    backward  all_gather  2 B H F Dv * 4 (state gradient, final-state cotangent)

which does not depend on the sequence length.

project: step time of one layer (forward + backward) for LASP-2, LASP-1
(states passed rank to rank, W - 1 serialized steps) and Ring Attention
(K and V chunks passed around the ring, W - 1 steps, each overlapped with
that step's compute), for 8-64 GPUs and 128K-2048K tokens, from stated
inputs: a per-token kernel time (attnc's H100 forward of issue 16's table,
0.324 ms at B4 T8192 H16 D128; backward taken as 2.5x forward), NVLink
400 GB/s within an 8-GPU node, 50 GB/s per GPU across nodes, 10 us per
collective step. The projection is a model, not a measurement.

  python3 bench/lasp_cost_model.py [--world W ...] [--out results.json] [--no-project]
Prints a table; exits 1 when a measured count differs from the formula.
"""
import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

B, H, D, DV = 1, 4, 32, 32
LENGTHS = (64, 256, 1024)  # tokens per rank


def formula(B, H, F, Dv):
    fwd = B * H * F * Dv * 4 + B * H * F * 4
    bwd = 2 * B * H * F * Dv * 4
    return fwd, bwd


def rank_main(rank, world, init, results):
    import torch
    import torch.distributed as dist
    import attnc.distributed as ad
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        out = {}
        for n in LENGTHS:
            gen = torch.Generator().manual_seed(1000 * rank + n)
            q, k, v = (torch.rand(B, H, n, D, generator=gen).requires_grad_() for _ in range(3))
            g = (-0.1 * torch.rand(B, H, n, D, generator=gen)).requires_grad_()
            ad.comm_stats(reset=True)
            o = ad.linear_attention(q, k, v, decay=g)
            fwd = ad.comm_stats(reset=True)
            o.sum().backward()
            bwd = ad.comm_stats(reset=True)
            out[n] = (fwd.get("all_gather", 0), bwd.get("all_gather", 0),
                      sum(fwd.values()) + sum(bwd.values()))
        results.put((rank, out))
    finally:
        dist.destroy_process_group()


def measure(world):
    import torch.multiprocessing as mp
    results = mp.get_context("spawn").SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(rank_main, args=(world, os.path.join(tmp, "init"), results),
                           nprocs=world, join=True, start_method="spawn")
    return dict(results.get() for _ in range(world))


def report_measurement(world, by_rank):
    want_fwd, want_bwd = formula(B, H, D, DV)
    ok = True
    rows = []
    for n in LENGTHS:
        counts = {by_rank[r][n] for r in by_rank}
        fwd, bwd, total = counts.pop() if len(counts) == 1 else (-1, -1, -1)
        good = fwd == want_fwd and bwd == want_bwd and total == fwd + bwd
        ok &= good
        rows.append({"world": world, "tokens_per_rank": n, "fwd_bytes": fwd, "bwd_bytes": bwd,
                     "model_fwd": want_fwd, "model_bwd": want_bwd, "match": good})
        print(f"| {world} | {n} | {fwd} | {bwd} | {want_fwd} | {want_bwd} | "
              f"{'yes' if good else 'NO'} |")
    return ok, rows


# The projection -------------------------------------------------------------

FWD_NS_PER_TOKEN = 0.324e6 / (4 * 8192)  # H16 D128 layer, all heads, ns
BWD_FACTOR = 2.5
NVLINK, NET, STEP_US = 400e9, 50e9, 10.0
HEADS, DIM = 16, 128


def project(world, tokens):
    """(LASP-2, LASP-1, Ring) ms per layer, forward + backward."""
    bw = NVLINK if world <= 8 else NET
    step = STEP_US * 1e-3
    compute = FWD_NS_PER_TOKEN * (tokens / world) * (1 + BWD_FACTOR) * 1e-6
    state = HEADS * DIM * DIM * 4  # f32 state of one sequence
    # LASP-2: one ring all-gather of states per pass (3 states in all).
    ag = (world - 1) * (step + 3 * state / bw * 1e3)
    lasp2 = compute + ag
    # LASP-1: the same volume rank to rank, W - 1 dependent steps per pass,
    # each waiting for the previous rank's state.
    lasp1 = compute + 2 * (world - 1) * (step + 1.5 * state / bw * 1e3)
    # Ring: K and V chunks (bf16) around the ring, forward and backward (dK,
    # dV travel back), each step overlapped with its share of compute.
    kv = 2 * (tokens / world) * HEADS * DIM * 2
    per_step_comm = step + kv / bw * 1e3
    per_step_comp = compute / world
    ring = compute / world + 2 * (world - 1) * max(per_step_comm, per_step_comp)
    return lasp2, lasp1, ring


def projection_table():
    rows = []
    print("\n| GPUs | tokens | LASP-2 ms | LASP-1 ms | Ring ms | LASP-2 vs Ring | vs LASP-1 |")
    print("|---|---|---|---|---|---|---|")
    for world in (8, 16, 32, 64):
        for tokens in (128 << 10, 512 << 10, 1 << 20, 2 << 20):
            l2, l1, ring = project(world, tokens)
            rows.append({"gpus": world, "tokens": tokens, "lasp2_ms": l2, "lasp1_ms": l1,
                         "ring_ms": ring})
            print(f"| {world} | {tokens >> 10}K | {l2:.2f} | {l1:.2f} | {ring:.2f} | "
                  f"{ring / l2:.2f}x | {l1 / l2:.2f}x |")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--out")
    ap.add_argument("--no-project", action="store_true")
    args = ap.parse_args()
    print(f"bytes each rank hands to all_gather per layer (B={B}, H={H}, F=Dv={D}, f32)")
    print("| W | tokens per rank | fwd | bwd | model fwd | model bwd | match |")
    print("|---|---|---|---|---|---|---|")
    ok, measured = True, []
    for world in args.world:
        good, rows = report_measurement(world, measure(world))
        ok &= good
        measured += rows
    print(f"independent of the sequence length and equal to the formula: {'yes' if ok else 'NO'}")
    result = {"date": time.strftime("%Y-%m-%d"), "device": "CPU (gloo)", "measured": measured}
    if not args.no_project:
        result["projection"] = {
            "inputs": {"fwd_ns_per_token": FWD_NS_PER_TOKEN, "bwd_factor": BWD_FACTOR,
                       "nvlink_Bps": NVLINK, "network_Bps": NET, "step_us": STEP_US,
                       "heads": HEADS, "dim": DIM},
            "rows": projection_table()}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
