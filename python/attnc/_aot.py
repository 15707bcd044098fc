"""Loading attn-aot directories and calling their kernels on torch tensors."""

import ctypes
import json
import os

from . import _driver


class AttncError(ValueError):
    """A call attnc cannot make: wrong shapes, dtypes, devices, strides, or no GPU."""


_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32",
           "i8": "int8", "i32": "int32", "i64": "int64", "i1": "bool"}


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise AttncError("attnc kernels take torch tensors; torch is not installed") from e
    return torch


class Kernel:
    """One attention kernel of an AOT directory (see docs/gpu.md)."""

    def __init__(self, directory, meta, target):
        self.directory = directory
        self.meta = meta
        self.target = target
        self.name = meta["name"]
        self._modules = {}  # CUDA context -> (module, function, map function)
        self.signature = None  # set by attnc.compile (its C API signature)

    def __repr__(self):
        m = self.meta
        return (f"<attnc kernel {self.name}: {m['dtype']}, heads {m['heads_q']}:"
                f"{m['heads_kv']}, d={m['head_dim']}/{m['value_dim']}, "
                f"target {self.target}>")

    def _read(self, name):
        with open(os.path.join(self.directory, name), "rb") as f:
            return f.read()

    def _load_module(self):
        """The cubin, or the PTX (NUL-terminated, JIT-compiled by the driver)
        when there is no cubin or the cubin is for another GPU generation
        (CUDA_ERROR_NO_BINARY_FOR_GPU, e.g. an sm_80 cubin on an H100)."""
        cubin, ptx = self.meta.get("cubin"), self.meta.get("ptx")
        if cubin:
            try:
                return _driver.load_module(self._read(cubin))
            except _driver.DriverError as e:
                if e.code != _driver.CUDA_ERROR_NO_BINARY_FOR_GPU or not ptx:
                    raise
        return _driver.load_module(self._read(ptx) + b"\0")

    def _functions(self):
        try:
            ctx = _driver.current_context()
            if not ctx.value:
                raise AttncError("no CUDA context is current (create a CUDA tensor first)")
            key = ctx.value
            if key not in self._modules:
                mod = self._load_module()
                fn = _driver.get_function(mod, self.name)
                bm = self.meta.get("block_map")
                mfn = _driver.get_function(mod, bm["kernel"]) if bm else None
                if self.meta.get("dynamic_shared_bytes", 0) > 48 * 1024:
                    _driver.allow_shared(fn, self.meta["dynamic_shared_bytes"])
                self._modules[key] = (mod, fn, mfn)
            return self._modules[key]
        except _driver.DriverError as e:
            raise AttncError(str(e)) from e

    def _check(self, name, t, dtype, rank):
        torch = _torch()
        if not isinstance(t, torch.Tensor):
            raise AttncError(f"{self.name}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_cuda:
            raise AttncError(f"{self.name}: {name} must be on a CUDA device, got {t.device}")
        want = getattr(torch, _DTYPES[dtype])
        if t.dtype != want:
            raise AttncError(f"{self.name}: {name} must be {want}, got {t.dtype}")
        if t.dim() != rank:
            raise AttncError(f"{self.name}: {name} must have rank {rank}, got shape {tuple(t.shape)}")

    def __call__(self, q, k, v, *captures, out=None, lse=None):
        """o (and lse when the spec returns it) for q [B,Hq,Nq,D], k [B,Hkv,Nk,D],
        v [B,Hkv,Nk,Dv] (any strides with a contiguous last dim)."""
        torch = _torch()
        m = self.meta
        for n, t, d in (("q", q, m["head_dim"]), ("k", k, m["head_dim"]),
                        ("v", v, m["value_dim"])):
            self._check(n, t, m["dtype"], 4)
            heads = m["heads_q"] if n == "q" else m["heads_kv"]
            if t.shape[1] != heads or t.shape[3] != d:
                raise AttncError(f"{self.name}: {n} must be [B, {heads}, N, {d}], got {tuple(t.shape)}")
            if t.stride(3) != 1 or any(s % 8 for s in t.stride()[:3]) or t.data_ptr() % 16:
                raise AttncError(f"{self.name}: {n} needs a contiguous head dim, strides that are "
                                 f"multiples of 8 and 16-byte alignment (strides {t.stride()})")
        B, Hq, Nq, _ = q.shape
        Nk = k.shape[2]
        if k.shape[0] != B or v.shape[0] != B:
            raise AttncError(f"{self.name}: batch sizes differ: q {B}, k {k.shape[0]}, v {v.shape[0]}")
        if v.shape[2] != Nk:
            raise AttncError(f"{self.name}: k and v sequence lengths differ: {Nk} vs {v.shape[2]}")
        if len({t.device for t in (q, k, v)}) != 1:
            raise AttncError(f"{self.name}: q, k and v must be on the same device")
        cap_args = [a for a in m["args"] if a["name"].startswith("capture")]
        if len(captures) != len(cap_args):
            raise AttncError(f"{self.name}: expected {len(cap_args)} captured tensor(s), got {len(captures)}")
        for i, (c, a) in enumerate(zip(captures, cap_args)):
            self._check(f"capture #{i}", c, a["elem"], a["rank"])
            if c.device != q.device:
                raise AttncError(f"{self.name}: capture #{i} is on {c.device}, q on {q.device}")
        if out is None:
            out = torch.empty(B, Hq, Nq, m["value_dim"], device=q.device, dtype=q.dtype)
        else:
            self._check("out", out, m["dtype"], 4)
            if tuple(out.shape) != (B, Hq, Nq, m["value_dim"]) or out.stride(3) != 1:
                raise AttncError(f"{self.name}: out must be [{B}, {Hq}, {Nq}, {m['value_dim']}] "
                                 "with a contiguous last dim")
        if m["lse"] and lse is None:
            lse = torch.empty(B, Hq, Nq, device=q.device, dtype=torch.float32)
        if B == 0 or Nq == 0:
            return (out, lse) if m["lse"] else out
        with torch.cuda.device(q.device):
            _, fn, mfn = self._functions()
            stream = torch.cuda.current_stream().cuda_stream
            params = []

            def mem(t, rank1=True):
                p = ctypes.c_void_p(t.data_ptr())
                params.extend([p, ctypes.c_void_p(t.data_ptr()), ctypes.c_int64(0)])
                if rank1:
                    n = t.untyped_storage().nbytes() // t.element_size()
                    params.extend([ctypes.c_int64(n), ctypes.c_int64(1)])
                else:
                    params.extend(ctypes.c_int64(s) for s in t.shape)
                    params.extend(ctypes.c_int64(s) for s in t.stride())

            boxes = {a["name"]: a.get("box_rows", 0) for a in m["args"] if a["kind"] == "tensormap"}
            if any(r <= 0 for r in boxes.values()):
                raise AttncError(f"{self.name}: manifest.json: a tensor map argument lacks box_rows")
            for n, t in (("q", q), ("k", k), ("v", v)):
                if n in boxes:  # sm_90a: a TMA map, by value
                    try:
                        params.append(_driver.TensorMap(t.data_ptr(), tuple(t.shape), t.stride(),
                                                        m["dtype"], boxes[n]))
                    except _driver.DriverError as e:
                        raise AttncError(str(e)) from e
                else:
                    mem(t)
            mem(out)
            if m["lse"]:
                mem(lse)
            for c in captures:
                mem(c, rank1=False)
            if mfn is not None:
                bm = m["block_map"]
                slices = {"1": 1, "B": B, "Hq": Hq, "B*Hq": B * Hq}[bm["slices"]]
                nqt = -(-Nq // m["block_q"])
                nkt = -(-Nk // m["block_kv"])
                work = torch.empty(slices * nqt * nkt, dtype=torch.int8, device=q.device)
                mparams = []
                saved, params = params, mparams
                for c in captures:
                    mem(c, rank1=False)
                mem(work)
                mparams.extend(ctypes.c_int64(x) for x in (slices, Nq, Nk))
                params = saved
                try:
                    _driver.launch(mfn, (nqt, nkt, slices), tuple(bm["block"]), mparams, stream)
                except _driver.DriverError as e:
                    raise AttncError(str(e)) from e
                mem(work)
            params.extend(ctypes.c_int64(x) for x in (B, Nq, Nk))
            for t in (q, k, v, out):
                params.extend(ctypes.c_int64(s) for s in t.stride()[:3])
            grid = (-(-Nq // m["block_q"]), Hq, B)
            try:
                _driver.launch(fn, grid, tuple(m["block"]), params, stream,
                               m.get("dynamic_shared_bytes", 0))
            except _driver.DriverError as e:
                raise AttncError(str(e)) from e
            # `work` may be freed now: torch's allocator reuses it only for
            # work ordered after these launches on the same stream.
        return (out, lse) if m["lse"] else out


class Module:
    """The kernels of one AOT directory, by name."""

    def __init__(self, directory):
        path = os.path.join(directory, "manifest.json")
        if not os.path.exists(path):
            raise AttncError(f"{directory} is not an attn-aot directory (no manifest.json)")
        with open(path) as f:
            man = json.load(f)
        if man.get("generator") != "attn-aot":
            raise AttncError(f"{path} was not written by attn-aot")
        self.target = man["target"]
        self.kernels = {k["name"]: Kernel(directory, k, self.target) for k in man["kernels"]}

    def __getitem__(self, name):
        return self.kernels[name]

    def __call__(self, *args, **kwargs):
        if len(self.kernels) != 1:
            raise AttncError(f"the module has {len(self.kernels)} kernels; pick one by name")
        return next(iter(self.kernels.values()))(*args, **kwargs)


def load(directory):
    """Loads an attn-aot output directory (no MLIR needed)."""
    return Module(directory)
