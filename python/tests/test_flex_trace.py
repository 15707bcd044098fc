"""attnc.trace without torch: the spec text of traced mods (checked by
FileCheck in test/Python/flex_trace.test; every spec is also compiled), and
AttncError for code that cannot be traced, naming the operation and the
file:line of the user's code (the line is also checked here against the
line of this file that holds the marker). Prints SPEC/ERROR/PASS/FAIL
lines and `FAILURES <n>`.
"""
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402

fails = 0
rng = np.random.default_rng(1)


def report(name, ok, detail=""):
    global fails
    fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def marker_line(marker):
    """The line number of the line of this file that ends with `marker`."""
    with open(__file__) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith("# " + marker) and "marker_line" not in line:
                return n
    raise AssertionError(marker)


def spec(name, score_mod=None, mask_mod=None, **kwargs):
    """Prints the spec between SPEC and END lines and compiles it."""
    kwargs.setdefault("H", 4)
    kwargs.setdefault("D", 64)
    text = attnc.trace(score_mod, mask_mod, **kwargs)
    print(f"SPEC {name}\n{text}END {name}", flush=True)
    try:
        attnc.compile(text)
        report(f"{name} compiles", True)
    except attnc.AttncError as e:
        report(f"{name} compiles", False, str(e))
    return text


def error(name, fn, marker=None):
    """Prints `ERROR <name>: <message>` for the AttncError fn raises; with a
    marker, the message must name this file and the marker's line."""
    global fails
    try:
        fn()
    except attnc.AttncError as e:
        msg = str(e)
        print(f"ERROR {name}: " + msg.replace("\n", "\n  | "), flush=True)
        if marker is not None:
            where = f"{__file__}:{marker_line(marker)}:"
            report(f"{name} names the line", where in msg, where)
        return
    except Exception as e:  # the wrong exception type is a failure too
        fails += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")
        return
    fails += 1
    print(f"FAIL {name}: no AttncError")


# -- specs -------------------------------------------------------------------------

def specs():
    doc_ids = np.sort(rng.integers(0, 4, 256)).astype(np.int32)
    N = 128
    rel = rng.standard_normal((4, 2 * N - 1)).astype(np.float32)

    def document(b, h, q_idx, kv_idx):
        return (doc_ids[q_idx] == doc_ids[kv_idx]) & (q_idx >= kv_idx)

    def relative(score, b, h, q_idx, kv_idx):
        return score + rel[h, q_idx - kv_idx + (N - 1)]

    spec("document_relative", relative, document, return_lse=True, scale=0.125)

    def gelu_like(score, b, h, q_idx, kv_idx):
        return score * 0.5 * (1.0 + math.tanh(0.79788456 * (score + 0.044715 * score ** 3)))

    spec("math_module", gelu_like, lambda b, h, q, kv: ~(kv > q), H=8, Hkv=2, D=32, Dv=16)

    def window(b, h, q_idx, kv_idx):
        return np.logical_and(q_idx >= kv_idx, np.abs(q_idx - kv_idx) <= 63)

    def squash(score, b, h, q_idx, kv_idx):
        return np.clip(np.where(h % 2 == 0, np.exp(score) - 1.0, np.sqrt(np.abs(score))),
                       -2.0, 2.0)

    spec("numpy_functions", squash, window)

    layout = rng.random((8, 8)) < 0.5

    def blocks(b, h, q_idx, kv_idx):
        return layout[q_idx // 64, kv_idx // 64]

    spec("bool_layout", mask_mod=blocks)


# -- errors -----------------------------------------------------------------------

def errors():
    def branchy(b, h, q_idx, kv_idx):
        if q_idx >= kv_idx:  # ERROR-LINE bool
            return True
        return False

    error("python if", lambda: attnc.create_block_mask(branchy, 1, 1, 128, 128, device="cpu"),
          "ERROR-LINE bool")

    def chained(b, h, q_idx, kv_idx):
        return 0 <= q_idx - kv_idx < 16  # ERROR-LINE chained

    error("chained comparison", lambda: attnc.trace(mask_mod=chained, H=4, D=64),
          "ERROR-LINE chained")

    doc_ids = np.zeros(64, dtype=np.int32)

    def sliced(b, h, q_idx, kv_idx):
        return doc_ids[q_idx:].max() == 0  # ERROR-LINE slice

    error("slice of a capture", lambda: attnc.trace(mask_mod=sliced, H=4, D=64),
          "ERROR-LINE slice")

    def reduction(b, h, q_idx, kv_idx):
        return doc_ids.sum() > q_idx  # ERROR-LINE reduction

    error("reduction of a capture", lambda: attnc.trace(mask_mod=reduction, H=4, D=64),
          "ERROR-LINE reduction")

    def cumsum(score, b, h, q_idx, kv_idx):
        return np.cumsum(score)  # ERROR-LINE cumsum

    error("unsupported numpy function", lambda: attnc.trace(cumsum, H=4, D=64),
          "ERROR-LINE cumsum")

    def arctan(score, b, h, q_idx, kv_idx):
        return np.arctan(score)  # ERROR-LINE arctan

    error("unsupported ufunc", lambda: attnc.trace(arctan, H=4, D=64), "ERROR-LINE arctan")

    def to_float(score, b, h, q_idx, kv_idx):
        return score * float(q_idx)  # ERROR-LINE float

    error("float() of a traced value", lambda: attnc.trace(to_float, H=4, D=64),
          "ERROR-LINE float")

    table = [1, 2, 3]

    def list_index(b, h, q_idx, kv_idx):
        return table[h] > 1  # ERROR-LINE list

    error("indexing a Python list", lambda: attnc.trace(mask_mod=list_index, H=4, D=64),
          "ERROR-LINE list")

    def key_error(b, h, q_idx, kv_idx):
        return {}[q_idx]  # ERROR-LINE keyerror

    error("an exception in the mod", lambda: attnc.trace(mask_mod=key_error, H=4, D=64),
          "ERROR-LINE keyerror")

    def float_mask(b, h, q_idx, kv_idx):
        return q_idx * 0.5

    error("mask_mod returning a float", lambda: attnc.trace(mask_mod=float_mask, H=4, D=64))

    def traced_exponent(score, b, h, q_idx, kv_idx):
        return score ** h  # ERROR-LINE pow

    error("traced exponent", lambda: attnc.trace(traced_exponent, H=4, D=64), "ERROR-LINE pow")

    def div_zero(b, h, q_idx, kv_idx):
        return q_idx // 0 == kv_idx  # ERROR-LINE divzero

    error("division by 0", lambda: attnc.trace(mask_mod=div_zero, H=4, D=64),
          "ERROR-LINE divzero")

    error("not callable", lambda: attnc.trace(mask_mod=3, H=4, D=64))
    error("bad dtype", lambda: attnc.trace(mask_mod=lambda b, h, q, kv: q >= kv, H=4, D=64,
                                           dtype="f64"))
    q = np.zeros((1, 4, 64, 16), np.float32)
    kv = np.zeros((1, 2, 64, 16), np.float32)
    error("gqa without enable_gqa", lambda: attnc.flex_attention(q, kv, kv))
    bm = attnc.create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, 128, 128, "cpu")
    error("block mask of another length", lambda: attnc.flex_attention(q, q, q, block_mask=bm))
    error("kernel_options", lambda: attnc.flex_attention(q, q, q, kernel_options={"X": 1}))


def main():
    specs()
    errors()
    print(f"FAILURES {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
