"""Token- and line-level mutations of attn specs (the examples) for the
robustness fuzzer (bench/fuzz/attn_fuzz.py).

Each mutation is a function (rng, text) -> text or None (not applicable);
mutate() applies one to three of them. They are blind to the grammar on
purpose: most results should still parse, so that the verifier, the
analyses and the lowerings see programs nobody wrote by hand, and the rest
exercise the parser's diagnostics.
"""
import re

INT_EDGE = [0, 1, -1, 2, 3, 7, 16, 31, 63, 64, 127, 128, 255, 256, 4096, 65535,
            2**31 - 1, -2**31, 2**32, 2**63 - 1, -2**63, 2**64, 10**30]
FLOAT_EDGE = ["0.0", "-0.0", "1.0", "-1.0", "1.0e-45", "1.0e+38", "-3.4e+38",
              "0x7F800000", "0xFF800000", "0x7FC00000", "1.0e+300", "2.5"]

# Ops that take the same operands, grouped so that a swap stays well typed
# most of the time.
OP_GROUPS = [
    ["arith.addi", "arith.subi", "arith.muli", "arith.divsi", "arith.divui",
     "arith.remsi", "arith.remui", "arith.ceildivsi", "arith.ceildivui",
     "arith.floordivsi", "arith.shli", "arith.shrsi", "arith.shrui", "arith.andi",
     "arith.ori", "arith.xori", "arith.minsi", "arith.maxsi", "arith.minui",
     "arith.maxui", "math.ipowi"],
    ["arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.remf",
     "arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf",
     "math.powf", "math.atan2", "math.copysign"],
    ["math.exp", "math.exp2", "math.expm1", "math.log", "math.log2", "math.log1p",
     "math.tanh", "math.absf", "math.sqrt", "math.rsqrt", "math.erf", "math.sin",
     "math.cos", "math.floor", "math.ceil", "math.round", "arith.negf"],
    ["arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast",
     "arith.index_castui", "arith.bitcast"],
    ["arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.fptoui"],
    ["arith.extf", "arith.truncf"],
    ["math.absi", "math.ctpop", "math.ctlz", "math.cttz"],
    ["vector.multi_reduction <add>", "vector.multi_reduction <mul>",
     "vector.multi_reduction <maximumf>", "vector.multi_reduction <minimumf>"],
    ["vector.reduction <add>", "vector.reduction <mul>", "vector.reduction <maximumf>"],
    ["causal", "bidirectional"],
    ["attn.attention", "attn.linear_attention causal", "attn.scan causal"],
]
CMPI = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
CMPF = ["oeq", "one", "olt", "ole", "ogt", "oge", "ueq", "une", "ult", "ule",
        "ugt", "uge", "ord", "uno", "true", "false"]
ELEM_TYPES = ["f32", "bf16", "f16", "f64", "f8E4M3FN", "i1", "i8", "i16", "i32",
              "i64", "index"]
DIM_EDGE = ["?", "0", "1", "2", "3", "4", "8", "16", "17", "32", "48", "64",
            "80", "96", "128", "192", "256", "512", "1024", "2147483648"]

INT_LIT = re.compile(r"(?<![\w.#%@x])-?\d+(?![\w.])")
FLOAT_LIT = re.compile(r"(?<![\w.#%@])-?\d+\.\d*(?:e[+-]?\d+)?|0x[0-9A-Fa-f]{8}\b")
SHAPE = re.compile(r"(tensor|vector)<([^<>]*)>")
VALUE = re.compile(r"%[\w.]+")
CMP = re.compile(r"(arith\.cmp([if])) (\w+),")


def _sub_one(r, pattern, text, repl):
    """Replaces one random match of pattern by repl(match), or None."""
    ms = list(pattern.finditer(text))
    if not ms:
        return None
    m = r.choice(ms)
    return text[:m.start()] + repl(m) + text[m.end():]


def int_constant(r, text):
    return _sub_one(r, INT_LIT, text, lambda m: str(
        r.choice(INT_EDGE) if r.random() < 0.8 else int(m.group()) + r.choice([-1, 1])))


def float_constant(r, text):
    return _sub_one(r, FLOAT_LIT, text, lambda m: r.choice(FLOAT_EDGE))


def swap_op(r, text):
    group = r.choice(OP_GROUPS)
    present = [op for op in group if op in text]
    if not present:
        return None
    old = r.choice(present)
    ms = [m for m in re.finditer(re.escape(old) + r"(?![\w.])", text)]
    if not ms:
        return None
    m = r.choice(ms)
    return text[:m.start()] + r.choice(group) + text[m.end():]


def swap_predicate(r, text):
    return _sub_one(r, CMP, text, lambda m: f"{m.group(1)} "
                    f"{r.choice(CMPI if m.group(2) == 'i' else CMPF)},")


def element_type(r, text):
    """Changes one element type, or all of one type (q, k, v and o stay
    consistent, as in the bf16 versions of the examples)."""
    if r.random() < 0.5:
        old, new = r.choice(["f32", "bf16", "f16"]), r.choice(ELEM_TYPES)
        pat = re.compile(r"x" + old + ">")
        if not pat.search(text):
            return None
        return pat.sub("x" + new + ">", text)
    return _sub_one(r, re.compile(r"\b(f32|bf16|f16|i1|i8|i32|i64|index)\b"), text,
                    lambda m: r.choice(ELEM_TYPES))


def shape(r, text):
    """Changes one dimension of one shape, or of every equal shape (a head
    dim or head count everywhere)."""
    ms = list(SHAPE.finditer(text))
    if not ms:
        return None
    m = r.choice(ms)
    dims = m.group(2).split("x")
    if len(dims) < 2:
        return None
    k = r.randrange(len(dims) - 1)
    op = r.random()
    new_dims = list(dims)
    if op < 0.7:
        new_dims[k] = r.choice(DIM_EDGE)
    elif op < 0.85:
        del new_dims[k]
    else:
        new_dims.insert(k, r.choice(DIM_EDGE))
    new = f"{m.group(1)}<{'x'.join(new_dims)}>"
    if r.random() < 0.6:
        return text.replace(m.group(0), new)
    return text[:m.start()] + new + text[m.end():]


def _body_lines(text):
    return [n for n, line in enumerate(text.split("\n"))
            if line.strip() and not line.strip().startswith("//")]


def drop_line(r, text):
    lines = text.split("\n")
    ns = _body_lines(text)
    if not ns:
        return None
    del lines[r.choice(ns)]
    return "\n".join(lines)


def duplicate_line(r, text):
    lines = text.split("\n")
    ns = _body_lines(text)
    if not ns:
        return None
    n = r.choice(ns)
    lines.insert(r.choice(ns), lines[n])
    return "\n".join(lines)


def swap_lines(r, text):
    lines = text.split("\n")
    ns = _body_lines(text)
    if len(ns) < 2:
        return None
    a, b = r.sample(ns, 2)
    lines[a], lines[b] = lines[b], lines[a]
    return "\n".join(lines)


def swap_operands(r, text):
    pat = re.compile(r"(%[\w.]+), (%[\w.]+)")
    return _sub_one(r, pat, text, lambda m: f"{m.group(2)}, {m.group(1)}")


def replace_use(r, text):
    """Replaces one use of a value by another value of the spec (often of
    another type, another region or defined later)."""
    names = sorted(set(VALUE.findall(text)))
    if len(names) < 2:
        return None
    uses = [m for m in VALUE.finditer(text)
            if not re.match(r"\s*[:=]", text[m.end():m.end() + 3])]
    if not uses:
        return None
    m = r.choice(uses)
    return text[:m.start()] + r.choice(names) + text[m.end():]


def token_noise(r, text):
    """Deletes, duplicates or inserts a few characters: the parser's turn."""
    if not text:
        return None
    p = r.randrange(len(text))
    op = r.random()
    if op < 0.4:
        return text[:p] + text[p + r.randint(1, 4):]
    if op < 0.7:
        return text[:p] + r.choice(["{", "}", "(", ")", "<", ">", ",", ":", "%", "x",
                                    "\"", "\\", "\x00", "\xff", "?", "#", "@", "-"]) + text[p:]
    q = min(len(text), p + r.randint(1, 40))
    return text[:p] + text[p:q] + text[p:]


def attribute(r, text):
    """Changes or adds the attributes the tools read (run dims, init, scale)."""
    choices = [
        ("attn.run_init = \"[^\"]*\"",
         r.choice(["attn.run_init = \"sorted:0:3\"", "attn.run_init = \"bits:2.0\"",
                   "attn.run_init = \"randint:5:-5\"", "attn.run_init = \"uniform:nan:1\"",
                   "attn.run_init = \"\"", "attn.run_init = 3"])),
        (r"attn.run_dims = \[[^\]]*\]",
         r.choice(["attn.run_dims = [\"nq/0\", \"nk/64\"]", "attn.run_dims = []",
                   "attn.run_dims = [\"nq\", \"nk\", \"b\"]",
                   "attn.run_dims = [\"x/64\", \"nk/-1\"]"])),
        (r"scale = [-\w.+]+",
         "scale = " + r.choice(["0.0", "-1.0", "1.0e+39", "0x7FC00000", "1"])),
        (r"\} : tensor", r.choice(["} {attn.bogus} : tensor", "} scale = 0.5 : tensor"])),
    ]
    pat, new = r.choice(choices)
    if not re.search(pat, text):
        return None
    return re.sub(pat, new, text, count=1)


def splice(r, text, other):
    """Inserts a few lines of another example (a crossover)."""
    src = other.split("\n")
    ns = [n for n, line in enumerate(src) if line.strip() and not line.startswith("//")]
    if not ns:
        return None
    a = r.choice(ns)
    chunk = src[a:a + r.randint(1, 4)]
    lines = text.split("\n")
    at = r.randrange(len(lines) + 1)
    return "\n".join(lines[:at] + chunk + lines[at:])


MUTATIONS = [int_constant, int_constant, float_constant, swap_op, swap_op,
             swap_predicate, element_type, shape, shape, drop_line, duplicate_line,
             swap_lines, swap_operands, replace_use, token_noise, attribute]


def to_half(r, text):
    """The GPU kernels take bf16 or f16: most mutants start from the half
    precision version of the example so that they reach the GPU lowering."""
    ty = r.choice(["bf16", "bf16", "f16"])
    return re.sub(r"(tensor<\?x\d+x\?x\d+x)f32>", r"\g<1>" + ty + ">", text)


def mutate(r, text, others=()):
    if r.random() < 0.6:
        text = to_half(r, text)
    for _ in range(r.choice([1, 1, 1, 2, 2, 3])):
        for _attempt in range(8):
            if others and r.random() < 0.05:
                new = splice(r, text, r.choice(others))
            else:
                new = r.choice(MUTATIONS)(r, text)
            if new is not None and new != text:
                text = new
                break
    return text
