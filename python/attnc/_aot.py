"""Loading attn-aot directories and calling their kernels on torch tensors."""

import ctypes
import json
import os

from . import _driver


class AttncError(ValueError):
    """A call attnc cannot make: wrong shapes, dtypes, devices, strides, or no GPU."""


# manifest.json's schema_version (attnc::abi::kSchemaVersion).
_SCHEMA_VERSION = 1

_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32",
           "i8": "int8", "i32": "int32", "i64": "int64", "i1": "bool"}


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise AttncError("attnc kernels take torch tensors; torch is not installed") from e
    return torch


def _per_context(cache, build):
    """cache[the current CUDA context], made by build() the first time;
    driver errors become AttncError."""
    try:
        ctx = _driver.current_context()
        if not ctx.value:
            raise AttncError("no CUDA context is current (create a CUDA tensor first)")
        if ctx.value not in cache:
            cache[ctx.value] = build()
        return cache[ctx.value]
    except _driver.DriverError as e:
        raise AttncError(str(e)) from e


def _check_tensor(kernel, name, t, dtype, rank):
    """A CUDA torch.Tensor of the manifest's dtype and rank."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise AttncError(f"{kernel}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_cuda:
        raise AttncError(f"{kernel}: {name} must be on a CUDA device, got {t.device}")
    want = getattr(torch, _DTYPES[dtype])
    if t.dtype != want:
        raise AttncError(f"{kernel}: {name} must be {want}, got {t.dtype}")
    if t.dim() != rank:
        raise AttncError(f"{kernel}: {name} must have rank {rank}, got shape {tuple(t.shape)}")


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
        def build():
            mod = self._load_module()
            fn = _driver.get_function(mod, self.name)
            bm = self.meta.get("block_map")
            mfn = _driver.get_function(mod, bm["kernel"]) if bm else None
            if self.meta.get("dynamic_shared_bytes", 0) > 48 * 1024:
                _driver.allow_shared(fn, self.meta["dynamic_shared_bytes"])
            return mod, fn, mfn
        return _per_context(self._modules, build)

    def __call__(self, q, k, v, *captures, out=None, lse=None):
        """o (and lse when the spec returns it) for q [B,Hq,Nq,D], k [B,Hkv,Nk,D],
        v [B,Hkv,Nk,Dv] (any strides with a contiguous last dim)."""
        torch = _torch()
        m = self.meta
        for n, t, d in (("q", q, m["head_dim"]), ("k", k, m["head_dim"]),
                        ("v", v, m["value_dim"])):
            _check_tensor(self.name, n, t, m["dtype"], 4)
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
            _check_tensor(self.name, f"capture #{i}", c, a["elem"], a["rank"])
            if c.device != q.device:
                raise AttncError(f"{self.name}: capture #{i} is on {c.device}, q on {q.device}")
        if out is None:
            out = torch.empty(B, Hq, Nq, m["value_dim"], device=q.device, dtype=q.dtype)
        else:
            _check_tensor(self.name, "out", out, m["dtype"], 4)
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


def _ceil(a, b):
    return -(-a // b)


class LinearKernel:
    """A linear-attention or scan kernel (a cache entry of attnc.compile; see
    docs/linear-gpu.md): the chunked kernel, preceded by the feature kernel
    when the spec has one, launched from the ABI in its manifest."""

    def __init__(self, directory, meta, target):
        self.directory = directory
        self.meta = meta
        self.abi = meta["abi"]
        self.target = target
        self.name = meta["name"]
        self.inputs = meta["inputs"]
        self.outputs = meta["outputs"]
        self.names = meta["input_names"]
        self.checks = meta.get("checks", {})
        self._per_context = {}  # CUDA context -> (module, fn, feature fn, decay)
        self.signature = None  # set by attnc.compile

    def __repr__(self):
        a = self.abi
        return (f"<attnc linear kernel {self.name}: {a['dtype']}, {a['H']} heads, "
                f"D={a['D']} Dv={a['Dv']}, {'causal' if a['causal'] else 'bidirectional'}, "
                f"target {self.target}>")

    def _functions(self, device):
        def build():
            torch = _torch()
            with open(os.path.join(self.directory, self.meta["ptx"]), "rb") as f:
                mod = _driver.load_module(f.read() + b"\0")
            fn = _driver.get_function(mod, self.abi["kernel"])
            if self.abi.get("dynamic_smem", 0) > 48 * 1024:
                _driver.allow_shared(fn, self.abi["dynamic_smem"])
            fk = self.abi.get("feature_kernel")
            phi = _driver.get_function(mod, fk["kernel"]) if fk else None
            decay = None
            if self.meta.get("const_decay"):
                decay = torch.tensor(self.meta["const_decay"], dtype=torch.float32,
                                     device=device)
            return mod, fn, phi, decay
        return _per_context(self._per_context, build)

    def _check_inputs(self, inputs, check_values):
        torch = _torch()
        for t, p in zip(inputs, self.inputs):
            _check_tensor(self.name, p["name"], t, p["dtype"], len(p["shape"]))
        q = inputs[self.names.index("q")]
        B, N = q.shape[0], q.shape[2]
        for t, p in zip(inputs, self.inputs):
            self._check_dims(p["name"], t, p, B, N)
            if t.device != q.device:
                raise AttncError(f"{self.name}: {p['name']} is on {t.device}, q on {q.device}")
        c = self.checks
        for i in c.get("log_gates", []) if check_values else []:
            # One pass over the gates; a NaN fails both comparisons.
            lo, hi = torch.aminmax(inputs[i])
            if not (bool(hi <= 0) and bool(lo > float("-inf"))):
                raise AttncError(f"{self.name}: {self.inputs[i]['name']} holds log-gates, "
                                 "which must be finite and <= 0 (the decay is exp(g))")
        for i, d, n in c.get("lengths", []):
            if inputs[i].shape[d] != n:
                raise AttncError(f"{self.name}: {self.inputs[i]['name']} must have {n} "
                                 f"elements in dim {d} (the spec's token order is for "
                                 f"{n} tokens), got {inputs[i].shape[d]}")
        for a, da, b, db in c.get("equal_dims", []):
            if inputs[a].shape[da] != inputs[b].shape[db]:
                raise AttncError(f"{self.name}: dim {da} of {self.inputs[a]['name']} and dim "
                                 f"{db} of {self.inputs[b]['name']} must be equal")
        for i, d, r, rd, div in c.get("min_extents", []):
            need = _ceil(inputs[r].shape[rd], div)
            if inputs[i].shape[d] < need:
                raise AttncError(f"{self.name}: {self.inputs[i]['name']} needs at least "
                                 f"{need} elements in dim {d}, got {inputs[i].shape[d]}")
        return q, B, N

    def _check_dims(self, name, t, p, B, N):
        # A dynamic dim 0 is the batch, a dynamic dim 2 the sequence length.
        want = [B if (d < 0 and i == 0) else N if (d < 0 and i == 2) else d
                for i, d in enumerate(p["shape"])]
        if list(t.shape) != want:
            shown = ["B" if (d < 0 and i == 0) else "N" if d < 0 else str(d)
                     for i, d in enumerate(p["shape"])]
            raise AttncError(f"{self.name}: {name} must be [{', '.join(shown)}] = {want}, "
                             f"got {list(t.shape)}")
        if name in ("q", "k", "v", "o", "decay") and t.dim() >= 3:
            # Read through (b, h, n) strides with a contiguous last dim.
            if t.dim() == 4 and t.stride(3) != 1:
                raise AttncError(f"{self.name}: {name} needs a contiguous last dimension "
                                 f"(strides {t.stride()})")
            if t.element_size() == 2 and (any(s % 8 for s in t.stride()[:3])
                                          or t.data_ptr() % 16):
                raise AttncError(f"{self.name}: {name} needs strides that are multiples of "
                                 f"8 and 16-byte alignment (strides {t.stride()})")
        elif not t.is_contiguous():
            raise AttncError(f"{self.name}: {name} must be contiguous")

    def __call__(self, *inputs, out=None, final_state=None, check_values=True):
        """o (and the final state when the spec returns it) for the spec's
        inputs in its argument order: q [B, H, N, D], k, v [B, H, N, Dv],
        and the decay, initial state and captured tensors it declares.

        check_values: refuse log-gates above 0 (the kernels assume decays
        exp(g) <= 1). The check reads the gates on the GPU and waits for the
        answer, which stalls the stream; pass False where the gates are
        known to be valid (e.g. logsigmoid outputs) and speed matters."""
        if len(inputs) != len(self.inputs):
            names = ", ".join(p["name"] for p in self.inputs)
            raise AttncError(f"{self.name}: expected {len(self.inputs)} inputs ({names}), "
                             f"got {len(inputs)}")
        torch = _torch()
        q, B, N = self._check_inputs(inputs, check_values)
        outs = []
        for i, p in enumerate(self.outputs):
            given = out if i == 0 else final_state
            shape = [B if (d < 0 and j == 0) else N if d < 0 else d
                     for j, d in enumerate(p["shape"])]
            if given is None:
                given = torch.empty(shape, device=q.device,
                                    dtype=getattr(torch, _DTYPES[p["dtype"]]))
            else:
                _check_tensor(self.name, p["name"], given, p["dtype"], len(p["shape"]))
                self._check_dims("o" if i == 0 else "final_state", given, p, B, N)
            outs.append(given)
        if B == 0 or N == 0:
            return outs[0] if len(outs) == 1 else tuple(outs)
        by_name = dict(zip(self.names, inputs))
        by_name["o"] = outs[0]
        if len(outs) > 1:
            by_name["final_state"] = outs[1]
        scalars = {"B": B, "N": N}
        for n in ("q", "k", "v", "o", "decay"):
            t = by_name.get(n)
            if t is not None and t.dim() >= 3:
                p = "g" if n == "decay" else n
                st = t.stride()
                scalars.update({f"{p}_stride_b": st[0], f"{p}_stride_h": st[1],
                                f"{p}_stride_n": st[2]})
        with torch.cuda.device(q.device):
            _, fn, phi, decay = self._functions(q.device)
            if decay is not None:
                by_name["decay"] = decay
            # Workspaces (phi(q), phi(k): 16-bit) and the bidirectional
            # scratch (f32), freed by torch's allocator in stream order.
            for w in self.abi.get("workspace", []):
                elems = 1
                for d in w["shape"]:
                    elems *= B if d == "B" else N if d == "N" else d
                by_name[w["name"]] = torch.empty(elems * 2, dtype=torch.uint8, device=q.device)
            sc = self.abi.get("scratch")
            if sc:
                per = 1
                for f in sc["elements"].split("*"):
                    f = f.strip()
                    if f not in ("B", "N"):
                        per *= int(f)
                by_name["scratch"] = torch.empty(B * N * per * 4, dtype=torch.uint8,
                                                 device=q.device)
            stream = torch.cuda.current_stream().cuda_stream

            def grid_of(g):
                if isinstance(g, int):
                    return g
                if g == "B":
                    return B
                if g == "H":
                    return self.abi["H"]
                if g.startswith("ceil(N/") and g.endswith(")"):
                    return _ceil(N, int(g[7:-1]))
                raise AttncError(f"{self.name}: manifest.json: unknown grid entry {g!r}")

            def run(f, k, args):
                params = []
                for a in args:
                    n = a["name"]
                    if a["kind"].startswith("memref"):
                        t = by_name.get(n)
                        if t is None:
                            raise AttncError(f"{self.name}: no tensor for kernel argument {n!r}")
                        extent = 1 + sum((d - 1) * s for d, s in zip(t.shape, t.stride()))
                        params += [ctypes.c_void_p(t.data_ptr()), ctypes.c_void_p(t.data_ptr()),
                                   ctypes.c_int64(0), ctypes.c_int64(extent), ctypes.c_int64(1)]
                    else:
                        if n not in scalars:
                            raise AttncError(f"{self.name}: no value for kernel argument {n!r}")
                        params.append(ctypes.c_int64(scalars[n]))
                try:
                    _driver.launch(f, tuple(grid_of(g) for g in k["grid"]), tuple(k["block"]),
                                   params, stream, k.get("dynamic_smem", 0))
                except _driver.DriverError as e:
                    raise AttncError(str(e)) from e

            fk = self.abi.get("feature_kernel")
            if fk:
                run(phi, fk, fk["args"])
            run(fn, self.abi, self.abi["args"])
        return outs[0] if len(outs) == 1 else tuple(outs)


class Module:
    """The kernels of one AOT directory, by name."""

    def __init__(self, directory):
        path = os.path.join(directory, "manifest.json")
        if not os.path.exists(path):
            raise AttncError(f"{directory} is not an attn-aot directory (no manifest.json)")
        with open(path) as f:
            man = json.load(f)
        if man.get("generator") not in ("attn-aot", "attnc"):
            raise AttncError(f"{path} was not written by attn-aot or attnc.compile")
        # The kernel-set ABI's version (docs/runtime.md); linear cache entries
        # of attnc.compile do not carry it yet.
        version = man.get("schema_version", _SCHEMA_VERSION)
        if version != _SCHEMA_VERSION:
            raise AttncError(f"{path}: manifest schema_version {version!r} is not supported "
                             f"(this attnc reads {_SCHEMA_VERSION}); rebuild the directory")
        self.target = man["target"]
        self.kernels = {k["name"]: (LinearKernel if k.get("kind") == "linear" else Kernel)(
            directory, k, self.target) for k in man["kernels"]}

    def __getitem__(self, name):
        return self.kernels[name]

    def __call__(self, *args, **kwargs):
        if len(self.kernels) != 1:
            raise AttncError(f"the module has {len(self.kernels)} kernels; pick one by name")
        return next(iter(self.kernels.values()))(*args, **kwargs)


def load(directory):
    """Loads an attn-aot output directory (no MLIR needed)."""
    return Module(directory)
