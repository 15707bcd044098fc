"""Checks shared by the CPU torch autograd tests (test_linear_autograd.py,
test_delta_rule.py): importing it without torch prints `UNSUPPORTED: <why>`
and exits 0; PASS/FAIL lines with a failure count, fresh random float64
inputs, gradients of a weighted-sum loss and relative errors."""
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

try:
    import torch
except ImportError as e:
    print(f"UNSUPPORTED: torch is not installed for {sys.executable} ({e})")
    sys.exit(0)

state = types.SimpleNamespace(fails=0)
gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))


def report(name, ok, detail=""):
    state.fails += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def rand(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo


def grads_of(fn, leaves, weights):
    """The gradients of sum(out * w) over fn()'s outputs with respect to
    `leaves` (float64 copies), and the outputs."""
    for x in leaves:
        x.grad = None
    outs = fn()
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.double() * w).sum() for o, w in zip(outs, weights))
    loss.backward()
    return [x.grad.double().clone() for x in leaves], outs


def rel_err(got, want):
    """max |got - want| / max |want|."""
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


def finish():
    print(f"FAILURES {state.fails}")
