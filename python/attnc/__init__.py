"""attnc: attention variants compiled by attnc.

`attnc.load(aot_dir)` loads a directory written by `attn-aot` (PTX/cubin and
manifest.json) and returns callables that take PyTorch CUDA tensors. It needs
no MLIR: only the CUDA driver (libcuda, loaded with ctypes when first used)
and torch.

`attnc.compile(spec, target)` JIT-compiles a spec through libattnc.so (loaded
with ctypes when first used): CPU kernels take numpy arrays, GPU kernels are
`attnc.load` kernels from the compiler's disk cache.
"""

from ._aot import AttncError, Kernel, LinearKernel, Module, load
from ._jit import CompiledKernel, cache_stats, compile, cuda_available, version

AttncError.__module__ = __name__  # shown as attnc.AttncError

__all__ = ["AttncError", "CompiledKernel", "Kernel", "LinearKernel", "Module", "cache_stats", "compile",
           "cuda_available", "load", "version"]
__version__ = "0.1.0"
