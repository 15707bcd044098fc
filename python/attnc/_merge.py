"""Merging partial attention results by their log-sum-exp (cascade and
shared-prefix attention: attend to a shared prefix once and to each
suffix separately, then merge)."""
from ._aot import AttncError


def _lib(x):
    """numpy or torch, whichever `x` belongs to."""
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        import torch
        return torch
    if mod == "numpy":
        import numpy
        return numpy
    raise AttncError(f"merge_states: expected numpy arrays or torch tensors, got "
                     f"{type(x).__name__}")


def merge_states(o_a, lse_a, o_b, lse_b):
    """The attention result over the union of two disjoint key sets, from
    the results over each: `o_a`, `o_b` `[..., Nq, Dv]` and their row
    log-sum-exps `lse_a`, `lse_b` `[..., Nq]` (natural log; -inf for a row
    that saw no key, as attnc's lse is). Returns (o, lse) with

        lse = log(e^lse_a + e^lse_b),  o = e^(lse_a - lse) o_a + e^(lse_b - lse) o_b

    computed in float32 (o in o_a's dtype, lse float32); a row empty in
    both gives o = 0, lse = -inf. numpy arrays or torch tensors (any
    device); elementwise operations of that library, not a generated kernel."""
    xp = _lib(o_a)
    for name, t in (("lse_a", lse_a), ("o_b", o_b), ("lse_b", lse_b)):
        if _lib(t) is not xp:
            raise AttncError(f"merge_states: {name} is not a {xp.__name__} array like o_a")
    if tuple(o_a.shape) != tuple(o_b.shape):
        raise AttncError(f"merge_states: o_a has shape {list(o_a.shape)} but o_b has "
                         f"{list(o_b.shape)}")
    want = tuple(o_a.shape[:-1])
    for name, t in (("lse_a", lse_a), ("lse_b", lse_b)):
        if tuple(t.shape) != want:
            raise AttncError(f"merge_states: {name} must have shape {list(want)} (o without "
                             f"its last dim), got {list(t.shape)}")
    f32 = xp.float32
    la = lse_a.astype(f32) if xp.__name__ == "numpy" else lse_a.to(f32)
    lb = lse_b.astype(f32) if xp.__name__ == "numpy" else lse_b.to(f32)
    m = xp.maximum(la, lb)
    finite = xp.isfinite(m)
    msafe = xp.where(finite, m, xp.zeros_like(m))
    wa, wb = xp.exp(la - msafe), xp.exp(lb - msafe)
    total = wa + wb
    inv = xp.where(total > 0, 1.0 / xp.where(total > 0, total, xp.ones_like(total)),
                   xp.zeros_like(total))
    cast = (lambda t: t.astype(f32)) if xp.__name__ == "numpy" else (lambda t: t.to(f32))
    o = (cast(o_a) * (wa * inv)[..., None] + cast(o_b) * (wb * inv)[..., None])
    lse = xp.where(total > 0, msafe + xp.log(xp.where(total > 0, total, xp.ones_like(total))),
                   xp.full_like(total, -float("inf")))
    o = o.astype(o_a.dtype) if xp.__name__ == "numpy" else o.to(o_a.dtype)
    return o, lse
