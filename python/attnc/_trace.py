"""The tracer behind attnc.trace and attnc.flex_attention.

A FlexAttention `score_mod(score, b, h, q_idx, kv_idx)` or
`mask_mod(b, h, q_idx, kv_idx)` is called once with symbolic `Value`
proxies. Every operation on them (Python operators, `torch.*` functions
through `__torch_function__`, numpy ufuncs through `__array_ufunc__`,
`math.*` functions, the builtins `min`/`max`/`abs`) records a node; indexing
a captured tensor (an array or tensor in the function's closure, defaults or
globals) records a read of that capture. `_emit.emit_spec` turns the recorded
graphs into an `attn.attention` spec (python/attnc/_emit.py).

Anything that cannot be recorded raises AttncError naming the operation and
the file:line of the user's code: Python control flow on a traced value
(`__bool__`), unsupported functions, slicing, reductions and other
data-dependent shapes.
"""

import builtins
import linecache
import math
import os
import struct
import sys
import threading
import types

from ._runtime import AttncError

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_lock = threading.RLock()
_state = threading.local()  # .ctx: the _TraceContext of the running trace

INT_TYPES = ("index", "i8", "i32", "i64")


# -- locations -----------------------------------------------------------------

_user_files = {}  # (filename, library dirs) -> whether it is the user's code


def _library_dirs():
    """attnc's, numpy's and torch's package directories (those imported)."""
    dirs = [_PKG_DIR]
    for name in ("numpy", "torch"):
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(mod.__file__)))
    return tuple(dirs)


def _is_user_file(filename, lib_dirs):
    key = (filename, lib_dirs)
    known = _user_files.get(key)
    if known is None:
        if filename.startswith("<__array_function__"):
            known = False
        else:
            path = os.path.abspath(filename) if not filename.startswith("<") else filename
            known = not any(path.startswith(d + os.sep) for d in lib_dirs)
        _user_files[key] = known
    return known


def _describe(filename, lineno):
    text = linecache.getline(filename, lineno).strip()
    return f"{filename}:{lineno}" + (f": {text}" if text else "")


def user_frame():
    """(file, line) of the innermost frame outside attnc, numpy and torch
    (the user's mod), or None."""
    lib_dirs = _library_dirs()
    frame = sys._getframe(1)
    while frame is not None:
        if _is_user_file(frame.f_code.co_filename, lib_dirs):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


def describe_location(loc):
    """'file:line: source' of a user_frame() result ('' for None)."""
    return _describe(*loc) if loc else ""


def user_location():
    """'file:line: source' of the user's innermost frame, or ''."""
    return describe_location(user_frame())


def _traceback_location(tb):
    """The innermost user frame of a traceback."""
    lib_dirs = _library_dirs()
    found = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if _is_user_file(code.co_filename, lib_dirs):
            found = _describe(code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


class TraceError(AttncError):
    """An operation the tracer cannot record (raised inside a trace; the
    trace adds which mod was being traced)."""


def _fail(what):
    loc = user_location()
    raise TraceError(what + (f"\n  at {loc}" if loc else ""))


# -- values ----------------------------------------------------------------------

def f32_round(x):
    """x rounded to the nearest float32."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def float_literal(x):
    """An MLIR f32 literal for x (hex for infinities and NaN)."""
    x = f32_round(x)
    if math.isnan(x):
        return "0x7FC00000"
    if math.isinf(x):
        return "0x7F800000" if x > 0 else "0xFF800000"
    return "%.9e" % x


class Value:
    """A traced scalar: one node of the recorded graph.

    op: 'arg' (attr: s, b, h, i, j), 'const' (attr: the value), 'bin'
    (attr: the arith op), 'cmpi'/'cmpf' (attr: the predicate), 'select',
    'unary' (attr: the op), 'cast' (attr: the op), 'read' (attr: the
    _Capture; args: the indices). type: index, i1, i8, i32, i64 or f32.
    """

    __slots__ = ("op", "args", "attr", "type", "loc", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, op, args, attr, type_):
        self.op = op
        self.args = tuple(args)
        self.attr = attr
        self.type = type_
        self.loc = user_frame() if op not in ("arg", "const") else None

    def __repr__(self):
        if self.op == "arg":
            return f"<traced {self.attr}: {self.type}>"
        return f"<traced {self.op} {self.attr}: {self.type}>"

    __hash__ = object.__hash__

    # -- Python control flow and conversions: not traceable -------------------

    def __bool__(self):
        _fail(f"Python control flow on a traced value ({self._name()}): `if`, `while`, "
              "`and`, `or`, `not`, chained comparisons and bool() need a concrete value; "
              "use torch.where(cond, a, b), & | ~ instead")

    def __float__(self):
        _fail(f"float() of a traced value ({self._name()}): the value is only known inside "
              "the kernel; use torch/numpy/math functions on it or .to(torch.float32)")

    def __int__(self):
        _fail(f"int() of a traced value ({self._name()}): the value is only known inside "
              "the kernel")

    def __index__(self):
        _fail(f"a traced value ({self._name()}) used as a Python index (indexing a list, a "
              "range or an object attnc did not capture): index captured tensors, which "
              "attnc finds in the function's closure, defaults and globals")

    def __len__(self):
        _fail(f"len() of a traced value ({self._name()}): traced values are scalars")

    def __iter__(self):
        _fail(f"iterating over a traced value ({self._name()}): traced values are scalars")

    def _name(self):
        if self.op == "arg":
            return {"s": "score", "b": "b", "h": "h", "i": "q_idx", "j": "kv_idx",
                    "x": "x"}[self.attr]
        what = {"cmpi": "a comparison", "cmpf": "a comparison", "read": "a captured-tensor read",
                "const": "a constant"}.get(self.op, "an expression")
        return f"{what} of type {self.type}"

    # -- tensor-like attributes -----------------------------------------------

    @property
    def shape(self):
        return ()

    @property
    def ndim(self):
        return 0

    @property
    def device(self):
        return None

    def dim(self):
        return 0

    def size(self, dim=None):
        return () if dim is None else _fail("size(dim) of a traced scalar")

    # -- operators --------------------------------------------------------------

    def __add__(self, o): return binary("add", self, o)
    def __radd__(self, o): return binary("add", o, self)
    def __sub__(self, o): return binary("sub", self, o)
    def __rsub__(self, o): return binary("sub", o, self)
    def __mul__(self, o): return binary("mul", self, o)
    def __rmul__(self, o): return binary("mul", o, self)
    def __truediv__(self, o): return binary("truediv", self, o)
    def __rtruediv__(self, o): return binary("truediv", o, self)
    def __floordiv__(self, o): return binary("floordiv", self, o)
    def __rfloordiv__(self, o): return binary("floordiv", o, self)
    def __mod__(self, o): return binary("mod", self, o)
    def __rmod__(self, o): return binary("mod", o, self)
    def __and__(self, o): return binary("and", self, o)
    def __rand__(self, o): return binary("and", o, self)
    def __or__(self, o): return binary("or", self, o)
    def __ror__(self, o): return binary("or", o, self)
    def __xor__(self, o): return binary("xor", self, o)
    def __rxor__(self, o): return binary("xor", o, self)
    def __lshift__(self, o): return binary("shl", self, o)
    def __rshift__(self, o): return binary("shr", self, o)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __neg__(self): return neg(self)
    def __pos__(self): return self
    def __abs__(self): return absolute(self)
    def __invert__(self): return invert(self)
    def __eq__(self, o): return compare("eq", self, o)
    def __ne__(self, o): return compare("ne", self, o)
    def __lt__(self, o): return compare("lt", self, o)
    def __le__(self, o): return compare("le", self, o)
    def __gt__(self, o): return compare("gt", self, o)
    def __ge__(self, o): return compare("ge", self, o)

    # -- torch.Tensor-style methods ----------------------------------------------

    def __getattr__(self, name):
        if name.startswith("__"):  # protocol probes (numpy's __array_interface__, ...)
            raise AttributeError(name)
        fn = METHODS.get(name)
        if fn is None:
            _fail(f"`.{name}` on a traced value ({self._name()}) is not supported by "
                  "attnc's tracer")
        return lambda *a, **k: fn(self, *a, **k)

    # -- torch and numpy dispatch ---------------------------------------------------

    @classmethod
    def __torch_function__(cls, func, types_=(), args=(), kwargs=None):
        return torch_dispatch(func, args, kwargs or {})

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = getattr(ufunc, "__name__", str(ufunc))
        fn = NUMPY_UFUNCS.get(name)
        if method != "__call__" or fn is None or kwargs:
            _fail(f"numpy.{name}{'' if method == '__call__' else '.' + method} is not "
                  "supported by attnc's tracer")
        return fn(*inputs)

    def __array_function__(self, func, types_, args, kwargs):
        name = getattr(func, "__name__", str(func))
        fn = NUMPY_FUNCTIONS.get(name)
        if fn is None:
            _fail(f"numpy.{name} is not supported by attnc's tracer")
        return fn(*args, **kwargs)


def arg(name, type_="index"):
    return Value("arg", (), name, type_)


def const(x, type_):
    if type_ == "i1":
        x = bool(x)
    elif type_ in INT_TYPES:
        x = int(x)
    else:
        x = f32_round(x)
    return Value("const", (), x, type_)


# -- captured tensors ----------------------------------------------------------------

_NUMPY_TO_IR = {"bool": "i8", "int8": "i8", "uint8": "i32", "int16": "i32", "uint16": "i32",
                "int32": "i32", "uint32": "i64", "int64": "i64", "uint64": "i64",
                "float16": "f32", "bfloat16": "f32", "float32": "f32", "float64": "f32"}


def is_array(x):
    """A numpy array or torch tensor (without importing either)."""
    t = type(x)
    mod = t.__module__ or ""
    return (mod == "numpy" and t.__name__ == "ndarray") or (
        mod.startswith("torch") and "torch" in sys.modules
        and isinstance(x, sys.modules["torch"].Tensor) and not isinstance(x, Value))


def _dtype_name(x):
    return str(x.dtype).replace("torch.", "")


class _Capture:
    """One captured tensor: the object, its shape and element type."""

    def __init__(self, obj, hint):
        self.obj = obj
        self.hint = hint
        self.shape = tuple(int(d) for d in obj.shape)
        self.source_dtype = _dtype_name(obj)
        ir = _NUMPY_TO_IR.get(self.source_dtype)
        if ir is None:
            _fail(f"captured tensor '{hint}' has dtype {self.source_dtype}, which attnc "
                  "cannot capture (bool, integer and floating types can be)")
        self.elem = ir  # the element type in the spec
        self.is_bool = self.source_dtype == "bool"


class Captured:
    """Stands in for a captured array or tensor while a mod is traced:
    indexing it by traced indices records a read."""

    def __init__(self, capture, prefix=()):
        self._capture = capture
        self._prefix = prefix

    @property
    def shape(self):
        return self._capture.shape[len(self._prefix):]

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def dtype(self):
        return self._capture.obj.dtype

    @property
    def device(self):
        return getattr(self._capture.obj, "device", None)

    def dim(self):
        return self.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self):
        if not self.shape:
            _fail(f"len() of the 0-d captured tensor '{self._capture.hint}'")
        return self.shape[0]

    def __repr__(self):
        return f"<captured tensor {self._capture.hint} {list(self.shape)}>"

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        name = self._capture.hint
        for x in index:
            if x is None or x is Ellipsis or isinstance(x, slice):
                _fail(f"slicing the captured tensor '{name}' ({x!r}): only scalar reads "
                      "t[i, j, ...] with one traced or integer index per dimension can be "
                      "traced (a slice has a data-dependent shape in the kernel)")
        full = self._prefix + index
        if len(full) > len(self._capture.shape):
            _fail(f"captured tensor '{name}' of shape {list(self._capture.shape)} indexed "
                  f"with {len(full)} indices")
        sizes = self._capture.shape[len(self._prefix):]
        idx = tuple(_as_index(_wrap_negative(x, size, name), name) for x, size in zip(index, sizes))
        if len(full) < len(self._capture.shape):
            return Captured(self._capture, self._prefix + idx)
        return read(self._capture, self._prefix + idx)

    def _scalar(self):
        if self.ndim != 0:
            _fail(f"arithmetic on the whole captured tensor '{self._capture.hint}' of shape "
                  f"{list(self.shape)}: index it with traced indices, e.g. t[h, q_idx]")
        return read(self._capture, self._prefix)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _fail(f"`.{name}` on the captured tensor '{self._capture.hint}': only scalar reads "
              "(t[i, ...]) of captured tensors can be traced (reductions, views and "
              "shape changes are data-dependent)")

    def __bool__(self):
        _fail(f"Python control flow on the captured tensor '{self._capture.hint}'")

    @classmethod
    def __torch_function__(cls, func, types_=(), args=(), kwargs=None):
        return torch_dispatch(func, args, kwargs or {})

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return Value.__array_ufunc__(None, ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        return Value.__array_function__(None, func, types_, args, kwargs)


def _binop_on_scalar(name):
    def op(self, *rest):
        return getattr(self._scalar(), name)(*rest)
    op.__name__ = name
    return op


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
              "__rmod__", "__and__", "__rand__", "__or__", "__ror__", "__xor__",
              "__pow__", "__neg__", "__abs__", "__invert__", "__eq__", "__ne__", "__lt__",
              "__le__", "__gt__", "__ge__"):
    setattr(Captured, _name, _binop_on_scalar(_name))
Captured.__hash__ = object.__hash__


def read(capture, indices):
    """A read of a captured tensor (a bool tensor reads as i8 != 0)."""
    v = Value("read", indices, capture, capture.elem)
    if capture.is_bool:
        v = Value("cmpi", (v, const(0, "i8")), "ne", "i1")
    return v


def _wrap_negative(x, size, name):
    """A Python integer index as Python reads it (-1 is the last element);
    traced indices are left alone (their reads are clamped, see _emit)."""
    if isinstance(x, (Value, Captured)) or isinstance(x, bool) or not hasattr(x, "__index__"):
        return x
    if is_array(x):
        return x
    i = x.__index__()
    if not -size <= i < size:
        _fail(f"index {i} is out of range for a dimension of size {size} of the captured "
              f"tensor '{name}'")
    return i + size if i < 0 else i


def _as_index(x, name):
    if isinstance(x, (Value, Captured)):
        v = x._scalar() if isinstance(x, Captured) else x
        if v.type == "f32" or v.type == "i1":
            _fail(f"captured tensor '{name}' indexed by a {v.type} value")
        return cast(v, "index")
    if is_array(x) and _ndim(x) == 0:
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, int) and not hasattr(x, "__index__"):
        _fail(f"captured tensor '{name}' indexed by {x!r}")
    return const(int(x.__index__()), "index")


def _ndim(x):
    return len(x.shape)


class _TraceContext:
    """Captures found while tracing (by the identity of the object)."""

    def __init__(self):
        self.captures = {}   # id(obj) -> _Capture
        self.wrappers = {}   # id(obj) -> Captured
        self.functions = {}  # id(fn) -> its rebound copy

    def capture(self, obj, hint):
        w = self.wrappers.get(id(obj))
        if w is None:
            c = self.captures[id(obj)] = _Capture(obj, hint)
            w = self.wrappers[id(obj)] = Captured(c)
        return w


def _context():
    ctx = getattr(_state, "ctx", None)
    if ctx is None:
        raise AttncError("internal: a traced value was used outside attnc.trace")
    return ctx


# -- conversions ----------------------------------------------------------------------

def to_value(x, like=None):
    """A Value for x: Values as they are, Python and numpy scalars and 0-d
    arrays made at trace time as constants (of `like`'s kind when given)."""
    if isinstance(x, Value):
        return x
    if isinstance(x, Captured):
        return x._scalar()
    if is_array(x):
        if _ndim(x) != 0:
            _fail(f"a whole tensor of shape {list(x.shape)} in a traced expression: only "
                  "scalar reads of captured tensors (t[h, q_idx]) can be traced")
        x = x.item()
    elif type(x).__module__ == "numpy" and hasattr(x, "item"):
        x = x.item()
    if isinstance(x, bool):
        return const(x, "i1" if like is None or like.type == "i1" else
                     ("f32" if like.type == "f32" else like.type))
    if isinstance(x, int):
        if like is not None and like.type in INT_TYPES + ("f32",):
            return const(x, like.type)
        return const(x, "index")
    if isinstance(x, float):
        return const(x, "f32")
    _fail(f"{type(x).__name__} value {x!r} in a traced expression")


def cast(v, to):
    """v converted to type `to` (index, i1, i8, i32, i64, f32)."""
    if v.type == to:
        return v
    if v.op == "const":
        if to == "i1":
            return const(v.attr != 0, "i1")
        return const(v.attr, to)
    if to == "i1":
        zero = const(0, v.type)
        return Value("cmpf" if v.type == "f32" else "cmpi", (v, zero),
                     "une" if v.type == "f32" else "ne", "i1")
    if v.type == "i1":
        if to == "f32":
            return Value("cast", (v,), "arith.uitofp", "f32")
        if to == "index":
            return Value("cast", (v,), "arith.index_castui", "index")
        return Value("cast", (v,), "arith.extui", to)
    if to == "f32":
        if v.type == "index":
            v = Value("cast", (v,), "arith.index_cast", "i64")
        return Value("cast", (v,), "arith.sitofp", "f32")
    if v.type == "f32":
        w = Value("cast", (v,), "arith.fptosi", "i64")
        return cast(w, to)
    if v.type == "index" or to == "index":
        return Value("cast", (v,), "arith.index_cast", to)
    bits = {"i8": 8, "i32": 32, "i64": 64}
    return Value("cast", (v,), "arith.extsi" if bits[to] > bits[v.type] else "arith.trunci", to)


def _unify(a, b):
    """Two Values of one type: ints of different widths meet at index, ints
    and floats at f32, bools with numbers at the number's type."""
    if not isinstance(a, (Value, Captured)) and not isinstance(b, (Value, Captured)):
        a = to_value(a)
    if isinstance(a, (Value, Captured)):
        a = to_value(a)
        b = to_value(b, like=a)
    else:
        b = to_value(b)
        a = to_value(a, like=b)
    if a.type == b.type:
        return a, b
    if "f32" in (a.type, b.type):
        return cast(a, "f32"), cast(b, "f32")
    if a.type == "i1":
        return cast(a, b.type), b
    if b.type == "i1":
        return a, cast(b, a.type)
    return cast(a, "index"), cast(b, "index")


# -- operations -----------------------------------------------------------------------

_INT_BIN = {"add": "arith.addi", "sub": "arith.subi", "mul": "arith.muli",
            "and": "arith.andi", "or": "arith.ori", "xor": "arith.xori",
            "shl": "arith.shli", "shr": "arith.shrsi", "min": "arith.minsi",
            "max": "arith.maxsi"}
_FLOAT_BIN = {"add": "arith.addf", "sub": "arith.subf", "mul": "arith.mulf",
              "truediv": "arith.divf", "min": "arith.minimumf", "max": "arith.maximumf"}


def _folds(name, a, b):
    """Both constants: the Python result (None when it does not fold)."""
    if a.op != "const" or b.op != "const" or a.type == "f32" or b.type == "f32":
        return None
    x, y = a.attr, b.attr
    if name in ("floordiv", "mod") and y == 0:
        return None
    fns = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
           "floordiv": lambda: x // y, "mod": lambda: x % y, "and": lambda: x & y,
           "or": lambda: x | y, "xor": lambda: x ^ y, "min": lambda: min(x, y),
           "max": lambda: max(x, y)}
    f = fns.get(name)
    return None if f is None else const(f(), a.type)


def binary(name, a, b):
    """a <name> b with Python/torch semantics: `/` is true division, `//`
    floors, `%` takes the divisor's sign, & | ^ are logical on bools."""
    a, b = _unify(a, b)
    if name == "truediv" and a.type != "f32":
        a, b = cast(a, "f32"), cast(b, "f32")
    folded = _folds(name, a, b)
    if folded is not None:
        return folded
    if a.type == "f32":
        op = _FLOAT_BIN.get(name)
        if op is None:
            _fail(f"`{name}` on floating-point values is not supported by attnc's tracer "
                  "(// and % are for integer indices; bitwise ops for ints and bools)")
        return Value("bin", (a, b), op, "f32")
    if a.type == "i1" and name not in ("and", "or", "xor", "min", "max"):
        a, b = cast(a, "index"), cast(b, "index")
    if a.type == "i1" and name in ("and", "or"):
        for x, y in ((a, b), (b, a)):  # x & true = x, x | false = x
            if y.op == "const":
                return x if y.attr == (name == "and") else y
    if name in ("floordiv", "mod"):
        return _int_division(name, a, b)
    return Value("bin", (a, b), _INT_BIN[name], a.type)


def _int_division(name, a, b):
    if b.op == "const" and b.attr == 0:
        _fail("integer division or remainder by the constant 0")
    if b.op == "const" and b.attr > 0 and is_nonneg(a):
        return Value("bin", (a, b), "arith.divui" if name == "floordiv" else "arith.remui", a.type)
    if name == "floordiv":
        return Value("bin", (a, b), "arith.floordivsi", a.type)
    # Python's a % b (the sign of b): ((a rem b) + b) rem b.
    r = Value("bin", (a, b), "arith.remsi", a.type)
    r = Value("bin", (r, b), "arith.addi", a.type)
    return Value("bin", (r, b), "arith.remsi", a.type)


def is_nonneg(v):
    """Whether v is provably >= 0 (b, h, q_idx, kv_idx and what keeps them so)."""
    if v.op == "arg":
        return v.attr != "s"
    if v.op == "const":
        return v.type != "f32" and v.attr >= 0
    if v.op == "bin":
        if v.attr in ("arith.addi", "arith.muli", "arith.divui", "arith.remui", "arith.minsi",
                      "arith.andi", "arith.shrsi"):
            if v.attr == "arith.andi":
                return any(is_nonneg(x) for x in v.args)
            return all(is_nonneg(x) for x in v.args)
        if v.attr == "arith.maxsi":
            return any(is_nonneg(x) for x in v.args)
    if v.op == "unary" and v.attr == "math.absi":
        return True
    if v.op == "select":
        return is_nonneg(v.args[1]) and is_nonneg(v.args[2])
    if v.op == "cast" and v.attr in ("arith.index_castui", "arith.extui"):
        return True
    return False


_PREDICATES = {"eq": ("eq", "oeq"), "ne": ("ne", "une"), "lt": ("slt", "olt"),
               "le": ("sle", "ole"), "gt": ("sgt", "ogt"), "ge": ("sge", "oge")}


def compare(name, a, b):
    a, b = _unify(a, b)
    if a.op == "const" and b.op == "const" and a.type != "f32":
        import operator
        return const(getattr(operator, name)(a.attr, b.attr), "i1")
    ipred, fpred = _PREDICATES[name]
    if a.type == "f32":
        return Value("cmpf", (a, b), fpred, "i1")
    if a.type == "i1" and name not in ("eq", "ne"):
        a, b = cast(a, "index"), cast(b, "index")
    return Value("cmpi", (a, b), ipred, "i1")


def neg(a):
    a = to_value(a)
    if a.type == "f32":
        return Value("unary", (a,), "arith.negf", "f32")
    return binary("sub", 0, a)


def absolute(a):
    a = to_value(a)
    if a.type == "f32":
        return Value("unary", (a,), "math.absf", "f32")
    if a.type == "i1":
        return a
    return Value("unary", (a,), "math.absi", a.type)


def invert(a):
    a = to_value(a)
    if a.type == "f32":
        _fail("~ on a floating-point value")
    if a.type == "i1":
        return binary("xor", a, True)
    return binary("xor", a, -1)


def logical_not(a):
    return invert(cast(to_value(a), "i1"))


def _logical(name):
    def op(a, b):
        return binary(name, cast(to_value(a), "i1"), cast(to_value(b), "i1"))
    return op


def _float_unary(mlir_op):
    def op(a):
        a = cast(to_value(a), "f32")
        return Value("unary", (a,), mlir_op, "f32")
    op.__name__ = mlir_op.split(".")[-1]
    return op


tanh = _float_unary("math.tanh")
exp = _float_unary("math.exp")
exp2 = _float_unary("math.exp2")
log = _float_unary("math.log")
log2 = _float_unary("math.log2")
sqrt = _float_unary("math.sqrt")
rsqrt = _float_unary("math.rsqrt")
sin = _float_unary("math.sin")
cos = _float_unary("math.cos")


def sigmoid(a):
    a = cast(to_value(a), "f32")
    return binary("truediv", 1.0, binary("add", 1.0, exp(neg(a))))


def square(a):
    return binary("mul", a, a)


def power(a, b):
    """a ** b for a constant integer exponent 0..8, 0.5 (sqrt) or -1."""
    if isinstance(b, Value) or isinstance(b, Captured):
        _fail("x ** y with a traced exponent is not supported by attnc's tracer")
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        _fail("c ** x (a traced exponent) is not supported by attnc's tracer; use "
              "torch.exp(x * math.log(c))")
    a = to_value(a)
    if b == 0.5:
        return sqrt(a)
    if b == -1:
        return binary("truediv", 1.0, a)
    if float(b) != int(b) or not 0 <= int(b) <= 8:
        _fail(f"x ** {b!r}: attnc's tracer takes constant exponents 0..8, 0.5 and -1")
    if int(b) == 0:
        return to_value(1, like=a)
    result = a
    for _ in range(int(b) - 1):
        result = binary("mul", result, a)
    return result


def minimum(a, b):
    return binary("min", a, b)


def maximum(a, b):
    return binary("max", a, b)


def where(cond, a, b):
    """torch.where / numpy.where: cond ? a : b."""
    cond = cast(to_value(cond), "i1")
    a, b = _unify(a, b)
    if cond.op == "const":
        return a if cond.attr else b
    return Value("select", (cond, a, b), None, a.type)


def clamp(x, min=None, max=None):
    """torch.clamp(x, min, max) / numpy.clip."""
    r = x
    if min is not None:
        r = maximum(r, min)
    if max is not None:
        r = minimum(r, max)
    return to_value(r)


def floor_divide(a, b):
    return binary("floordiv", a, b)


def remainder(a, b):
    return binary("mod", a, b)


def divide(a, b, rounding_mode=None):
    if rounding_mode is None:
        return binary("truediv", a, b)
    if rounding_mode == "floor":
        return binary("floordiv", a, b)
    if rounding_mode == "trunc":
        return _truncating_division(a, b)
    _fail(f"torch.div(..., rounding_mode={rounding_mode!r}) is not supported by attnc's "
          "tracer (None, 'floor' and 'trunc' are)")


def _truncating_division(a, b):
    """Integer division rounding toward zero (arith.divsi; divui when both
    are provably >= 0)."""
    a, b = _unify(a, b)
    if a.type in ("f32", "i1"):
        _fail("torch.div(..., rounding_mode='trunc') on non-integer values is not supported "
              "by attnc's tracer")
    if b.op == "const" and b.attr == 0:
        _fail("integer division by the constant 0")
    if b.op == "const" and b.attr > 0 and is_nonneg(a):
        return Value("bin", (a, b), "arith.divui", a.type)
    return Value("bin", (a, b), "arith.divsi", a.type)


def masked_fill(x, mask, value):
    """Tensor.masked_fill: value where mask, else x."""
    return where(mask, value, x)


def full_like(x, value, dtype=None, **kwargs):
    """torch.full_like / zeros_like / ones_like of a traced value: a constant
    of its kind (or of dtype's)."""
    x = to_value(x)
    c = to_value(value, like=x)
    return to_dtype(c, dtype) if dtype is not None else c


def to_dtype(x, dtype=None, *args, **kwargs):
    """.to(dtype) / .type(dtype): the value in the dtype's kind."""
    if dtype is None:
        dtype = kwargs.get("dtype")
    name = str(dtype).replace("torch.", "").replace("numpy.", "")
    x = to_value(x)
    if name == "bool":
        return cast(x, "i1")
    if name.startswith(("int", "uint", "long")):
        return cast(x, "index") if x.type in ("f32", "i1") else x
    if name.startswith(("float", "bfloat", "half", "double")):
        return cast(x, "f32")
    _fail(f".to({dtype!r}) is not supported by attnc's tracer")


def _traced_min_max(name, py):
    def fn(*args, **kwargs):
        values = args[0] if len(args) == 1 else args
        if len(args) == 1 and not isinstance(values, (list, tuple)):
            return py(*args, **kwargs)
        if not any(isinstance(v, (Value, Captured)) for v in values) or kwargs:
            return py(*args, **kwargs)
        result = values[0]
        for v in values[1:]:
            result = binary(name, result, v)
        return result
    fn.__name__ = name
    return fn


def _scalar_or(traced, real):
    """math.<fn>: the traced op on traced values, the real one otherwise."""
    def fn(*args):
        if any(isinstance(a, (Value, Captured)) for a in args):
            return traced(*args)
        return real(*args)
    fn.__name__ = real.__name__
    return fn


MATH = {"tanh": tanh, "exp": exp, "exp2": exp2, "log": log, "log2": log2, "sqrt": sqrt,
        "sin": sin, "cos": cos, "fabs": absolute, "floor": None, "pow": power}


class _TracedMath(types.ModuleType):
    """The math module as traced code sees it: functions with traced
    versions take Values, the rest is math's."""

    def __init__(self):
        super().__init__("math")
        for name in dir(math):
            if not name.startswith("_"):
                setattr(self, name, getattr(math, name))
        for name, fn in MATH.items():
            if fn is not None:
                setattr(self, name, _scalar_or(fn, getattr(math, name)))


_MATH_MODULE = None


def traced_math():
    global _MATH_MODULE
    if _MATH_MODULE is None:
        _MATH_MODULE = _TracedMath()
    return _MATH_MODULE


METHODS = {
    "tanh": tanh, "exp": exp, "exp2": exp2, "log": log, "log2": log2, "sqrt": sqrt,
    "rsqrt": rsqrt, "sigmoid": sigmoid, "abs": absolute, "neg": neg, "sin": sin, "cos": cos,
    "square": square, "clamp": clamp, "clip": clamp,
    "clamp_min": lambda x, m: maximum(x, m), "clamp_max": lambda x, m: minimum(x, m),
    "minimum": minimum, "maximum": maximum, "where": lambda x, c, o: where(c, x, o),
    "logical_and": _logical("and"), "logical_or": _logical("or"),
    "logical_xor": _logical("xor"), "logical_not": logical_not,
    "bitwise_and": lambda a, b: binary("and", a, b),
    "bitwise_or": lambda a, b: binary("or", a, b),
    "bitwise_xor": lambda a, b: binary("xor", a, b), "bitwise_not": invert,
    "eq": lambda a, b: compare("eq", a, b), "ne": lambda a, b: compare("ne", a, b),
    "lt": lambda a, b: compare("lt", a, b), "le": lambda a, b: compare("le", a, b),
    "gt": lambda a, b: compare("gt", a, b), "ge": lambda a, b: compare("ge", a, b),
    "add": lambda a, b, alpha=1: binary("add", a, binary("mul", b, alpha) if alpha != 1 else b),
    "sub": lambda a, b, alpha=1: binary("sub", a, binary("mul", b, alpha) if alpha != 1 else b),
    "mul": lambda a, b: binary("mul", a, b), "div": divide, "true_divide": divide,
    "floor_divide": floor_divide, "remainder": remainder, "pow": power,
    "to": to_dtype, "type": to_dtype, "masked_fill": masked_fill,
    "float": lambda x: cast(to_value(x), "f32"), "double": lambda x: cast(to_value(x), "f32"),
    "half": lambda x: cast(to_value(x), "f32"), "bfloat16": lambda x: cast(to_value(x), "f32"),
    "int": lambda x: to_dtype(x, "int32"), "long": lambda x: to_dtype(x, "int64"),
    "bool": lambda x: cast(to_value(x), "i1"),
    "item": lambda x: _fail(".item() of a traced value: the value is only known inside "
                            "the kernel"),
}

def dot(a, b):
    """torch.dot of two captured vectors (partial reads t[b, h, q_idx] of a
    static last dim): the sum of the products, unrolled (up to 1024)."""
    if not (isinstance(a, Captured) and isinstance(b, Captured)) or a.ndim != 1 or b.ndim != 1:
        _fail("torch.dot takes two captured vectors (t[b, h, q_idx] with one dimension left)")
    if a.shape != b.shape or a.shape[0] > 1024:
        _fail(f"torch.dot of captured vectors of sizes {a.shape[0]} and {b.shape[0]} "
              "(equal sizes up to 1024 are traced)")
    total = None
    for n in range(a.shape[0]):
        term = binary("mul", cast(to_value(a[n]), "f32"), cast(to_value(b[n]), "f32"))
        total = term if total is None else binary("add", total, term)
    return total


TORCH_FUNCTIONS = dict(METHODS)
TORCH_FUNCTIONS.update({"where": where, "absolute": absolute, "negative": neg, "dot": dot,
                        "full_like": full_like,
                        "zeros_like": lambda x, **kw: full_like(x, 0, **kw),
                        "ones_like": lambda x, **kw: full_like(x, 1, **kw),
                        "clip": clamp, "fmin": minimum, "fmax": maximum})

NUMPY_UFUNCS = {
    "add": lambda a, b: binary("add", a, b), "subtract": lambda a, b: binary("sub", a, b),
    "multiply": lambda a, b: binary("mul", a, b), "true_divide": lambda a, b: binary("truediv", a, b),
    "divide": lambda a, b: binary("truediv", a, b), "floor_divide": floor_divide,
    "remainder": remainder, "mod": remainder, "power": power, "negative": neg,
    "positive": lambda a: to_value(a), "absolute": absolute, "fabs": absolute,
    "tanh": tanh, "exp": exp, "exp2": exp2, "log": log, "log2": log2, "sqrt": sqrt,
    "sin": sin, "cos": cos, "square": square, "minimum": minimum, "maximum": maximum,
    "fmin": minimum, "fmax": maximum, "logical_and": _logical("and"),
    "logical_or": _logical("or"), "logical_xor": _logical("xor"), "logical_not": logical_not,
    "bitwise_and": lambda a, b: binary("and", a, b), "bitwise_or": lambda a, b: binary("or", a, b),
    "bitwise_xor": lambda a, b: binary("xor", a, b), "invert": invert,
    "left_shift": lambda a, b: binary("shl", a, b), "right_shift": lambda a, b: binary("shr", a, b),
    "equal": lambda a, b: compare("eq", a, b), "not_equal": lambda a, b: compare("ne", a, b),
    "less": lambda a, b: compare("lt", a, b), "less_equal": lambda a, b: compare("le", a, b),
    "greater": lambda a, b: compare("gt", a, b),
    "greater_equal": lambda a, b: compare("ge", a, b),
}
NUMPY_FUNCTIONS = {"where": where, "clip": lambda x, a_min=None, a_max=None: clamp(x, a_min, a_max)}


def torch_dispatch(func, args, kwargs):
    """__torch_function__: torch.<fn>(...) and Tensor.<method>(...) with a
    traced argument."""
    name = getattr(func, "__name__", str(func))
    if name == "__getitem__" and args and is_array(args[0]):
        wrapper = _context().capture(args[0], "captured")
        return wrapper[args[1]]
    if name == "__get__":  # a property of a traced value (e.g. .shape)
        _fail(f"property {func!r} of a traced value is not supported by attnc's tracer")
    if name.startswith("__") and name.endswith("__") and args:
        first = args[0]
        target = first if isinstance(first, (Value, Captured)) else to_value(first)
        method = getattr(type(target), name, None)
        if method is None:
            _fail(f"torch operator {name} is not supported by attnc's tracer")
        return method(target, *args[1:], **kwargs)
    fn = TORCH_FUNCTIONS.get(name)
    if fn is None:
        _fail(f"torch.{name} is not supported by attnc's tracer (supported: "
              f"{', '.join(sorted(n for n in TORCH_FUNCTIONS if not n.startswith('_')))})")
    return fn(*args, **kwargs)


# -- rebinding: the user's function with its captures wrapped -------------------------

def _code_names(code, seen=None):
    """Global names a code object (and the code objects nested in it) reads."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


_BUILTINS = None


def _traced_builtins():
    global _BUILTINS
    if _BUILTINS is None:
        b = dict(vars(builtins))
        b["min"] = _traced_min_max("min", builtins.min)
        b["max"] = _traced_min_max("max", builtins.max)
        _BUILTINS = b
    return _BUILTINS


def _replacement(value, hint, ctx, depth):
    """What traced code sees instead of `value` (None: the value itself)."""
    if is_array(value):
        return ctx.capture(value, hint)
    if isinstance(value, types.FunctionType):
        return rebind(value, ctx, depth + 1)
    if isinstance(value, types.MethodType) and isinstance(value.__func__, types.FunctionType):
        return types.MethodType(rebind(value.__func__, ctx, depth + 1), value.__self__)
    if value is math:
        return traced_math()
    if isinstance(value, types.BuiltinFunctionType) and getattr(value, "__module__", "") == "math":
        fn = MATH.get(value.__name__)
        return _scalar_or(fn, value) if fn is not None else None
    if type(value).__name__ == "partial" and type(value).__module__ == "functools":
        f = _replaced(value.func, hint, ctx, depth)
        a = [_replaced(x, hint, ctx, depth) for x in value.args]
        kw = {k: _replaced(x, k, ctx, depth) for k, x in value.keywords.items()}
        return type(value)(f, *a, **kw)
    if isinstance(value, (tuple, list)) and depth < 8:
        items = [_replacement(x, hint, ctx, depth) for x in value]
        if any(i is not None for i in items):
            return type(value)(i if i is not None else x for i, x in zip(items, value))
    return None


def _replaced(value, hint, ctx, depth):
    """_replacement(value), or value itself when it needs none (never
    `replacement or value`: bool() of a stand-in is refused)."""
    new = _replacement(value, hint, ctx, depth)
    return value if new is None else new


def rebind(fn, ctx, depth=0):
    """A copy of `fn` whose closure cells, defaults and globals hold traced
    stand-ins: captured arrays, rebound functions, the traced math module and
    the traced builtins min/max."""
    if depth > 16:
        return fn
    done = ctx.functions.get(id(fn))
    if done is not None:
        return done
    code = fn.__code__
    ctx.functions[id(fn)] = fn  # recursion guard
    closure = None
    if fn.__closure__:
        cells = []
        for name, cell in zip(code.co_freevars, fn.__closure__):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                cells.append(cell)
                continue
            new = _replacement(value, name, ctx, depth)
            cells.append(types.CellType(new) if new is not None else cell)
        closure = tuple(cells)
    globs = dict(fn.__globals__)
    for name in _code_names(code):
        if name in globs:
            new = _replacement(globs[name], name, ctx, depth)
            if new is not None:
                globs[name] = new
    globs["__builtins__"] = _traced_builtins()
    defaults = fn.__defaults__
    if defaults:
        names = code.co_varnames[code.co_argcount - len(defaults):code.co_argcount]
        defaults = tuple(_replaced(d, n, ctx, depth) for n, d in zip(names, defaults))
    new_fn = types.FunctionType(code, globs, fn.__name__, defaults, closure)
    new_fn.__kwdefaults__ = fn.__kwdefaults__
    new_fn.__qualname__ = fn.__qualname__
    ctx.functions[id(fn)] = new_fn
    return new_fn


# -- tracing ------------------------------------------------------------------------

def describe_function(fn):
    """'name (file:line)' of a Python function, for messages."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    code = getattr(fn, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename}:{code.co_firstlineno})"
    return name


class TracedMod:
    """A traced score_mod or mask_mod: the result Value and the captures."""

    def __init__(self, role, fn, result, captures):
        self.role = role
        self.fn = fn
        self.result = result
        self.captures = captures  # list of _Capture, in the order they were found
        self.name = getattr(fn, "__name__", "mod")


def trace_mod(fn, role):
    """Calls `fn` with proxies; role 'score_mod' (score, b, h, q_idx, kv_idx
    -> f32), 'mask_mod' (b, h, q_idx, kv_idx -> bool) or 'feature_map'
    (x -> f32, elementwise)."""
    if not callable(fn):
        raise AttncError(f"{role} must be callable, got {type(fn).__name__}")
    if role == "feature_map":
        args = [arg("x", "f32")]
    else:
        args = [arg("b"), arg("h"), arg("i"), arg("j")]
    if role == "score_mod":
        args.insert(0, arg("s", "f32"))
    with _lock:
        ctx = _TraceContext()
        outer = getattr(_state, "ctx", None)
        _state.ctx = ctx
        try:
            target = fn
            if isinstance(fn, types.FunctionType):
                target = rebind(fn, ctx)
            elif isinstance(fn, types.MethodType) or type(fn).__name__ == "partial":
                target = _replaced(fn, role, ctx, 0)
            result = target(*args)
            result = _result(result, role)
        except TraceError as e:
            raise AttncError(f"cannot trace {role} {describe_function(fn)}: {e}") from None
        except AttncError:
            raise
        except Exception as e:
            loc = _traceback_location(e.__traceback__)
            raise AttncError(f"cannot trace {role} {describe_function(fn)}: "
                             f"{type(e).__name__}: {e}" + (f"\n  at {loc}" if loc else "")) from e
        finally:
            _state.ctx = outer
    return TracedMod(role, fn, result, list(ctx.captures.values()))


def _result(result, role):
    if isinstance(result, (tuple, list)):
        _fail(f"{role} returned a {type(result).__name__}; it must return one scalar")
    if result is None:
        _fail(f"{role} returned None")
    try:
        v = to_value(result)
    except TraceError:
        raise
    if role == "mask_mod":
        if v.type == "f32":
            _fail("mask_mod returned a floating-point value; it must return a bool")
        return cast(v, "i1")
    return cast(v, "f32")
