"""The few CUDA driver entry points the raw-kernel benchmarks (linear_gpu.py,
sm90_checks.py) use, through ctypes. Not part of the attnc package: attnc
kernels launch through the launch library (libattnc_runtime.so)."""

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


def launch(fn, grid, block, params, stream, shared=0):
    """params: a list of ctypes values (c_void_p / c_int64 scalars, or a
    TensorMap passed by value); `shared`: bytes of dynamic shared memory."""
    ptrs = (ctypes.c_void_p * max(1, len(params)))(
        *[p.address if isinstance(p, TensorMap) else
          ctypes.cast(ctypes.pointer(p), ctypes.c_void_p) for p in params])
    check(lib().cuLaunchKernel(fn, ctypes.c_uint(grid[0]), ctypes.c_uint(grid[1]),
                               ctypes.c_uint(grid[2]), ctypes.c_uint(block[0]),
                               ctypes.c_uint(block[1]), ctypes.c_uint(block[2]),
                               ctypes.c_uint(shared), ctypes.c_void_p(stream), ptrs,
                               None), "cuLaunchKernel")


def allow_shared(fn, nbytes):
    """Opts `fn` in to `nbytes` of dynamic shared memory (needed above 48 KB)."""
    # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    check(lib().cuFuncSetAttribute(fn, 8, ctypes.c_int(nbytes)),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)")


_TMAP_DTYPES = {"bf16": 9, "f16": 6}  # CU_TENSOR_MAP_DATA_TYPE_{BFLOAT16,FLOAT16}


class TensorMap:
    """A CUtensorMap (128 bytes, 64-byte aligned) over a [B, H, N, D] tensor
    with boxes of 64 x `rows` elements, 128-byte swizzle and zero fill past
    the end (cuTensorMapEncodeTiled)."""

    def __init__(self, ptr, shape, strides, dtype, rows):
        self._raw = ctypes.create_string_buffer(256)
        addr = (ctypes.addressof(self._raw) + 127) // 128 * 128
        self.address = ctypes.c_void_p(addr)
        B, H, N, D = shape
        dims = (ctypes.c_uint64 * 4)(D, N, H, B)
        elem = 2
        st = (ctypes.c_uint64 * 3)(strides[2] * elem, strides[1] * elem, strides[0] * elem)
        box = (ctypes.c_uint32 * 4)(64, rows, 1, 1)
        ones = (ctypes.c_uint32 * 4)(1, 1, 1, 1)
        # interleave none, swizzle 128B, L2 promotion none, zero fill
        check(lib().cuTensorMapEncodeTiled(self.address, _TMAP_DTYPES[dtype], 4,
                                           ctypes.c_void_p(ptr), dims, st, box, ones,
                                           0, 3, 0, 0),
              "cuTensorMapEncodeTiled")
