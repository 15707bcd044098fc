"""attnc: attention variants compiled by attnc.

`attnc.load(aot_dir)` loads a directory written by `attn-aot` (PTX/cubin and
manifest.json) and returns callables that take PyTorch CUDA tensors. It needs
no MLIR: only the CUDA driver (libcuda, loaded with ctypes when first used)
and torch.
"""

from ._aot import AttncError, Kernel, Module, load

__all__ = ["AttncError", "Kernel", "Module", "load"]
__version__ = "0.1.0"
