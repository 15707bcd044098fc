"""LASP-2 for the delta rule (attnc.distributed.delta_rule; docs/distributed.md).

The delta rule's state update is linear in the state: a chunk of tokens
maps the state entering it to S_out = A_r S_in + M_r, with the chunk's
transition A_r = prod_t a_t (I - beta_t k_t k_t^T) ([D, D]) and M_r the
chunk's state from zero ([D, Dv]). One attn.delta_rule call computes both:
on values [v | 0] from the initial state [0 | I] its final state is
[M_r | A_r]. So, per rank r of the sequence:

  forward:  [M_r | A_r] = final state of delta_rule(q, k, [v | 0], beta; [0 | I])
                                                (a state-only call: o not computed)
            AllGather of [M | A]                       one collective
            P_r = fold over ranks r' < r: P <- A_r' P + M_r'   (from S_0 or 0)
            o_r = delta_rule(q, k, v, beta; P_r)
  backward: dP_r = the initial-state gradient of the output call's backward
            AllGather of (dP, d final state)           one collective
            (dM_r, dA_r) = the fold's backward (every rank folds all ranks)
            the state call's backward with final-state gradient [dM_r | dA_r]

Each collective moves D x (Dv + D) per batch and head, whatever the
sequence length. The fold (O(W D^2 Dv)) runs in torch on every rank; the
two calls are attnc's CPU kernels (`@f`, `@f_backward` of
_delta.emit_delta_spec).
"""

from ._collectives import Group
from ._collectives import to_numpy as _numpy
from ._delta import emit_delta_spec
from ._jit import compile as _compile

_kernels = {}  # (forward spec, backward spec) -> (forward, backward) kernels


def phase_specs(sizes, scale, decay_kind):
    """sizes = (H, HV, D, Dv). The (forward spec, backward spec, function) of
    the state call (values
    widened by D columns; its forward returns the final state alone) and of
    the output call, each with an initial and a final state."""
    H, HV, D, Dv = sizes
    specs = []
    for name, dv, output in (("lasp_delta_state", Dv + D, False),
                             ("lasp_delta_output", Dv, True)):
        full = emit_delta_spec(name, (H, HV), D, dv, scale, decay_kind, True, True)
        forward = full if output else emit_delta_spec(name, (H, HV), D, dv, scale, decay_kind,
                                                      True, True, output=False)
        specs.append((forward, full, name))
    return specs


def _pair(forward, backward, name):
    key = (forward, backward)
    pair = _kernels.get(key)
    if pair is None:
        pair = _kernels[key] = (_compile(forward, "cpu", function=name),
                                _compile(backward, "cpu", function=name + "_backward"))
    return pair


class DeltaRun:
    """One sequence-parallel delta-rule call on rank r (the `call` object of
    _linear_autograd.function_class): inputs q, k, v, beta, then the decay
    and the initial state when given."""

    def __init__(self, sizes, scale, decay_kind, has_init, group):
        self.H, self.HV, self.D, self.Dv = sizes
        self.decay_kind, self.has_init = decay_kind, has_init
        self.comm = Group(group)
        self.rank, self.world = self.comm.rank, self.comm.world
        self.state, self.output = (_pair(*p) for p in phase_specs(sizes, scale, decay_kind))

    def split(self, inputs):
        """(q, k, v, beta, [decay]) and the initial state (or None), numpy."""
        arrays = [_numpy(t) for t in inputs]
        if self.has_init:
            return arrays[:-1], arrays[-1]
        return arrays, None

    def state_args(self, args):
        """The state call's arguments: v widened by D zero columns, then the
        initial state [0 | I]."""
        import numpy as np
        q, k, v = args[:3]
        B, H, N, _ = v.shape  # value heads
        D, Dv = self.D, self.Dv
        wide = np.concatenate([v, np.zeros((B, H, N, D), np.float32)], 3)
        init = np.zeros((B, H, D, Dv + D), np.float32)
        init[..., Dv:] = np.eye(D, dtype=np.float32)
        return [q, k, wide] + list(args[3:]) + [init]

    def prefixes(self, gathered, s0):
        """The state entering each rank and, last, the final state (torch,
        differentiable): P_0 = s0, P_{r+1} = A_r P_r + M_r."""
        import torch
        states = [s0]
        for r in range(self.world):
            m, a = gathered[r][..., :self.Dv], gathered[r][..., self.Dv:]
            states.append(torch.einsum("bhij,bhjv->bhiv", a, states[-1]) + m)
        return states

    def forward(self, inputs):
        import numpy as np
        import torch
        args, s0 = self.split(inputs)
        B, H, N, _ = args[2].shape  # value heads
        D, Dv = self.D, self.Dv
        sargs = self.state_args(args)
        ma = self.state[0](*sargs, out=np.empty((B, H, D, Dv + D), np.float32))
        self.gathered = torch.from_numpy(self.comm.gather(ma)).double()
        self.s0 = torch.from_numpy(s0).double() if s0 is not None else \
            torch.zeros(B, H, D, Dv, dtype=torch.float64)
        states = self.prefixes(self.gathered, self.s0)
        prefix = states[self.rank]
        self.prefix = prefix.float().numpy()
        o, _ = self.output[0](*args, self.prefix, out=(np.empty((B, H, N, Dv), np.float32),
                                                       np.empty((B, H, D, Dv), np.float32)))
        final = states[self.world].float()
        return torch.from_numpy(o), final

    def fold_backward(self, dprefixes, dfinal):
        """(d of this rank's [M | A], d of s0) for the loss sum_r <P_r, dP_r> +
        <final, dfinal>, every rank's P_r folded from the gathered states."""
        import torch
        gathered = self.gathered.clone().requires_grad_()
        s0 = self.s0.clone().requires_grad_()
        with torch.enable_grad():  # autograd.Function.backward runs without
            states = self.prefixes(gathered, s0)
            loss = (states[-1] * dfinal).sum()
            for r in range(self.world):
                loss = loss + (states[r] * dprefixes[r]).sum()
            loss.backward()
        return gathered.grad[self.rank], s0.grad

    def backward(self, inputs, grads):
        import numpy as np
        import torch
        args, _ = self.split(inputs)
        B, H, N, _ = args[2].shape  # value heads
        D, Dv = self.D, self.Dv
        do = _numpy(grads[0]) if grads[0] is not None else np.zeros((B, H, N, Dv), np.float32)
        dfinal = _numpy(grads[1]) if grads[1] is not None else np.zeros((B, H, D, Dv),
                                                                         np.float32)
        shapes = [a.shape for a in args] + [(B, H, D, Dv)]
        out = self.output[1](*args, self.prefix, do, np.zeros((B, H, D, Dv), np.float32),
                             out=tuple(np.empty(s, np.float32) for s in shapes))
        both = torch.from_numpy(self.comm.gather(np.stack([out[-1], dfinal]))).double()
        dma, ds0 = self.fold_backward(both[:, 0], both[:, 1].sum(0))
        sargs = self.state_args(args)
        sshapes = [a.shape for a in sargs]
        sout = self.state[1](*sargs, np.zeros((B, H, N, Dv + D), np.float32),
                             dma.float().numpy(),
                             out=tuple(np.empty(s, np.float32) for s in sshapes))
        # dq from the output call; dk, dv, dbeta and the gates' from both.
        grads_in = [out[0], out[1] + sout[1], out[2] + sout[2][..., :Dv]]
        grads_in += [a + b for a, b in zip(out[3:len(args)], sout[3:len(args)])]
        result = [torch.from_numpy(np.ascontiguousarray(g)) for g in grads_in]
        if self.decay_kind == "head":  # shared by the ranks
            self.comm.all_reduce(result[4])
        if self.has_init:  # every rank folded the same: the total
            result.append(ds0.float())
        return [g.to(t.dtype) for g, t in zip(result, inputs)]
