"""The delta rule's recurrence in torch (float64 in the tests), the
reference of test_delta_rule.py and of the LASP-2 delta cases of
test_lasp_distributed.py."""
import torch


def reference(q, k, v, beta, g, scale, s0, final_state, l2norm=False):
    """The recurrence S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T,
    o_t = S_t^T (scale q_t), token by token, in the inputs' precision."""
    if l2norm:
        q = torch.nn.functional.normalize(q, dim=-1)
        k = torch.nn.functional.normalize(k, dim=-1)
    if v.shape[1] != q.shape[1]:  # grouped value heads: q/k head h // G
        group = v.shape[1] // q.shape[1]
        q, k = q.repeat_interleave(group, 1), k.repeat_interleave(group, 1)
    B, H, N, D = q.shape
    S = s0 if s0 is not None else torch.zeros(B, H, D, v.shape[3], dtype=q.dtype)
    outs = []
    for t in range(N):
        a = torch.ones(B, H, dtype=q.dtype) if g is None else \
            torch.exp(g.expand(B, H) if g.dim() == 1 else g[:, :, t])
        kt = k[:, :, t]
        w = torch.einsum("bhd,bhde->bhe", kt, S)
        u = beta[:, :, t, None] * (v[:, :, t] - a[..., None] * w)
        S = a[..., None, None] * S + kt[..., :, None] * u[..., None, :]
        outs.append(torch.einsum("bhd,bhde->bhe", scale * q[:, :, t], S))
    o = torch.stack(outs, dim=2)
    return (o, S) if final_state else o
