// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_90a --convert-attn-to-gpu | FileCheck %s

// The attention kernel is the sm_90a TMA + wgmma kernel.
// CHECK: gpu.func @document_mask(
// CHECK-SAME: attn.tma_args = array<i32: 0, 1, 2>
// CHECK: nvvm.wgmma.mma_async
// A document mask (a conjunct docs[i] == docs[j]) and causal: the block-map
// kernel first reduces the range of doc ids over the tile's rows and columns
// (atomic min/max in its workgroup scratch) and evaluates the elements, in
// 4x4 blocks, only when the two ranges overlap.
// CHECK: gpu.func @document_mask_blockmap
// CHECK-SAME: workgroup(%{{.*}} : memref<6xi32, #gpu.address_space<workgroup>>)
// CHECK-DAG: memref.atomic_rmw mins
// CHECK-DAG: memref.atomic_rmw maxs
// CHECK: arith.cmpi slt
// CHECK: arith.cmpi slt
// CHECK: scf.for
// CHECK-COUNT-16: arith.cmpi eq, %{{.*}}, %{{.*}} : i32
func.func @document_mask(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                         %v: tensor<?x4x?x64xbf16>, %docs: tensor<?xi32>)
    -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %causal = arith.cmpi uge, %i, %j : index
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %m = arith.andi %same, %causal : i1
      attn.yield %m : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
