// Linear attention and scans get a chunk length (block_q = block_kv). On
// GPUs: the largest of 128, 64, 32, 16 up to 4 F Dv / (F + Dv) whose rows and
// state fit on chip. On the CPU (no matrix units): 16. --block-q forces it.
// RUN: attn-opt %s --attn-select-schedule --split-input-file | FileCheck %s --check-prefix=CPU
// RUN: attn-opt %s --attn-select-schedule=target=sm_90a --split-input-file | FileCheck %s --check-prefix=GPU
// RUN: attn-opt %s --attn-select-schedule="block-q=32" --split-input-file | FileCheck %s --check-prefix=FORCED

// CPU-LABEL: func.func @gla_64
// CPU: attn.scan causal {{.*}}schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1
// GPU-LABEL: func.func @gla_64
// GPU: #attn.schedule<target = "sm_90a", block_q = 64, block_kv = 64, warps = 4, stages = 1
// FORCED-LABEL: func.func @gla_64
// FORCED: block_q = 32, block_kv = 32
func.func @gla_64(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?x64xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.scan causal %q, %k, %v decay(%g : tensor<?x4x?x64xf32>)
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// Small head dims get short chunks on GPUs too (4 * 16 * 16 / 32 = 32).
// GPU-LABEL: func.func @small
// GPU: block_q = 32, block_kv = 32
func.func @small(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                 %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
