"""attnc.linear_attention on numpy arrays (CPU kernels, no torch): traced
elementwise feature maps, decays per head / per token / per token and
feature, initial and final states, normalize, bidirectional; against a
float64 numpy reference written as the recurrence S_t = diag(a_t) S_{t-1} +
phi(k_t) v_t^T, o_t = S_t^T (scale phi(q_t)) (or the quadratic form for
normalize / bidirectional), on fresh random inputs. Prints PASS/FAIL lines
and `FAILURES <n>`.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402

TOL = 1e-4
fails = 0
rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))


def report(name, ok, detail=""):
    global fails
    fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def rand(*shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def check(name, got, ref):
    err = float(np.abs(got.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))
    report(name, got.shape == ref.shape and err < TOL, f"shape {list(got.shape)}, max_rel={err:.1e}")


def recurrent_ref(q, k, v, phi, scale, gates=None, s0=None):
    """Causal linear attention by its recurrence; gates: log-gates broadcast
    to [B, H, N, D] (or None); returns o and the final state."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    B, H, N, D = q.shape
    S = np.zeros((B, H, D, v.shape[3])) if s0 is None else s0.astype(np.float64).copy()
    o = np.zeros(v.shape)
    for t in range(N):
        if gates is not None:
            S = np.exp(gates[:, :, t, :])[..., None] * S
        S = S + phi(k[:, :, t, :])[..., :, None] * v[:, :, t, None, :]
        o[:, :, t, :] = np.einsum("bhf,bhfe->bhe", scale * phi(q[:, :, t, :]), S)
    return o, S


def quadratic_ref(q, k, v, phi, scale, causal, normalize):
    """Linear attention without decay in its quadratic form."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    A = np.einsum("bhtf,bhsf->bhts", scale * phi(q), phi(k))
    if causal:
        A = A * np.tril(np.ones((q.shape[2], q.shape[2])))
    o = A @ v
    if normalize:
        den = A.sum(-1, keepdims=True)
        o = np.where(den != 0, o / np.where(den != 0, den, 1.0), 0.0)
    return o


def elu1(x):
    return np.where(x > 0, x + 1.0, np.exp(x))


def test_elu_normalized():
    q, k, v = rand(2, 4, 70, 64), rand(2, 4, 70, 64), rand(2, 4, 70, 32)
    o = attnc.linear_attention(q, k, v, feature_map=elu1, normalize=True)
    check("elu+1 normalized causal, Dv != D", o, quadratic_ref(q, k, v, elu1, 64 ** -0.5, True, True))


def test_relu_squared_bidirectional():
    def relu2(x):
        return np.maximum(x, 0.0) ** 2

    q, k, v = rand(1, 4, 60, 32), rand(1, 4, 60, 32), rand(1, 4, 60, 32)
    o = attnc.linear_attention(q, k, v, feature_map=relu2, causal=False, scale=0.5)
    check("relu^2 bidirectional, scale 0.5", o,
          quadratic_ref(q, k, v, lambda x: np.maximum(x, 0) ** 2, 0.5, False, False))


def test_retnet_per_head_decay():
    H = 4
    g = np.log(1 - 2.0 ** (-5 - np.arange(H))).astype(np.float32)
    q, k, v = rand(2, H, 80, 64), rand(2, H, 80, 64), rand(2, H, 80, 64)
    o = attnc.linear_attention(q, k, v, decay=g)
    gates = np.broadcast_to(g.astype(np.float64)[None, :, None, None], (2, H, 80, 64))
    check("identity map, per-head decay (RetNet)", o,
          recurrent_ref(q, k, v, lambda x: x, 64 ** -0.5, gates)[0])


def test_token_decay_states():
    B, H, N, D = 2, 4, 45, 64
    g = np.log(rng.uniform(0.8, 1.0, (B, H, N))).astype(np.float32)
    s0 = rand(B, H, D, D)

    def silu(x):
        return x / (1.0 + np.exp(-x))

    q, k, v = rand(B, H, N, D), rand(B, H, N, D), rand(B, H, N, D)
    o, state = attnc.linear_attention(q, k, v, feature_map=silu, decay=g, initial_state=s0,
                                      output_final_state=True, scale=1.0)
    ref_o, ref_s = recurrent_ref(q, k, v, lambda x: x / (1 + np.exp(-x)), 1.0,
                                 np.broadcast_to(g.astype(np.float64)[..., None], (B, H, N, D)),
                                 s0)
    check("silu map, per-token decay, initial state: o", o, ref_o)
    check("silu map, per-token decay, initial state: final state", state, ref_s)


def test_feature_decay():
    B, H, N, D = 1, 4, 40, 32
    g = np.log(rng.uniform(0.7, 1.0, (B, H, N, D))).astype(np.float32)
    q, k, v = rand(B, H, N, D), rand(B, H, N, D), rand(B, H, N, D)
    o = attnc.linear_attention(q, k, v, feature_map=lambda x: abs(x) + 0.1, decay=g)
    check("per-token-and-feature decay (GLA), abs map", o,
          recurrent_ref(q, k, v, lambda x: np.abs(x) + 0.1, D ** -0.5, g.astype(np.float64))[0])


def test_no_recompile():
    before = attnc.flex_stats()["kernel_compiles"]
    for B, N in ((1, 20), (3, 64), (2, 99)):
        q, k, v = rand(B, 4, N, 16), rand(B, 4, N, 16), rand(B, 4, N, 16)
        o = attnc.linear_attention(q, k, v, feature_map=elu1, normalize=True)
        check(f"linear no recompile B={B} N={N}", o,
              quadratic_ref(q, k, v, elu1, 0.25, True, True))
    compiles = attnc.flex_stats()["kernel_compiles"] - before
    report("linear: one kernel across B and N", compiles == 1, f"kernel_compiles +{compiles}")


def test_errors():
    table = np.ones(4, np.float32)
    cases = {
        "captured tensor in a feature map": lambda x: x * table[0],
        "Python if in a feature map": lambda x: x if x > 0 else -x,
    }
    q = rand(1, 4, 8, 16)
    for name, fn in cases.items():
        try:
            attnc.linear_attention(q, q, q, feature_map=fn)
            report(name, False, "no AttncError")
        except attnc.AttncError as e:
            print(f"ERROR {name}: " + str(e).replace("\n", "\n  | "))
    try:
        attnc.linear_attention(q, q, q, decay=np.zeros(3, np.float32))
        report("decay shape", False, "no AttncError")
    except attnc.AttncError as e:
        print(f"ERROR decay shape: {e}")


def main():
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
            except Exception as e:
                report(name, False, f"{type(e).__name__}: {e}")
    print(f"FAILURES {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
