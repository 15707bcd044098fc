"""attnc.compile(spec, target='sm_90a') for the specs in argv[1] (see
compile_gpu_linear.test): prints each error on one line."""
import os
import sys

import attnc

for name, function in (("retnet", None), ("hedgehog", None), ("mamba2_scan", None),
                       ("mate", "mate_layer1")):
    with open(os.path.join(sys.argv[1], name + ".mlir")) as f:
        spec = f.read()
    try:
        attnc.compile(spec, target="sm_90a", function=function)
        print(f"{name}: compiled and returned")
    except attnc.AttncError as e:
        print(f"{name}: " + str(e).replace("\n", " "))
