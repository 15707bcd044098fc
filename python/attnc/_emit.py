"""The spec writer: traced score/mask mods (python/attnc/_trace.py) as the
regions of an `attn.attention` spec, captured tensors as its arguments.

Reads of captured tensors get a dynamic dimension where every read indexes
it by b, q_idx or kv_idx (possibly divided by a constant), else the
tensor's static size, with the index clamped into range unless the
interval bounds of the index prove it inside (the verifier requires
provably in-bounds reads).
"""

from ._runtime import AttncError
from ._trace import describe_function, float_literal

INF = float("inf")


def value_range(v, heads):
    """(lo, hi) bounds of an integer Value (infinities where unbounded)."""
    if v.op == "arg":
        return (0, heads - 1) if v.attr == "h" else (0, INF)
    if v.op == "const":
        return (v.attr, v.attr)
    if v.op == "unary" and v.attr == "math.absi":
        lo, hi = value_range(v.args[0], heads)
        if lo >= 0:
            return lo, hi
        return (0, max(-lo, hi))
    if v.op == "select":
        a, b = value_range(v.args[1], heads), value_range(v.args[2], heads)
        return min(a[0], b[0]), max(a[1], b[1])
    if v.op == "bin":
        a, b = (value_range(x, heads) for x in v.args)
        op = v.attr
        if op == "arith.addi":
            return a[0] + b[0], a[1] + b[1]
        if op == "arith.subi":
            return a[0] - b[1], a[1] - b[0]
        if op == "arith.minsi":
            return min(a[0], b[0]), min(a[1], b[1])
        if op == "arith.maxsi":
            return max(a[0], b[0]), max(a[1], b[1])
        if op in ("arith.divui", "arith.remui") and b[0] == b[1] and b[0] > 0 and a[0] >= 0:
            if op == "arith.remui":
                return 0, min(a[1], b[0] - 1)
            return a[0] // b[0], a[1] // b[0] if a[1] != INF else INF
    return (-INF, INF)


def _dynamic_index(v):
    """Whether a read index may address a dynamic dimension: b, q_idx,
    kv_idx, or one of them divided by a positive constant (divui)."""
    if v.op == "arg" and v.attr in ("b", "i", "j"):
        return True
    return (v.op == "bin" and v.attr == "arith.divui" and _dynamic_index(v.args[0])
            and v.args[1].op == "const" and v.args[1].attr > 0)


def read_nodes(root):
    """Every read node reachable from root."""
    out, seen, stack = [], set(), [root]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if v.op == "read":
            out.append(v)
        stack.extend(v.args)
    return out


class CaptureArg:
    """A captured tensor as an argument of the spec's function."""

    def __init__(self, capture, name, dims):
        self.capture = capture
        self.name = name
        self.dims = dims  # -1 for dynamic

    @property
    def type(self):
        dims = "x".join("?" if d < 0 else str(d) for d in self.dims)
        return f"tensor<{dims + 'x' if dims else ''}{self.capture.elem}>"


def plan_captures(roots):
    """The spec arguments for the captures read from `roots`: a dim is
    dynamic when every read indexes it by b, q_idx or kv_idx (possibly
    divided by a constant), else static (the tensor's size)."""
    order, reads = [], {}
    for root in roots:
        for r in read_nodes(root):
            c = r.attr
            if id(c) not in reads:
                order.append(c)
                reads[id(c)] = []
            reads[id(c)].append(r)
    args, used = {}, set()
    for c in order:
        dims = []
        for d, size in enumerate(c.shape):
            dyn = all(_dynamic_index(r.args[d]) for r in reads[id(c)])
            dims.append(-1 if dyn else size)
        name = _ssa_name(c.hint, used)
        args[id(c)] = CaptureArg(c, name, dims)
    return [args[id(c)] for c in order]


def _ssa_name(hint, used):
    base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in hint) or "capture"
    if base[0].isdigit() or base in ("q", "k", "v", "s", "b", "h", "i", "j", "o", "lse"):
        base = "c_" + base
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}{n}"
    used.add(name)
    return name


class RegionEmitter:
    """Writes one region's body: SSA lines for the graph under a root, with
    structurally equal nodes emitted once. width: None for scalar regions
    (attn.attention), or the vector length of an elementwise feature map
    (every value is then a vector<width x T>)."""

    def __init__(self, args, capture_args, heads, indent, width=None):
        self.args = args  # arg name -> SSA name
        self.capture_args = {id(a.capture): a for a in capture_args}
        self.heads = heads
        self.indent = indent
        self.width = width
        self.lines = []
        self.names = {}   # id(Value) -> SSA name
        self.keys = {}    # structural key -> SSA name
        self.count = 0

    def ty(self, t):
        """The MLIR type of a value of scalar type t."""
        return t if self.width is None else f"vector<{self.width}x{t}>"

    def _new(self, line_rhs, key):
        name = self.keys.get(key)
        if name is not None:
            return name
        name = f"%{self.count}"
        self.count += 1
        self.lines.append(f"{self.indent}{name} = {line_rhs}")
        self.keys[key] = name
        return name

    def const(self, x, type_):
        if type_ == "i1":
            lit = "true" if x else "false"
        elif type_ == "f32":
            lit = float_literal(x)
        else:
            lit = str(int(x))
        if self.width is not None:
            return self._new(f"arith.constant dense<{lit}> : {self.ty(type_)}", ("c", lit, type_))
        if type_ == "i1":
            return self._new(f"arith.constant {lit}", ("c", lit, type_))
        return self._new(f"arith.constant {lit} : {type_}", ("c", lit, type_))

    def emit(self, v):
        """The SSA name of v (emitting what it needs first)."""
        done = self.names.get(id(v))
        if done is not None:
            return done
        name = self._emit(v)
        self.names[id(v)] = name
        return name

    def _emit(self, v):
        if v.op == "arg":
            return self.args[v.attr]
        if v.op == "const":
            return self.const(v.attr, v.type)
        ops = [self.emit(a) for a in v.args] if v.op != "read" else None
        T = self.ty(v.type)
        if v.op == "bin":
            return self._new(f"{v.attr} {ops[0]}, {ops[1]} : {T}", ("bin", v.attr, *ops))
        if v.op in ("cmpi", "cmpf"):
            t = self.ty(v.args[0].type)
            return self._new(f"arith.{v.op} {v.attr}, {ops[0]}, {ops[1]} : {t}",
                             (v.op, v.attr, *ops, t))
        if v.op == "select":
            types_ = T if self.width is None else f"{self.ty('i1')}, {T}"
            return self._new(f"arith.select {ops[0]}, {ops[1]}, {ops[2]} : {types_}",
                             ("select", *ops, v.type))
        if v.op == "unary":
            return self._new(f"{v.attr} {ops[0]} : {T}", ("unary", v.attr, *ops))
        if v.op == "cast":
            src = self.ty(v.args[0].type)
            return self._new(f"{v.attr} {ops[0]} : {src} to {T}", ("cast", v.attr, *ops, T))
        if v.op == "read":
            return self._read(v)
        raise AttncError(f"internal: unknown traced op {v.op}")

    def _read(self, v):
        carg = self.capture_args[id(v.attr)]
        idx = []
        for d, (i, size) in enumerate(zip(v.args, carg.dims)):
            name = self.emit(i)
            if size >= 0:
                lo, hi = value_range(i, self.heads)
                if lo < 0:
                    name = self._new(f"arith.maxsi {name}, {self.const(0, 'index')} : index",
                                     ("bin", "arith.maxsi", name, "0"))
                if hi > size - 1:
                    name = self._new(f"arith.minsi {name}, {self.const(size - 1, 'index')} : index",
                                     ("bin", "arith.minsi", name, str(size - 1)))
            idx.append(name)
        return self._new(f"tensor.extract %{carg.name}[{', '.join(idx)}] : {carg.type}",
                         ("read", carg.name, *idx))


def emit_region(root, args, capture_args, heads, indent, width=None):
    """The lines of a region body that yields root."""
    em = RegionEmitter(args, capture_args, heads, indent, width)
    result = em.emit(root)
    em.lines.append(f"{indent}attn.yield {result} : {em.ty(root.type)}")
    return em.lines


def _tensor(dims, elem):
    return "tensor<" + "x".join("?" if d is None else str(d) for d in dims) + f"x{elem}>"


def emit_spec(name, score, mask, Hq, Hkv, D, Dv, dtype, scale=None, return_lse=False,
              queries_at_end=False):
    """The spec text of one attn.attention with the traced regions, and the
    CaptureArgs (its arguments after q, k, v). queries_at_end: the queries
    are the last Nq key positions (the op's `queries_at_end`)."""
    roots = [m.result for m in (score, mask) if m is not None]
    cargs = plan_captures(roots)
    tq = _tensor((None, Hq, None, D), dtype)
    tk = _tensor((None, Hkv, None, D), dtype)
    tv = _tensor((None, Hkv, None, Dv), dtype)
    to = _tensor((None, Hq, None, Dv), dtype)
    tl = f"tensor<?x{Hq}x?xf32>"
    params = [f"%q: {tq}", f"%k: {tk}", f"%v: {tv}"] + [f"%{a.name}: {a.type}" for a in cargs]
    results = f"({to}, {tl})" if return_lse else to
    mods = ", ".join(f"{m.role}={describe_function(m.fn).split(' (')[0]}"
                     for m in (score, mask) if m is not None) or "none"
    lines = [f"// attnc.trace: {mods}",
             f"func.func @{name}({', '.join(params)}) -> {results} {{"]
    head = f"  %o{', %lse' if return_lse else ''} = attn.attention %q, %k, %v"
    if cargs:
        head += (f" captures({', '.join('%' + a.name for a in cargs)} : "
                 f"{', '.join(a.type for a in cargs)})")
    if queries_at_end:
        head += " queries_at_end"
    if scale is not None:
        head += f" scale = {float_literal(scale)}"
    lines.append(head)
    if score is not None:
        lines.append("    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {")
        lines += emit_region(score.result, {"s": "%s", "b": "%b", "h": "%h", "i": "%i",
                                            "j": "%j"}, cargs, Hq, "      ")
        lines.append("    }")
    if mask is not None:
        lines.append("    mask(%b: index, %h: index, %i: index, %j: index) {")
        lines += emit_region(mask.result, {"b": "%b", "h": "%h", "i": "%i", "j": "%j"},
                             cargs, Hq, "      ")
        lines.append("    }")
    lines.append(f"    : {tq}, {tk}, {tv} -> {to}{', ' + tl if return_lse else ''}")
    if return_lse:
        lines.append(f"  return %o, %lse : {to}, {tl}")
    else:
        lines.append(f"  return %o : {to}")
    lines.append("}")
    return "\n".join(lines) + "\n", cargs
