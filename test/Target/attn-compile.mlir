// --attn-compile goes from a spec to a binary in one flag.
// RUN: attn-opt %s --attn-compile | FileCheck %s --check-prefix=CPU
// RUN: attn-opt %s --attn-compile="target=sm_90a block-q=64 block-kv=64" | FileCheck %s --check-prefix=PTX
// RUN: not attn-opt %s --attn-compile=target=sm_70 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not attn-opt %s --attn-compile="target=sm_80 format=elf" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not attn-opt %s --attn-compile="target=sm_80 block-q=-1" 2>&1 | FileCheck %s --check-prefix=TILE

// On the CPU the result is the LLVM dialect, ready for the host JIT.
// CPU: llvm.func @causal(
// CPU-NOT: attn.attention

// For a GPU the kernel is PTX in a gpu.binary, beside the spec.
// PTX: gpu.binary @causal_kernels
// PTX-SAME: chip = "sm_90a"
// PTX-SAME: .visible .entry causal(

// TARGET: attn-compile: unsupported target 'sm_70' (expected cpu, sm_80 or sm_90a)
// FORMAT: attn-compile: unknown format 'elf' (expected isa, bin or fatbin)
// TILE: attn-compile: tile sizes must not be negative

func.func @causal(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                  %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
