"""Kernel sets (attn-aot directories, JIT cache entries) and their kernels on
torch tensors, launched by the launch library (libattnc_runtime.so).

Python does no launch work of its own: a call packs each tensor's pointer,
dtype, shape and strides into one array and makes one call into the library,
which checks them against the kernel's signature, encodes tensor maps (cached),
allocates workspaces and launches the kernel sequence on the current stream.
"""

import array
import ctypes
import hashlib
import json
import os
import sys

from . import _runtime
from ._runtime import AttncError

_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32",
           "i8": "int8", "i32": "int32", "i64": "int64", "i1": "bool"}

_torch_mod = None
_codes = None  # torch dtype -> attnc dtype code


def _torch():
    global _torch_mod, _codes
    if _torch_mod is None:
        try:
            import torch
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise AttncError("attnc kernels take torch tensors; torch is not installed") from e
        _codes = {getattr(torch, _DTYPES[n]): c for n, c in _runtime.DTYPE_CODES.items()}
        _torch_mod = torch
    return _torch_mod


_stream_of = None
_is_compiling = None


def _find_is_compiling(torch):
    """torch.compiler.is_compiling (False where this torch has none)."""
    global _is_compiling
    compiler = getattr(torch, "compiler", None)
    _is_compiling = getattr(compiler, "is_compiling", None) or (lambda: False)


def _raw_stream(torch):
    """A function device -> the current CUstream (as an int) of that device."""
    global _stream_of
    if _stream_of is None:
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        _stream_of = raw if raw is not None else (
            lambda dev: torch.cuda.current_stream(dev).cuda_stream)
    return _stream_of


class Kernel:
    """One kernel of a kernel set (see docs/runtime.md and docs/gpu.md).

    `k(*inputs, out=None, lse=None, final_state=None, check_values=None)`
    takes the spec's inputs in order (q, k, v for attention, then the
    decays, states and captured tensors the spec declares) as torch CUDA
    tensors and returns the outputs (o, and lse or the final state when the
    spec returns them), allocated unless passed."""

    def __init__(self, owner, handle, directory=""):
        lib = _runtime.library()
        self._owner = owner  # keeps the launch library's module alive
        self._handle = handle
        self.directory = directory
        self.info = json.loads(lib.attnc_rt_kernel_info(handle).decode())
        self.meta = self.info  # the kernel's manifest record
        self.abi = self.info.get("abi", {})
        self.name = self.info["name"]
        self.kind = self.info["kind"]
        self.target = self.info["target"]
        sig = self.info["signature"]
        self.inputs, self.outputs = sig["inputs"], sig["outputs"]
        self.names = self.info["input_names"]
        # The input whose batch (dim 0) and sequence length (dim 2) size the
        # outputs.
        self.q_index = self.names.index("q") if "q" in self.names else 0
        self.checks = self.info.get("checks", {})
        self.signature = None  # set by attnc.compile (its C API signature)
        self._launch = lib.attnc_rt_kernel_launch_packed
        self._op = None  # the torch.library op
        self._out_dtypes = None  # torch dtypes of the outputs, on first use
        self._flags = {}  # device -> the value-check error flag
        # Output shapes: a dynamic dim 0 is the batch, any other dim 2 of q;
        # an attention backward's gradients are shaped like their inputs.
        self._out_shapes = [[(0 if i == 0 else 2) if d < 0 else -1 - d
                             for i, d in enumerate(p["shape"])] for p in self.outputs]
        self._out_like = [self.q_index] * len(self.outputs)
        if self.kind == "attention_grad":
            like = self._gradient_inputs()
            self._out_like = [like[p["name"]] for p in self.outputs]
            self._out_shapes = [list(range(len(p["shape"]))) for p in self.outputs]
        self._gates = bool(self.checks.get("log_gates"))
        self._out_names = ("out", "lse" if self.kind == "attention" else "final_state")
        self._op_name = "attnc::k_" + hashlib.sha256(
            json.dumps(self.info, sort_keys=True).encode()).hexdigest()[:16]
        # torch.compile traces calls into the op, which must exist before
        # tracing starts (registering it inside a trace breaks the graph).
        if "torch" in sys.modules:
            self._register_op()

    def _gradient_inputs(self):
        """attention_grad: output name -> the index of the input it is the
        gradient of. dcapture<i> belongs to the i-th f32 capture: attn-differentiate
        gives gradients to the float captures that the score region reads, in
        capture order, and traced specs (attnc.trace) list those first."""
        floats = [i for i, (n, p) in enumerate(zip(self.names, self.inputs))
                  if n.startswith("capture") and p["dtype"] == "f32"]
        like = {"dq": self.names.index("q"), "dk": self.names.index("k"),
                "dv": self.names.index("v")}
        like.update({f"dcapture{n}": i for n, i in enumerate(floats)})
        return like

    def __repr__(self):
        m = self.info
        if self.kind == "attention":
            fallback = f", {m['fallback']}" if m.get("fallback") else ""
            return (f"<attnc kernel {self.name}: {m['dtype']}, heads {m['heads_q']}:"
                    f"{m['heads_kv']}, d={m['head_dim']}/{m['value_dim']}, "
                    f"{m['variant']} {m['block_q']}x{m['block_kv']}, target "
                    f"{self.target}{fallback}>")
        if self.kind == "linear":
            a = self.abi
            return (f"<attnc linear kernel {self.name}: {a['dtype']}, {a['H']} heads, "
                    f"D={a['D']} Dv={a['Dv']}, "
                    f"{'causal' if a['causal'] else 'bidirectional'}, target {self.target}>")
        return f"<attnc {self.kind} kernel {self.name}, target {self.target}>"

    # -- calls --------------------------------------------------------------

    def __call__(self, *inputs, out=None, lse=None, final_state=None, check_values=None):
        """check_values (kernels whose inputs hold log-gates, which must be
        finite and <= 0): None (default) checks on the GPU without waiting,
        into an error flag that `check_errors()` reads; True checks and waits
        (stalls the stream, raises at once); False skips the check."""
        if len(inputs) != len(self.inputs):
            return self.launch(inputs)  # the count error
        if _is_compiling is None:
            _find_is_compiling(_torch())
        if _is_compiling():
            return self._compiled_call(inputs, out, lse if lse is not None else final_state)
        given = (out, lse if lse is not None else final_state)
        return self.launch(inputs, given, check_values)

    def launch(self, inputs, given=(None, None), check_values=None):
        """The eager call: checks, packs and launches; returns the outputs.

        The common case (tensors of the kernel's dtypes on q's device) takes
        the fast path, which checks only what the launch library cannot: it
        checks pointers, dtypes, ranks, shapes and strides against the
        signature itself. Anything the fast path trips on is rerun through
        `_checked_words`, which names the problem."""
        if len(inputs) != len(self.inputs):
            names = ", ".join(p["name"] for p in self.inputs)
            raise AttncError(f"{self.name}: expected {len(self.inputs)} inputs ({names}), "
                             f"got {len(inputs)}")
        torch = _torch_mod or _torch()
        q = inputs[self.q_index]
        try:
            dev = q.get_device()
        except AttributeError:
            dev = -1
        if dev < 0:
            self._raise_q_error(q, torch)
        if self._op is None:
            self._register_op()
        try:
            outs = self._outputs(inputs, given, q)
        except AttributeError:
            # An input the outputs are shaped after is not a tensor.
            self._checked_words(inputs, (), dev, torch)
            raise
        try:
            words = self._fast_words(inputs, outs, dev)
        except (AttributeError, KeyError, TypeError):
            words = None
        if words is None:
            words = self._checked_words(inputs, outs, dev, torch)
        if self._gates and check_values is not False:
            self._check_gates(inputs, dev, check_values is True)
        self._run(words, dev, torch)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _raise_q_error(self, q, torch):
        """q is not a CUDA tensor: says which it is not."""
        qname = self.inputs[self.q_index]["name"]
        if not isinstance(q, torch.Tensor):
            raise AttncError(f"{self.name}: {qname} must be a torch.Tensor, "
                             f"got {type(q).__name__}")
        raise AttncError(f"{self.name}: {qname} must be on a CUDA device, got {q.device}")

    def _outputs(self, inputs, given, q):
        """The outputs: those given, the others allocated like q (on its
        device; fake tensors under torch.compile)."""
        if self._out_dtypes is None:
            torch = _torch()
            self._out_dtypes = [getattr(torch, _DTYPES[p["dtype"]]) for p in self.outputs]
        outs = []
        for i, dt in enumerate(self._out_dtypes):
            t = given[i] if i < len(given) else None
            if t is None:
                s = inputs[self._out_like[i]].shape
                t = q.new_empty([s[d] if d >= 0 else -1 - d for d in self._out_shapes[i]],
                                dtype=dt)
            outs.append(t)
        return outs

    def _fast_words(self, inputs, outs, dev):
        """Pointer, dtype code, rank, sizes and strides of every tensor, or
        None when a tensor is on another device (the slow path says which)."""
        words = []
        extend = words.extend
        codes = _codes
        for t in (*inputs, *outs):
            if t.get_device() != dev:
                return None
            extend((t.data_ptr(), codes[t.dtype], t.dim()))
            extend(t.shape)
            extend(t.stride())
        return words

    def _checked_words(self, inputs, outs, dev, torch):
        words = []
        for role, ts, ps in (("input", inputs, self.inputs), ("output", outs, self.outputs)):
            for t, p in zip(ts, ps):
                self._pack(words, t, p, role, dev, torch)
        return words

    def _pack(self, words, t, p, role, dev, torch):
        """Appends t's pointer, dtype, rank, sizes and strides; the library
        checks them against the signature."""
        if not isinstance(t, torch.Tensor):
            raise AttncError(f"{self.name}: {role} {p['name']} must be a torch.Tensor, got "
                             f"{type(t).__name__}")
        if t.get_device() != dev:
            raise AttncError(f"{self.name}: {role} {p['name']} is on {t.device}, but q is "
                             f"on cuda:{dev}")
        code = _codes.get(t.dtype)
        if code is None:
            raise AttncError(f"{self.name}: {role} {p['name']} has dtype {t.dtype}, which "
                             "attnc kernels do not take")
        words.append(t.data_ptr())
        words.append(code)
        words.append(t.dim())
        words.extend(t.shape)
        words.extend(t.stride())

    def _run(self, words, dev, torch):
        buf = array.array("q", words)
        arr = buf.buffer_info()[0]
        stream = (_stream_of or _raw_stream(torch))(dev)
        if self._launch(self._handle, arr, len(words), stream):
            msg = _runtime.last_error()
            if "no CUDA context is current" not in msg:
                raise AttncError(msg)
            # A thread that has not used CUDA yet: make the device current.
            with torch.cuda.device(dev):
                _runtime.check(self._launch(self._handle, arr, len(words), stream))

    # -- value checks ---------------------------------------------------------

    def _check_gates(self, inputs, dev, wait):
        """Log-gates must be finite and <= 0: checked on the GPU into this
        kernel's error flag (no wait), or at once (wait)."""
        torch = _torch()
        flag = self._flags.get(dev)
        if flag is None:
            flag = self._flags[dev] = torch.zeros((), dtype=torch.bool, device=f"cuda:{dev}")
        for i in self.checks["log_gates"]:
            g = inputs[i]
            bad = torch.logical_or(g > 0, torch.logical_not(torch.isfinite(g))).any()
            if wait:
                if bool(bad):
                    raise AttncError(self._gate_message(i))
            else:
                flag.logical_or_(bad)

    def _gate_message(self, i):
        return (f"{self.name}: {self.inputs[i]['name']} holds log-gates, which must be "
                "finite and <= 0 (the decay is exp(g))")

    def check_errors(self):
        """Raises AttncError when a launch since the last call was given
        invalid log-gates (waits for those launches); clears the flag."""
        for dev, flag in self._flags.items():
            if bool(flag):
                flag.zero_()
                names = ", ".join(self.inputs[i]["name"] for i in self.checks["log_gates"])
                raise AttncError(f"{self.name}: a launch on cuda:{dev} was given log-gates "
                                 f"({names}) that are not finite and <= 0 (the decay is "
                                 "exp(g)); its output is not valid")

    # -- torch.compile ----------------------------------------------------------

    def _register_op(self):
        from . import _torch_ops
        if self._op is None:
            # False: this torch cannot register custom ops.
            self._op = _torch_ops.register(self) if _torch_ops.supported()[0] else False
        return self._op

    def _compiled_call(self, inputs, out, second):
        if out is not None or second is not None:
            raise AttncError(f"{self.name}: out=/lse=/final_state= are not supported under "
                             "torch.compile; use the returned tensors")
        op = self._op
        if not op:
            raise AttncError(f"{self.name}: no torch.library op: load the kernel after "
                             "importing torch (torch >= 2.4), or call it once before "
                             "torch.compile traces it")
        outs = op(list(inputs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def op_name(self):
        """The torch.library name of this kernel's op (attnc::k_<hash>)."""
        return self._op_name


class LinearKernel(Kernel):
    """A linear-attention or scan kernel (kind "linear"): the feature kernel
    first when the spec has one, then the chunked kernel (docs/linear-gpu.md)."""


def _kernel_class(kind):
    return LinearKernel if kind == "linear" else Kernel


class _ModuleHandle:
    """Owns a module of the launch library."""

    def __init__(self, handle):
        self.handle = handle
        self._lib = _runtime.library()

    def __del__(self):
        if self.handle:
            self._lib.attnc_rt_module_destroy(self.handle)
            self.handle = None


class Module:
    """The kernels of one kernel set (an attn-aot directory), by name."""

    def __init__(self, directory):
        if not os.path.exists(os.path.join(directory, "manifest.json")):
            raise AttncError(f"{directory} is not an attn-aot directory (no manifest.json)")
        lib = _runtime.library()
        h = ctypes.c_void_p()
        _runtime.check(lib.attnc_rt_module_load(os.fsencode(directory), ctypes.byref(h)))
        self._module = _ModuleHandle(h.value)
        self.directory = directory
        self.target = lib.attnc_rt_module_target(h.value).decode()
        self.kernels = {}
        for i in range(lib.attnc_rt_module_num_kernels(h.value)):
            kh = lib.attnc_rt_module_kernel(h.value, i)
            kind = json.loads(lib.attnc_rt_kernel_info(kh).decode())["kind"]
            k = _kernel_class(kind)(self._module, kh, directory)
            self.kernels[k.name] = k

    def __getitem__(self, name):
        return self.kernels[name]

    def __call__(self, *args, **kwargs):
        if len(self.kernels) != 1:
            raise AttncError(f"the module has {len(self.kernels)} kernels; pick one by name")
        return next(iter(self.kernels.values()))(*args, **kwargs)


def load(directory):
    """Loads an attn-aot output directory (no MLIR needed)."""
    return Module(directory)


def wrap(owner, handle, directory=""):
    """A kernel of the launch library held by `owner` (attnc.compile's)."""
    kind = json.loads(_runtime.library().attnc_rt_kernel_info(handle).decode())["kind"]
    return _kernel_class(kind)(owner, handle, directory)
