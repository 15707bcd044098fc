// RUN: attn-opt %s --attn-select-schedule | FileCheck %s --check-prefix=CPU
// RUN: attn-opt %s --attn-select-schedule=target=cpu | FileCheck %s --check-prefix=CPU
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 | FileCheck %s --check-prefix=SM80
// RUN: attn-opt %s --attn-select-schedule=target=sm_90a | FileCheck %s --check-prefix=SM90
// RUN: attn-opt %s --attn-select-schedule="target=cpu block-q=32 block-kv=64" | FileCheck %s --check-prefix=CPU-FORCED
// RUN: attn-opt %s --attn-select-schedule="target=sm_80 block-q=64" | FileCheck %s --check-prefix=SM80-BQ64
// RUN: attn-opt %s --attn-select-schedule="target=sm_90a block-kv=32" | FileCheck %s --check-prefix=SM90-BKV32
// RUN: attn-opt %s --attn-select-schedule="target=sm_90a block-q=64" | FileCheck %s --check-prefix=SM90-BQ64
// RUN: not attn-opt %s --attn-select-schedule=target=sm_70 2>&1 | FileCheck %s --check-prefix=BADTARGET
// RUN: not attn-opt %s --attn-select-schedule=block-q=48 2>&1 | FileCheck %s --check-prefix=BADBLOCK

// BADTARGET: error: attn-select-schedule: unknown target 'sm_70' (expected cpu, sm_80 or sm_90a)
// BADBLOCK: error: attn-select-schedule: block-q and block-kv must be powers of two

// The largest tile whose working set fits on chip; ties go to the larger
// block_q. On the CPU all tiles are f32 and must fit in 256 KiB; on GPUs the
// Q tile and `stages` K/V tiles must fit in shared memory (163 KiB on sm_80,
// 227 KiB on sm_90a) and the S and O tiles in 192 f32 registers per thread.

// f32, D = 64: 128x128 fits everywhere (on GPUs exactly at 192 registers).
// CPU-LABEL: func.func @f32_d64
// CPU: schedule = #attn.schedule<target = "cpu", block_q = 128, block_kv = 128, warps = 1, stages = 1, smem_bytes = 196608>
// SM80-LABEL: func.func @f32_d64
// SM80: schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 8, stages = 1, smem_bytes = 36864>
// SM90-LABEL: func.func @f32_d64
// SM90: schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 64, warps = 8, stages = 1, smem_bytes = 36864>
// CPU-FORCED-LABEL: func.func @f32_d64
// CPU-FORCED: schedule = #attn.schedule<target = "cpu", block_q = 32, block_kv = 64, warps = 1, stages = 1, smem_bytes = 57344>
// SM80-BQ64-LABEL: func.func @f32_d64
// SM80-BQ64: schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 36864>
// SM90-BKV32-LABEL: func.func @f32_d64
// SM90-BKV32: schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 32, warps = 8, stages = 1, smem_bytes = 18432>
func.func @f32_d64(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                   %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// bf16, D = 128, GQA 8:2: 128x128 is over the CPU budget and the GPU
// register budget; 128x64 wins over the equally large 64x128.
// CPU-LABEL: func.func @bf16_d128
// CPU: schedule = #attn.schedule<target = "cpu", block_q = 128, block_kv = 64, warps = 1, stages = 1, smem_bytes = 229376>
// SM80-LABEL: func.func @bf16_d128
// SM80: schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 8, stages = 1, smem_bytes = 34816>
// SM90-LABEL: func.func @bf16_d128
// sm_90a: 16-bit inputs with head dims 64/128 take the TMA + wgmma kernel's
// 128x128 tiles, two warpgroups and two K/V stages (160 KiB of dynamic
// shared memory: Q 32, K 32 + 32, V 32 + 32).
// SM90: schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 128, warps = 8, stages = 2, smem_bytes = 163840>
// CPU-FORCED-LABEL: func.func @bf16_d128
// CPU-FORCED: schedule = #attn.schedule<target = "cpu", block_q = 32, block_kv = 64, warps = 1, stages = 1, smem_bytes = 106496>
// SM80-BQ64-LABEL: func.func @bf16_d128
// SM80-BQ64: schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 34816>
// SM90-BKV32-LABEL: func.func @bf16_d128
// SM90-BKV32: schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 32, warps = 8, stages = 1, smem_bytes = 17408>
// SM90-BQ64-LABEL: func.func @bf16_d128
// SM90-BQ64: schedule = #attn.schedule<target = "sm_90a", block_q = 64, block_kv = 128, warps = 4, stages = 1, smem_bytes = 81920>
func.func @bf16_d128(%q: tensor<?x8x?x128xbf16>, %k: tensor<?x2x?x128xbf16>,
                     %v: tensor<?x2x?x128xbf16>) -> tensor<?x8x?x128xbf16> {
  %o = attn.attention %q, %k, %v
    : tensor<?x8x?x128xbf16>, tensor<?x2x?x128xbf16>, tensor<?x2x?x128xbf16>
      -> tensor<?x8x?x128xbf16>
  return %o : tensor<?x8x?x128xbf16>
}

// f16, D = 96: smaller tiles.
// CPU-LABEL: func.func @f16_d96
// CPU: schedule = #attn.schedule<target = "cpu", block_q = 128, block_kv = 128, warps = 1, stages = 1, smem_bytes = 262144>
// SM80-LABEL: func.func @f16_d96
// SM80: schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 8, stages = 1, smem_bytes = 26624>
// SM90-LABEL: func.func @f16_d96
// SM90: schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 64, warps = 8, stages = 1, smem_bytes = 26624>
// CPU-FORCED-LABEL: func.func @f16_d96
// CPU-FORCED: schedule = #attn.schedule<target = "cpu", block_q = 32, block_kv = 64, warps = 1, stages = 1, smem_bytes = 81920>
// SM80-BQ64-LABEL: func.func @f16_d96
// SM80-BQ64: schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 26624>
// SM90-BKV32-LABEL: func.func @f16_d96
// SM90-BKV32: schedule = #attn.schedule<target = "sm_90a", block_q = 128, block_kv = 32, warps = 8, stages = 1, smem_bytes = 13312>
func.func @f16_d96(%q: tensor<?x4x?x96xf16>, %k: tensor<?x4x?x96xf16>,
                    %v: tensor<?x4x?x96xf16>) -> tensor<?x4x?x96xf16> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x96xf16>, tensor<?x4x?x96xf16>, tensor<?x4x?x96xf16>
      -> tensor<?x4x?x96xf16>
  return %o : tensor<?x4x?x96xf16>
}

// A schedule written by the user is kept, whatever the target.
// CPU-LABEL: func.func @user_schedule
// CPU: schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>
// SM80-LABEL: func.func @user_schedule
// SM80: schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>
// SM90-LABEL: func.func @user_schedule
// SM90: schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>
// CPU-FORCED-LABEL: func.func @user_schedule
// CPU-FORCED: schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>
func.func @user_schedule(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                         %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
