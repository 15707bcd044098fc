// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_90a --convert-attn-to-gpu | FileCheck %s

// A masked sm_90a kernel lists the q tile's non-empty kv tiles in shared
// memory: one tile per thread and round, ranked within the warp by a ballot,
// placed after the tiles of earlier warps and rounds, stored as
// index * 4 + class. Rounds run while another fits the list; the loop then
// visits (and TMA loads) the listed tiles only, and the windows repeat until
// every tile was classified.
// CHECK-LABEL: gpu.func @window_3d(
// CHECK-SAME: workgroup(%{{.*}} : memref<16xi32, #gpu.address_space<workgroup>> {{.*}}, %[[LIST:[a-z0-9]+]] : memref<1024xi32, #gpu.address_space<workgroup>>)
// CHECK: scf.while
// CHECK: scf.while
// CHECK: nvvm.vote.sync ballot
// CHECK: llvm.intr.ctpop
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[LIST]][%{{.*}}]
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK: memref.load %[[LIST]]
// CHECK: nvgpu.tma.async.load
// CHECK: nvvm.wgmma.mma_async
func.func @window_3d(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                     %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %fs = arith.constant 1024 : index
      %r = arith.constant 1 : index
      %ti = arith.divui %i, %fs : index
      %tj = arith.divui %j, %fs : index
      %dt = arith.subi %ti, %tj : index
      %adt = math.absi %dt : index
      %m = arith.cmpi sle, %adt, %r : index
      attn.yield %m : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// Without a mask every tile is visited: no list.
// CHECK-LABEL: gpu.func @full(
// CHECK-SAME: workgroup(%{{.*}} : memref<16xi32, #gpu.address_space<workgroup>> {{.*}}, %{{.*}} : memref<1xi32, #gpu.address_space<workgroup>>)
// CHECK-NOT: nvvm.vote.sync
// CHECK: gpu.return
func.func @full(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
