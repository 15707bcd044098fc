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
from ._linear import _tensor, _to_numpy, _wants_grad, check_qk
from ._runtime import AttncError


def emit_delta_spec(name, heads, D, Dv, scale, decay_kind, with_initial_state, final_state,
                    output=True):
    """The spec text of one attn.delta_rule on f32 tensors; heads = (H, HV),
    the q/k and the value heads; output=False returns the final state
    alone (o is then not computed)."""
    H, HV = heads
    tq, tv = _tensor((None, H, None, D)), _tensor((None, HV, None, Dv))
    tb, ts = _tensor((None, HV, None)), _tensor((None, HV, D, Dv))
    params = [f"%q: {tq}", f"%k: {tq}", f"%v: {tv}", f"%beta: {tb}"]
    op = f"  %o{', %state' if final_state else ''} = attn.delta_rule %q, %k, %v, %beta"
    if decay_kind:
        tg = _tensor((HV,)) if decay_kind == "head" else tb
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


def _decay_kind(decay, B, HV, N):
    """'head' ([HV]), 'token' ([B, HV, N]) or None."""
    if decay is None:
        return None
    shape = tuple(int(x) for x in decay.shape)
    kind = {(HV,): "head", (B, HV, N): "token"}.get(shape)
    if kind is None:
        raise AttncError(f"delta_rule: decay (log-gates) must have shape [HV] = {[HV]} or "
                         f"[B, HV, N] = {[B, HV, N]}, got {list(shape)}")
    return kind


def check_inputs(q, k, v, beta, initial_state):
    """B, H, HV, N, D, Dv: q and k [B, H, N, D], v [B, HV, N, Dv] with HV a
    multiple of H; beta and the initial state checked against them."""
    B, H, N, D = check_qk(q, k, v, "delta_rule")
    HV, Dv = int(v.shape[1]), int(v.shape[3])
    if (int(v.shape[0]), int(v.shape[2])) != (B, N) or HV % H:
        raise AttncError(f"delta_rule: v must be [B, HV, N, Dv] with q's B, N "
                         f"{[B, N]} and HV a multiple of q's {H} heads, got {list(v.shape)}")
    if tuple(beta.shape) != (B, HV, N):
        raise AttncError(f"delta_rule: beta must be [B, HV, N] = {[B, HV, N]}, got "
                         f"{list(beta.shape)}")
    if initial_state is not None and tuple(initial_state.shape) != (B, HV, D, Dv):
        raise AttncError(f"delta_rule: initial_state must be [B, HV, D, Dv] = "
                         f"{[B, HV, D, Dv]}, got {list(initial_state.shape)}")
    return B, H, HV, N, D, Dv


def _l2norm(x):
    if (type(x).__module__ or "").startswith("torch"):
        import torch
        return torch.nn.functional.normalize(x, dim=-1)
    import numpy as np
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def delta_rule(q, k, v, beta, decay=None, scale=None, initial_state=None,
               output_final_state=False, use_qk_l2norm_in_kernel=False):
    """The delta rule on [B, H, N, D] q and k, [B, HV, N, Dv] v and [B, HV, N]
    beta (HV a multiple of H: each q/k head serves HV / H value heads):

        S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,
        o_t = S_t^T (scale * q_t)

    with a_t = exp(g_t) from `decay` (log-gates <= 0, [B, HV, N] per token or
    [HV] per head: Gated DeltaNet) or a_t = 1 (DeltaNet). scale: None for
    D ** -0.5; initial_state [B, HV, D, Dv]; output_final_state returns
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
    B, H, HV, N, D, Dv = check_inputs(q, k, v, beta, initial_state)
    if use_qk_l2norm_in_kernel:
        q, k = _l2norm(q), _l2norm(k)
    scale = D ** -0.5 if scale is None else float(scale)
    decay_kind = _decay_kind(decay, B, HV, N)
    name = f"delta_rule_{decay_kind or 'plain'}"
    spec = emit_delta_spec(name, (H, HV), D, Dv, scale, decay_kind,
                           initial_state is not None, output_final_state)
    kernel = _kernel(spec, "cpu", 0, 0)
    inputs = [x for x in (q, k, v, beta, decay, initial_state) if x is not None]
    if _wants_grad(*inputs):
        backward = _kernel(spec, "cpu", 0, 0, function=name + "_backward")
        return _linear_autograd.apply(kernel, backward, inputs, output_final_state,
                                      what="attnc.delta_rule")
    return _run(kernel, kind, inputs, (B, HV, N, D, Dv), output_final_state, q.dtype)


def _run(kernel, kind, inputs, sizes, final_state, dtype):
    import numpy as np
    B, HV, N, D, Dv = sizes
    args = [_to_numpy(x) for x in inputs]
    out = (np.empty((B, HV, N, Dv), np.float32), np.empty((B, HV, D, Dv), np.float32))
    o, state = kernel(*args, out=out) if final_state else (kernel(*args), None)
    if kind == "torch-cpu":
        import torch
        o = torch.from_numpy(o).to(dtype)
        return (o, torch.from_numpy(state)) if final_state else o
    o = o.astype(dtype, copy=False)
    return (o, state) if final_state else o
