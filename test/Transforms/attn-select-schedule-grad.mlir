// The backward's tiles: 64-row q tiles (dq kernel) and kv tiles (dkdv
// kernel) on GPUs unless forced, 32 x 32 on the CPU; a schedule written in
// the spec is kept.
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 | FileCheck %s --check-prefix=GPU
// RUN: attn-opt %s --attn-select-schedule="target=sm_90a block-q=32 block-kv=128" | FileCheck %s --check-prefix=FORCED
// RUN: attn-opt %s --attn-select-schedule=target=cpu | FileCheck %s --check-prefix=CPU

// GPU: #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4
// FORCED: #attn.schedule<target = "sm_90a", block_q = 32, block_kv = 128, warps = 2
// CPU: #attn.schedule<target = "cpu", block_q = 32, block_kv = 32, warps = 1
func.func @grad(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}

// GPU-LABEL: func.func @kept
// GPU: block_q = 16, block_kv = 16
func.func @kept(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do {schedule = #attn.schedule<target = "sm_80", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>} : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}
