"""A scan with #attn.token_order against the same scan without an order on
inputs permuted by numpy: the order must equal a physical permutation of the
tokens (review tokens first, then the grid with its dims nested as `perm`
says), with o returned in storage order. Runs on the CPU backend."""

import sys

import numpy as np

import attnc

GRID, REVIEW = (3, 4, 5), 2
N = REVIEW + int(np.prod(GRID))


def spec(op, order):
    attr = (f" {{order = #attn.token_order<grid = [{', '.join(map(str, GRID))}], "
            f"perm = [{', '.join(map(str, order))}], review = {REVIEW}>}}"
            if order is not None else "")
    t = "tensor<?x2x?x16xf32>"
    if op == "scan":
        body = (f"%o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x2x?xf32>){attr}\n"
                f"    : {t}, {t}, {t} -> {t}")
    else:  # causal linear attention, ReLU features, normalized, scalar gates
        body = (f"%o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x2x?xf32>) normalize\n"
                "    feature_map(%x: vector<16xf32>) {\n"
                "      %z = arith.constant dense<0.0> : vector<16xf32>\n"
                "      %r = arith.maximumf %x, %z : vector<16xf32>\n"
                "      attn.yield %r : vector<16xf32>\n"
                f"    }}{attr} : {t}, {t}, {t} -> {t}")
    return (f"func.func @f(%q: {t}, %k: {t}, %v: {t}, %g: tensor<?x2x?xf32>) -> {t} {{\n"
            f"  {body}\n  return %o : {t}\n}}\n")


def scan_order(perm):
    """Storage index of the token visited at each scan step."""
    grid = np.arange(int(np.prod(GRID))).reshape(GRID).transpose(perm).reshape(-1)
    return np.concatenate([np.arange(REVIEW), REVIEW + grid])


def main():
    rng = np.random.default_rng(3)
    failures = 0
    for op in ("scan", "linear"):
        plain = attnc.compile(spec(op, None))
        for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
            ordered = attnc.compile(spec(op, perm))
            q, k, v = (rng.uniform(-1, 1, (2, 2, N, 16)).astype(np.float32) for _ in range(3))
            g = -rng.uniform(0, 0.5, (2, 2, N)).astype(np.float32)
            idx = scan_order(perm)
            want = np.empty_like(q)
            want[:, :, idx] = plain(q[:, :, idx], k[:, :, idx], v[:, :, idx], g[:, :, idx])
            got = ordered(q, k, v, g)
            err = float(np.abs(got - want).max() / np.abs(want).max())
            ok = err < 1e-5
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'} {op} perm={list(perm)} max_rel_err={err:.2e}")
    # A length that is not the order's is refused before anything runs.
    ordered = attnc.compile(spec("scan", (1, 2, 0)))
    x = np.zeros((1, 2, N + 1, 16), np.float32)
    try:
        ordered(x, x, x, np.zeros((1, 2, N + 1), np.float32))
        print("FAIL no error for a wrong length")
        failures += 1
    except attnc.AttncError as e:
        print("ERROR", e)
    # Log-gates must be <= 0 (the decay is exp(g)): a positive one is refused.
    q = np.zeros((1, 2, N, 16), np.float32)
    g = np.zeros((1, 2, N), np.float32)
    g[0, 1, 7] = 0.25
    try:
        ordered(q, q, q, g)
        print("FAIL no error for a positive log-gate")
        failures += 1
    except attnc.AttncError as e:
        print("ERROR", e)
    # Gates must cover the sequence: a shorter gate tensor is refused.
    plain = attnc.compile(spec("scan", None))
    try:
        plain(q, q, q, np.zeros((1, 2, N - 1), np.float32))
        print("FAIL no error for short gates")
        failures += 1
    except attnc.AttncError as e:
        print("ERROR", e)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
