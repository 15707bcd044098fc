// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="target=sm_80 block-q=64 block-kv=64" --convert-attn-to-gpu | FileCheck %s
// RUN: not attn-opt %s --attn-analyze-masks --attn-select-schedule="target=cpu" --convert-attn-to-gpu 2>&1 | FileCheck %s --check-prefix=CPUSCHED

// The spec stays; a gpu.module with the FlashAttention-2 kernel is added.
// Q is loaded once into A fragments; K/V tiles arrive by cp.async; S and
// P V use mma.sync; full tiles run without the mask (the `uge` comparison
// appears only in the partial-tile branch, together with the j < Nk guard).
// CHECK: module attributes {gpu.container_module}
// CHECK: attn.attention
// CHECK: gpu.module @causal_kernels
// CHECK: gpu.func @causal(%{{.*}}: memref<?xbf16>, {{.*}} workgroup({{.*}}memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK-SAME: kernel
// CHECK-SAME: attn.fragments
// CHECK: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.commit.group
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// CHECK: scf.for {{.*}} -> (index, index)
// CHECK: scf.while
// CHECK: nvvm.cp.async.wait.group 1
// CHECK: nvvm.mma.sync
// CHECK-SAME: multiplicandAPtxType = #nvvm.mma_type<bf16>
// CHECK-SAME: shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK: scf.if
// CHECK-NOT: arith.cmpi uge
// CHECK: } else {
// CHECK: arith.cmpi ult
// CHECK: arith.cmpi uge
// CHECK: gpu.shuffle xor
// CHECK: ex2.approx
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// CHECK: nvvm.mma.sync
// CHECK: lg2.approx
// CHECK: gpu.return

// CPUSCHED: has a CPU schedule; select a GPU target
func.func @causal(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                  %v: tensor<?x4x?x64xbf16>)
    -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}
