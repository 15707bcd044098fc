"""Checks shared by the numpy (CPU) tests: PASS/FAIL/ERROR lines, random
inputs and the float64 softmax reference. `state.fails` counts failures."""
import types

import numpy as np

import attnc

TOL = 1e-4
state = types.SimpleNamespace(fails=0)
rng = np.random.default_rng(0)


def report(name, ok, detail=""):
    state.fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")


def error(name, fn):
    """Prints `ERROR <name>: <message>` for the AttncError `fn` raises."""
    try:
        fn()
    except attnc.AttncError as e:
        print(f"ERROR {name}: " + str(e).replace("\n", "\n  | "))
        return
    state.fails += 1
    print(f"FAIL {name}: no AttncError")


def rand(*shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def softmax_ref(q, k, v, mask):
    """o, lse in float64; mask [Nq, Nk] or [B, Hq, Nq, Nk]; GQA by h // (Hq/Hkv);
    scale 1/sqrt(D); fully masked rows give o = 0, lse = -inf."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    g = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    s = np.einsum("bhid,bhjd->bhij", q, k) / np.sqrt(q.shape[3])
    s = np.where(mask, s, -np.inf)
    mx = s.max(-1, keepdims=True)
    empty = np.isinf(mx)
    p = np.exp(s - np.where(empty, 0.0, mx))
    l = p.sum(-1, keepdims=True)
    o = np.einsum("bhij,bhjd->bhid", p, v) / np.where(l > 0, l, 1.0)
    lse = np.where(empty, -np.inf, mx + np.log(np.where(l > 0, l, 1.0)))[..., 0]
    return o, lse


def rel_err(got, ref):
    return float(np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-30))


def check_close(name, got, ref):
    err = rel_err(got, ref)
    worst = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
    report(name, got.shape == ref.shape and err < TOL and worst < TOL,
           f"shape {list(got.shape)}, rel_err={err:.1e}, max_rel={worst:.1e}")
