"""Thread safety of attnc.compile and CPU kernels from Python (issue 13):
16 threads compile the same and different random specs (bench/
numerics_sweep.py's generator: random mask and score programs, captures,
GQA, lse, f32/f16/bf16) and call the kernels concurrently, through the
default compiler, compilers of their own (one cache directory each, so MLIR
contexts and JITs are built at once) and a compiler without disk cache;
every output is checked against the sweep's float64 numpy reference. Also
16 threads calling one kernel at once.

usage: test_threads.py [--threads 16] [--iters 6]
  (libattnc.so from $ATTNC_LIB_DIR or the build tree; the default cache is
  $ATTNC_CACHE_DIR, per-thread caches go next to it.) Prints PASS/FAIL lines
  and exits nonzero on a failure."""
import argparse
import os
import sys
import threading
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import attnc  # noqa: E402
import numerics_sweep as ns  # noqa: E402

SHARED = [101, 102, 103, 104]  # specs every thread compiles (seeds)


def check(case, kernel, size, seed):
    """'' when the kernel's o (and lse) match the float64 reference."""
    B, Nq, Nk = size
    ins, vals = ns.make_inputs(case, B, Nq, Nk, seed)
    o, lse = ns.launch_cpu(kernel, case, ins, B, Nq)
    ro, rl = ns.reference(case, *vals, B, Nq, Nk)
    ok, oerr, lerr, msg = ns.compare(case, o, lse if case.lse else None, ro,
                                     rl if case.lse else None)
    return "" if ok else f"{case.name} [{case.describe()}] {size}: {msg}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--iters", type=int, default=6)
    a = ap.parse_args()
    base = os.environ.get("ATTNC_CACHE_DIR") or "/tmp/attnc-threads-test"
    errors, lock = [], threading.Lock()
    counts = {"launches": 0}
    cases = {}

    def case_of(seed):
        with lock:  # SpecCase is pure; the dict is shared
            if seed not in cases:
                cases[seed] = ns.SpecCase(seed, ["f32", "f16", "bf16"])
            return cases[seed]

    barrier = threading.Barrier(a.threads)

    def worker(t):
        try:
            barrier.wait()
            for it in range(a.iters):
                # Even iterations: a spec every thread compiles; odd: one of
                # this thread's own. Compilers: default, own dir, none.
                seed = SHARED[(t + it) % len(SHARED)] if it % 2 == 0 else 1000 + 100 * t + it
                cache = [None, os.path.join(base, f"t{t}"), ""][(t + it) % 3]
                case = case_of(seed)
                kernel = attnc.compile(case.text, cache_dir=cache)
                for si, size in enumerate(ns.sizes_for(seed, 2, case)):
                    bad = check(case, kernel, size, seed * 10 + si + t)
                    with lock:
                        counts["launches"] += 1
                        if bad:
                            errors.append(f"thread {t}: {bad}")
        except Exception:  # noqa: BLE001
            with lock:
                errors.append(f"thread {t}: {traceback.format_exc()}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(a.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    want = a.threads * a.iters * 2
    ok = not errors and counts["launches"] == want
    print(f"{'PASS' if ok else 'FAIL'} {a.threads} threads compiling and launching: "
          f"{counts['launches']} of {want} launches right")
    for e in errors[:20]:
        print("  " + e)
    fails = 0 if ok else 1

    # One kernel, all threads calling it at once.
    case = case_of(SHARED[0])
    kernel = attnc.compile(case.text)
    errors2 = []
    barrier2 = threading.Barrier(a.threads)

    def caller(t):
        try:
            barrier2.wait()
            for it in range(4):
                size = ns.sizes_for(5000 + t * 10 + it, 1, case)[0]
                bad = check(case, kernel, size, t * 100 + it)
                if bad:
                    with lock:
                        errors2.append(f"thread {t}: {bad}")
        except Exception:  # noqa: BLE001
            with lock:
                errors2.append(f"thread {t}: {traceback.format_exc()}")

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(a.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(f"{'PASS' if not errors2 else 'FAIL'} {a.threads} threads calling one kernel")
    for e in errors2[:20]:
        print("  " + e)
    fails += bool(errors2)
    st = attnc.cache_stats()
    print(f"STATS default compiler: compiles={st['compiles']} memory_hits={st['memory_hits']} "
          f"disk_hits={st['disk_hits']} rebuilt={st['rebuilt']}")
    if st["rebuilt"]:
        print("FAIL the default cache rebuilt entries")
        fails += 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
