"""GPU timing shared by the device scripts: CUDA events around each call,
warm-up first, the inputs rotated through `sets`, the median in ms."""
import statistics

import torch


def timeit(fn, sets, warmup=5, reps=20):
    for r in range(warmup):
        fn(*sets[r % len(sets)])
    torch.cuda.synchronize()
    events = []
    for r in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn(*sets[r % len(sets)])
        e.record()
        events.append((s, e))
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in events)
