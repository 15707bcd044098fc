"""Specs that crashed the host process or returned garbage (issue 13: W1,
C1-C4, I2, I3): each now runs right or is refused with a clear error.
Prints one line per case; the lit test checks them."""
import numpy as np

import attnc

T = "tensor<?x4x?x64xf32>"
SIG = f"%q: {T}, %k: {T}, %v: {T}"
TYPES = f"{T}, {T}, {T} -> {T}"


def attention(body="", extra_args="", captures="", results=T, ret="%o"):
    region = (f"\n    mask(%b: index, %h: index, %i: index, %j: index) {{\n{body}\n    }}"
              if body else "")
    return (f"func.func @f({SIG}{extra_args}) -> ({results}) {{\n"
            f"  %o = attn.attention %q, %k, %v{captures}{region} : {TYPES}\n"
            f"  return {ret} : {results}\n}}\n")


def rnd(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def ref(q, k, v, mask=None):
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64))
    s /= np.sqrt(q.shape[-1])
    if mask is not None:
        _, _, n, m = s.shape
        i, j = np.ogrid[:n, :m]
        s = np.where(mask(i, j), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhij,bhjd->bhid", p, v.astype(np.float64))


def relerr(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


Q, K, V = (rnd(1, 4, 37, 64, seed=s) for s in range(3))
O = ref(Q, K, V)


def outputs(spec, *args):
    k = attnc.compile(spec, cache_dir="")
    res = None
    for _ in range(3):  # repeated calls: no buffer is freed twice
        res = k(*(args or (Q, K, V)))
    return res if isinstance(res, tuple) else (res,)


def aliasing():
    two = f"{T}, {T}"
    cases = {
        "return_input": (attention(ret="%k"), [K]),
        "return_o_twice": (attention(results=two, ret="%o, %o"), [O, O]),
        "return_q_and_o": (attention(results=two, ret="%o, %q"), [O, Q]),
    }
    for name, (spec, want) in cases.items():
        got = outputs(spec)
        err = max(relerr(g, w) for g, w in zip(got, want))
        print(f"{'OK' if err < 1e-5 else 'WRONG'} {name} {len(got)} outputs")
    s = (f"func.func @f({SIG}) -> {T} {{\n"
         f"  %o = attn.attention %q, %k, %v : {TYPES}\n"
         f"  %s = arith.addf %o, %q : {T}\n  return %s : {T}\n}}\n")
    err = relerr(outputs(s)[0], O + Q)
    print(f"{'OK' if err < 1e-5 else 'WRONG'} return_sum")


def refused(name, spec):
    try:
        attnc.compile(spec, cache_dir="")
        print(f"ACCEPTED {name}")
    except attnc.AttncError as e:
        line = next(l for l in str(e).splitlines() if "error:" in l)
        print(f"REFUSED {name}: {line.split('error: ', 1)[1]}")


def hostile():
    intmin = """      %m = arith.constant -9223372036854775808 : index
      %n1 = arith.constant -1 : index
      %x = arith.OP %m, %n1 : index
      %keep = arith.cmpi sge, %x, %j : index
      attn.yield %keep : i1"""
    for op in ["divsi", "ceildivsi", "floordivsi", "remsi"]:
        refused(f"intmin_{op}", attention(intmin.replace("OP", op)))
    refused("div_by_j_minus_1", attention("""      %c1 = arith.constant 1 : index
      %d = arith.subi %j, %c1 : index
      %x = arith.divsi %i, %d : index
      %keep = arith.cmpi sge, %x, %h : index
      attn.yield %keep : i1"""))
    refused("oob_capture", attention("""      %c = arith.constant 4096 : index
      %ii = arith.muli %i, %c : index
      %x = arith.addi %ii, %j : index
      %y = tensor.extract %t[%x] : tensor<?xi32>
      %z = arith.constant 0 : i32
      %keep = arith.cmpi eq, %y, %z : i32
      attn.yield %keep : i1""", extra_args=", %t: tensor<?xi32>",
        captures=" captures(%t : tensor<?xi32>)"))
    refused("nested_module", "module {\nmodule {\n" + attention() + "}\n}\n")


def runs_right():
    ipow = attention("""      %c2 = arith.constant 2 : index
      %p = math.ipowi %j, %c2 : index
      %keep = arith.cmpi ule, %p, %i : index
      attn.yield %keep : i1""")
    err = relerr(outputs(ipow)[0], ref(Q, K, V, lambda i, j: j * j <= i))
    print(f"{'OK' if err < 1e-5 else 'WRONG'} ipowi_index")
    folded = attention("""      %a = arith.cmpi eq, %i, %i : index
      %x = tensor.extract %t[%j] : tensor<?xi1>
      %keep = arith.ori %a, %x : i1
      attn.yield %keep : i1""", extra_args=", %t: tensor<?xi1>",
                       captures=" captures(%t : tensor<?xi1>)")
    err = relerr(outputs(folded, Q, K, V, np.zeros(37, bool))[0], O)
    print(f"{'OK' if err < 1e-5 else 'WRONG'} capture_folded_away")


aliasing()
hostile()
runs_right()
