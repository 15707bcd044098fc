"""The float64 quadratic form of linear attention in torch: the oracle of
the tests of attnc.linear_attention's gradients (test_linear_autograd.py)
and of sequence-parallel linear attention (test_lasp_distributed.py)."""
import torch


def reference(q, k, v, phi, decay, scale, normalize, causal, s0, final_state):
    """float64 quadratic form: o_t = sum_s a_t . (W_ts c_s) v_s with
    W_ts = exp(-|L_t - L_s|) per feature, a = scale phi(q), c = phi(k)."""
    B, H, N, D = q.shape
    a = scale * (phi(q) if phi else q)
    c = phi(k) if phi else k
    if decay is None:
        L = torch.zeros(B, H, N, D, dtype=q.dtype)
    elif decay.dim() == 1:
        L = (torch.arange(1, N + 1, dtype=q.dtype).view(1, 1, N, 1) *
             decay.view(1, H, 1, 1)).expand(B, H, N, D)
    elif decay.dim() == 3:
        L = decay.cumsum(2).unsqueeze(-1).expand(B, H, N, D)
    else:
        L = decay.cumsum(2)
    W = torch.exp(-(L.unsqueeze(3) - L.unsqueeze(2)).abs())  # [B, H, t, s, F]
    A = torch.einsum("bhtf,bhtsf,bhsf->bhts", a, W, c)
    if causal:
        A = A * torch.ones(N, N, dtype=q.dtype).tril()
    o = A @ v
    if s0 is not None:
        o = o + (a * torch.exp(L)) @ s0
    if normalize:
        z = A.sum(-1, keepdim=True)
        o = torch.where(z != 0, o / torch.where(z != 0, z, torch.ones_like(z)),
                        torch.zeros_like(o))
    if not final_state:
        return o
    last = L[:, :, -1:, :]  # [B, H, 1, F]
    state = torch.einsum("bhsf,bhsd->bhfd", c * torch.exp(last - L), v)
    if s0 is not None:
        state = state + torch.exp(last).transpose(-1, -2) * s0
    return o, state
