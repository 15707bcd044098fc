"""The registry of bench/harness.py (docs/bench.md): every case, the
subcommands it has, and the existing scripts that implement each, with the
arguments they are run with.

A Step is one command, run from the repository root:
  argv     the command; "{py}" is the harness's Python, "{out}" its output
           directory, "{root}" the repository root, "{sanitizer}"
           compute-sanitizer (also in env values); a token with "*" is
           expanded (sorted) when it matches paths
  where    "host": the build machine (MLIR, build/; no GPU): prepare steps,
           CPU-only work; "device": the GPU machine (torch, CUDA; no MLIR)
  env      extra environment
  needs    paths (from the root) that must exist first; for device steps
           these are what travels in the carry (devcarry/...)
  stdout   a file that receives the command's standard output
  timeout  seconds (None: no limit of the harness's own)

A later issue adds its case here: a Case with its steps per subcommand.
"""
from dataclasses import dataclass, field

SUBCOMMANDS = ("prepare", "check", "bench", "sanitize", "profile")
HOST, DEVICE = "host", "device"


@dataclass(frozen=True)
class Step:
    argv: tuple
    where: str
    env: tuple = ()      # (("NAME", "value"), ...)
    needs: tuple = ()
    stdout: str = None
    timeout: int = None


def host(*argv, env=None, needs=(), stdout=None, timeout=None):
    return Step(tuple(argv), HOST, tuple(sorted((env or {}).items())), tuple(needs),
                stdout, timeout)


def device(*argv, env=None, needs=(), stdout=None, timeout=None):
    return Step(tuple(argv), DEVICE, tuple(sorted((env or {}).items())), tuple(needs),
                stdout, timeout)


@dataclass
class Case:
    name: str
    description: str
    steps: dict = field(default_factory=dict)  # subcommand -> tuple of Steps

    @property
    def carry(self):
        """What the device steps need carried, in order, each once."""
        out = []
        for sub in SUBCOMMANDS:
            for s in self.steps.get(sub, ()):
                if s.where == DEVICE:
                    out += [p for p in s.needs if p not in out]
        return out

    def where(self, sub):
        """"host", "device", "host+device" or "" (no such subcommand)."""
        kinds = []
        for s in self.steps.get(sub, ()):
            if s.where not in kinds:
                kinds.append(s.where)
        return "+".join(kinds)


# ----------------------------------------------------------------------------
# Prepare steps shared by several cases (run once per harness call).

# attn-run and libattnc_runtime.so linked without libMLIR for the GPU
# machine: devcarry/tools (runs ninja for attn-run and the runtime first).
TOOLS = host("bash", "bench/build_device_tools.sh")
# libattnc.so (attnc.compile's JIT) for the GPU machine: devcarry/tools.
LIBATTNC = host("bash", "bench/build_device_libattnc.sh")
# The launch library that attnc.load needs (the harness points
# ATTNC_LIB_DIR at devcarry/tools/lib on the device).
RUNTIME_LIB = host("install", "-D", "-m", "755", "build/lib/libattnc_runtime.so",
                   "devcarry/tools/lib/libattnc_runtime.so")
AOT_ALL = host("bash", "bench/build_aot.sh", "sm_90a")
AOT_CAUSAL = host("bash", "bench/build_aot.sh", "sm_90a", "causal")
DECODE_AOT = host("bash", "bench/build_decode.sh", "sm_90a")
PREPARE_DEVICE = host("bash", "bench/prepare_device.sh")
# bench/device_reliability.sh and bench/launch_overhead.py look for the
# launch library in devcarry/lib and for the C++ tools in devcarry/bin.
BIN_LAUNCH_CHECK = host("install", "-D", "-m", "755", "build/bin/attnc-gpu-launch-check",
                        "devcarry/bin/attnc-gpu-launch-check")
BIN_LAUNCH_BENCH = host("install", "-D", "-m", "755", "build/bin/attnc-launch-bench",
                        "devcarry/bin/attnc-launch-bench")
LIB_RUNTIME = host("install", "-D", "-m", "755", "build/lib/libattnc_runtime.so",
                   "devcarry/lib/libattnc_runtime.so")

TOOLS_DIR = "devcarry/tools"
RT_LIB = "devcarry/tools/lib/libattnc_runtime.so"


def sanitize_tools(*argv, needs, timeout=None):
    """The same command under compute-sanitizer memcheck, then racecheck."""
    return tuple(device("{sanitizer}", "--tool", tool, "--error-exitcode", "9", *argv,
                        needs=needs, timeout=timeout)
                 for tool in ("memcheck", "racecheck"))


CASES = [
    Case("softmax",
         "softmax forward variants of bench/specs.py: attn-aot kernels checked against "
         "float32 and timed beside SDPA flash/cuDNN and FlexAttention (run_device.py)",
         {"prepare": (AOT_ALL, RUNTIME_LIB),
          "check": (device("{py}", "bench/run_device.py", "devcarry/aot", "--extra",
                           "--check-only", "--out", "{out}/softmax",
                           needs=("devcarry/aot", RT_LIB)),),
          "bench": (device("{py}", "bench/run_device.py", "devcarry/aot", "--extra",
                           "--out", "{out}/softmax", needs=("devcarry/aot", RT_LIB)),),
          "sanitize": sanitize_tools("{py}", "bench/sanitize.py", "devcarry/aot", "causal",
                                     "document_mask", needs=("devcarry/aot", RT_LIB)),
          "profile": (device("{py}", "bench/profile_kernels.py", "devcarry/aot",
                             "document_mask", needs=("devcarry/aot", RT_LIB)),)}),
    Case("examples",
         "attn-run --backend=cuda on every example (softmax bf16/f16, linear/scan, MATE) "
         "against the CPU reference (device_attn_run.sh); linear examples under "
         "compute-sanitizer (sanitize_linear.sh)",
         {"prepare": (TOOLS,),
          "check": (device("bash", "bench/device_attn_run.sh", "{out}/attn-run-cuda.log",
                           needs=(TOOLS_DIR,)),),
          "sanitize": (device("bash", "bench/sanitize_linear.sh", "memcheck",
                              needs=(TOOLS_DIR,)),
                       device("bash", "bench/sanitize_linear.sh", "racecheck",
                              needs=(TOOLS_DIR,)))}),
    Case("backward",
         "attention backward: attn-run --backward --backend=cuda on every softmax example "
         "(device_backward.sh); the raw dq/dkdv kernels against float64 autograd and "
         "timed beside SDPA and FlexAttention (grad_kernels_check.py)",
         {"prepare": (TOOLS, host("bash", "bench/build_grad_kernels.sh", "devcarry/grad")),
          "check": (device("bash", "bench/device_backward.sh", "{out}/attn-run-backward.log",
                           needs=(TOOLS_DIR,)),
                    device("{py}", "bench/grad_kernels_check.py", "devcarry/grad",
                           needs=("devcarry/grad",))),
          "bench": (device("{py}", "bench/grad_kernels_check.py", "devcarry/grad", "--time",
                           "--flex", "--json", "{out}/backward-bench.json",
                           needs=("devcarry/grad",)),)}),
    Case("python-backward",
         "attn-aot --backward directories through attnc.load against float64 torch "
         "autograd (python_backward_check.py)",
         {"prepare": (host("bash", "bench/prepare_python_backward.sh"),),
          "check": (device("{py}", "bench/python_backward_check.py", "devcarry/grad_aot/*/*",
                           env={"ATTNC_LIB_DIR": "{root}/devcarry/tools/lib"},
                           needs=("devcarry/grad_aot", RT_LIB)),)}),
    Case("python-autograd",
         "gradients through attnc.flex_attention on CUDA, eager and torch.compile "
         "(device_python_autograd.sh)",
         {"prepare": (TOOLS, LIBATTNC),
          "check": (device("bash", "bench/device_python_autograd.sh",
                           "{out}/python-autograd.log",
                           needs=(TOOLS_DIR, "devcarry/tools/libattnc.so.xz")),)}),
    Case("linear",
         "linear-attention / scan kernels launched raw: checked against float32, timed "
         "beside flash-linear-attention and the memory floor (linear_gpu.py)",
         {"prepare": (host("bash", "bench/prepare_linear_device.sh"),),
          "check": (device("{py}", "bench/linear_gpu.py", "devcarry/linear",
                           env={"LINEAR_GPU_CHECK_ONLY": "1"}, needs=("devcarry/linear",)),),
          "bench": (device("{py}", "bench/linear_gpu.py", "devcarry/linear",
                           "devcarry/fla-src", "{out}/linear_gpu.json",
                           needs=("devcarry/linear",)),)}),
    Case("python-linear",
         "linear kernels through attnc.load (attnc.LinearKernel): checks, refusals, then "
         "timing through the Python call; check and bench run the same script "
         "(python_linear_check.py)",
         {"prepare": (host("bash", "bench/prepare_python_linear.sh"), RUNTIME_LIB),
          "check": (device("{py}", "bench/python_linear_check.py", "devcarry/pylinear",
                           "--out", "{out}", needs=("devcarry/pylinear", RT_LIB)),),
          "bench": (device("{py}", "bench/python_linear_check.py", "devcarry/pylinear",
                           "--out", "{out}", needs=("devcarry/pylinear", RT_LIB)),)}),
    Case("decode",
         "split-KV decode: attn-run at decode sizes, then decode_bench.py "
         "(device_decode.sh); bench: decode_bench.py alone against SDPA, FlexAttention "
         "and the copy bandwidth",
         {"prepare": (TOOLS, DECODE_AOT),
          "check": (device("bash", "bench/device_decode.sh", "{out}/decode.log",
                           "{out}/decode.json",
                           needs=(TOOLS_DIR, "devcarry/decode/aot")),),
          "bench": (device("{py}", "bench/decode_bench.py", "devcarry/decode/aot",
                           "{out}/decode.json", env={"ATTNC_LIB_DIR": "{root}/devcarry/tools/lib"},
                           needs=("devcarry/decode/aot", RT_LIB)),)}),
    Case("paged",
         "paged KV, kv_lens, sinks and packed varlen: attn-run checks, then "
         "paged_bench.py and varlen_bench.py (device_inference.sh); bench: "
         "paged_bench.py alone",
         {"prepare": (TOOLS, DECODE_AOT),
          "check": (device("bash", "bench/device_inference.sh", "{out}/inference.log",
                           "{out}/paged.json", "{out}/varlen.json",
                           needs=(TOOLS_DIR, "devcarry/decode/aot")),),
          "bench": (device("{py}", "bench/paged_bench.py", "devcarry/decode/aot",
                           "{out}/paged.json", env={"ATTNC_LIB_DIR": "{root}/devcarry/tools/lib"},
                           needs=("devcarry/decode/aot", RT_LIB)),)}),
    Case("varlen",
         "packed variable-length prefill (cu_seqlens): varlen_bench.py against the "
         "dense kernel padded and on equal lengths, FlexAttention's document mask "
         "and FA2 varlen",
         {"prepare": (TOOLS, DECODE_AOT),
          "bench": (device("{py}", "bench/varlen_bench.py", "devcarry/decode/aot",
                           "{out}/varlen.json", env={"ATTNC_LIB_DIR": "{root}/devcarry/tools/lib"},
                           needs=("devcarry/decode/aot", RT_LIB)),)}),
    Case("runtime",
         "runtime products: attnc.load, attnc.compile cache dirs, the C++ JIT's launch, a "
         "consumer built with attnc_add_kernels, sm_90a step kernels, fla baselines "
         "(prepare_device.sh, device_checks.sh)",
         {"prepare": (PREPARE_DEVICE, RUNTIME_LIB),
          "check": (device("bash", "bench/device_checks.sh", env={"OUT": "{out}"},
                           needs=("devcarry/aot", "devcarry/jit", "devcarry/consumer",
                                  "devcarry/attnc-gpu-launch-check", "devcarry/sm90",
                                  RT_LIB)),)}),
    Case("sm90",
         "sm_90a plan's step kernels (TMA copy, wgmma S and O, the one-warpgroup "
         "forward), checked, step 4 timed beside SDPA flash (sm90_checks.py; also part of "
         "runtime's check)",
         {"prepare": (PREPARE_DEVICE,),
          "check": (device("{py}", "bench/sm90_checks.py", "devcarry/sm90", timeout=140,
                           needs=("devcarry/sm90",)),)}),
    Case("fla-baselines",
         "flash-linear-attention's Triton chunk kernels and the memory floor at issue 5's "
         "shape (linear_baselines.py; also part of runtime's check)",
         {"prepare": (PREPARE_DEVICE,),
          "bench": (device("{py}", "bench/linear_baselines.py", "devcarry/fla-src",
                           "{out}/linear_baselines.json", timeout=170,
                           needs=("devcarry/fla-src",)),)}),
    Case("reliability",
         "issue 13 on the GPU: examples, random mask programs, attnc.load and cache dirs, "
         "the C++ launch check, the sm_90a numerics sweep; sanitize: memcheck and "
         "racecheck on every attn-aot kernel (device_reliability.sh)",
         {"prepare": (host("bash", "bench/prepare_reliability.sh"), BIN_LAUNCH_CHECK,
                      LIB_RUNTIME,
                      host("{py}", "bench/numerics_sweep.py", "--target", "sm_90a",
                           "--prepare", "devcarry/sweep", "--specs", "120", "--seed", "1",
                           env={"ATTNC_LIB_DIR": "{root}/build/lib"})),
          "check": (device("bash", "bench/device_reliability.sh", "examples", "fuzz", "load",
                           "sweep", env={"OUT": "{out}"},
                           needs=(TOOLS_DIR, "devcarry/aot", "devcarry/fuzz", "devcarry/jit",
                                  "devcarry/lib", "devcarry/bin", "devcarry/sweep")),),
          "sanitize": (device("bash", "bench/device_reliability.sh", "memcheck", "racecheck",
                              env={"OUT": "{out}"}, needs=("devcarry/aot", "devcarry/lib")),)}),
    Case("numerics-sweep",
         "random attention specs at random sizes, o and lse against float32 torch on "
         "sm_90a (numerics_sweep.py --prepare here, --prepared there)",
         {"prepare": (host("{py}", "bench/numerics_sweep.py", "--target", "sm_90a",
                           "--prepare", "devcarry/sweep", "--specs", "120", "--seed", "1",
                           env={"ATTNC_LIB_DIR": "{root}/build/lib"}), RUNTIME_LIB),
          "check": (device("{py}", "bench/numerics_sweep.py", "--target", "sm_90a",
                           "--prepared", "devcarry/sweep", "--specs", "120", "--sizes", "9",
                           "--seed", "1", "--json", "{out}/sweep.json",
                           needs=("devcarry/sweep", RT_LIB)),)}),
    Case("fuzz-masks",
         "random mask programs with integer captures through attn-run --backend=cuda "
         "(fuzz_masks.py here, fuzz_gpu.sh there)",
         {"prepare": (TOOLS, host("{py}", "bench/fuzz_masks.py", "devcarry/fuzz", "40",
                                  "--seed", "5000", "--dtype", "bf16")),
          "check": (device("bash", "bench/fuzz_gpu.sh", "devcarry/fuzz",
                           needs=(TOOLS_DIR, "devcarry/fuzz")),)}),
    Case("fuzz-linear-sizes",
         "linear / scan specs at random lengths around chunk boundaries through attn-run "
         "--backend=cuda (fuzz_linear_sizes.py here, fuzz_gpu.sh there)",
         {"prepare": (TOOLS,
                      host("{py}", "bench/linear_gpu.py", "--write-specs",
                           "devcarry/fuzz-linear/specs"),
                      host("{py}", "bench/fuzz_linear_sizes.py", "devcarry/fuzz-linear/specs",
                           "devcarry/fuzz-linear")),
          "check": (device("bash", "bench/fuzz_gpu.sh", "devcarry/fuzz-linear",
                           needs=(TOOLS_DIR, "devcarry/fuzz-linear")),)}),
    Case("fuzz-compiler",
         "the robustness fuzzer on the build machine: example mutants and random programs "
         "through attn-opt and attn-aot (fuzz/attn_fuzz.py, CI's budget)",
         {"check": (host("{py}", "bench/fuzz/attn_fuzz.py", "--seed", "1", "--budget", "150",
                         "--out", "{out}/attn-fuzz.json"),)}),
    Case("launch",
         "launch overhead: attnc.load's Python call and the C API (attnc-launch-bench) "
         "beside SDPA and FlexAttention, device and host time per call "
         "(launch_overhead.py)",
         {"prepare": (AOT_CAUSAL, LIB_RUNTIME, BIN_LAUNCH_BENCH),
          "bench": (device("{py}", "bench/launch_overhead.py", "devcarry/aot/causal",
                           "{out}/launch_overhead.json", env={"ATTNC_LIB_DIR": "{root}/devcarry/lib"},
                           needs=("devcarry/aot/causal", "devcarry/lib",
                                  "devcarry/bin/attnc-launch-bench")),)}),
    Case("torch-integration",
         "attnc kernels inside torch: torch.compile without graph breaks, CUDA graphs "
         "(torch_integration.py)",
         {"prepare": (AOT_CAUSAL, RUNTIME_LIB),
          "check": (device("{py}", "bench/torch_integration.py", "devcarry/aot/causal",
                           needs=("devcarry/aot/causal", RT_LIB)),)}),
    Case("compile-time",
         "compile time of attnc on the build machine: cold, disk-cache and memory-cache "
         "hits per example and target (attnc-compile-bench, bench/compile_time.cpp)",
         {"bench": (host("build/bin/attnc-compile-bench", "--reps", "5",
                         stdout="{out}/compile_time.json"),)}),
]

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "duplicate case names"
for _c in CASES:
    assert set(_c.steps) <= set(SUBCOMMANDS), _c.name
