"""LASP-2H: the softmax layers of hybrid models under sequence parallelism
(docs/distributed.md#lasp-2h). Each rank gathers every rank's keys and
values (one AllGather, N-sized), attends from its chunk of queries with
`@f_lasp_attention` (its mask and score regions see global query
positions), and in the backward sums the gradients of the gathered keys
and values over the ranks (an AllReduce; a reduce-scatter on NCCL) and
keeps its own chunk."""

from ._collectives import Group
from ._collectives import to_numpy as _numpy


class SoftmaxRun:
    """One LASP-2H call (the call object of attnc.distributed's autograd
    Function): the gathered keys and values, the offset, o and lse kept for
    the backward."""

    def __init__(self, sp, group):
        self.sp, self.layout = sp, sp.layout
        self.comm = Group(group)

    def arguments(self, inputs):
        """f's arguments with k and v gathered over the ranks, then the
        rank's first global position, then the rank's rows of captures read
        at the query position."""
        import numpy as np
        L = self.layout
        args = [_numpy(t) for t in inputs]
        args[L.k], sizes = self.comm.gather_along(args[L.k], 2)
        args[L.v], _ = self.comm.gather_along(args[L.v], 2)
        lo = int(sizes[:self.comm.rank].sum())
        hi = lo + int(sizes[self.comm.rank])
        self.chunk = (lo, hi)
        rows = [np.ascontiguousarray(np.take(args[a], range(lo, hi), axis=d))
                for a, d in L.query_slices]
        return args + [np.array([lo], np.int32)] + rows

    def forward(self, inputs):
        import numpy as np
        import torch
        L = self.layout
        self.args = self.arguments(inputs)
        q, v = self.args[L.q], self.args[L.v]
        B, H, N = q.shape[:3]
        out = (np.empty((B, H, N, v.shape[3]), np.float32), np.empty((B, H, N), np.float32))
        self.o, self.lse = self.sp.kernels["_lasp_attention_forward"](*self.args, out=out)
        return (torch.from_numpy(self.o.copy()),)

    def backward(self, inputs, grads):
        import numpy as np
        import torch
        from ._runtime import AttncError
        L = self.layout
        kernel = self.sp.kernels["_lasp_attention_backward"]
        if len(kernel.outputs) != 3:
            raise AttncError(f"{self.sp.function}: the gradients of captured float tensors "
                             "are not summed over ranks yet (LASP-2H takes q, k and v "
                             "gradients only)")
        do = _numpy(grads[0])
        outs = tuple(np.empty(self.args[i].shape, np.float32) for i in (L.q, L.k, L.v))
        dq, dk, dv = kernel(*self.args, self.o, self.lse, do, out=outs)
        lo, hi = self.chunk
        result = [None] * len(inputs)
        result[L.q] = torch.from_numpy(dq)
        for index, full in ((L.k, dk), (L.v, dv)):
            total = torch.from_numpy(np.ascontiguousarray(full))
            self.comm.all_reduce(total)
            result[index] = total[:, :, lo:hi].contiguous()
        return [g.to(t.dtype) if g is not None else None for g, t in zip(result, inputs)]
