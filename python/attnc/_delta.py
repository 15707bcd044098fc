"""attnc.delta_rule: DeltaNet and Gated DeltaNet (docs/frontend.md#the-delta-rule).

One `attn.delta_rule` spec per call signature, compiled once (the kernel
cache) and run on the CPU in float32; CPU torch tensors that require grad
get gradients from `<f>_backward` (`attn.delta_rule_grad`, made by
attn-differentiate) through the shared autograd Function of
attnc.linear_attention. With use_qk_l2norm_in_kernel=True, q and k are
l2-normalized over the head dim first (in torch, so autograd covers it).
"""

from . import _linear_autograd
from ._flex import _kernel, _kind
from ._linear import _check_shapes, _tensor, _to_numpy, _wants_grad
from ._runtime import AttncError


def emit_delta_spec(name, H, D, Dv, scale, decay_kind, with_initial_state, final_state,
                    output=True):
    """The spec text of one attn.delta_rule on f32 tensors; output=False
    returns the final state alone (o is then not computed)."""
    tq, tv = _tensor((None, H, None, D)), _tensor((None, H, None, Dv))
    tb, ts = _tensor((None, H, None)), _tensor((None, H, D, Dv))
    params = [f"%q: {tq}", f"%k: {tq}", f"%v: {tv}", f"%beta: {tb}"]
    op = f"  %o{', %state' if final_state else ''} = attn.delta_rule %q, %k, %v, %beta"
    if decay_kind:
        tg = _tensor((H,)) if decay_kind == "head" else tb
        params.append(f"%g: {tg}")
        op += f" decay(%g : {tg})"
    if with_initial_state:
        params.append(f"%s0: {ts}")
        op += f" initial_state(%s0 : {ts})"
    op += f" {{scale = {float(scale)!r} : f32}}"
    results = f"({tv}, {ts})" if final_state else tv
    ret = f"  return %o, %state : {tv}, {ts}" if final_state else f"  return %o : {tv}"
    if not output:
        results, ret = ts, f"  return %state : {ts}"
    return "\n".join([
        f"func.func @{name}({', '.join(params)}) -> {results} {{", op,
        f"    : {tq}, {tq}, {tv}, {tb} -> {tv}{', ' + ts if final_state else ''}",
        ret, "}"]) + "\n"


def _decay_kind(decay, B, H, N):
    if decay is None:
        return None
    shape = tuple(int(x) for x in decay.shape)
    kind = {(H,): "head", (B, H, N): "token"}.get(shape)
    if kind is None:
        raise AttncError(f"delta_rule: decay (log-gates) must have shape [H] = {[H]} or "
                         f"[B, H, N] = {[B, H, N]}, got {list(shape)}")
    return kind


def check_inputs(q, k, v, beta, initial_state):
    """B, H, N, D, Dv of q, k, v; beta and the initial state checked
    against them."""
    B, H, N, D, Dv = _check_shapes(q, k, v, "delta_rule")
    if tuple(beta.shape) != (B, H, N):
        raise AttncError(f"delta_rule: beta must be [B, H, N] = {[B, H, N]}, got "
                         f"{list(beta.shape)}")
    if initial_state is not None and tuple(initial_state.shape) != (B, H, D, Dv):
        raise AttncError(f"delta_rule: initial_state must be [B, H, D, Dv] = "
                         f"{[B, H, D, Dv]}, got {list(initial_state.shape)}")
    return B, H, N, D, Dv


def _l2norm(x):
    if (type(x).__module__ or "").startswith("torch"):
        import torch
        return torch.nn.functional.normalize(x, dim=-1)
    import numpy as np
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def delta_rule(q, k, v, beta, decay=None, scale=None, initial_state=None,
               output_final_state=False, use_qk_l2norm_in_kernel=False):
    """The delta rule on [B, H, N, D] q and k, [B, H, N, Dv] v and [B, H, N]
    beta:

        S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,
        o_t = S_t^T (scale * q_t)

    with a_t = exp(g_t) from `decay` (log-gates <= 0, [B, H, N] per token or
    [H] per head: Gated DeltaNet) or a_t = 1 (DeltaNet). scale: None for
    D ** -0.5; initial_state [B, H, D, Dv]; output_final_state returns
    (o, final_state). The recurrence is stable for ||k_t|| <= 1 and beta_t
    in [0, 1]: pass l2-normalized keys and sigmoid betas, or
    use_qk_l2norm_in_kernel=True.

    numpy arrays and CPU torch tensors run the CPU kernel (float32, the
    chunked form); CPU torch tensors that require grad are differentiable
    (dq, dk, dv, dbeta, the decay's and the initial state's gradients).
    CUDA tensors are refused: the delta rule has no GPU kernel yet.
    """
    kinds = {_kind(t) for t in (q, k, v, beta)}
    if len(kinds) != 1:
        raise AttncError(f"delta_rule: q, k, v and beta must be of one kind, got "
                         f"{sorted(kinds)}")
    kind = kinds.pop()
    if kind == "torch-cuda":
        raise AttncError("delta_rule: attnc has no GPU kernel for the delta rule yet; "
                         "pass CPU tensors")
    B, H, N, D, Dv = check_inputs(q, k, v, beta, initial_state)
    if use_qk_l2norm_in_kernel:
        q, k = _l2norm(q), _l2norm(k)
    scale = D ** -0.5 if scale is None else float(scale)
    decay_kind = _decay_kind(decay, B, H, N)
    name = f"delta_rule_{decay_kind or 'plain'}"
    spec = emit_delta_spec(name, H, D, Dv, scale, decay_kind, initial_state is not None,
                           output_final_state)
    kernel = _kernel(spec, "cpu", 0, 0)
    inputs = [x for x in (q, k, v, beta, decay, initial_state) if x is not None]
    if _wants_grad(*inputs):
        backward = _kernel(spec, "cpu", 0, 0, function=name + "_backward")
        return _linear_autograd.apply(kernel, backward, inputs, output_final_state,
                                      what="attnc.delta_rule")
    return _run(kernel, kind, inputs, (B, H, N, D, Dv), output_final_state, q.dtype)


def _run(kernel, kind, inputs, sizes, final_state, dtype):
    import numpy as np
    B, H, N, D, Dv = sizes
    args = [_to_numpy(x) for x in inputs]
    out = (np.empty((B, H, N, Dv), np.float32), np.empty((B, H, D, Dv), np.float32))
    o, state = kernel(*args, out=out) if final_state else (kernel(*args), None)
    if kind == "torch-cpu":
        import torch
        o = torch.from_numpy(o).to(dtype)
        return (o, torch.from_numpy(state)) if final_state else o
    o = o.astype(dtype, copy=False)
    return (o, state) if final_state else o
