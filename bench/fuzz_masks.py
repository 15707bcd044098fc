"""Random mask specs for differential testing: each is an attn.attention
whose mask is a random expression over b, h, i, j (integer arithmetic,
division and remainder by constants, shifts, min/max, casts to i32,
selects, every comparison, boolean combinations), returning o and lse.
attn-run compares the compiled kernel with the reference lowering, so a
wrong tile classification, kv range or block map shows up as a FAIL.

  python3 bench/fuzz_masks.py DIR N [--seed S] [--dtype bf16|f32]
writes DIR/r<seed>.mlir and DIR/runs.txt (one attn-run flag set per line:
spec and sizes, ragged, Nq != Nk, GQA). On the GPU machine:
  bench/fuzz_gpu.sh DIR   (attn-run --backend=cuda on every line)
and on this machine `while read ...; attn-run $line` for the CPU."""
import argparse
import os
import random


class Gen:
    def __init__(self, rng):
        self.r, self.lines, self.n = rng, [], 0

    def _def(self, rhs):
        """A new value %vN = rhs."""
        self.n += 1
        v = f"%v{self.n}"
        self.lines.append(f"{v} = {rhs}")
        return v

    def _v(self, rhs, ty):
        return self._def(f"{rhs} : {ty}")

    def const(self, val, ty="index"):
        return self._def(f"arith.constant {val} : {ty}")

    def idx(self, depth):
        r = self.r
        if depth <= 0 or r.random() < 0.25:
            if r.random() < 0.85:
                return r.choice(["%i", "%j", "%i", "%j", "%b", "%h"])
            return self.const(r.choice([0, 1, 2, 3, 7, 16, 31, 64, 100, 129, 200, -1, -5, -64]))
        op = r.choice(["addi", "subi", "subi", "muli", "divsi", "divui", "remsi", "remui",
                       "ceildivsi", "floordivsi", "minsi", "maxsi", "minui", "maxui", "shli",
                       "shrui", "shrsi", "select", "cast32"])
        if op in ("addi", "subi", "minsi", "maxsi", "minui", "maxui"):
            a = self.idx(depth - 1)
            b = (self.idx(depth - 1) if r.random() < 0.6
                 else self.const(r.choice([0, 1, 3, 8, 15, 17, 63, 64, 100, -1, -3])))
            return self._v(f"arith.{op} {a}, {b}", "index")
        if op == "muli":
            a = self.idx(depth - 1)
            return self._v(f"arith.muli {a}, {self.const(r.choice([0, 1, 2, 3, 5, -1, -2]))}",
                           "index")
        if op in ("divsi", "divui", "remsi", "remui", "ceildivsi", "floordivsi"):
            a = self.idx(depth - 1)
            # A signed division by -1 overflows at the minimum: the verifier
            # refuses it unless the dividend is bounded away from it.
            cs = [1, 2, 3, 5, 7, 16, 32, 64, 100, -3, -16]
            c = self.const(r.choice(cs + ([-1] if op.endswith("ui") else [])))
            return self._v(f"arith.{op} {a}, {c}", "index")
        if op in ("shli", "shrui", "shrsi"):
            a = self.idx(depth - 1)
            return self._v(f"arith.{op} {a}, {self.const(r.choice([0, 1, 2, 3, 5, 6]))}",
                           "index")
        if op == "select":
            c, a, b = self.boolean(depth - 1), self.idx(depth - 1), self.idx(depth - 1)
            return self._v(f"arith.select {c}, {a}, {b}", "index")
        # cast32: a round trip through i32 arithmetic.
        v = self._def(f"arith.index_cast {self.idx(depth - 1)} : index to i32")
        w = self._v(f"arith.{r.choice(['addi', 'subi', 'maxsi', 'minsi', 'divsi', 'remsi'])} "
                    f"{v}, {self.const(r.choice([1, 3, -2, 100]), 'i32')}", "i32")
        return self._def(f"arith.index_cast {w} : i32 to index")

    def boolean(self, depth):
        r = self.r
        if depth <= 0 or r.random() < 0.45:
            if r.random() < 0.05:
                return self._def(f"arith.constant {r.choice(['true', 'false'])}")
            p = r.choice(["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"])
            return self._v(f"arith.cmpi {p}, {self.idx(depth - 1)}, {self.idx(depth - 1)}",
                           "index")
        op = r.choice(["andi", "ori", "xori", "andi", "ori", "select"])
        if op == "select":
            c, a, b = self.boolean(depth - 1), self.boolean(depth - 1), self.boolean(depth - 1)
            return self._v(f"arith.select {c}, {a}, {b}", "i1")
        return self._v(f"arith.{op} {self.boolean(depth - 1)}, {self.boolean(depth - 1)}", "i1")


def spec(name, body, hq, hkv, d, et):
    def t(h, n):
        return f"tensor<?x{h}x?x{n}x{et}>"
    q, k, v, o = t(hq, d), t(hkv, d), t(hkv, d), t(hq, d)
    lse = f"tensor<?x{hq}x?xf32>"
    mask = "\n".join("      " + line for line in body)
    return (f"func.func @{name}(%q: {q}, %k: {k}, %v: {v}) -> ({o}, {lse}) {{\n"
            f"  %o, %lse = attn.attention %q, %k, %v\n"
            f"    mask(%b: index, %h: index, %i: index, %j: index) {{\n{mask}\n    }}\n"
            f"    : {q}, {k}, {v}\n      -> {o}, {lse}\n"
            f"  return %o, %lse : {o}, {lse}\n}}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="bf16")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    runs = []
    for seed in range(a.seed, a.seed + a.n):
        rng = random.Random(seed)
        g = Gen(rng)
        m = g.boolean(rng.choice([2, 3, 4, 5]))
        hq, hkv = rng.choice([(2, 1), (4, 2), (4, 4), (4, 1)])
        d = rng.choice([64, 64, 32])  # 64: the sm_90a wgmma kernel; 32: mma.sync
        name = f"r{seed}"
        with open(os.path.join(a.dir, name + ".mlir"), "w") as f:
            f.write(spec(name, g.lines + [f"attn.yield {m} : i1"], hq, hkv, d, a.dtype))
        for _ in range(2):
            nq = rng.choice([1, 17, 64, 65, 130, 200, 257, 300])
            nk = rng.choice([1, 31, 64, 100, 129, 255, 300])
            b = rng.choice([1, 2, 3])
            runs.append(f"{name}.mlir --batch {b} --nq {nq} --nk {nk} --seed {seed}")
    with open(os.path.join(a.dir, "runs.txt"), "w") as f:
        f.write("\n".join(runs) + "\n")
    print(f"{a.n} specs, {len(runs)} runs in {a.dir}")


if __name__ == "__main__":
    main()
