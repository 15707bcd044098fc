"""Gradients through attnc.flex_attention (docs/frontend.md#autograd).

When grad mode is on and query, key, value or a captured torch tensor
requires grad, flex_attention runs the spec's `<f>_forward` (o and lse) and
saves q, k, v, the captures, o and lse; the backward runs `<f>_backward`
(dq, dk, dv and the gradients of the captured float tensors that the
score_mod reads). attnc.compile makes both functions from the traced spec
(attn-differentiate runs in the compiler).

CPU tensors, and CUDA tensors on a torch without torch.library.custom_op,
go through a torch.autograd.Function. On CUDA with torch >= 2.4 the
backward is the autograd formula registered on the forward kernel's
torch.library op (register_autograd), so torch.compile traces the forward
and the backward kernels into its graphs.
"""

from . import _torch_ops
from ._runtime import AttncError

_function = None  # the torch.autograd.Function class, made on first use


def wanted(torch, tensors):
    """Whether a call on `tensors` must be differentiable."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


class _Kernels:
    """The forward and backward kernels of one spec on torch tensors.

    `inputs` are q, k, v and the captures in the spec's element types.
    forward(inputs) -> (o, lse); backward(inputs, o, lse, do) -> one
    gradient per input (None for inputs without one)."""

    def __init__(self, spec, forward, backward):
        self.fwd, self.bwd = forward, backward
        # The inputs that the backward's outputs (dq, dk, dv, capture
        # gradients) are gradients of.
        self.grad_of = (0, 1, 2) + tuple(3 + c for c in spec.grad_captures)
        if len(backward.outputs) != len(self.grad_of):
            raise AttncError(f"{spec.function}_backward returns {len(backward.outputs)} "
                             f"gradients, but the traced spec expects {len(self.grad_of)} "
                             "(dq, dk, dv and one per float capture that score_mod reads)")

    def placed(self, inputs, grads):
        """The backward kernel's gradients at their inputs, in their dtypes."""
        out = [None] * len(inputs)
        for i, g in zip(self.grad_of, grads):
            out[i] = g if g.dtype == inputs[i].dtype else g.to(inputs[i].dtype)
        return out


class _CpuKernels(_Kernels):
    """CPU kernels of attnc.compile (numpy arrays, computed in float32)."""

    @staticmethod
    def _arrays(torch, tensors):
        return [(t.detach().float() if t.is_floating_point() else t.detach()).contiguous().numpy()
                for t in tensors]

    def forward(self, inputs):
        import torch
        o, lse = self.fwd(*self._arrays(torch, inputs))
        return torch.from_numpy(o), torch.from_numpy(lse)

    def backward(self, inputs, o, lse, do):
        import numpy as np
        import torch
        arrays = self._arrays(torch, inputs)
        outs = tuple(np.empty(arrays[i].shape, np.float32) for i in self.grad_of)
        self.bwd(*arrays, *self._arrays(torch, (o, lse, do)), out=outs)
        return self.placed(inputs, [torch.from_numpy(g) for g in outs])


class _CudaKernels(_Kernels):
    """GPU kernels (attnc.load's), called through their torch.library op
    where this torch has one (traceable by torch.compile), else launched."""

    @staticmethod
    def _call(kernel, args):
        op = kernel._register_op()
        return tuple(op(list(args)) if op else kernel.launch(tuple(args)))

    def forward(self, inputs):
        return self._call(self.fwd, inputs)

    def backward(self, inputs, o, lse, do):
        grads = self._call(self.bwd, tuple(inputs) + (o, lse, do.contiguous()))
        return self.placed(inputs, grads)


def _backward(kernels, saved, do):
    """The gradients of the inputs from the saved (inputs..., o, lse) and dO."""
    import torch
    if torch.is_grad_enabled():
        raise AttncError("attnc.flex_attention: double backward (create_graph=True) is not "
                         "supported: attnc's backward kernels are not differentiable")
    *inputs, o, lse = saved
    return kernels.backward(inputs, o, lse, do)


def _function_class(torch):
    global _function
    if _function is None:
        class FlexAttentionFunction(torch.autograd.Function):
            """(kernels, *inputs) -> (o, lse); lse gets no gradient (see
            _refuse_lse_gradient)."""

            @staticmethod
            def forward(ctx, kernels, *inputs):
                o, lse = kernels.forward(inputs)
                ctx.kernels = kernels
                ctx.save_for_backward(*inputs, o, lse)
                return o, lse

            @staticmethod
            def backward(ctx, do, dlse):
                del dlse  # zero: a gradient on lse is refused before it gets here
                return (None, *_backward(ctx.kernels, ctx.saved_tensors, do))

        _function = FlexAttentionFunction
    return _function


def _registered_op(kernels):
    """The forward kernel's torch.library op, its autograd formula the
    backward kernel's op (both registered here, outside any trace)."""
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[0], *output)

    def backward(ctx, grads):
        return _backward(kernels, ctx.saved_tensors, grads[0])

    kernels.bwd._register_op()
    return _torch_ops.register_backward(kernels.fwd, backward, setup_context)


def _refuse_lse_gradient(grad):
    if grad is not None:
        raise AttncError("attnc.flex_attention: the loss depends on lse (return_lse=True), "
                         "and attnc's backward takes the gradient of out only; detach lse "
                         "(lse.detach()) where it enters the loss")


def prepare(spec, forward, backward, cuda):
    """The differentiable call of the spec's kernels `forward` (<f>_forward)
    and `backward` (<f>_backward): call(inputs, return_lse) -> (o, lse) on
    inputs q, k, v, captures... (torch tensors, the captures converted to the
    spec's element types by torch ops, so that their gradients reach the
    tensors the mods captured). The host work (registrations) is done here."""
    import torch
    kernels = (_CudaKernels if cuda else _CpuKernels)(spec, forward, backward)
    if cuda and _torch_ops.supported()[0]:
        op = _registered_op(kernels)

        def run(inputs):
            return tuple(op(list(inputs)))
    else:
        function = _function_class(torch)

        def run(inputs):
            return function.apply(kernels, *inputs)

    def call(inputs, return_lse):
        o, lse = run(inputs)
        if return_lse and lse.requires_grad:
            lse.register_hook(_refuse_lse_gradient)
        return o, lse
    return call
