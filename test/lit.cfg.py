import os
import shutil
import subprocess

import lit.formats
from lit.llvm import llvm_config

config.name = "attnc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.attnc_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py",
                   "Inputs"]
llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(["attn-opt", "attn-run", "attn-aot",
                                    "attnc-gpu-launch-check"],
                                   [config.attnc_tools_dir])
config.substitutions.append(("%examples", os.path.join(config.attnc_src_root,
                                                       "examples")))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("%attnc_src", config.attnc_src_root))
# test/Python: libattnc.so (the C API that attnc.compile loads).
config.substitutions.append(("%attnc_lib_dir", os.path.join(config.attnc_obj_root,
                                                           "lib")))

# debug-only: attn-opt takes -debug-only=<pass flag> (LLVM_DEBUG output of
# the passes). Only LLVM builds with assertions (or LLVM_ENABLE_DUMP) and an
# attnc built without NDEBUG have it; the Debian/apt.llvm.org LLVM 22
# packages do not (docs/user-guide.md, "Debug output and logs").
try:
    help_hidden = subprocess.run(
        [os.path.join(config.attnc_tools_dir, "attn-opt"), "--help-hidden"],
        capture_output=True, text=True, timeout=60).stdout
    if "-debug-only=" in help_hidden:
        config.available_features.add("debug-only")
except Exception:
    pass

# Optional features: ptxas (CUDA toolkit) and a CUDA device.
cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
ptxas = shutil.which("ptxas") or os.path.join(cuda_home, "bin", "ptxas")
if os.path.exists(ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
# %attnc_gpu_arch: the attn-aot target whose cubins load on this machine's
# GPU (sm_80 where there is none).
gpu_arch = "sm_80"
if shutil.which("nvidia-smi"):
    try:
        if subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                          timeout=20).returncode == 0:
            config.available_features.add("cuda-device")
        cap = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap",
                              "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.split()
        if cap and cap[0].startswith("9."):
            gpu_arch = "sm_90a"
    except Exception:
        pass
config.substitutions.append(("%attnc_gpu_arch", gpu_arch))

# test/Package: installs this build and builds examples/consumer with CMake.
config.substitutions.append(("%cmake", shutil.which("cmake") or
                             "/usr/bin/cmake"))
config.substitutions.append(("%attnc_obj_root", config.attnc_obj_root))
# python-wheel: Debian's python3 builds and installs wheels offline (pip,
# setuptools and wheel; test/Package/python-wheel.test).
try:
    if subprocess.run(["/usr/bin/python3", "-c", "import setuptools, wheel, pip"],
                      capture_output=True, timeout=120).returncode == 0:
        config.available_features.add("python-wheel")
except Exception:
    pass

config.substitutions.append(("%attnc_runtime_tests",
                             os.path.join(config.attnc_obj_root, "test",
                                          "Unit", "attnc-runtime-tests")))
config.substitutions.append(("%attnc_unittests",
                             os.path.join(config.attnc_obj_root, "test",
                                          "Unit", "attnc-unittests")))
# The kernel-set ABI without MLIR (test/Unit/abi.test).
for tool in ("attnc-abi-tests", "attnc-abi-check", "attnc-launch-check"):
    config.substitutions.append(("%" + tool.replace("-", "_"),
                                 os.path.join(config.attnc_obj_root, "test",
                                              "Unit", tool)))
# The stand-in CUDA driver of test/Unit/launch.test.
config.substitutions.append(("%fake_cuda_dir", os.path.join(
    config.attnc_obj_root, "test", "Unit", "fakecuda")))
