"""The disk cache does not trust what it reads (issue 13, W2).

  test_cache_integrity.py tamper CASE   edit an entry or the raw index after a
      first process filled the cache (CASE: drop_checks, shape_d32, swap_raw,
      swap_obj, version, dtype); a fresh process must notice, recompile and
      warn (ATTNC_LOG=1), and never run a wrong kernel or skip a check
  test_cache_integrity.py concurrent    8 processes compile one spec (two
      spellings) into one empty cache at once
  test_cache_integrity.py permissions   the directory is created 0700; one
      writable by others or owned by another user is refused
  test_cache_integrity.py eviction      ATTNC_CACHE_MAX_BYTES evicts the least
      recently used entry (a disk hit refreshes an entry)

Each check prints PASS or FAIL lines; children run as separate processes
(`child ...`) so that every disk-cache read happens in a fresh process.
"""
import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EX = os.path.join(HERE, "..", "..", "examples")
FAILURES = []


def check(cond, what, detail=""):
    print(("PASS " if cond else "FAIL ") + what + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        FAILURES.append(what)


def rnd(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def ref(q, k, v, causal=False):
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64)) / np.sqrt(q.shape[-1])
    if causal:
        n, m = s.shape[-2:]
        s = np.where(np.tril(np.ones((n, m), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhij,bhjd->bhid", p, v.astype(np.float64))


def relerr(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def spec(name):
    with open(os.path.join(EX, name)) as f:
        return f.read()


# ---------------------------------------------------------------- children

def child_three(cache):
    """Compiles document_mask, causal and full; reports what a tampered
    entry could change: the checks, the signature, the results."""
    import attnc
    dm = attnc.compile(os.path.join(EX, "document_mask.mlir"), cache_dir=cache)
    ca = attnc.compile(os.path.join(EX, "causal.mlir"), cache_dir=cache)
    fu = attnc.compile(os.path.join(EX, "full.mlir"), cache_dir=cache)
    q = rnd(1, 4, 300, 64)
    res = {"causal_sig": repr(ca), "full_sig": repr(fu)}
    try:
        dm(q, q, q, np.zeros(10, np.int32))
        res["dm_short_docs"] = "ACCEPTED"
    except attnc.AttncError:
        res["dm_short_docs"] = "refused"
    try:
        q2 = rnd(1, 4, 300, 32)
        ca(q2, q2, q2)
        res["causal_d32"] = "ACCEPTED"
    except attnc.AttncError:
        res["causal_d32"] = "refused"
    qq, kk, vv = rnd(1, 4, 50, 64, seed=1), rnd(1, 4, 50, 64, seed=2), rnd(1, 4, 50, 64, seed=3)
    res["causal_err"] = relerr(ca(qq, kk, vv), ref(qq, kk, vv, causal=True))
    res["full_err"] = relerr(fu(qq, kk, vv), ref(qq, kk, vv))
    res["stats"] = attnc.cache_stats(cache)
    print(json.dumps(res))


def child_concurrent(cache, go, variant):
    """Waits for `go`, then compiles causal (respelled when variant is odd)."""
    import attnc
    text = spec("causal.mlir") + ("\n// respelled\n" if int(variant) % 2 else "")
    while not os.path.exists(go):
        time.sleep(0.001)
    k = attnc.compile(text, cache_dir=cache)
    qq, kk, vv = rnd(1, 4, 70, 64, seed=1), rnd(1, 4, 70, 64, seed=2), rnd(1, 4, 70, 64, seed=3)
    print(json.dumps({"err": relerr(k(qq, kk, vv), ref(qq, kk, vv, causal=True)),
                      "stats": attnc.cache_stats(cache)}))


def child_compile(cache, *names):
    """Compiles the examples `names` (file names, or `window=N` for the
    sliding-window example with window N) and reports the counters."""
    import attnc
    out = {}
    for n in names:
        if n.startswith("window="):
            text = spec("sliding_window.mlir").replace("arith.constant 64 : index",
                                                       f"arith.constant {n[7:]} : index")
        else:
            text = spec(n)
        try:
            attnc.compile(text, cache_dir=cache)
            out[n] = "ok"
        except attnc.AttncError as e:
            out[n] = "error: " + str(e)
    out["stats"] = attnc.cache_stats(cache)
    print(json.dumps(out))


def run_child(*args, env=None):
    e = dict(os.environ, ATTNC_LOG="1")
    e.update(env or {})
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "child", *args],
                       capture_output=True, text=True, timeout=300, env=e)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"crash": p.returncode, "stdout": p.stdout[-800:]}
    return out, p.stderr


# ---------------------------------------------------------------- checks

def entries(cache):
    out = {}
    for f in glob.glob(f"{cache}/*/entry.json"):
        with open(f) as fh:
            d = json.load(fh)
        out[d["function"]] = (f, d)
    return out


def tamper(case):
    cache = tempfile.mkdtemp(prefix=f"attnc_tamper_{case}_")
    first, err = run_child("three", cache)
    check(first.get("causal_err", 1) < 1e-5 and first.get("dm_short_docs") == "refused",
          f"tamper {case}: first run", f"{first} {err}")
    ents = entries(cache)
    raws = {}
    for f in glob.glob(f"{cache}/raw/*"):
        with open(f) as fh:
            raws[fh.read().strip()] = f
    if case == "drop_checks":
        f, d = ents["document_mask"]
        d["checks"]["min_extents"] = []
        json.dump(d, open(f, "w"))
    elif case == "shape_d32":
        f, d = ents["causal"]
        for p in d["inputs"] + d["outputs"]:
            p["shape"][3] = 32
        json.dump(d, open(f, "w"))
    elif case == "swap_raw":
        kc, kf = ents["causal"][1]["key"], ents["full"][1]["key"]
        open(raws[kc], "w").write(kf)
        open(raws[kf], "w").write(kc)
    elif case == "swap_obj":
        (fc, dc), (ff, df) = ents["causal"], ents["full"]
        ec, ef = os.path.dirname(fc), os.path.dirname(ff)
        tmp = os.path.join(cache, "tmp.o")
        shutil.copy(f"{ec}/kernel.o", tmp)
        shutil.copy(f"{ef}/kernel.o", f"{ec}/kernel.o")
        shutil.copy(tmp, f"{ef}/kernel.o")
        os.remove(tmp)
        dc["files"], df["files"] = df["files"], dc["files"]
        json.dump(dc, open(fc, "w"))
        json.dump(df, open(ff, "w"))
    elif case == "version":
        f, d = ents["causal"]
        d["attnc"] = "attnc 9.9"
        json.dump(d, open(f, "w"))
    elif case == "dtype":
        f, d = ents["causal"]
        for p in d["inputs"]:
            p["dtype"] = "f16"
        json.dump(d, open(f, "w"))
    after, err = run_child("three", cache)
    ok = (after.get("dm_short_docs") == "refused" and after.get("causal_d32") == "refused"
          and after.get("causal_err", 1) < 1e-5 and after.get("full_err", 1) < 1e-5
          and "kernel causal " in after.get("causal_sig", "")
          and "kernel full " in after.get("full_sig", ""))
    check(ok, f"tamper {case}: right kernels and checks after tampering", f"{after} {err}")
    check("attnc: warning:" in err, f"tamper {case}: a warning through the log", err)
    stats = after.get("stats", {})
    if case == "swap_raw":
        # The index is ignored; the entries themselves are fine.
        check(stats.get("rebuilt") == 0 and stats.get("compiles") == 0,
              f"tamper {case}: the entries found through their keys", stats)
    else:
        check(stats.get("rebuilt", 0) >= 1 and stats.get("compiles", 0) >= 1,
              f"tamper {case}: the entry rebuilt", stats)
    # The rebuilt entries (and a repaired index) serve a third process.
    third, err = run_child("three", cache)
    st = third.get("stats", {})
    check(st.get("compiles") == 0 and st.get("rebuilt") == 0 and st.get("disk_hits") == 3
          and "warning" not in err, f"tamper {case}: the cache is whole again", f"{st} {err}")
    shutil.rmtree(cache, ignore_errors=True)


def concurrent():
    root = tempfile.mkdtemp(prefix="attnc_concurrent_")
    cache, go = os.path.join(root, "cache"), os.path.join(root, "go")
    env = dict(os.environ, ATTNC_LOG="1")
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "child", "concurrent",
                               cache, go, str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(8)]
    time.sleep(3)  # every child has imported attnc and waits
    open(go, "w").close()
    results = [p.communicate(timeout=300) for p in procs]
    good = 0
    for (out, err), p in zip(results, procs):
        try:
            r = json.loads(out.strip().splitlines()[-1])
            good += p.returncode == 0 and r["err"] < 1e-5 and "warning" not in err
        except (ValueError, IndexError, KeyError):
            print("child:", out[-400:], err[-800:])
    check(good == 8, "concurrent: 8 processes got the right kernel, no warning", f"{good}/8")
    names = sorted(os.listdir(cache))
    check(len([n for n in names if len(n) == 64]) == 1 and names[-1] == "raw" and len(names) == 2,
          "concurrent: one entry, no temporaries left", names)
    raws = os.listdir(os.path.join(cache, "raw"))
    check(len(raws) == 2 and all(".tmp" not in r for r in raws),
          "concurrent: one raw index file per spelling", raws)
    after, err = run_child("concurrent", cache, go, "0")
    st = after.get("stats", {})
    check(after.get("err", 1) < 1e-5 and st.get("disk_hits") == 1 and st.get("compiles") == 0
          and st.get("rebuilt") == 0, "concurrent: a fresh process hits the entry", f"{after} {err}")
    shutil.rmtree(root, ignore_errors=True)


def permissions():
    root = tempfile.mkdtemp(prefix="attnc_perm_")
    cache = os.path.join(root, "a", "cache")
    out, err = run_child("compile", cache, "causal.mlir")
    mode = stat.S_IMODE(os.stat(cache).st_mode) if os.path.isdir(cache) else None
    check(out.get("causal.mlir") == "ok" and mode == 0o700,
          "permissions: a new cache directory is created 0700", f"{out} mode={mode}")
    os.chmod(cache, 0o777)
    out, err = run_child("compile", cache, "full.mlir")
    msg = out.get("full.mlir", "")
    check("refusing the kernel cache directory" in msg and "writable by group or others (mode 0777)"
          in msg, "permissions: a world-writable directory is refused", msg)
    print("MESSAGE", msg.replace(cache, "<cache>"))
    os.chmod(cache, 0o770)
    out, err = run_child("compile", cache, "full.mlir")
    check("writable by group or others" in out.get("full.mlir", ""),
          "permissions: a group-writable directory is refused", out)
    os.chmod(cache, 0o700)
    if os.geteuid() == 0:
        os.chown(cache, 65534, 65534)
        other = cache
    else:
        other = "/"  # root's, not this user's
    out, err = run_child("compile", other, "full.mlir")
    msg = out.get("full.mlir", "")
    check("refusing the kernel cache directory" in msg and "owned by another user" in msg,
          "permissions: a directory of another user is refused", msg)
    if os.geteuid() == 0:
        os.chown(cache, 0, 0)
    file_cache = os.path.join(root, "afile")
    open(file_cache, "w").close()
    out, err = run_child("compile", file_cache, "full.mlir")
    check("not a directory" in out.get("full.mlir", ""),
          "permissions: a file in the directory's place is refused", out)
    out, err = run_child("compile", os.path.join(file_cache, "sub"), "full.mlir")
    check(out.get("full.mlir") == "ok" and out["stats"]["compiles"] == 1
          and "cannot create the kernel cache directory" in err,
          "permissions: a directory that cannot be created is skipped with a warning",
          f"{out} {err}")
    out, err = run_child("compile", cache, "full.mlir")
    check(out.get("full.mlir") == "ok", "permissions: the fixed directory works again", out)
    shutil.rmtree(root, ignore_errors=True)


def entry_dirs(cache):
    """{key: bytes of the entry's files}"""
    out = {}
    for f in glob.glob(f"{cache}/*/entry.json"):
        e = os.path.dirname(f)
        out[os.path.basename(e)] = sum(os.path.getsize(os.path.join(e, n)) for n in os.listdir(e))
    return out


def eviction():
    cache = tempfile.mkdtemp(prefix="attnc_evict_")
    a, b, c = "window=17", "window=33", "window=49"
    big = {"ATTNC_CACHE_MAX_BYTES": "1G"}
    out, _ = run_child("compile", cache, a, env=big)
    (ka,) = entry_dirs(cache)
    out, _ = run_child("compile", cache, b, env=big)
    sizes = entry_dirs(cache)
    check(len(sizes) == 2, "eviction: two entries under a large cap", sizes)
    kb = [k for k in sizes if k != ka][0]
    time.sleep(0.05)
    out, _ = run_child("compile", cache, a, env=big)  # a disk hit refreshes a
    check(out["stats"]["disk_hits"] == 1, "eviction: the hit", out)
    cap = sizes[ka] + sizes[kb] + min(sizes.values()) // 2
    small = {"ATTNC_CACHE_MAX_BYTES": str(cap)}
    out, _ = run_child("compile", cache, c, env=small)
    left = entry_dirs(cache)
    check(ka in left and kb not in left and len(left) == 2 and sum(left.values()) <= cap,
          "eviction: the least recently used entry goes first", f"{sizes} -> {left}, cap {cap}")
    raws = [open(os.path.join(cache, "raw", r)).read() for r in os.listdir(os.path.join(cache, "raw"))]
    check(kb not in raws and len(raws) == 2, "eviction: its raw index goes with it", raws)
    out, _ = run_child("compile", cache, b, env=small)
    left2 = entry_dirs(cache)
    check(out["stats"]["compiles"] == 1 and ka not in left2 and kb in left2,
          "eviction: an evicted entry is recompiled, the next oldest goes", f"{out} {left2}")
    out, _ = run_child("compile", cache, b, c, env=small)
    check(out["stats"]["disk_hits"] == 2 and out["stats"]["compiles"] == 0,
          "eviction: the kept entries still hit", out)
    shutil.rmtree(cache, ignore_errors=True)


def main():
    if sys.argv[1] == "child":
        kind, args = sys.argv[2], sys.argv[3:]
        {"three": child_three, "concurrent": child_concurrent,
         "compile": child_compile}[kind](*args)
        return 0
    if sys.argv[1] == "tamper":
        tamper(sys.argv[2])
    else:
        {"concurrent": concurrent, "permissions": permissions,
         "eviction": eviction}[sys.argv[1]]()
    print("FAILURES", len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
