// RUN: attn-opt %s | FileCheck %s
// RUN: attn-opt %s | attn-opt | FileCheck %s
// #attn.schedule's target is an enum (mlir::attn::Target), printed as its
// quoted name; a bare name parses too.

// CHECK-LABEL: func.func @quoted
// CHECK: #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 128, warps = 8, stages = 2, smem_bytes = 163840>
func.func @quoted(%q: tensor<?x4x?x64xf16>, %k: tensor<?x4x?x64xf16>, %v: tensor<?x4x?x64xf16>) -> tensor<?x4x?x64xf16> {
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 128, warps = 8, stages = 2, smem_bytes = 163840>} : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16> -> tensor<?x4x?x64xf16>
  return %o : tensor<?x4x?x64xf16>
}

// CHECK-LABEL: func.func @bare
// CHECK: #attn.schedule<target = "cpu", block_q = 64, block_kv = 64, warps = 1, stages = 1, smem_bytes = 0>
func.func @bare(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = cpu, block_q = 64, block_kv = 64, warps = 1, stages = 1, smem_bytes = 0>} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
