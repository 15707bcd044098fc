"""A FlexAttention-compatible front end: attnc.trace, attnc.flex_attention,
attnc.create_block_mask (docs/frontend.md).

`score_mod(score, b, h, q_idx, kv_idx)` and `mask_mod(b, h, q_idx, kv_idx)`
are traced once per call (python/attnc/_trace.py) into an `attn.attention`
spec; kernels are cached in this process by the spec text and target, so a
new batch size or sequence length reuses the kernel (batch and sequence
lengths are dynamic in the spec), and attnc.compile's disk cache serves a
second process.
"""

import sys
import threading

from . import _autograd
from . import _emit as _writer
from . import _memo
from . import _trace as _tracer
from ._jit import compile as _compile
from ._runtime import AttncError

_lock = threading.Lock()
_kernels = {}  # (spec text, target, block_q, block_kv, function) -> kernel
_grad_calls = {}  # (forward kernel, backward kernel) -> _autograd.prepare's call
_stats = {"traces": 0, "trace_hits": 0, "spec_hits": 0, "kernel_hits": 0,
          "kernel_compiles": 0}
_specs = {}  # (id(score), id(mask), sizes, ...) -> (score, mask, Spec)

_IR_TO_NUMPY = {"i8": "int8", "i32": "int32", "i64": "int64", "f32": "float32"}
_DTYPES = {"f32": "f32", "float32": "f32", "bf16": "bf16", "bfloat16": "bf16",
           "f16": "f16", "float16": "f16", "half": "f16", "float": "f32"}


def flex_stats():
    """Counters of the front end: traces (score/mask mods traced),
    trace_hits (traces reused: nothing the mod depends on changed),
    spec_hits (spec text reused), kernel_hits (calls served by a kernel
    compiled earlier in this process) and kernel_compiles (attnc.compile
    calls, each of which may still hit the compiler's memory or disk cache:
    see attnc.cache_stats())."""
    with _lock:
        return dict(_stats)


def _count(key):
    with _lock:
        _stats[key] += 1


def _trace(fn, role):
    """The traced mod, reused while nothing it depends on changed (_memo)."""
    return _memo.trace(fn, role, _count)


def _dtype_code(dtype):
    name = str(dtype).replace("torch.", "").replace("numpy.", "")
    code = _DTYPES.get(name)
    if code is None:
        raise AttncError(f"dtype must be f32, bf16 or f16 (or a torch/numpy dtype of "
                         f"those), got {dtype!r}")
    return code


def _spec_name(score, mask):
    parts = ["flex"] + [m.name for m in (score, mask) if m is not None]
    name = "_".join(p.replace("<lambda>", "lambda") for p in parts)
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


class Spec(str):
    """The spec text of attnc.trace (a str: pass it to attnc.compile), with
    the captured tensors it takes after q, k and v.

    captures: one CaptureArg per captured tensor, in argument order (.name,
    .type, .capture.obj: the tensor as the mod captured it); function: the
    name of the spec's function; grad_captures: the indices (in captures)
    of the float captures that score_mod reads, which get gradients in the
    spec's backward, in its order."""

    captures = ()
    function = ""
    grad_captures = ()

    def arguments(self):
        """The captured tensors as numpy arrays in the spec's element types
        (bool as int8, floats as float32), ready for a CPU kernel:
        `attnc.compile(spec)(q, k, v, *spec.arguments())`."""
        return [_numpy_capture(a) for a in self.captures]


def _with_captures(text, name, cargs, score):
    spec = Spec(text)
    spec.captures = tuple(cargs)
    spec.function = name
    read = {id(r.attr) for r in _writer.read_nodes(score.result)} if score is not None else set()
    spec.grad_captures = tuple(i for i, a in enumerate(cargs)
                               if a.capture.elem == "f32" and id(a.capture) in read)
    return spec


def _emit(score, mask, H, Hkv, D, Dv, dtype, scale, return_lse, name=None,
          queries_at_end=False):
    """The Spec of traced mods, reused for the same traces and sizes."""
    key = (id(score), id(mask), H, Hkv, D, Dv, dtype, scale, return_lse, name,
           queries_at_end)
    with _lock:
        entry = _specs.get(key)
    if entry is not None and entry[0] is score and entry[1] is mask:
        _count("spec_hits")
        return entry[2]
    name = name or _spec_name(score, mask)
    text, cargs = _writer.emit_spec(name, score, mask, H, Hkv, D, Dv, dtype, scale, return_lse,
                                    queries_at_end)
    spec = _with_captures(text, name, cargs, score)
    with _lock:
        if len(_specs) >= 256:
            _specs.clear()
        _specs[key] = (score, mask, spec)
    return spec


def trace(score_mod=None, mask_mod=None, *, H, D, Hkv=None, Dv=None, dtype="f32",
          scale=None, return_lse=False, name=None, B=None, Q_LEN=None, KV_LEN=None,
          queries_at_end=False):
    """The attn.attention spec (MLIR text, a `Spec` str) of a FlexAttention
    score_mod and mask_mod (or a BlockMask from attnc.create_block_mask).

    H: query heads; Hkv: key/value heads (default H; H % Hkv == 0 is GQA);
    D: the q/k head dim; Dv: the value head dim (default D); dtype: "f32"
    (CPU), "bf16" or "f16" (GPU), or a torch/numpy dtype; scale: the score
    scale (None: 1/sqrt(D)); return_lse: the spec also returns the
    log-sum-exp [B, H, N]; name: the function's name. B, Q_LEN and KV_LEN are
    accepted for FlexAttention's sake and ignored: batch and sequence lengths
    are dynamic in the spec. Captured tensors become the function's arguments
    after q, k, v (`spec.captures`, `spec.arguments()`). queries_at_end (an
    attnc extension): the queries are the last Nq of the Nk key positions
    (decode, prefill against a cache), so the mods see q_idx + Nk - Nq.
    """
    del B, Q_LEN, KV_LEN
    score = _trace(score_mod, "score_mod") if score_mod is not None else None
    if isinstance(mask_mod, BlockMask):
        mask = mask_mod.traced
    else:
        mask = _trace(mask_mod, "mask_mod") if mask_mod is not None else None
    Hkv = H if Hkv is None else Hkv
    Dv = D if Dv is None else Dv
    for what, n in (("H", H), ("Hkv", Hkv), ("D", D), ("Dv", Dv)):
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise AttncError(f"attnc.trace: {what} must be a positive int, got {n!r}")
    if H % Hkv:
        raise AttncError(f"attnc.trace: H ({H}) must be a multiple of Hkv ({Hkv})")
    return _emit(score, mask, H, Hkv, D, Dv, _dtype_code(dtype), scale, return_lse, name,
                 bool(queries_at_end))


# -- block masks ----------------------------------------------------------------------

class BlockMask:
    """What attnc.create_block_mask returns: the traced mask_mod and the
    sizes it was made for. attnc builds no block map in Python: the kernel
    classifies tiles (empty, full, partial) from the traced mask itself,
    statically for index masks and, for masks that read captured tensors,
    with its runtime block-map kernel at each call."""

    def __init__(self, mask_mod, traced, B, H, Q_LEN, KV_LEN, BLOCK_SIZE, device):
        self.mask_mod = mask_mod
        self.traced = traced
        self.shape = (B, H, Q_LEN, KV_LEN)
        self.seq_lengths = (Q_LEN, KV_LEN)
        self.BLOCK_SIZE = BLOCK_SIZE
        self.device = device

    def __repr__(self):
        return (f"BlockMask(mask_mod={_tracer.describe_function(self.mask_mod)}, "
                f"shape={self.shape}, BLOCK_SIZE={self.BLOCK_SIZE}, traced by attnc)")

    def spec(self, H, D, **kwargs):
        """The spec of this mask alone (attnc.trace(mask_mod=self, ...))."""
        return trace(mask_mod=self, H=H, D=D, **kwargs)

    def check(self, B, Hq, Nq, Nk):
        """Raises AttncError when the inputs do not fit the sizes given to
        create_block_mask (B and H may be None or 1: broadcast)."""
        mb, mh, mq, mk = self.shape
        if (mq, mk) != (Nq, Nk):
            raise AttncError(f"block_mask was made for Q_LEN={mq}, KV_LEN={mk}, but the "
                             f"inputs have Nq={Nq}, Nk={Nk}: call create_block_mask again "
                             "(it only traces; the kernel is reused)")
        if mb not in (None, 1, B):
            raise AttncError(f"block_mask was made for B={mb}, but the inputs have B={B}")
        if mh not in (None, 1, Hq):
            raise AttncError(f"block_mask was made for H={mh}, but the query has {Hq} heads")


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device="cuda", BLOCK_SIZE=128,
                      _compile=False):
    """FlexAttention's create_block_mask: traces mask_mod(b, h, q_idx,
    kv_idx) -> bool at once (untraceable code raises AttncError here) and
    returns a BlockMask for flex_attention. B and H may be None
    (broadcast). No block map is computed in Python (see BlockMask)."""
    for what, n in (("Q_LEN", Q_LEN), ("KV_LEN", KV_LEN)):
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise AttncError(f"create_block_mask: {what} must be a positive int, got {n!r}")
    traced = _trace(mask_mod, "mask_mod")
    return BlockMask(mask_mod, traced, B, H, Q_LEN, KV_LEN, BLOCK_SIZE, str(device))


def and_masks(*mask_mods):
    """A mask_mod that keeps what every one of mask_mods keeps."""
    def and_mask(b, h, q_idx, kv_idx):
        result = True
        for m in mask_mods:
            result = m(b, h, q_idx, kv_idx) & result
        return result
    return and_mask


def or_masks(*mask_mods):
    """A mask_mod that keeps what any one of mask_mods keeps."""
    def or_mask(b, h, q_idx, kv_idx):
        result = False
        for m in mask_mods:
            result = m(b, h, q_idx, kv_idx) | result
        return result
    return or_mask


# -- inputs -------------------------------------------------------------------------

def _kind(t):
    """'numpy', 'torch-cpu' or 'torch-cuda'."""
    mod = type(t).__module__ or ""
    if mod == "numpy":
        return "numpy"
    if mod.startswith("torch"):
        return "torch-cuda" if t.is_cuda else "torch-cpu"
    raise AttncError(f"flex_attention takes torch tensors or numpy arrays, got "
                     f"{type(t).__name__}")


def _numpy_capture(carg):
    import numpy as np
    obj = carg.capture.obj
    if (type(obj).__module__ or "").startswith("torch"):
        obj = obj.detach().cpu()
        if str(obj.dtype) in ("torch.bfloat16", "torch.float16"):
            obj = obj.float()
        obj = obj.numpy()
    return np.ascontiguousarray(np.asarray(obj), dtype=_IR_TO_NUMPY[carg.capture.elem])


def _torch_capture(carg, device, detach=True):
    """The capture on `device` in the spec's element type; detach=False
    converts by differentiable torch ops (gradients reach the captured
    tensor)."""
    import torch
    obj = carg.capture.obj
    if not isinstance(obj, torch.Tensor):
        obj = torch.from_numpy(_numpy_capture(carg))
    if detach:
        obj = obj.detach()
    return obj.to(device=device, dtype=getattr(torch, _IR_TO_NUMPY[carg.capture.elem])
                  ).contiguous()


def _check_shapes(query, key, value, enable_gqa):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if len(t.shape) != 4:
            raise AttncError(f"flex_attention: {name} must be [B, H, N, D], got shape "
                             f"{list(t.shape)}")
    B, Hq, Nq, D = (int(x) for x in query.shape)
    Bk, Hkv, Nk, Dk = (int(x) for x in key.shape)
    Bv, Hv, Nv, Dv = (int(x) for x in value.shape)
    if not B == Bk == Bv:
        raise AttncError(f"flex_attention: batch sizes differ: query {B}, key {Bk}, value {Bv}")
    if Hkv != Hv or Nk != Nv:
        raise AttncError(f"flex_attention: key {list(key.shape)} and value "
                         f"{list(value.shape)} must agree on heads and length")
    if Dk != D:
        raise AttncError(f"flex_attention: query and key head dims differ: {D} vs {Dk}")
    if Hq != Hkv:
        if not enable_gqa:
            raise AttncError(f"flex_attention: query has {Hq} heads and key/value {Hkv}: "
                             "pass enable_gqa=True for grouped-query attention")
        if Hq % Hkv:
            raise AttncError(f"flex_attention: query heads ({Hq}) must be a multiple of "
                             f"key/value heads ({Hkv})")
    return B, Hq, Hkv, Nq, Nk, D, Dv


def _cuda_target(query):
    import torch
    major, minor = torch.cuda.get_device_capability(query.device)
    if major == 9:
        return "sm_90a"
    if major >= 8:
        return "sm_80"
    raise AttncError(f"flex_attention: attnc's GPU kernels need sm_80 or newer, "
                     f"{query.device} is sm_{major}{minor}")


def _kernel(spec, target, block_q, block_kv, function=None):
    key = (str(spec), target, block_q, block_kv, function)
    with _lock:
        kernel = _kernels.get(key)
    if kernel is not None:
        _count("kernel_hits")
        return kernel
    kernel = _compile(str(spec), target, function=function, block_q=block_q, block_kv=block_kv)
    _count("kernel_compiles")
    with _lock:
        return _kernels.setdefault(key, kernel)


def _grad_call(spec, fwd, bwd, cuda):
    """_autograd.prepare's differentiable call, made once per pair of kernels
    (one object across calls: torch.compile guards on it)."""
    with _lock:
        call = _grad_calls.get((fwd, bwd))
    if call is None:
        call = _autograd.prepare(spec, fwd, bwd, cuda)
        with _lock:
            call = _grad_calls.setdefault((fwd, bwd), call)
    return call


def _tiles(kernel_options):
    """(block_q, block_kv) from FlexAttention's kernel_options (BLOCK_M,
    BLOCK_N); 0 leaves the schedule's choice."""
    opts = dict(kernel_options or {})
    block_q = int(opts.pop("BLOCK_M", 0))
    block_kv = int(opts.pop("BLOCK_N", 0))
    if opts:
        raise AttncError(f"flex_attention: kernel_options {sorted(opts)} are not supported "
                         "(BLOCK_M and BLOCK_N are)")
    return block_q, block_kv


def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None,
                   enable_gqa=False, return_lse=False, kernel_options=None,
                   queries_at_end=False):
    """FlexAttention on attnc kernels: query [B, Hq, Nq, D], key [B, Hkv, Nk,
    D], value [B, Hkv, Nk, Dv] -> out [B, Hq, Nq, Dv] (and lse [B, Hq, Nq] in
    float32 with return_lse=True; -inf and out = 0 for rows that see no key).

    CPU torch tensors and numpy arrays run the CPU kernel (computed in
    float32, returned in the query's dtype); CUDA tensors (bf16 or f16) run
    the kernel compiled for the device (sm_80 or sm_90a). score_mod is traced
    on every call (cheap); the kernel is compiled once per distinct spec.
    When grad mode is on and query, key, value or a captured torch tensor
    requires grad, the result is differentiable (docs/frontend.md#autograd):
    gradients reach q, k, v and the captured float tensors that score_mod
    reads; lse (return_lse=True) must not enter the loss. queries_at_end (an
    attnc extension, not in FlexAttention): the queries are the last Nq of
    the Nk key positions, so score_mod and the block mask's mask_mod see
    q_idx + Nk - Nq (decode and prefill against a cache without a retrace
    per length); needs Nq <= Nk.
    """
    kind, spec, kernel, grad = _planned(query, key, value, score_mod, block_mask, scale,
                                        enable_gqa, return_lse, kernel_options,
                                        bool(queries_at_end))
    if grad is not None:
        captures = [_torch_capture(a, query.device, detach=False) for a in spec.captures]
        o, lse = grad((query, key, value, *captures), return_lse)
        o = o.to(query.dtype)
        return (o, lse) if return_lse else o
    if kind == "numpy":
        return _run_numpy(kernel, spec, query, key, value, return_lse)
    if kind == "torch-cpu":
        return _run_torch_cpu(kernel, spec, query, key, value, return_lse)
    return _run_cuda(kernel, spec, query, key, value)


_eager_plan = None  # _plan under torch.compiler.disable (_leave_plan_out_of_compile)


def _leave_plan_out_of_compile():
    """Wraps _plan in torch.compiler.disable, so that torch.compile runs the
    host work (the mod tracer, the compiler) eagerly at a graph break and
    records only the kernels' torch.library ops (with their autograd
    formula). Done at import when torch is loaded, else at the first eager
    call: never while dynamo traces (the wrapping itself would be traced)."""
    global _eager_plan
    torch = sys.modules.get("torch")
    compiler = getattr(torch, "compiler", None)
    if _eager_plan is None and hasattr(compiler, "disable") and \
            not getattr(compiler, "is_compiling", lambda: False)():
        _eager_plan = compiler.disable(_plan)


def _planned(*args):
    """_plan(*args), outside torch.compile's graphs where torch allows it."""
    if _eager_plan is None:
        _leave_plan_out_of_compile()
    return (_eager_plan or _plan)(*args)


def _plan(query, key, value, score_mod, block_mask, scale, enable_gqa, return_lse,
          kernel_options, queries_at_end=False):
    """flex_attention's host work: the checks, the traced spec and its
    kernels. Returns (kind, spec, kernel, grad): grad is the differentiable
    call (_autograd.prepare) when gradients are wanted, else None."""
    kinds = {_kind(t) for t in (query, key, value)}
    if len(kinds) != 1:
        raise AttncError(f"flex_attention: query, key and value must be on one device "
                         f"and of one kind, got {sorted(kinds)}")
    kind = kinds.pop()
    B, Hq, Hkv, Nq, Nk, D, Dv = _check_shapes(query, key, value, enable_gqa)
    if block_mask is not None and not isinstance(block_mask, BlockMask):
        raise AttncError("flex_attention: block_mask must come from attnc.create_block_mask, "
                         f"got {type(block_mask).__name__}")
    if block_mask is not None:
        block_mask.check(B, Hq, Nq, Nk)
    block_q, block_kv = _tiles(kernel_options)
    score = _trace(score_mod, "score_mod") if score_mod is not None else None
    mask = block_mask.traced if block_mask is not None else None
    if kind == "torch-cuda":
        dtype = {"torch.bfloat16": "bf16", "torch.float16": "f16"}.get(str(query.dtype))
        if dtype is None:
            raise AttncError(f"flex_attention: attnc's GPU kernels take bfloat16 or float16 "
                             f"tensors, got {query.dtype}")
        target = _cuda_target(query)
    else:
        dtype, target = "f32", "cpu"
    if queries_at_end and Nq > Nk:
        raise AttncError(f"flex_attention: queries_at_end needs Nq <= Nk (the queries are "
                         f"the last Nq key positions), got Nq={Nq}, Nk={Nk}")
    spec = _emit(score, mask, Hq, Hkv, D, Dv, dtype, scale, return_lse,
                 queries_at_end=queries_at_end)
    if kind != "numpy" and _grad_wanted(spec, query, key, value):
        # kernel_options set the forward's tiles; the backward's are the compiler's.
        fwd = _kernel(spec, target, block_q, block_kv, function=spec.function + "_forward")
        bwd = _kernel(spec, target, 0, 0, function=spec.function + "_backward")
        return kind, spec, None, _grad_call(spec, fwd, bwd, kind == "torch-cuda")
    return kind, spec, _kernel(spec, target, block_q, block_kv), None


def _run_numpy(kernel, spec, query, key, value, return_lse):
    import numpy as np
    qkv = [np.ascontiguousarray(t, dtype=np.float32) for t in (query, key, value)]
    result = kernel(*qkv, *spec.arguments())
    o, lse = (result if return_lse else (result, None))
    if o.dtype != query.dtype and query.dtype.kind == "f":
        o = o.astype(query.dtype)
    return (o, lse) if return_lse else o


def _grad_wanted(spec, query, key, value):
    import torch
    captured = [a.capture.obj for a in spec.captures if isinstance(a.capture.obj, torch.Tensor)]
    return _autograd.wanted(torch, (query, key, value, *captured))


def _run_torch_cpu(kernel, spec, query, key, value, return_lse):
    import torch
    qkv = [t.detach().to(torch.float32).contiguous().numpy() for t in (query, key, value)]
    result = kernel(*qkv, *spec.arguments())
    o, lse = (result if return_lse else (result, None))
    o = torch.from_numpy(o).to(query.dtype)
    return (o, torch.from_numpy(lse)) if return_lse else o


def _run_cuda(kernel, spec, query, key, value):
    captures = [_torch_capture(a, query.device) for a in spec.captures]
    return kernel(query, key, value, *captures)


if "torch" in sys.modules:
    _leave_plan_out_of_compile()
