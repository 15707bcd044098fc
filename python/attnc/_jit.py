"""attnc.compile: JIT-compile a spec through libattnc.so (the C API,
include/attnc/attnc_c.h) with ctypes.

CPU kernels take and return numpy arrays and launch through the C API. GPU
kernels (sm_80, sm_90a) are compiled through the C API into the disk cache,
whose entry is an attn-aot directory (for linear attention and scans, a
manifest and the PTX); they are returned as `attnc.load(dir)` kernels, which
take torch CUDA tensors.

The library is loaded on first use, so `import attnc` works without it (the
GPU machine only needs `attnc.load`).
"""

import ctypes
import json
import os
import threading

from . import _runtime
from ._aot import AttncError, wrap

_ERRLEN = 1 << 18
_LIBNAME = "libattnc.so"

# C API dtype codes (attnc_c.h) and numpy dtype names (None: numpy has none).
_CODES = {"f32": 0, "f16": 1, "bf16": 2, "i1": 3, "i8": 4, "i32": 5, "i64": 6}
_NUMPY = {"f32": "float32", "f16": "float16", "bf16": None, "i1": "bool",
          "i8": "int8", "i32": "int32", "i64": "int64"}

_lock = threading.RLock()
_compilers = {}  # None (the default) or a cache dir -> _Compiler


def _declare(lib):
    c = ctypes
    sz, err = c.c_size_t, c.c_char_p
    lib.attnc_version.argtypes = []
    lib.attnc_version.restype = c.c_char_p
    lib.attnc_cuda_available.argtypes = [err, sz]
    lib.attnc_cuda_available.restype = c.c_int
    lib.attnc_compiler_create.argtypes = [c.c_char_p]
    lib.attnc_compiler_create.restype = c.c_void_p
    lib.attnc_compiler_destroy.argtypes = [c.c_void_p]
    lib.attnc_compiler_destroy.restype = None
    lib.attnc_compile.argtypes = [c.c_void_p, c.c_char_p, c.c_char_p, c.c_char_p,
                                  c.c_int64, c.c_int64, c.POINTER(c.c_void_p), err, sz]
    lib.attnc_compile.restype = c.c_int
    lib.attnc_compiler_stats.argtypes = [c.c_void_p, c.POINTER(c.c_uint64)]
    lib.attnc_compiler_stats.restype = None
    lib.attnc_kernel_signature.argtypes = [c.c_void_p]
    lib.attnc_kernel_signature.restype = c.c_char_p
    lib.attnc_kernel_launch.argtypes = [c.c_void_p, c.POINTER(_runtime.Tensor), c.c_int32,
                                        c.POINTER(_runtime.Tensor), c.c_int32, c.c_void_p, err, sz]
    lib.attnc_kernel_launch.restype = c.c_int
    lib.attnc_kernel_runtime.argtypes = [c.c_void_p]
    lib.attnc_kernel_runtime.restype = c.c_void_p
    lib.attnc_kernel_release.argtypes = [c.c_void_p]
    lib.attnc_kernel_release.restype = None
    return lib


def library():
    """libattnc.so through ctypes, loaded once: $ATTNC_LIB_DIR, the build tree
    next to this package, an install prefix, then the dynamic loader's path."""
    return _runtime.load_library(_LIBNAME, _declare, "attnc.compile")


def version():
    """The compiler's version: "attnc <version> (<revision>, MLIR <version>)"."""
    return library().attnc_version().decode()


def cuda_available():
    """(True, "") when the CUDA driver loads and initializes, else (False, why),
    as the launch library (libattnc_runtime.so) finds it."""
    return _runtime.cuda_available()


class _Compiler:
    """One attnc_compiler (its memory cache and disk cache)."""

    def __init__(self, cache_dir):
        self._lib = library()
        arg = None if cache_dir is None else os.fsencode(cache_dir)
        self.handle = self._lib.attnc_compiler_create(arg)
        self.cache_dir = cache_dir
        # Kernels are thread-compatible (attnc.h), and compiles of the same
        # spec share one kernel: launches of one compiler's kernels take turns.
        self.launch_lock = threading.Lock()

    def __del__(self):
        h, self.handle = getattr(self, "handle", None), None
        if h and self._lib is not None:
            self._lib.attnc_compiler_destroy(h)

    def stats(self):
        out = (ctypes.c_uint64 * 4)()
        self._lib.attnc_compiler_stats(self.handle, out)
        return dict(memory_hits=out[0], disk_hits=out[1], compiles=out[2], rebuilt=out[3])


def _compiler(cache_dir=None):
    if cache_dir is not None:
        cache_dir = os.fspath(cache_dir)
        if isinstance(cache_dir, bytes):
            cache_dir = os.fsdecode(cache_dir)
        if cache_dir:
            cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
    with _lock:
        c = _compilers.get(cache_dir)
        if c is None:
            c = _compilers[cache_dir] = _Compiler(cache_dir)
        return c


def cache_stats(cache_dir=None):
    """Counters of the compiler that attnc.compile uses (the default one, or the
    one for `cache_dir`): dict(memory_hits, disk_hits, compiles, rebuilt)."""
    return _compiler(cache_dir).stats()


def _read_spec(spec):
    """The spec's bytes: `spec` is MLIR text, or the path of a file."""
    if isinstance(spec, os.PathLike):
        path = os.fspath(spec)
    elif isinstance(spec, (str, bytes)):
        one_line = (b"\n" if isinstance(spec, bytes) else "\n") not in spec
        if one_line and os.path.isfile(spec):
            path = spec
        elif one_line and spec.strip().endswith(b".mlir" if isinstance(spec, bytes) else ".mlir"):
            raise AttncError(f"spec file {os.fsdecode(spec)!r} does not exist")
        else:
            return spec if isinstance(spec, bytes) else spec.encode()
    else:
        raise AttncError(f"spec must be MLIR text or a path, got {type(spec).__name__}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise AttncError(f"cannot read spec {os.fsdecode(path)!r}: {e}") from e


def _shape_str(shape):
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


class CompiledKernel:
    """A CPU kernel from attnc.compile: call it with numpy arrays.

    `k(*inputs, out=None)` checks the arguments against `k.signature`, makes
    the inputs C-contiguous (np.ascontiguousarray: non-contiguous inputs are
    copied), runs the kernel and returns its output array (a tuple when the
    kernel has several outputs, e.g. (o, lse)). `out` (an array, or a tuple
    of one array per output, any strides) receives the results instead of new
    arrays.
    """

    def __init__(self, compiler, handle):
        self._compiler = compiler  # keeps the compiler alive
        self._lib = compiler._lib
        self._handle = handle
        self.signature = json.loads(self._lib.attnc_kernel_signature(handle).decode())
        self.name = self.signature["name"]
        self.target = self.signature["target"]
        self.inputs = self.signature["inputs"]
        self.outputs = self.signature["outputs"]
        self._attention = self._attention_layout()

    def __del__(self):
        h, self._handle = getattr(self, "_handle", None), None
        if h and self._lib is not None:
            self._lib.attnc_kernel_release(h)

    def __repr__(self):
        def params(ps):
            return ", ".join(f"{p['name']}: {p['dtype']}{_shape_str(p['shape'])}" for p in ps)
        return (f"<attnc kernel {self.name} ({self.target}): ({params(self.inputs)})"
                f" -> ({params(self.outputs)})>")

    def _attention_layout(self):
        """Whether the signature looks like attn.attention: q, k, v of rank 4
        -> o [B, Hq, Nq, Dv] (and lse [B, Hq, Nq] in f32)."""
        ins, outs = self.inputs, self.outputs
        if len(ins) < 3 or not 1 <= len(outs) <= 2:
            return False
        if any(len(p["shape"]) != 4 for p in ins[:3]) or len(outs[0]["shape"]) != 4:
            return False
        q, v, o = ins[0]["shape"], ins[2]["shape"], outs[0]["shape"]
        if o[1] != q[1] or o[2] != q[2] or o[3] != v[3]:
            return False
        return len(outs) == 1 or (len(outs[1]["shape"]) == 3 and outs[1]["dtype"] == "f32")

    def _output_shapes(self, arrays):
        """The output shapes for these inputs; None for a shape that the
        signature does not determine."""
        if self._attention:
            q, v = arrays[0], arrays[2]
            B, H, N = q.shape[:3]
            return [(B, H, N, v.shape[3]), (B, H, N)][:len(self.outputs)]
        shapes = []
        for p in self.outputs:
            want = p["shape"]
            # An input with the same signature type: its shape.
            same = [a.shape for a, i in zip(arrays, self.inputs) if i["shape"] == want]
            if same and all(s == same[0] for s in same):
                shapes.append(tuple(same[0]))
                continue
            # Each dynamic dim from the inputs of the same rank that have it
            # dynamic too, when they agree.
            shape = []
            for pos, d in enumerate(want):
                if d >= 0:
                    shape.append(d)
                    continue
                sizes = {a.shape[pos] for a, i in zip(arrays, self.inputs)
                         if len(i["shape"]) == len(want) and i["shape"][pos] < 0}
                if len(sizes) != 1:
                    shape = None
                    break
                shape.append(sizes.pop())
            shapes.append(tuple(shape) if shape is not None else None)
        return shapes

    def _check(self, role, p, a, np):
        what = f"{self.name}: {role} '{p['name']}'"
        if not isinstance(a, np.ndarray):
            raise AttncError(f"{what} must be a numpy.ndarray, got {type(a).__name__}")
        want = _NUMPY[p["dtype"]]
        if want is None:
            raise AttncError(f"{what} is {p['dtype']}, which numpy has no type for: CPU kernels "
                             "from Python take f32, f16, i1, i8, i32 and i64 (compile an f32 "
                             "spec for the CPU, or use a GPU target with torch tensors)")
        if a.dtype != np.dtype(want):
            raise AttncError(f"{what} must be {p['dtype']} (numpy.{want}), got {a.dtype}")
        if a.ndim != len(p["shape"]):
            raise AttncError(f"{what} must have rank {len(p['shape'])} "
                             f"{_shape_str(p['shape'])}, got shape {list(a.shape)}")
        for w, g in zip(p["shape"], a.shape):
            if w >= 0 and w != g:
                raise AttncError(f"{what} must have shape {_shape_str(p['shape'])}, "
                                 f"got {list(a.shape)}")

    def __call__(self, *args, out=None):
        import numpy as np
        names = ", ".join(p["name"] for p in self.inputs)
        if len(args) != len(self.inputs):
            raise AttncError(f"{self.name}: expected {len(self.inputs)} argument(s) ({names}), "
                             f"got {len(args)}")
        arrays = []
        for p, a in zip(self.inputs, args):
            self._check("input", p, a, np)
            arrays.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
        if out is None:
            outs = []
            for p, shape in zip(self.outputs, self._output_shapes(arrays)):
                if shape is None:
                    raise AttncError(f"{self.name}: the shape of output '{p['name']}' "
                                     f"{_shape_str(p['shape'])} does not follow from the "
                                     "inputs; pass out=(array, ...)")
                outs.append(np.empty(shape, dtype=_NUMPY[p["dtype"]]))
        else:
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(outs) != len(self.outputs):
                raise AttncError(f"{self.name}: out must have {len(self.outputs)} array(s), "
                                 f"got {len(outs)}")
            for p, o, shape in zip(self.outputs, outs, self._output_shapes(arrays)):
                self._check("output", p, o, np)
                if not o.flags.writeable:
                    raise AttncError(f"{self.name}: output '{p['name']}' is read-only")
                # Outside the attention layout the inferred dynamic dims are
                # a guess by position; the library checks the result's shape
                # against the view after the call.
                if self._attention and tuple(o.shape) != tuple(shape):
                    raise AttncError(f"{self.name}: output '{p['name']}' must have shape "
                                     f"{list(shape)}, got {list(o.shape)}")
                if any(s % o.itemsize for s in o.strides):
                    raise AttncError(f"{self.name}: output '{p['name']}' has strides that are "
                                     f"not multiples of its element size: {o.strides}")
        keep = []

        def tensors(arrs, with_strides):
            ts = (_runtime.Tensor * max(1, len(arrs)))()
            for t, a, p in zip(ts, arrs, self.inputs if not with_strides else self.outputs):
                shape = (ctypes.c_int64 * max(1, a.ndim))(*a.shape)
                keep.append(shape)
                t.data = a.ctypes.data
                t.dtype = _CODES[p["dtype"]]
                t.rank = a.ndim
                t.shape = shape
                if with_strides:
                    st = (ctypes.c_int64 * max(1, a.ndim))(*(s // a.itemsize for s in a.strides))
                    keep.append(st)
                    t.strides = st
            return ts

        ins = tensors(arrays, False)  # C-contiguous: no strides needed
        os_ = tensors(outs, True)
        err = ctypes.create_string_buffer(_ERRLEN)
        with self._compiler.launch_lock:
            rc = self._lib.attnc_kernel_launch(self._handle, ins, len(arrays), os_, len(outs),
                                               None, err, _ERRLEN)
        if rc:
            raise AttncError(err.value.decode(errors="replace"))
        return outs[0] if len(outs) == 1 else tuple(outs)


def compile(spec, target="cpu", function=None, block_q=0, block_kv=0, cache_dir=None):
    """Compiles an attn spec (MLIR text, or the path of a .mlir file).

    target: "cpu" (returns a CompiledKernel taking numpy arrays), "sm_80" or
    "sm_90a" (returns an attnc.load kernel taking torch CUDA tensors: a
    Kernel for attention, a LinearKernel for linear attention and scans;
    needs the disk cache). function: the function to compile (None: the only one
    with attn operations); "<f>_forward" / "<f>_backward" of a spec that has
    only "<f>" are made by attn-differentiate (docs/backward.md). block_q / block_kv: tile overrides (0: the
    schedule's). cache_dir: None for the default compiler ($ATTNC_CACHE_DIR,
    $XDG_CACHE_HOME/attnc or ~/.cache/attnc), a directory, or "" for no disk
    cache. Compilers (and their in-memory caches) are kept per cache_dir.
    Raises AttncError with the compiler's message (MLIR diagnostics included).
    """
    text = _read_spec(spec)
    if not isinstance(target, str):
        raise AttncError(f"target must be a string, got {type(target).__name__}")
    c = _compiler(cache_dir)
    handle = ctypes.c_void_p()
    err = ctypes.create_string_buffer(_ERRLEN)
    fn = function.encode() if function else None
    if c._lib.attnc_compile(c.handle, text, target.encode(), fn, int(block_q), int(block_kv),
                            ctypes.byref(handle), err, _ERRLEN):
        raise AttncError(err.value.decode(errors="replace"))
    kernel = CompiledKernel(c, handle.value)
    if kernel.target == "cpu":
        return kernel
    handle = c._lib.attnc_kernel_runtime(kernel._handle)
    if not handle:
        raise AttncError(f"{kernel.name}: compiled for {kernel.target} as a program of several "
                         "attn ops, which Python cannot call yet: on GPUs such programs run "
                         "through the C++ JIT (attnc::Compiler, attn-run --backend=cuda)")
    gpu = wrap(kernel, handle, kernel.signature.get("directory", ""))
    gpu.signature = kernel.signature
    return gpu
