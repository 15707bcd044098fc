"""attnc: attention variants compiled by attnc.

`attnc.load(aot_dir)` loads a directory written by `attn-aot` (PTX/cubin and
manifest.json) and returns callables that take PyTorch CUDA tensors. It needs
no MLIR: only the launch library libattnc_runtime.so (loaded with ctypes when
first used), the CUDA driver and torch.

`attnc.compile(spec, target)` JIT-compiles a spec through libattnc.so (loaded
with ctypes when first used): CPU kernels take numpy arrays, GPU kernels are
the same kernels of the launch library as `attnc.load` returns. GPU kernels
are torch.library custom ops under torch.compile (no graph break) and can
be captured in CUDA graphs.
"""

from ._aot import AttncError, Kernel, LinearKernel, Module, load
from ._jit import CompiledKernel, cache_stats, compile, cuda_available, version
from ._flex import (BlockMask, Spec, and_masks, create_block_mask, flex_attention, flex_stats,
                    or_masks, trace)
from ._delta import delta_rule
from ._linear import linear_attention
from ._merge import merge_states

AttncError.__module__ = __name__  # shown as attnc.AttncError

__all__ = ["AttncError", "BlockMask", "CompiledKernel", "Kernel", "LinearKernel", "Module", "Spec",
           "and_masks", "cache_stats", "compile", "create_block_mask", "cuda_available", "delta_rule",
           "flex_attention", "flex_stats", "linear_attention", "load", "merge_states", "or_masks",
           "trace", "version"]


def __getattr__(name):
    """attnc.__version__: the version libattnc.so reports (attnc_version(),
    "attnc X.Y.Z (...)"), read when first asked for. The one version is
    `project(attnc VERSION ...)` in the top-level CMakeLists.txt; there is no
    copy here to keep in step."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        full = version()
    except AttncError as e:
        raise AttributeError("attnc.__version__ comes from libattnc.so, which was not "
                             f"found: {e}") from None
    parts = full.split()
    if len(parts) < 2 or parts[0] != "attnc":
        raise AttributeError(f"attnc.__version__: unexpected attnc_version() {full!r}")
    globals()["__version__"] = parts[1]
    return parts[1]
