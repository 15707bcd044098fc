"""Gradients through attnc.linear_attention and attnc.delta_rule on CPU
torch tensors (docs/frontend.md#linear-attention).

When grad mode is on and q, k, v, the decay or the initial state requires
grad, linear_attention runs the spec's function through a
torch.autograd.Function; its backward runs `<f>_backward` (dq, dk, dv and
the gradients of the decay's log-gates and of the initial state), which
the compiler makes with attn-differentiate and lowers to the chunked CPU
backward. GPU tensors have no linear backward yet (refused by the caller).
"""

from ._runtime import AttncError

_functions = {}  # caller -> its torch.autograd.Function class, made on first use


class _Call:
    """The forward and backward kernels of one spec on CPU torch tensors;
    inputs are q, k, v, then the decay and the initial state when given."""

    def __init__(self, forward, backward, final_state, out_dtype):
        self.fwd, self.bwd = forward, backward
        self.final_state = final_state
        self.out_dtype = out_dtype

    @staticmethod
    def _arrays(inputs):
        return [t.detach().float().contiguous().numpy() for t in inputs]

    def forward(self, inputs):
        import numpy as np
        import torch
        arrays = self._arrays(inputs)
        B, H, N, Dv = arrays[2].shape  # o and the state have v's heads
        D = arrays[0].shape[3]
        if self.final_state:
            out = (np.empty((B, H, N, Dv), np.float32), np.empty((B, H, D, Dv), np.float32))
            o, state = self.fwd(*arrays, out=out)
            return torch.from_numpy(o).to(self.out_dtype), torch.from_numpy(state)
        return (torch.from_numpy(self.fwd(*arrays)).to(self.out_dtype),)

    def backward(self, inputs, grads):
        import numpy as np
        import torch
        arrays = self._arrays(inputs)
        cotangents = [grads[0] if grads[0] is not None else torch.zeros_like(inputs[2])]
        if self.final_state:
            B, H, _, Dv = arrays[2].shape
            D = arrays[0].shape[3]
            ds = grads[1] if grads[1] is not None else torch.zeros(B, H, D, Dv)
            cotangents.append(ds)
        outs = tuple(np.empty(a.shape, np.float32) for a in arrays)
        self.bwd(*arrays, *self._arrays(cotangents), out=outs)
        return [torch.from_numpy(g).to(t.dtype) for g, t in zip(outs, inputs)]


def function_class(torch, what):
    """A torch.autograd.Function over a call object: (call, *inputs) ->
    call.forward(inputs) (a tuple of tensors); backward gives the inputs'
    gradients from call.backward(saved inputs, output gradients). One class
    per caller `what` (its name in the double-backward error)."""
    cls = _functions.get(what)
    if cls is None:
        class CallFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, call, *inputs):
                ctx.call = call
                ctx.save_for_backward(*inputs)
                return call.forward(inputs)

            @staticmethod
            def backward(ctx, *grads):
                if torch.is_grad_enabled():
                    raise AttncError(f"{what}: double backward (create_graph=True) is not "
                                     "supported: attnc's backward kernels are not "
                                     "differentiable")
                return (None, *ctx.call.backward(ctx.saved_tensors, grads))

        cls = _functions[what] = CallFunction
    return cls


def apply(forward, backward, inputs, final_state, what="attnc.linear_attention"):
    """o (or (o, final_state)) of the spec's kernels `forward` and
    `backward` (<f>_backward) on torch CPU tensors `inputs`, differentiable
    with respect to each of them; `what` names the caller in errors."""
    import torch
    inputs = [t if isinstance(t, torch.Tensor) else torch.as_tensor(t) for t in inputs]
    call = _Call(forward, backward, final_state, inputs[0].dtype)
    outs = function_class(torch, what).apply(call, *inputs)
    return outs if final_state else outs[0]
