"""libattnc_runtime.so, the launch library (include/attnc/attnc_runtime.h),
through ctypes: loading kernel sets and launching their kernels. It needs no
MLIR and no LLVM, only the CUDA driver, which it loads itself.
"""

import ctypes
import ctypes.util
import os
import threading

_lock = threading.RLock()
_libs = {}


class AttncError(ValueError):
    """A call attnc cannot make: wrong shapes, dtypes, devices, strides, or no GPU."""


class Tensor(ctypes.Structure):
    """attnc_tensor (attnc_runtime.h)."""
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64))]


class Image(ctypes.Structure):
    """attnc_rt_image (attnc_runtime.h)."""
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p),
                ("size", ctypes.c_size_t)]


# attnc_runtime.h's dtype codes.
DTYPE_CODES = {"f32": 0, "f16": 1, "bf16": 2, "i1": 3, "i8": 4, "i32": 5, "i64": 6}


def candidates(libname):
    """Where `libname` is looked for, in order: $ATTNC_LIB_DIR, the build tree
    next to this package, an install prefix, the package itself."""
    out = []
    env = os.environ.get("ATTNC_LIB_DIR")
    if env:
        out.append(os.path.join(env, libname))
    pkg = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(pkg))
    dirs = [os.path.join(top, "build", "lib"),  # source tree: <src>/python/attnc
            os.path.join(top, "lib")]           # <prefix>/python/attnc
    if os.path.basename(top).startswith("python"):
        # <prefix>/lib/python3[.X]/{dist,site}-packages/attnc: <prefix>/lib
        dirs.append(os.path.dirname(top))
    dirs.append(pkg)                            # bundled with the package
    for d in dirs:
        p = os.path.join(d, libname)
        if p not in out:
            out.append(p)
    return out


def load_library(libname, declare, needed_for):
    """`libname` through ctypes, loaded once and declared by `declare(lib)`:
    the candidate paths, then the dynamic loader's path."""
    with _lock:
        if libname in _libs:
            return _libs[libname]
        tried = []
        short = libname[3:].split(".")[0]
        found = ctypes.util.find_library(short)
        for path in candidates(libname) + ([found] if found else []) + [libname]:
            if os.path.sep in path and not os.path.exists(path):
                tried.append(path)
                continue
            try:
                lib = declare(ctypes.CDLL(path))
                _libs[libname] = lib
                return lib
            except (OSError, AttributeError) as e:
                tried.append(f"{path} ({e})")
        raise AttncError(f"{needed_for} needs {libname} (build it with `ninja -C build "
                         f"{short}`, or set ATTNC_LIB_DIR to its directory); searched:\n  "
                         + "\n  ".join(tried))


def _declare(lib):
    c = ctypes
    p, i32, i64, sz = c.c_void_p, c.c_int32, c.c_int64, c.c_size_t
    sigs = {
        "attnc_rt_version": ([], c.c_char_p),
        "attnc_rt_last_error": ([], c.c_char_p),
        "attnc_rt_cuda_available": ([], c.c_int),
        "attnc_rt_module_load": ([c.c_char_p, c.POINTER(p)], c.c_int),
        "attnc_rt_module_create": ([c.c_char_p, c.POINTER(Image), i32, c.c_char_p,
                                    c.POINTER(p)], c.c_int),
        "attnc_rt_module_destroy": ([p], None),
        "attnc_rt_module_target": ([p], c.c_char_p),
        "attnc_rt_module_num_kernels": ([p], i32),
        "attnc_rt_module_kernel": ([p, i32], p),
        "attnc_rt_kernel_name": ([p], c.c_char_p),
        "attnc_rt_kernel_info": ([p], c.c_char_p),
        "attnc_rt_kernel_launch": ([p, c.POINTER(Tensor), i32, c.POINTER(Tensor), i32, p],
                                   c.c_int),
        # words: the address of an int64 array (a ctypes array or the
        # buffer of an array.array("q")).
        "attnc_rt_kernel_launch_packed": ([p, p, i64, p], c.c_int),
        "attnc_rt_synchronize": ([], c.c_int),
        "attnc_rt_alloc": ([sz, c.POINTER(p)], c.c_int),
        "attnc_rt_free": ([p], c.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    return lib


def library():
    """libattnc_runtime.so, loaded once."""
    return load_library("libattnc_runtime.so", _declare, "attnc.load")


def last_error():
    return library().attnc_rt_last_error().decode(errors="replace")


def check(rc):
    """Raises the launch library's last error when `rc` is nonzero."""
    if rc:
        raise AttncError(last_error())


def cuda_available():
    """(True, "") when the CUDA driver loads and initializes, else (False, why)."""
    try:
        lib = library()
    except AttncError as e:
        return False, str(e)
    if lib.attnc_rt_cuda_available():
        return True, ""
    return False, last_error()
