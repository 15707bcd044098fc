"""attnc.distributed: sequence parallelism for linear attention (LASP-2) on
torch.distributed (docs/distributed.md).

Each rank of a process group holds a contiguous chunk of the tokens (ranks
in token order, any chunk lengths) of [B, H, N_r, D] q, k and [B, H, N_r, Dv]
v. The compiler splits the spec (attn-sequence-parallel) into phases, and
the collectives run between them:

  forward:  (M_r, T_r) = <f>_lasp_state(args)          chunk state, log-decay
            AllGather of (M, T)                        one collective
            P_r = <f>_lasp_combine(M, T, r)            state entering the chunk
            o_r = <f>_lasp_output(args, P_r)
  backward: L_r = d_prefix of <f>_lasp_output_backward(args, P_r, dO, 0)
            AllGather of L                             one collective
            D_r = <f>_lasp_combine_grad(L, T, r)       gradient of the chunk's final state
            dq, dk, dv, dg = <f>_lasp_output_backward(args, P_r, dO, D_r)
            per-head decays: AllReduce(sum) of dg

Both collectives move states of [B, H, F, Dv] f32 per rank, independent
of the sequence length. The kernels are attnc's CPU kernels on CPU torch
tensors (gloo or any group that gathers CPU tensors); GPU tensors are not
supported yet.
"""

from ._jit import compile as _compile
from ._linear import _check_shapes, _decay_kind, _trace_map, emit_linear_spec
from ._linear_autograd import function_class
from ._runtime import AttncError

_PHASES = ("_lasp_state", "_lasp_combine", "_lasp_combine_grad", "_lasp_output",
           "_lasp_output_backward")
_phases = {}  # (spec, function, cache_dir) -> SequenceParallel


def _numpy(t):
    return t.detach().float().contiguous().numpy()


class SequenceParallel:
    """The LASP-2 phases of one spec function `@f` whose attn op is one
    causal attn.linear_attention or attn.scan, compiled for the CPU. The
    function's arguments are q, k, v, then the decay's log-gates when the op
    has a decay, then captured tensors (read by feature maps; no gradient).
    Call it with each rank's chunk of those tensors."""

    def __init__(self, spec, function, cache_dir=None):
        self.function = function
        self.kernels = {p: _compile(spec, "cpu", function=function + p, cache_dir=cache_dir)
                        for p in _PHASES}
        bwd = self.kernels["_lasp_output_backward"]
        # dq, dk, dv[, dg], d_prefix
        self.has_decay = len(bwd.outputs) == 5
        state = self.kernels["_lasp_state"].outputs
        self.per_feature = len(state[1]["shape"]) == 3

    def __call__(self, *inputs, group=None):
        import torch
        import torch.distributed as dist
        if not dist.is_available() or not dist.is_initialized():
            raise AttncError(f"{self.function}: sequence parallelism needs an initialized "
                             "torch.distributed process group (torch.distributed."
                             "init_process_group)")
        want = len(self.kernels["_lasp_output"].inputs) - 1
        if len(inputs) != want:
            raise AttncError(f"{self.function}: expected {want} tensors (q, k, v"
                             f"{', decay' if self.has_decay else ''}, captures), got {len(inputs)}")
        for t in inputs:
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                raise AttncError(f"{self.function}: sequence-parallel linear attention takes "
                                 "CPU torch tensors (GPU kernels for it do not exist yet)")
        o, = function_class(torch, "attnc.distributed").apply(_Run(self, group), *inputs)
        return o

    # The phases on numpy arrays ------------------------------------------

    def shapes(self, arrays):
        q, v = arrays[0], arrays[2]
        B, H, N = q.shape[:3]
        Dv = v.shape[3]
        F = self.kernels["_lasp_state"].outputs[0]["shape"][2]
        decay = (B, H, F) if self.per_feature else (B, H)
        return (B, H, F, Dv), (B, H, N, Dv), decay

    def state(self, arrays):
        import numpy as np
        state, _, decay = self.shapes(arrays)
        out = (np.empty(state, np.float32), np.empty(decay, np.float32))
        return self.kernels["_lasp_state"](*arrays, out=out)

    def combine(self, phase, stacked, decays, rank):
        import numpy as np
        out = np.empty(stacked.shape[1:], np.float32)
        return self.kernels[phase](stacked, decays, np.array([rank], np.int32), out=out)

    def output(self, arrays, prefix):
        import numpy as np
        state, o, _ = self.shapes(arrays)
        out = (np.empty(o, np.float32), np.empty(state, np.float32))
        return self.kernels["_lasp_output"](*arrays, prefix, out=out)[0]

    def backward(self, arrays, prefix, do, dstate):
        import numpy as np
        outs = [np.empty(a.shape, np.float32) for a in arrays[:3]]
        if self.has_decay:
            outs.append(np.empty(arrays[3].shape, np.float32))
        outs.append(np.empty(prefix.shape, np.float32))
        return self.kernels["_lasp_output_backward"](*arrays, prefix, do, dstate, out=tuple(outs))


class _Run:
    """One sequence-parallel call: the phases, the group and what the
    backward keeps (the inputs, the prefix state, the gathered decays)."""

    def __init__(self, phases, group):
        self.phases, self.group = phases, group

    def gather(self, array):
        """[W, ...] of every rank's `array` (same shape on every rank)."""
        import numpy as np
        import torch
        import torch.distributed as dist
        t = torch.from_numpy(array)
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size(self.group))]
        dist.all_gather(parts, t, group=self.group)
        return np.ascontiguousarray(torch.stack(parts).numpy())

    def forward(self, inputs):
        import torch
        import torch.distributed as dist
        p = self.phases
        arrays = [_numpy(t) for t in inputs]
        self.rank = dist.get_rank(self.group)
        state, decay = p.state(arrays)
        self.decays = self.gather(decay)
        self.prefix = p.combine("_lasp_combine", self.gather(state), self.decays, self.rank)
        o = p.output(arrays, self.prefix)
        return (torch.from_numpy(o).to(inputs[0].dtype),)

    def backward(self, inputs, grads):
        import numpy as np
        import torch
        import torch.distributed as dist
        p = self.phases
        arrays = [_numpy(t) for t in inputs]
        do = _numpy(grads[0])
        zero = np.zeros_like(self.prefix)
        local = p.backward(arrays, self.prefix, do, zero)[-1]
        dstate = p.combine("_lasp_combine_grad", self.gather(local), self.decays, self.rank)
        grads = [torch.from_numpy(g) for g in p.backward(arrays, self.prefix, do, dstate)[:-1]]
        if p.has_decay and inputs[3].dim() == 1:  # one gate per head, shared by the ranks
            dist.all_reduce(grads[3], group=self.group)
        grads = [g.to(t.dtype) for g, t in zip(grads, inputs)]
        return grads + [None] * (len(inputs) - len(grads))


def sequence_parallel(spec, function, cache_dir=None):
    """The SequenceParallel of `function` in `spec` (MLIR text), compiled
    once per process and kept."""
    key = (spec, function, cache_dir)
    sp = _phases.get(key)
    if sp is None:
        sp = _phases[key] = SequenceParallel(spec, function, cache_dir)
    return sp


def linear_attention(q, k, v, feature_map=None, decay=None, scale=None, group=None):
    """Causal attnc.linear_attention (same arguments: feature_map, decay of
    log-gates [H], [B, H, N_r] or [B, H, N_r, D], scale) over a sequence
    split across the ranks of `group` (default: the world): this rank's
    chunk of the tokens in q, k, v (and per-token decays), rank order =
    token order. Returns this rank's chunk of o, differentiable: the
    backward gives each rank its chunk's gradients (per-head decays: the
    gradient summed over the ranks, on every rank)."""
    B, H, N, D, Dv = _check_shapes(q, k, v)
    scale = D ** -0.5 if scale is None else float(scale)
    phi = _trace_map(feature_map) if feature_map is not None else None
    kind = _decay_kind(decay, B, H, N, D)
    name = "lasp_" + (phi.name.replace("<lambda>", "lambda") if phi else "identity")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    spec = emit_linear_spec(name, phi, H, D, Dv, "f32", scale, True, False, kind, False, False)
    inputs = [q, k, v] + ([decay] if decay is not None else [])
    return sequence_parallel(spec, name)(*inputs, group=group)
