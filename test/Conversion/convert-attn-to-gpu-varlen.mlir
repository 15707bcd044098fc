// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="target=sm_90a" --convert-attn-to-gpu | FileCheck %s
// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="target=sm_80" --convert-attn-to-gpu | FileCheck %s --check-prefix=SM80

// Packed variable-length sequences on sm_90a: the wgmma kernel over a
// (varlen_q_tiles, Hq, 1) grid; each block walks cu_seqlens_q to find its
// sequence and q tile, then loads by TMA from the sequence's first rows in
// batch 0. No split-KV form.
// CHECK: gpu.func @varlen(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %[[CQ:.*]]: memref<?xi32>, %[[CK:.*]]: memref<?xi32>,
// CHECK-SAME: \22grid\22: [\22varlen_q_tiles\22, 8, 1]
// CHECK-SAME: \22varlen\22: {\22cu_seqlens_k\22: \22capture1\22, \22cu_seqlens_q\22: \22capture0\22}
// CHECK: scf.for
// CHECK: memref.load %[[CQ]]
// CHECK: memref.load %[[CK]]
// CHECK: nvgpu.tma.async.load
// CHECK-NOT: gpu.func @varlen_splitkv
// SM80: gpu.func @varlen(%{{.*}}: memref<?xbf16>
// SM80: scf.for
// SM80: nvgpu.device_async_copy
// SM80-NOT: gpu.func @varlen_splitkv
func.func @varlen(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>,
                  %v: tensor<1x2x?x64xbf16>, %cu_q: tensor<?xi32>,
                  %cu_k: tensor<?xi32>)
    -> (tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v cu_seqlens_q(%cu_q : tensor<?xi32>)
      cu_seqlens_k(%cu_k : tensor<?xi32>) queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>
      -> tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
  return %o, %lse : tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
}
