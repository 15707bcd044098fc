"""Linear-attention / scan kernels called from Python on the GPU machine:
attnc.load of the cache entries that bench/prepare_python_linear.sh built
with attnc.compile (attnc.LinearKernel: feature kernel, workspaces, constant
decays and value checks done by the package, no MLIR needed).

  python3 bench/python_linear_check.py devcarry/pylinear [--out DIR]

Each kernel is checked against the float32 definition of bench/linear_gpu.py
(Case.reference) at the sizes that script uses, with q, k, v and the gates
passed as strided views in both [B, T, H, D] and [B, H, T, D] storage; then
the package's refusals (positive log-gates, a token order's length, wrong
dtypes and shapes) are checked, and the benchmark-shape kernels are timed
through the Python call (B=4, T=8192, H=16, D=Dv=128, bf16). Prints one
PASS/FAIL line per check and writes python_linear.json to --out ($OUT)."""
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import attnc  # noqa: E402
from linear_gpu import (FEATURE_MAPS, Case, check_sizes, memory_floor, rel_err,  # noqa: E402
                        timing_inputs, token_order)
from timing import timeit  # noqa: E402


def inputs_for(kernel, case):
    """The kernel's inputs, in its argument order, as views of Case's
    tensors (logical [B, H, T, *]; strided when Case stores [B, T, H, *])."""
    by_name = {"q": case.bhtd(case.q), "k": case.bhtd(case.k), "v": case.bhtd(case.v),
               "decay": case.gate, "initial_state": case.init, **case.caps}
    return [by_name[n] for n in kernel.names]


def expect_error(what, fn, fragment):
    try:
        fn()
    except attnc.AttncError as e:
        ok = fragment in str(e)
        print(f"{'PASS' if ok else 'FAIL'} refuse {what}: {e}")
        return ok
    print(f"FAIL refuse {what}: no error")
    return False


def main():
    kdir = sys.argv[1]
    out_dir = os.environ.get("OUT", ".")
    if "--out" in sys.argv:
        out_dir = sys.argv[sys.argv.index("--out") + 1]
    with open(os.path.join(kdir, "index.json")) as f:
        index = json.load(f)
    torch.zeros(1, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    result = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
              "checks": [], "refusals": 0, "times": {}}
    fails = 0
    kernels = {}
    for name, e in index.items():
        kernels[name] = attnc.load(os.path.join(kdir, e["dir"]))[e["function"]]
    print(f"{result['device']}: {len(kernels)} kernels loaded with attnc.load")

    for name, kern in kernels.items():
        with open(os.path.join(kdir, index[name]["spec"])) as f:
            spec_text = f.read()
        abi = kern.abi
        if abi["H"] != 4:  # the benchmark shapes are timed below
            continue
        entry = {"abi": abi, "name": name}
        order = token_order(spec_text)
        for si, (B, T, layout, gdiv) in enumerate(check_sizes(abi, spec_text)):
            what = f"{name} B={B} T={T} {layout}" + (f" gates=logsigmoid/{gdiv}" if gdiv != 16 else "")
            case = Case(entry, B, T, layout, seed=31 + si, spec_text=spec_text, gate_div=gdiv)
            args = inputs_for(kern, case)
            if order and T != order[2] + math.prod(order[0]):
                # The package refuses other lengths than the token order's.
                ok = expect_error(what, lambda: kern(*args), "token order is for")
                fails += not ok
                result["refusals"] += 1
                continue
            try:
                res = kern(*args)
                o, final = (res if isinstance(res, tuple) else (res, None))
                torch.cuda.synchronize()
                ref_o, ref_f = case.reference(abi, FEATURE_MAPS.get(name, "identity"))
                errs = {"o": rel_err(o, ref_o)}
                if ref_f is not None:
                    errs["final_state"] = rel_err(final, ref_f)
                ok = all(x < 1e-2 for x in errs.values())
            except Exception as ex:  # noqa: BLE001
                print(f"FAIL {what}: {type(ex).__name__}: {ex}")
                fails += 1
                result["checks"].append({"kernel": name, "B": B, "T": T, "layout": layout,
                                         "error": str(ex)})
                continue
            fails += not ok
            desc = " ".join(f"{n}_rel_err={x:.2e}" for n, x in errs.items())
            print(f"{'PASS' if ok else 'FAIL'} {what} {desc}")
            result["checks"].append({"kernel": name, "B": B, "T": T, "layout": layout, "ok": ok,
                                     **errs})

    # Refusals of the package itself, before anything runs.
    m2 = kernels["mamba2_scan"]
    case = Case({"abi": m2.abi, "name": "mamba2_scan"}, 1, 64, "bhtd", seed=5,
                spec_text=open(os.path.join(kdir, index["mamba2_scan"]["spec"])).read())
    args = inputs_for(m2, case)
    bad = list(args)
    bad[m2.names.index("decay")] = case.gate.abs() + 0.1
    checks = [
        ("positive log-gates", lambda: m2(*bad), "<= 0 (the decay is exp(g))"),
        ("f16 q for a bf16 kernel", lambda: m2(args[0].half(), *args[1:]), "must be torch.bfloat16"),
        ("a short k", lambda: m2(args[0], args[1][:, :, :32], *args[2:]), "must be [B, 4, N, 64]"),
        ("too few inputs", lambda: m2(*args[:3]), "expected 5 inputs"),
        ("a CPU tensor", lambda: m2(args[0].cpu(), *args[1:]), "must be on a CUDA device"),
    ]
    for what, fn, frag in checks:
        ok = expect_error(what, fn, frag)
        fails += not ok
        result["refusals"] += 1

    # Timing through the Python call, benchmark shapes (bench/linear_gpu.py
    # times the same kernels launched directly).
    B, T, H, D = 4, 8192, 16, 128
    q, k, v, g_tok, g_dim = timing_inputs()
    floor_ms, _ = memory_floor(B, T, H, D)
    print(f"floor: {floor_ms:.3f} ms")
    views = [x.permute(0, 2, 1, 3) for x in (q, k, v)]
    for name, kern in kernels.items():
        abi = kern.abi
        if abi["H"] != H or abi["D"] != D:
            continue
        extra = {"decay": g_tok.permute(0, 2, 1) if abi["decay"] == "token" else
                 g_dim.permute(0, 2, 1, 3) if abi["decay"] == "token_dim" else None}
        args = views + [extra[n] for n in kern.names[3:]]
        o = torch.empty(B, H, T, abi["Dv"], device="cuda", dtype=torch.bfloat16)
        try:
            # The default call checks the log-gates (a read of the gates
            # and a wait for the answer); check_values=False skips that.
            ms = timeit(lambda: kern(*args, out=o), [()])
            fast = timeit(lambda: kern(*args, out=o, check_values=False), [()])
        except Exception as ex:  # noqa: BLE001
            print(f"FAIL time {name}: {type(ex).__name__}: {ex}")
            fails += 1
            continue
        result["times"][name] = {"ms": ms, "ms_no_value_checks": fast,
                                 "ratio_to_floor": fast / floor_ms}
        print(f"TIME attnc.LinearKernel {name}: {ms:.3f} ms, check_values=False "
              f"{fast:.3f} ms ({fast / floor_ms:.2f} x floor)")

    result["fails"] = fails
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "python_linear.json"), "w") as f:
        json.dump(result, f, indent=1)
    n = len(result["checks"]) + result["refusals"]
    print(f"{'PASS' if fails == 0 else 'FAIL'}: {n - fails}/{n} checks passed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
