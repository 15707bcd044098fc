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
from ._linear import _check_shapes, _decay_kind, _trace_map, emit_linear_spec, spec_name
from ._linear_autograd import function_class
from ._collectives import Group, comm_stats  # noqa: F401 (comm_stats: public)
from ._collectives import to_numpy as _numpy
from ._lasp_softmax import SoftmaxRun
from ._runtime import AttncError

_LINEAR_PHASES = ("_lasp_state", "_lasp_combine", "_lasp_combine_grad", "_lasp_output",
                  "_lasp_output_backward")
_SOFTMAX_PHASES = ("_lasp_attention_forward", "_lasp_attention_backward")
_phases = {}  # (spec, function, cache_dir) -> SequenceParallel

class _Layout:
    """What @f_lasp_layout says about f: argument indices of q, k, v, the
    decay and the initial state (None: absent), whether f returns the final
    state, normalize, and whether the phases take a position offset."""

    def __init__(self, values):
        v = [int(x) for x in values]
        self.q, self.k, self.v = v[0], v[1], v[2]
        self.decay = v[3] if v[3] >= 0 else None
        self.computed_decay = v[3] == -2  # a constant of f: its gradient is dropped
        self.init = v[4] if v[4] >= 0 else None
        self.final, self.normalize, self.positional = bool(v[5]), bool(v[6]), bool(v[7])
        self.softmax = v[8] == 1  # LASP-2H: attn.attention against gathered k, v
        # LASP-2H: (argument, dim) of captures also passed as the rank's rows
        self.query_slices = [(v[i], v[i + 1]) for i in range(9, len(v), 2)]

    def grad_args(self):
        """The argument index of each gradient of the output phase's backward
        (dq, dk, dv[, d_decay]); None for a gradient that is dropped."""
        decay = [self.decay] if self.decay is not None else [None] if self.computed_decay else []
        return [self.q, self.k, self.v] + decay


class SequenceParallel:
    """The sequence-parallel phases of one spec function `@f`, compiled for
    the CPU: LASP-2 when its attn op is one causal attn.linear_attention or
    attn.scan (q, k, v and the initial state arguments of f), LASP-2H when
    it is one attn.attention (q, k, v arguments of f). Call it on every rank
    with f's arguments: the rank's chunk of q, k, v and of per-token gates,
    the rest (per-head decays, the initial state, captures such as document
    ids over the whole sequence) the same on every rank. Returns o (and, for
    linear ops, the final state of the whole sequence when f returns it),
    differentiable with respect to q, k, v, the decay and the initial state;
    gradients of tensors shared by the ranks (per-head decays, the initial
    state) are the totals, on every rank."""

    def __init__(self, spec, function, cache_dir=None):
        self.function = function

        def phase(p):
            return _compile(spec, "cpu", function=function + p, cache_dir=cache_dir)
        self.layout = _Layout(phase("_lasp_layout")())
        phases = _SOFTMAX_PHASES if self.layout.softmax else _LINEAR_PHASES
        self.kernels = {p: phase(p) for p in phases}
        first = self.kernels[phases[0]]
        self.num_args = (len(first.inputs) - self.layout.positional -
                         len(self.layout.query_slices))
        if not self.layout.softmax:
            self.per_feature = len(first.outputs[1]["shape"]) == 3

    def __call__(self, *inputs, group=None):
        import torch
        import torch.distributed as dist
        if not dist.is_available() or not dist.is_initialized():
            raise AttncError(f"{self.function}: sequence parallelism needs an initialized "
                             "torch.distributed process group (torch.distributed."
                             "init_process_group)")
        if len(inputs) != self.num_args:
            raise AttncError(f"{self.function}: expected the function's {self.num_args} "
                             f"arguments, got {len(inputs)}")
        for t in inputs:
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                raise AttncError(f"{self.function}: sequence-parallel attention takes "
                                 "CPU torch tensors (GPU kernels for it do not exist yet)")
        run = SoftmaxRun(self, group) if self.layout.softmax else _Run(self, group)
        outs = function_class(torch, "attnc.distributed").apply(run, *inputs)
        o = outs[0]
        if self.layout.normalize:  # [n | z] -> n / z (0 where z is 0)
            n, z = o[..., :-1], o[..., -1:]
            safe = torch.where(z != 0, z, torch.ones_like(z))
            o = torch.where(z != 0, n / safe, torch.zeros_like(n))
        return (o, outs[1]) if self.layout.final else o


class _Run:
    """One sequence-parallel call: the phases on numpy arrays with the
    collectives between them, and what the backward keeps (the prefix
    state, the gathered log-decays)."""

    def __init__(self, sp, group):
        self.sp, self.layout = sp, sp.layout
        self.comm = Group(group)
        self.rank, self.world = self.comm.rank, self.comm.world

    def gather(self, array):
        return self.comm.gather(array)

    def arrays(self, inputs):
        """f's arguments as float32 arrays (v with a column of ones under
        normalize), then the position offset when the phases take one."""
        import numpy as np
        arrays = [_numpy(t) for t in inputs]
        L = self.layout
        if L.normalize:
            v = arrays[L.v]
            arrays[L.v] = np.concatenate([v, np.ones(v.shape[:3] + (1,), np.float32)], 3)
        if L.positional:
            lengths = self.gather(np.array([arrays[L.q].shape[2]], np.int64))
            arrays.append(np.array([int(lengths[:self.rank].sum())], np.int32))
        return arrays

    def run(self, phase, *args, out):
        return self.sp.kernels[phase](*args, out=out)

    def combine(self, phase, stacked, decays, rank):
        import numpy as np
        out = np.empty(stacked.shape[1:], np.float32)
        return self.run(phase, stacked, decays, np.array([rank], np.int32), out=out)

    def widen(self, state):
        """A state without the normalizer's column, with a zero one."""
        import numpy as np
        if not self.layout.normalize:
            return state
        return np.concatenate([state, np.zeros(state.shape[:3] + (1,), np.float32)], 3)

    def forward(self, inputs):
        import numpy as np
        import torch
        L = self.layout
        args = self.arrays(inputs)
        q, v = args[L.q], args[L.v]
        B, H, N = q.shape[:3]
        F = self.sp.kernels["_lasp_state"].outputs[0]["shape"][2]
        Dv = v.shape[3]
        state, decay = self.run("_lasp_state", *args, out=(
            np.empty((B, H, F, Dv), np.float32),
            np.empty((B, H, F) if self.sp.per_feature else (B, H), np.float32)))
        states, decays = self.gather(state), self.gather(decay)
        shift = 0
        if L.init is not None:  # the initial state: a rank before rank 0 with no decay
            states = np.concatenate([self.widen(args[L.init])[None], states])
            decays = np.concatenate([np.zeros_like(decays[:1]), decays])
            shift = 1
        self.decays, self.shift = decays, shift
        self.prefix = self.combine("_lasp_combine", states, decays, self.rank + shift)
        o, _ = self.run("_lasp_output", *args, self.prefix, out=(
            np.empty((B, H, N, Dv), np.float32), np.empty((B, H, F, Dv), np.float32)))
        outs = [torch.from_numpy(o)]
        if L.final:  # the whole sequence's final state: every rank folded
            final = self.combine("_lasp_combine", states, decays, self.world + shift)
            outs.append(torch.from_numpy(final[..., :Dv - 1] if L.normalize else final))
        return tuple(outs)

    def backward(self, inputs, grads):
        import numpy as np
        import torch
        L = self.layout
        args = self.arrays(inputs)
        do = _numpy(grads[0]) if grads[0] is not None else np.zeros(
            args[L.q].shape[:3] + (self.prefix.shape[3],), np.float32)
        dfinal = np.zeros_like(self.prefix)
        if L.final and grads[1] is not None:
            dfinal = self.widen(_numpy(grads[1]))
        local = self.output_backward(args, do, np.zeros_like(self.prefix))[-1]
        # One gather: each rank's state gradient and its final-state cotangent.
        both = self.gather(np.stack([local, dfinal]))
        tail = both[:, 1].sum(0)  # the final state's gradient: a rank after the last
        decays = self.decays[self.shift:]
        grads_in = np.concatenate([both[:, 0], tail[None]])
        decays = np.concatenate([decays, np.zeros_like(decays[:1])])
        dstate = self.combine("_lasp_combine_grad", grads_in, decays, self.rank)
        outs = self.output_backward(args, do, dstate)
        result = [None] * len(inputs)
        for index, g in zip(L.grad_args(), outs[:-1]):
            if index is not None:
                result[index] = torch.from_numpy(g)
        if L.normalize:
            result[L.v] = result[L.v][..., :-1].contiguous()
        if L.decay is not None and inputs[L.decay].dim() == 1:  # shared by the ranks
            self.comm.all_reduce(result[L.decay])
        if L.init is not None:  # rank 0's prefix is the initial state
            d0 = torch.from_numpy(np.ascontiguousarray(outs[-1]))
            self.comm.broadcast(d0, 0)
            result[L.init] = d0[..., :inputs[L.init].shape[3]].contiguous()
        return [g.to(t.dtype) if g is not None else None for g, t in zip(result, inputs)]

    def computed_decay_shape(self, args):
        """The shape of the gradient of a decay computed in f: the output
        phase backward's signature, its dynamic dims from q."""
        shape = self.sp.kernels["_lasp_output_backward"].outputs[3]["shape"]
        q = args[self.layout.q]
        return tuple(q.shape[i] if d < 0 else d for i, d in enumerate(shape))

    def output_backward(self, args, do, dstate):
        import numpy as np
        L = self.layout
        shapes = [args[i].shape if i is not None else self.computed_decay_shape(args)
                  for i in L.grad_args()]
        outs = [np.empty(shape, np.float32) for shape in shapes]
        outs.append(np.empty(self.prefix.shape, np.float32))
        return self.run("_lasp_output_backward", *args, self.prefix, do, dstate, out=tuple(outs))


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
    name = spec_name("lasp_", phi)
    spec = emit_linear_spec(name, phi, H, D, Dv, "f32", scale, True, False, kind, False, False)
    inputs = [q, k, v] + ([decay] if decay is not None else [])
    return sequence_parallel(spec, name)(*inputs, group=group)


def delta_rule(q, k, v, beta, decay=None, scale=None, initial_state=None,
               output_final_state=False, group=None):
    """attnc.delta_rule (same arguments: decay of log-gates [H] or [B, H,
    N_r], scale, initial_state, output_final_state) over a sequence split
    across the ranks of `group` (default: the world): this rank's chunk of
    the tokens in q, k, v, beta (and per-token gates), rank order = token
    order; the initial state, when given, the same on every rank. Returns
    this rank's chunk of o (and the whole sequence's final state),
    differentiable: each rank gets its chunk's gradients; per-head gates and
    the initial state get the totals, on every rank. LASP-2 with the
    chunk's transition A_r = prod_t a_t (I - beta_t k_t k_t^T) gathered next
    to its state (python/attnc/_lasp_delta.py)."""
    import torch
    import torch.distributed as dist
    from ._delta import _decay_kind as _delta_decay_kind, check_inputs
    from ._lasp_delta import DeltaRun
    if not dist.is_available() or not dist.is_initialized():
        raise AttncError("delta_rule: sequence parallelism needs an initialized "
                         "torch.distributed process group (torch.distributed."
                         "init_process_group)")
    inputs = [x for x in (q, k, v, beta, decay, initial_state) if x is not None]
    for t in inputs:
        if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
            raise AttncError("delta_rule: sequence-parallel attention takes CPU torch "
                             "tensors (GPU kernels for it do not exist yet)")
    B, H, HV, N, D, Dv = check_inputs(q, k, v, beta, initial_state)
    scale = D ** -0.5 if scale is None else float(scale)
    run = DeltaRun((H, HV, D, Dv), scale, _delta_decay_kind(decay, B, HV, N),
                   initial_state is not None, group)
    o, final = function_class(torch, "attnc.distributed.delta_rule").apply(run, *inputs)
    return (o, final) if output_final_state else o
