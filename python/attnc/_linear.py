"""attnc.linear_attention: linear attention with a traced elementwise
feature map (docs/frontend.md).

`feature_map(x)` is traced once on a scalar f32 proxy (the same tracer as
FlexAttention's mods: Python operators, torch / numpy / math functions) and
emitted as vector code over the head dim in the `feature_map` region of an
`attn.linear_attention` spec. As in flash-linear-attention, the scale
multiplies the query features after the map: the spec's query map is
scale * phi(x), its key map phi(x), and its own `scale` 1.0.
"""

from . import _emit
from . import _linear_autograd
from . import _memo
from . import _trace as _tracer
from ._flex import _count, _kernel, _kind
from ._runtime import AttncError


def _trace_map(fn):
    traced = _memo.trace(fn, "feature_map", _count)
    bad = _non_elementwise(traced.result)
    if bad:
        raise AttncError(f"cannot trace feature_map {_tracer.describe_function(fn)}: "
                         f"{bad}; attnc.linear_attention traces elementwise maps "
                         "(write projections as an attn spec with captures)")
    return traced


def _non_elementwise(root):
    """Why the traced map is not elementwise float code ('' when it is)."""
    seen, stack = set(), [root]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if v.op == "read":
            return f"it reads the captured tensor '{v.attr.hint}'"
        if v.type not in ("f32", "i1"):
            where = _tracer.describe_location(v.loc)
            return f"it computes a {v.type} value{(' at ' + where) if where else ''}"
        stack.extend(v.args)
    return ""


def _scaled(traced, scale):
    """A TracedMod-like root: scale * phi(x) (phi(x) when scale is 1)."""
    if scale == 1.0:
        return traced.result
    return _tracer.binary("mul", traced.result, float(scale))


def _tensor(dims, elem="f32"):
    return "tensor<" + "x".join("?" if d is None else str(d) for d in dims) + f"x{elem}>"


def _decay_type(decay_kind, H, D):
    return {"head": _tensor((H,)), "token": _tensor((None, H, None)),
            "feature": _tensor((None, H, None, D))}[decay_kind]


def emit_linear_spec(name, phi, H, D, Dv, dtype, scale, causal, normalize, decay_kind,
                     with_initial_state, final_state):
    """The spec text of one attn.linear_attention with phi (a traced
    feature map or None) and the scale folded into the query map."""
    tq = _tensor((None, H, None, D), dtype)
    tv = _tensor((None, H, None, Dv), dtype)
    ts = _tensor((None, H, D, Dv))
    params = [f"%q: {tq}", f"%k: {tq}", f"%v: {tv}"]
    head = f"  %o{', %state' if final_state else ''} = attn.linear_attention " \
           f"{'causal' if causal else 'bidirectional'} %q, %k, %v"
    if decay_kind:
        params.append(f"%g: {_decay_type(decay_kind, H, D)}")
        head += f" decay(%g : {_decay_type(decay_kind, H, D)})"
    if with_initial_state:
        params.append(f"%s0: {ts}")
        head += f" initial_state(%s0 : {ts})"
    if normalize:
        head += " normalize"
    lines = [head]
    if phi is None:
        lines[0] += f" scale = {_tracer.float_literal(scale)}"
    else:
        lines[0] += " scale = 1.000000000e+00"
        for region, root in (("feature_map", _scaled(phi, scale)),
                             ("key_feature_map", phi.result)):
            lines.append(f"    {region}(%x: vector<{D}xf32>) {{")
            lines += _emit.emit_region(root, {"x": "%x"}, [], H, "      ", width=D)
            lines.append("    }")
    results = f"({tv}, {ts})" if final_state else tv
    lines.append(f"    : {tq}, {tq}, {tv} -> {tv}{', ' + ts if final_state else ''}")
    ret = f"  return %o, %state : {tv}, {ts}" if final_state else f"  return %o : {tv}"
    what = _tracer.describe_function(phi.fn).split(" (")[0] if phi is not None else "identity"
    return "\n".join([f"// attnc.linear_attention: feature_map={what}",
                      f"func.func @{name}({', '.join(params)}) -> {results} {{"]
                     + lines + [ret, "}"]) + "\n"


def spec_name(prefix, phi):
    """The spec function's name: `prefix` and the traced map's name (or
    "identity"), as an MLIR identifier."""
    name = prefix + (phi.name.replace("<lambda>", "lambda") if phi else "identity")
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def _decay_kind(decay, B, H, N, D):
    """'head' ([H]), 'token' ([B, H, N]), 'feature' ([B, H, N, D]) or None."""
    if decay is None:
        return None
    shape = tuple(int(x) for x in decay.shape)
    kinds = {(H,): "head", (B, H, N): "token", (B, H, N, D): "feature"}
    kind = kinds.get(shape)
    if kind is None:
        raise AttncError(f"linear_attention: decay must have shape [H], [B, H, N] or "
                         f"[B, H, N, D] = {[H]}, {[B, H, N]} or {[B, H, N, D]}, got "
                         f"{list(shape)}")
    return kind


def linear_attention(q, k, v, feature_map=None, decay=None, scale=None, normalize=False,
                     causal=True, initial_state=None, output_final_state=False):
    """Linear attention on [B, H, N, D] q and k and [B, H, N, Dv] v:

        o_t = sum_{s <= t} exp(L_t - L_s) (scale * phi(q_t) . phi(k_s)) v_s

    (all s when causal=False; with normalize=True divided by the same sum
    with v_s = 1). feature_map: an elementwise Python function x -> phi(x)
    (traced; None: the identity); decay: log-gates (<= 0), [H] per head
    (RetNet), [B, H, N] per token (Mamba2, simple GLA) or [B, H, N, D] per
    token and feature (GLA), L their cumulative sum; scale: None for
    D ** -0.5 (flash-linear-attention's default); initial_state [B, H, D, Dv]
    (causal only) and output_final_state (returns (o, final_state)).

    numpy arrays and CPU torch tensors run the CPU kernel (float32); CUDA
    tensors (bf16/f16) the GPU kernel for the device. CPU torch tensors that
    require grad give a differentiable result (the chunked CPU backward);
    CUDA tensors have no backward yet.
    """
    kinds = {_kind(t) for t in (q, k, v)}
    if len(kinds) != 1:
        raise AttncError(f"linear_attention: q, k and v must be of one kind, got {sorted(kinds)}")
    kind = kinds.pop()
    B, H, N, D, Dv = _check_shapes(q, k, v)
    if (initial_state is not None or output_final_state) and not causal:
        raise AttncError("linear_attention: states (initial_state, output_final_state) "
                         "need causal=True")
    if initial_state is not None and tuple(initial_state.shape) != (B, H, D, Dv):
        raise AttncError(f"linear_attention: initial_state must be [B, H, D, Dv] = "
                         f"{[B, H, D, Dv]}, got {list(initial_state.shape)}")
    scale = D ** -0.5 if scale is None else float(scale)
    phi = _trace_map(feature_map) if feature_map is not None else None
    decay_kind = _decay_kind(decay, B, H, N, D)
    if kind == "torch-cuda":
        from ._flex import _cuda_target
        dtype = {"torch.bfloat16": "bf16", "torch.float16": "f16"}.get(str(q.dtype))
        if dtype is None:
            raise AttncError(f"linear_attention: GPU kernels take bfloat16 or float16, "
                             f"got {q.dtype}")
        target = _cuda_target(q)
    else:
        dtype, target = "f32", "cpu"
    name = spec_name("linear_", phi)
    spec = emit_linear_spec(name, phi, H, D, Dv, dtype, scale, causal, normalize, decay_kind,
                            initial_state is not None, output_final_state)
    kernel = _kernel(spec, target, 0, 0)
    extra = [x for x in (decay, initial_state) if x is not None]
    if _wants_grad(q, k, v, *extra):
        if kind == "torch-cuda":
            raise AttncError("linear_attention: attnc has no GPU backward for linear "
                             "attention yet (CPU tensors have one); call it under "
                             "torch.no_grad()")
        backward = _kernel(spec, target, 0, 0, function=name + "_backward")
        return _linear_autograd.apply(kernel, backward, [q, k, v, *extra],
                                      output_final_state)
    if kind == "torch-cuda":
        import torch
        extra = [x.to(device=q.device, dtype=torch.float32) for x in extra]
        return kernel(q, k, v, *extra)
    return _run_cpu(kernel, kind, q, k, v, extra, B, H, D, Dv, output_final_state)


def _wants_grad(*tensors):
    """Whether grad mode is on and a torch tensor among `tensors` requires
    grad."""
    torch = [t for t in tensors if (type(t).__module__ or "").startswith("torch")]
    if not torch:
        return False
    import torch as th
    return th.is_grad_enabled() and any(t.requires_grad for t in torch)


def check_qk(q, k, v, what):
    """B, H, N, D of 4-d q, k, v with k shaped like q."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if len(t.shape) != 4:
            raise AttncError(f"{what}: {name} must be [B, H, N, D], got {list(t.shape)}")
    B, H, N, D = (int(x) for x in q.shape)
    if tuple(k.shape) != (B, H, N, D):
        raise AttncError(f"{what}: k must have q's shape {[B, H, N, D]}, got "
                         f"{list(k.shape)}")
    return B, H, N, D


def _check_shapes(q, k, v, what="linear_attention"):
    B, H, N, D = check_qk(q, k, v, what)
    if tuple(v.shape[:3]) != (B, H, N):
        raise AttncError(f"{what}: v must be [B, H, N, Dv] with q's B, H, N "
                         f"{[B, H, N]}, got {list(v.shape)}")
    return B, H, N, D, int(v.shape[3])


def _to_numpy(x):
    import numpy as np
    if (type(x).__module__ or "").startswith("torch"):
        x = x.detach().cpu().float().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def _run_cpu(kernel, kind, q, k, v, extra, B, H, D, Dv, final_state):
    import numpy as np
    args = [_to_numpy(x) for x in (q, k, v, *extra)]
    out = None
    if final_state:
        out = (np.empty((B, H, args[0].shape[2], Dv), np.float32),
               np.empty((B, H, D, Dv), np.float32))
    result = kernel(*args, out=out) if out is not None else kernel(*args)
    if kind == "torch-cpu":
        import torch
        if final_state:
            return torch.from_numpy(result[0]).to(q.dtype), torch.from_numpy(result[1])
        return torch.from_numpy(result).to(q.dtype)
    if final_state:
        return result[0].astype(q.dtype, copy=False), result[1]
    return result.astype(q.dtype, copy=False)

