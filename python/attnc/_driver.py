"""The few CUDA driver entry points attnc needs, through ctypes."""

import ctypes

_lib = None


# CUresult values attnc reacts to.
CUDA_ERROR_NO_BINARY_FOR_GPU = 209


class DriverError(RuntimeError):
    """A failed driver call; `code` is its CUresult (None: no driver)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def lib():
    """libcuda, loaded once; DriverError if there is no driver."""
    global _lib
    if _lib is None:
        first = None
        for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
            try:
                _lib = ctypes.CDLL(name)
                break
            except OSError as e:
                first = first or e
        else:
            raise DriverError(f"no CUDA driver found (libcuda.so.1): {first}")
        if _lib.cuInit(0) != 0:
            _lib = None
            raise DriverError("cuInit failed: no usable GPU")
    return _lib


def check(result, what):
    if result != 0:
        msg = ctypes.c_char_p()
        lib().cuGetErrorString(result, ctypes.byref(msg))
        text = msg.value.decode() if msg.value else f"error {result}"
        raise DriverError(f"{what} failed: {text}", result)


def current_context():
    ctx = ctypes.c_void_p()
    check(lib().cuCtxGetCurrent(ctypes.byref(ctx)), "cuCtxGetCurrent")
    return ctx


def load_module(image):
    mod = ctypes.c_void_p()
    buf = ctypes.create_string_buffer(image)
    check(lib().cuModuleLoadData(ctypes.byref(mod), buf), "cuModuleLoadData")
    return mod


def get_function(module, name):
    fn = ctypes.c_void_p()
    check(lib().cuModuleGetFunction(ctypes.byref(fn), module, name.encode()),
          f"cuModuleGetFunction({name})")
    return fn


def launch(fn, grid, block, params, stream):
    """params: a list of ctypes scalars (c_void_p / c_int64)."""
    ptrs = (ctypes.c_void_p * max(1, len(params)))(
        *[ctypes.cast(ctypes.pointer(p), ctypes.c_void_p) for p in params])
    check(lib().cuLaunchKernel(fn, ctypes.c_uint(grid[0]), ctypes.c_uint(grid[1]),
                               ctypes.c_uint(grid[2]), ctypes.c_uint(block[0]),
                               ctypes.c_uint(block[1]), ctypes.c_uint(block[2]),
                               ctypes.c_uint(0), ctypes.c_void_p(stream), ptrs,
                               None), "cuLaunchKernel")
