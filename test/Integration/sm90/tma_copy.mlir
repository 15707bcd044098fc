// Step 1 of docs/notes/sm90a-plan.md: a TMA copy. Thread 0 initializes an
// mbarrier and issues two TMA loads of a 128-row x 64-column bf16 box (128B
// swizzle) of a 2-D tensor map, at columns 0 and 64 of row `row0`; the block
// waits on the barrier and copies the 32 KB of dynamic shared memory to
// `out` byte for byte. bench/sm90_checks.py checks it on an H100: the 128B
// swizzle (which also shows the 1024-byte alignment of the dynamic shared
// memory: the pattern follows address bits), the coordinate order, zero fill
// past the last row, the by-value tensor map.
// RUN: attn-opt %s --attn-compile="target=sm_90a" | FileCheck %s
// CHECK: gpu.binary @tma_copy_kernels
// CHECK-SAME: .extern .shared .align 1024 .b8 __dynamic_shmem__0[];
// CHECK-SAME: .param .align 64 .b8 tma_copy_param_0[128]
// CHECK-SAME: cp.async.bulk.tensor.2d.shared::cluster.global
// CHECK-SAME: mbarrier.try_wait.parity

!bar = !nvgpu.mbarrier.group<memorySpace = #gpu.address_space<workgroup>>
!tile = memref<128x64xbf16, #gpu.address_space<workgroup>>
!map = !nvgpu.tensormap.descriptor<tensor = !tile, swizzle = swizzle_128b, l2promo = none, oob = zero, interleave = none>

module attributes {gpu.container_module} {
  gpu.module @tma_copy_kernels {
    gpu.func @tma_copy(%mapPtr: !llvm.ptr, %out: memref<?xi8>, %row0: index)
        kernel attributes {attn.tma_args = array<i32: 0>} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c64 = arith.constant 64 : index
      %c256 = arith.constant 256 : index
      %c16384 = arith.constant 16384 : index
      %c32768 = arith.constant 32768 : index
      %tid = gpu.thread_id x
      %map = builtin.unrealized_conversion_cast %mapPtr : !llvm.ptr to !map
      %smem = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
      %bar = nvgpu.mbarrier.create -> !bar
      %first = arith.cmpi eq, %tid, %c0 : index
      scf.if %first {
        nvgpu.mbarrier.init %bar[%c0], %c1 : !bar
      }
      gpu.barrier
      scf.if %first {
        nvgpu.mbarrier.arrive.expect_tx %bar[%c0], %c32768 : !bar
        %v0 = memref.view %smem[%c0][] : memref<?xi8, #gpu.address_space<workgroup>> to !tile
        %v1 = memref.view %smem[%c16384][] : memref<?xi8, #gpu.address_space<workgroup>> to !tile
        nvgpu.tma.async.load %map[%c0, %row0], %bar[%c0] to %v0 : !map, !bar -> !tile
        nvgpu.tma.async.load %map[%c64, %row0], %bar[%c0] to %v1 : !map, !bar -> !tile
      }
      %parity = arith.constant false
      %ticks = arith.constant 10000000 : index
      nvgpu.mbarrier.try_wait.parity %bar[%c0], %parity, %ticks : !bar
      %base = arith.muli %tid, %c256 : index
      scf.for %i = %c0 to %c256 step %c1 {
        %a = arith.addi %base, %i : index
        %x = memref.load %smem[%a] : memref<?xi8, #gpu.address_space<workgroup>>
        memref.store %x, %out[%a] : memref<?xi8>
      }
      gpu.return
    }
  }
}
