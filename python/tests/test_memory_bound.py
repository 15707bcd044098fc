"""Resources of the JIT (issue 13, R1 and R2).

  test_memory_bound.py rss       300 distinct compiles in one process: RSS is
      flat once the memory cache (64 kernels) is full: it grows < 40 MB over
      the last 200 (before the cache was bounded: 0.84 MB a compile, 168 MB)
  test_memory_bound.py lru       ATTNC_MEMORY_CACHE_ENTRIES bounds the memory
      cache; an evicted kernel that the caller holds still runs
  test_memory_bound.py jitdump   no perf jitdump files unless ATTNC_JIT_PERF=1
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import attnc

EX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
FAILURES = []


def check(cond, what, detail=""):
    print(("PASS " if cond else "FAIL ") + what + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        FAILURES.append(what)


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024


def window(n):
    with open(os.path.join(EX, "sliding_window.mlir")) as f:
        return f.read().replace("arith.constant 64 : index", f"arith.constant {n} : index")


def rss():
    q = np.random.default_rng(0).uniform(-1, 1, (1, 4, 64, 64)).astype(np.float32)
    t0, marks = time.time(), {}
    for n in range(1, 301):
        k = attnc.compile(window(n), cache_dir="")
        k(q, q, q)
        del k
        if n in (100, 300):
            marks[n] = rss_mb()
    growth = marks[300] - marks[100]
    print(f"INFO rss after 100 compiles {marks[100]:.0f} MB, after 300 {marks[300]:.0f} MB,"
          f" {time.time() - t0:.0f} s")
    check(growth < 40, "rss: flat over 200 distinct compiles", f"grew {growth:.0f} MB")
    st = attnc.cache_stats("")
    check(st["compiles"] == 300, "rss: every spec compiled", st)


def lru():
    # ATTNC_MEMORY_CACHE_ENTRIES=2 (set by the caller).
    q = np.random.default_rng(0).uniform(-1, 1, (1, 4, 40, 64)).astype(np.float32)
    k1 = attnc.compile(window(3), cache_dir="")
    want = k1(q, q, q)
    for n in (4, 5, 6):
        attnc.compile(window(n), cache_dir="")
    check(np.array_equal(k1(q, q, q), want), "lru: an evicted kernel the caller holds still runs")
    attnc.compile(window(6), cache_dir="")  # still cached
    attnc.compile(window(3), cache_dir="")  # evicted: compiled again
    st = attnc.cache_stats("")
    check(st["memory_hits"] == 1 and st["compiles"] == 5, "lru: two kernels kept in memory", st)


def jitdump():
    code = ("import attnc, os; attnc.compile(os.path.join(%r, 'causal.mlir'), cache_dir='')" % EX)
    for perf in ("", "1"):
        d = tempfile.mkdtemp(prefix="attnc_jitdump_")
        env = dict(os.environ, JITDUMPDIR=d, HOME=d, ATTNC_JIT_PERF=perf)
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=300)
        jit = os.path.join(d, ".debug", "jit")
        files = sum(len(fs) for _, _, fs in os.walk(jit))
        if perf:
            check(p.returncode == 0 and files > 0, "jitdump: ATTNC_JIT_PERF=1 writes jitdump files",
                  p.stderr[-400:])
        else:
            check(p.returncode == 0 and files == 0, "jitdump: none by default",
                  f"{files} files under {jit} {p.stderr[-400:]}")
        subprocess.run(["rm", "-rf", d])


def main():
    {"rss": rss, "lru": lru, "jitdump": jitdump}[sys.argv[1]]()
    print("FAILURES", len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
