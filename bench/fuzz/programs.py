"""Random attention specs for the robustness fuzzer (bench/fuzz/attn_fuzz.py).

Extends bench/fuzz_masks.py's Gen (integer mask expressions over b, h, i, j)
with what a user can write in a spec: captured tensors of several element
types (i1, i8, i32, i64, index, f32, f16, bf16) read with tensor.extract,
float score expressions (arith and math ops, casts from indices and
captures), float comparisons, score regions beside or instead of masks,
GQA head ratios, head dims and q/k/v element types. Unlike fuzz_masks.py the
programs are not meant to run: they may be refused (an index no launch can
check, a possible division by zero, ...), as long as the refusal is a
diagnostic.

  program(rng) -> (name, text)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fuzz_masks import Gen  # noqa: E402  (bench/fuzz_masks.py)

INT_TYPES = ["i1", "i8", "i32", "i64", "index"]
FLOAT_TYPES = ["f32", "f16", "bf16"]
FLOAT_CONSTS = ["0.0", "-0.0", "1.0", "-1.0", "0.5", "30.0", "-2.5", "1.0e-30",
                "1.0e+30", "3.0e+38", "0x7F800000", "0xFF800000", "0x7FC00000"]
MATH_UNARY = ["exp", "exp2", "log", "log2", "log1p", "tanh", "absf", "sqrt",
              "rsqrt", "erf", "floor", "ceil", "sin", "cos", "expm1", "round"]
FLOAT_BINARY = ["addf", "subf", "mulf", "divf", "maximumf", "minimumf",
                "maxnumf", "minnumf", "remf"]
CMPF_PREDICATES = ["oeq", "one", "olt", "ole", "ogt", "oge", "ueq", "une",
                   "ult", "ule", "ugt", "uge", "ord", "uno", "true", "false"]


class Capture:
    def __init__(self, name, elem, dims):
        self.name, self.elem, self.dims = name, elem, dims  # dims: int or None

    @property
    def type(self):
        return "tensor<" + "".join(
            ("?" if d is None else str(d)) + "x" for d in self.dims) + self.elem + ">"


class ProgramGen(Gen):
    """fuzz_masks.Gen plus captures, floats and math ops."""

    def __init__(self, rng, captures, score_arg=None):
        super().__init__(rng)
        self.captures = captures
        self.score_arg = score_arg  # "%s" inside a score region
        self.used = set()  # names of the captures read

    # -- captures -----------------------------------------------------------
    def _capture_index(self, dim):
        """An index for one capture dimension: b/h/i/j on dynamic ones (a
        launch checks them), clamped on static ones; rarely anything."""
        r = self.r
        if r.random() < 0.08:
            return Gen.idx(self, 2)  # most likely refused by the verifier
        base = r.choice(["%i", "%j", "%b", "%h"])
        if dim is None:
            if r.random() < 0.2:
                return self._v(f"arith.divui {base}, {self.const(r.choice([2, 16, 64]))}",
                               "index")
            return base
        op = r.choice(["remui", "minui", "const"])
        if op == "const":
            return self.const(r.randrange(dim) if dim > 0 else 0)
        if op == "remui":
            return self._v(f"arith.remui {base}, {self.const(max(dim, 1))}", "index")
        return self._v(f"arith.minui {base}, {self.const(max(dim - 1, 0))}", "index")

    def read(self, elems):
        """A tensor.extract of a capture whose element type is in elems, or
        None."""
        cs = [c for c in self.captures if c.elem in elems]
        if not cs:
            return None, None
        return self.read_capture(self.r.choice(cs))

    def read_capture(self, c):
        self.used.add(c.name)
        ix = ", ".join(self._capture_index(d) for d in c.dims)
        return self._def(f"tensor.extract %{c.name}[{ix}] : {c.type}"), c.elem

    def int_from_capture(self):
        """An integer value read from a capture, widened to i64 or kept."""
        v, ty = self.read(INT_TYPES)
        if v is None:
            return None, None
        r = self.r
        if ty == "index":
            return v, "index"
        if ty != "i64" and r.random() < 0.5:
            op = r.choice(["extsi", "extui"])
            return self._def(f"arith.{op} {v} : {ty} to i64"), "i64"
        return v, ty

    # -- integers -----------------------------------------------------------
    def idx(self, depth):
        r = self.r
        p = r.random()
        if self.captures and p < 0.12:
            v, ty = self.int_from_capture()
            if v is not None:
                if ty == "index":
                    return v
                if ty == "i1":
                    v = self._def(f"arith.extui {v} : i1 to i64")
                    ty = "i64"
                return self._def(f"arith.index_cast {v} : {ty} to index")
        if p < 0.16:
            op = r.choice(["ipowi", "absi", "ctpop", "ctlz", "cttz"])
            a = Gen.idx(self, depth - 1)
            if op == "ipowi":
                return self._v(f"math.ipowi {a}, {self.const(r.choice([0, 1, 2, 3, -1, 63]))}",
                               "index")
            return self._v(f"math.{op} {a}", "index")
        if p < 0.19:
            f = self.flt(depth - 1)
            op = r.choice(["fptosi", "fptoui"])
            w = self._def(f"arith.{op} {f} : f32 to i64")
            return self._def(f"arith.index_cast {w} : i64 to index")
        return Gen.idx(self, depth)

    # -- booleans -----------------------------------------------------------
    def boolean(self, depth):
        r = self.r
        p = r.random()
        if self.captures and p < 0.2:
            v, ty = self.int_from_capture()
            if v is not None:
                if ty == "i1":
                    return v
                pred = r.choice(["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ugt"])
                if r.random() < 0.5:
                    w, wty = self.int_from_capture()
                    if wty == ty:
                        return self._v(f"arith.cmpi {pred}, {v}, {w}", ty)
                c = self.const(r.choice([0, 1, 2, -1, 127, -128, 255, 2**31 - 1]), ty)
                return self._v(f"arith.cmpi {pred}, {v}, {c}", ty)
        if p < 0.3:
            pred = r.choice(CMPF_PREDICATES)
            return self._v(f"arith.cmpf {pred}, {self.flt(depth - 1)}, {self.flt(depth - 1)}",
                           "f32")
        if p < 0.33:
            v = self.idx(depth - 1)
            w = self._def(f"arith.index_cast {v} : index to i8")
            return self._def(f"arith.trunci {w} : i8 to i1")
        return Gen.boolean(self, depth)

    # -- floats -------------------------------------------------------------
    def flt(self, depth):
        """An f32 expression."""
        r = self.r
        if depth <= 0 or r.random() < 0.3:
            p = r.random()
            if self.score_arg and p < 0.4:
                return self.score_arg
            if p < 0.55:
                return self.const(r.choice(FLOAT_CONSTS), "f32")
            if self.captures and p < 0.8:
                v, ty = self.read(FLOAT_TYPES + ["i32", "i8"])
                if v is not None:
                    if ty == "f32":
                        return v
                    if ty in ("f16", "bf16"):
                        return self._def(f"arith.extf {v} : {ty} to f32")
                    return self._def(f"arith.sitofp {v} : {ty} to f32")
            w = self._def(f"arith.index_cast {self.idx(depth - 1)} : index to i64")
            op = r.choice(["sitofp", "uitofp"])
            return self._def(f"arith.{op} {w} : i64 to f32")
        op = r.choice(["unary", "binary", "binary", "select", "negf", "fpowi", "powf",
                       "trunc"])
        if op == "unary":
            return self._v(f"math.{r.choice(MATH_UNARY)} {self.flt(depth - 1)}", "f32")
        if op == "binary":
            return self._v(f"arith.{r.choice(FLOAT_BINARY)} {self.flt(depth - 1)}, "
                           f"{self.flt(depth - 1)}", "f32")
        if op == "select":
            c, a, b = self.boolean(depth - 1), self.flt(depth - 1), self.flt(depth - 1)
            return self._v(f"arith.select {c}, {a}, {b}", "f32")
        if op == "negf":
            return self._v(f"arith.negf {self.flt(depth - 1)}", "f32")
        if op == "fpowi":
            n = self.const(r.choice([0, 1, 2, 3, -1, -2, 31]), "i32")
            return self._def(f"math.fpowi {self.flt(depth - 1)}, {n} : f32, i32")
        if op == "powf":
            return self._v(f"math.powf {self.flt(depth - 1)}, {self.flt(depth - 1)}", "f32")
        # A round trip through a narrower float type.
        ty = r.choice(["f16", "bf16"])
        t = self._def(f"arith.truncf {self.flt(depth - 1)} : f32 to {ty}")
        return self._def(f"arith.extf {t} : {ty} to f32")

    def as_f32(self, v, ty):
        if ty == "f32":
            return v
        if ty in ("f16", "bf16"):
            return self._def(f"arith.extf {v} : {ty} to f32")
        if ty == "index":
            v = self._def(f"arith.index_cast {v} : index to i64")
            ty = "i64"
        return self._def(f"arith.uitofp {v} : {ty} to f32")

    def use_all(self, y, kind, unused):
        """Combines a read of every capture in unused into the region's
        result y (the verifier refuses unused captures)."""
        for c in unused:
            f = self.as_f32(*self.read_capture(c))
            if kind == "score":
                y = self._v(f"arith.addf {y}, {f}", "f32")
            else:
                z = self.const("0.0", "f32")
                p = self._v(f"arith.cmpf {self.r.choice(CMPF_PREDICATES)}, {f}, {z}", "f32")
                y = self._v(f"arith.{self.r.choice(['andi', 'ori', 'xori'])} {y}, {p}", "i1")
        return y


def _random_captures(r, hq):
    caps = []
    for n in range(r.choice([0, 0, 1, 1, 2, 3])):
        elem = r.choice(INT_TYPES + ["i32", "f32", "f32", "f16", "bf16"])
        shape = r.choice([[None], [None], [None, None], [hq, None], [64], [hq, 32],
                          [None, 16], [1], [3, 5, 7]] +
                      ([[0]] if r.random() < 0.1 else []))
        caps.append(Capture(f"t{n}", elem, shape))
    return caps


def program(r, name="f"):
    """A random spec: one attn.attention with a random score and/or mask
    region over random captures."""
    hq, hkv = r.choice([(4, 4), (4, 4), (8, 2), (4, 1), (2, 1), (6, 3), (1, 1)] +
                         ([(4, 3)] if r.random() < 0.05 else []))
    d = r.choice([64, 64, 64, 32, 128, 16, 80, 96, 256, 8])
    et = r.choice(["bf16", "bf16", "f16", "f32"])
    caps = _random_captures(r, hq)
    with_lse = r.random() < 0.3
    kinds = r.choice([("mask",), ("mask",), ("score",), ("score", "mask"), ()])

    def t(h):
        return f"tensor<?x{h}x?x{d}x{et}>"

    q, k, v, o = t(hq), t(hkv), t(hkv), t(hq)
    lse = f"tensor<?x{hq}x?xf32>"
    results = f"{o}, {lse}" if with_lse else o
    args = [f"%q: {q}", f"%k: {k}", f"%v: {v}"] + [f"%{c.name}: {c.type}" for c in caps]

    n = 0
    regions = []
    used = set()
    if caps and not kinds:
        kinds = ("mask",)
    for ri, kind in enumerate(kinds):
        g = ProgramGen(r, caps, "%s" if kind == "score" else None)
        g.n = n  # value names stay unique across the two regions
        depth = r.choice([1, 2, 3, 4])
        if kind == "score":
            y = g.flt(depth)
            if ri == len(kinds) - 1:
                y = g.use_all(y, kind, [c for c in caps if c.name not in used | g.used])
            head = "score(%s: f32, %b: index, %h: index, %i: index, %j: index)"
            g.lines.append(f"attn.yield {y} : f32")
        else:
            y = g.boolean(depth)
            if ri == len(kinds) - 1:
                y = g.use_all(y, kind, [c for c in caps if c.name not in used | g.used])
            head = "mask(%b: index, %h: index, %i: index, %j: index)"
            g.lines.append(f"attn.yield {y} : i1")
        n = g.n
        used |= g.used
        body = "\n".join("      " + line for line in g.lines)
        regions.append(f"    {head} {{\n{body}\n    }}")

    capture_clause = ""
    if caps:
        capture_clause = (" captures(" + ", ".join("%" + c.name for c in caps) + " : " +
                          ", ".join(c.type for c in caps) + ")")
    scale = f" scale = {r.choice(['0.125', '1.0', '-1.0', '0.0'])}" if r.random() < 0.1 else ""
    outs = "%o, %lse" if with_lse else "%o"
    text = (f"func.func @{name}({', '.join(args)}) -> ({results}) {{\n"
            f"  {outs} = attn.attention %q, %k, %v{capture_clause}{scale}\n" +
            "".join(rg + "\n" for rg in regions) +
            f"    : {q}, {k}, {v}\n      -> {results}\n"
            f"  return {outs} : {results}\n}}\n")
    return text
