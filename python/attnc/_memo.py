"""Reusing traces: a traced mod is reused while everything its trace
depended on is unchanged.

A trace depends on the function's code and on the values its code can
reach: closure cells, defaults and the globals it names, recursively
through the functions among them. `fingerprint` turns those into a
comparable tuple: Python scalars by value (a changed constant retraces),
arrays and tensors by identity, shape and dtype (their contents are passed
at each call, so in-place updates need no retrace), modules, classes and
builtins by identity (modules only of math, numpy, torch and the standard
library's operator/functools), functions, tuples, lists and functools.partial
recursively. A value of any other kind (an object whose attributes the
code may read) makes the function uncacheable: it is traced on every call.
"""

import functools
import threading
import types

from . import _trace as _tracer

_SCALARS = (bool, int, float, complex, str, bytes, type(None))
# Modules whose attributes a mod reads as functions and constants.
_LIBRARIES = {"math", "numpy", "torch", "builtins", "operator", "functools", "attnc"}
_MAX_DEPTH = 16
_MAX_ENTRIES = 256

_lock = threading.Lock()
_traces = {}  # (id(fn), role) -> (fn, fingerprint, traced)


class _Uncacheable(Exception):
    """A value whose effect on a trace a fingerprint cannot capture."""


def fingerprint(fn):
    """A tuple that changes whenever a trace of `fn` could, or None when
    `fn` reaches values that cannot be fingerprinted."""
    try:
        return _value(fn, {}, 0)
    except _Uncacheable:
        return None


def _value(v, memo, depth):
    if depth > _MAX_DEPTH:
        raise _Uncacheable
    t = type(v)
    if t in _SCALARS:
        return ("v", t, v)
    if _tracer.is_array(v):
        return ("a", id(v), tuple(v.shape), str(v.dtype))
    if isinstance(v, types.FunctionType):
        return _function(v, memo, depth + 1)
    if isinstance(v, functools.partial):
        return ("p", _value(v.func, memo, depth + 1), _value(v.args, memo, depth + 1),
                _value(sorted(v.keywords.items()), memo, depth + 1))
    if isinstance(v, (tuple, list)):
        return ("t", t, tuple(_value(x, memo, depth + 1) for x in v))
    if isinstance(v, types.ModuleType):
        if v.__name__.split(".")[0] not in _LIBRARIES:
            raise _Uncacheable  # the code may read attributes that change
        return ("o", id(v))
    if isinstance(v, (types.BuiltinFunctionType, type)):
        return ("o", id(v))
    mod = t.__module__ or ""
    if mod == "numpy" and hasattr(v, "item"):  # a numpy scalar (arrays are above)
        return ("v", t, v.item())
    if mod == "torch" and t.__name__ in ("dtype", "device"):
        return ("v", t, str(v))
    raise _Uncacheable


def _function(fn, memo, depth):
    key = id(fn)
    if key in memo:
        return ("r", key)
    memo[key] = True
    code = fn.__code__
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(_value(cell.cell_contents, memo, depth))
        except ValueError:  # an empty cell
            cells.append(("empty",))
    kwdefaults = sorted((fn.__kwdefaults__ or {}).items())
    g = fn.__globals__
    globs = tuple((n, _value(g[n], memo, depth) if n in g else ("missing",))
                  for n in sorted(_tracer._code_names(code)))
    return ("f", code, _value(fn.__defaults__ or (), memo, depth),
            _value(kwdefaults, memo, depth), tuple(cells), globs)


def trace(fn, role, count):
    """The traced mod of fn, reused while its fingerprint is unchanged;
    count("traces") or count("trace_hits") says which."""
    fp = fingerprint(fn)
    key = (id(fn), role)
    if fp is not None:
        with _lock:
            entry = _traces.get(key)
        if entry is not None and entry[0] is fn and entry[1] == fp:
            count("trace_hits")
            return entry[2]
    traced = _tracer.trace_mod(fn, role)
    count("traces")
    if fp is not None:
        with _lock:
            if len(_traces) >= _MAX_ENTRIES:
                _traces.clear()
            _traces[key] = (fn, fp, traced)
    return traced
