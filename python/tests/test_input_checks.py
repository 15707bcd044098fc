"""Sizes a spec ties to its captured tensors are checked before a kernel
runs (CPU backend): document ids indexed by i and j must cover Nq and Nk, a
block layout indexed by i/64 and j/64 must cover ceil(N/64)."""
import os
import sys

import numpy as np

import attnc

EX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def attempt(label, f):
    try:
        f()
        print(f"OK {label}")
    except attnc.AttncError as e:
        print(f"ERROR {label}: {e}")


def main():
    x = np.zeros((1, 4, 100, 64), np.float32)
    doc = attnc.compile(os.path.join(EX, "document_mask.mlir"))
    attempt("docs 100", lambda: doc(x, x, x, np.zeros(100, np.int32)))
    attempt("docs 99", lambda: doc(x, x, x, np.zeros(99, np.int32)))
    bs = attnc.compile(os.path.join(EX, "block_sparse.mlir"))
    attempt("layout 2x2", lambda: bs(x, x, x, np.ones((2, 2), np.int8)))
    attempt("layout 1x2", lambda: bs(x, x, x, np.ones((1, 2), np.int8)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
