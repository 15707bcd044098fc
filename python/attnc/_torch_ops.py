"""attnc kernels as torch.library custom ops, so that torch.compile traces
them into its graph (no graph break) and CUDA graphs capture them.

Each kernel becomes one op, attnc::k_<hash of its description>, taking the
list of its inputs and returning the list of its outputs; its fake (meta)
implementation only computes output shapes. The op runs the eager call
(`Kernel.launch`) on the current stream. Needs torch >= 2.4
(torch.library.custom_op).
"""

from ._runtime import AttncError

_ops = {}  # op name -> op
_with_backward = set()  # names of ops with a registered backward


def supported():
    """(True, "") when this torch can register custom ops, else (False, why)."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not hasattr(torch.library, "custom_op"):
        return False, (f"torch {torch.__version__} has no torch.library.custom_op "
                       "(torch >= 2.4 needed)")
    return True, ""


def register(kernel):
    """The custom op of `kernel` (made once per kernel description)."""
    import torch
    ok, why = supported()
    if not ok:
        raise AttncError(f"{kernel.name}: torch.compile support: {why}")
    name = kernel.op_name()
    if name in _ops:
        return _ops[name]

    @torch.library.custom_op(name, mutates_args=(), device_types="cuda")
    def op(inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = kernel.launch(tuple(inputs))
        return list(outs) if isinstance(outs, tuple) else [outs]

    @op.register_fake
    def _(inputs):
        return kernel._outputs(inputs, (), inputs[kernel.q_index])

    _ops[name] = op
    return op


def register_backward(kernel, backward, setup_context):
    """The custom op of `kernel` with `backward` registered as its autograd
    formula (torch.library's register_autograd), once per op: the first
    registration is kept, so `backward` must depend only on the kernel."""
    op = register(kernel)
    name = kernel.op_name()
    if name not in _with_backward:
        op.register_autograd(backward, setup_context=setup_context)
        _with_backward.add(name)
    return op
