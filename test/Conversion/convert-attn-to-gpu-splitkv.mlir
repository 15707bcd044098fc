// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="target=sm_90a" --convert-attn-to-gpu | FileCheck %s

// Beside the main kernel, the split-KV form: the mma.sync kernel on 64
// packed rows (the 4 query heads of a kv head) whose kv slice is the grid's
// y, writing f32 partial o and lse, and the combine kernel merging the
// slices by their lse.
// CHECK: gpu.func @gqa_window(
// CHECK: gpu.func @gqa_window_splitkv(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: index
// CHECK-SAME: workgroup({{.*}}memref<64x136xbf16, #gpu.address_space<workgroup>>, {{.*}}memref<64x136xbf16, #gpu.address_space<workgroup>>)
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: gpu.block_id  y
// CHECK: gpu.block_id  z
// CHECK: arith.remui %{{.*}}, %c4
// CHECK: gpu.grid_dim  y
// CHECK: nvvm.mma.sync
// CHECK: vector.store %{{.*}} : memref<?xf32>, vector<2xf32>
// CHECK: gpu.return
// CHECK: gpu.func @gqa_window_combine(%{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: scf.for
// CHECK: arith.maximumf
// CHECK: scf.for
// CHECK: ex2.approx
// CHECK: arith.truncf
// CHECK: lg2.approx
// CHECK: gpu.return
func.func @gqa_window(%q: tensor<?x16x?x128xbf16>, %k: tensor<?x4x?x128xbf16>,
                      %v: tensor<?x4x?x128xbf16>)
    -> (tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c256 = arith.constant 256 : index
      %d = arith.subi %i, %j : index
      %c = arith.cmpi ult, %d, %c256 : index
      attn.yield %c : i1
    } : tensor<?x16x?x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>
      -> tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>
  return %o, %lse : tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>
}
