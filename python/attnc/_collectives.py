"""The torch.distributed collectives of attnc.distributed on numpy arrays
and CPU tensors, with the bytes each process hands to them counted
(attnc.distributed.comm_stats)."""

_sent = {}  # collective -> bytes this process contributed


def to_numpy(t):
    """A torch tensor as a numpy array for attnc's CPU kernels: float32 for
    floating tensors, integer ones (document ids) as they are."""
    t = t.detach()
    return (t.float() if t.is_floating_point() else t).contiguous().numpy()


def comm_stats(reset=False):
    """Bytes this process has handed to each kind of collective so far
    ({"all_gather": n, "all_reduce": n, "broadcast": n}): the payload per
    rank, which for LASP-2 is a few states per layer and pass, whatever the
    sequence length (LASP-2H gathers keys and values: N-sized). A ring
    all-gather sends (W - 1) times its payload. reset=True clears the
    counts after reading them."""
    stats = dict(_sent)
    if reset:
        _sent.clear()
    return stats


def _count(collective, tensor):
    _sent[collective] = _sent.get(collective, 0) + tensor.numel() * tensor.element_size()


class Group:
    """A torch.distributed process group (None: the world) seen by one rank."""

    def __init__(self, group):
        import torch.distributed as dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)

    def global_rank(self, rank):
        """The global rank of `rank` in the group (torch 1.13 and 2.x)."""
        import torch.distributed as dist
        if self.group is None:
            return rank
        get = getattr(dist, "get_global_rank", None) or dist.distributed_c10d._get_global_rank
        return get(self.group, rank)

    def gather(self, array):
        """[W, ...] of every rank's `array` (the same shape on every rank)."""
        import numpy as np
        import torch
        import torch.distributed as dist
        t = torch.from_numpy(np.ascontiguousarray(array))
        parts = [torch.empty_like(t) for _ in range(self.world)]
        _count("all_gather", t)
        dist.all_gather(parts, t, group=self.group)
        return np.ascontiguousarray(torch.stack(parts).numpy())

    def gather_along(self, array, axis):
        """Every rank's `array` concatenated along `axis` in rank order (the
        ranks' sizes along it may differ: padded for the gather); also the
        sizes."""
        import numpy as np
        sizes = self.gather(np.array([array.shape[axis]], np.int64))[:, 0]
        pad = [(0, 0)] * array.ndim
        pad[axis] = (0, int(sizes.max()) - array.shape[axis])
        parts = self.gather(np.pad(array, pad))
        return np.concatenate([np.take(p, range(int(n)), axis=axis)
                               for p, n in zip(parts, sizes)], axis=axis), sizes

    def all_reduce(self, tensor):
        """Sums `tensor` over the ranks, in place."""
        import torch.distributed as dist
        _count("all_reduce", tensor)
        dist.all_reduce(tensor, group=self.group)

    def broadcast(self, tensor, rank):
        """`tensor` from group rank `rank` to every rank, in place."""
        import torch.distributed as dist
        _count("broadcast", tensor)
        dist.broadcast(tensor, src=self.global_rank(rank), group=self.group)
