"""attnc.compile(spec, target='sm_90a') for the specs in argv[1] (see
compile_gpu_linear.test): prints each kernel, or each error on one line."""
import os
import sys

import attnc

for name, function in (("retnet", None), ("hedgehog", None), ("mamba2_scan", None),
                       ("mate", "mate_layer1"), ("mate_exp", "mate_exp")):
    with open(os.path.join(sys.argv[1], name.replace("_exp", "") + ".mlir")) as f:
        spec = f.read()
    if name == "mate_exp":
        # A layer whose sum goes through math.exp: not a GPU program.
        spec = spec.replace("func.func @mate_layer0(", "func.func @mate_exp(", 1)
        spec = spec.replace("  %o = arith.addf %ma, %sw : tensor<?x4x?x64xbf16>\n"
                            "  return %o : tensor<?x4x?x64xbf16>\n}\n\nfunc.func @mate_layer1(",
                            "  %s = arith.addf %ma, %sw : tensor<?x4x?x64xbf16>\n"
                            "  %o = math.exp %s : tensor<?x4x?x64xbf16>\n"
                            "  return %o : tensor<?x4x?x64xbf16>\n}\n\nfunc.func @mate_layer1(", 1)
    try:
        k = attnc.compile(spec, target="sm_90a", function=function)
        print(f"{name}: {k!r}")
        if isinstance(k, attnc.LinearKernel):
            # What attnc.load found in the cache entry.
            print(f"{name}: inputs {k.names}, outputs "
                  f"{[(p['name'], p['shape']) for p in k.outputs]}, "
                  f"feature kernel {'feature_kernel' in k.abi}, "
                  f"constant decays {len(k.meta['const_decay'])}, log-gate checks "
                  f"{k.checks['log_gates']}")
            try:
                k(1, 2)
            except attnc.AttncError as e:
                print(f"{name}: call: {e}")
    except attnc.AttncError as e:
        print(f"{name}: " + str(e).replace("\n", " "))

# A function returning a constant beside its attention: nothing would
# write that result on the GPU.
RET_CONST = """
func.func @ret_const(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                     %v: tensor<?x4x?x64xbf16>)
    -> (tensor<?x4x?x64xbf16>, tensor<2x2xf32>) {
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>,
      tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  %c = arith.constant dense<1.0> : tensor<2x2xf32>
  return %o, %c : tensor<?x4x?x64xbf16>, tensor<2x2xf32>
}
"""
try:
    attnc.compile(RET_CONST, target="sm_90a")
    print("ret_const: compiled and returned")
except attnc.AttncError as e:
    print("ret_const: " + str(e).replace("\n", " "))
print("STATS " + " ".join(f"{k}={v}" for k, v in sorted(attnc.cache_stats().items())))
