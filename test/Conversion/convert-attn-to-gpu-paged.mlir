// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="target=sm_90a" --convert-attn-to-gpu | FileCheck %s

// A paged KV cache on sm_90a: the mma.sync kernel (cp.async gathers pages
// row by row; no tensor maps), in the main and the split-KV kernel alike.
// The block table is the kernel argument after o and lse; each copied row
// reads its page from it (table[b, j / 16]) and its row in the page
// (j mod 16).
// CHECK: gpu.func @paged(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %[[T:.*]]: memref<?x?xi32>,
// CHECK-NOT: llvm.ptr
// CHECK: memref.load %[[T]][%{{.*}}, %{{.*}}] : memref<?x?xi32>
// CHECK: arith.index_castui
// CHECK: nvgpu.device_async_copy
// CHECK: gpu.return
// CHECK: gpu.func @paged_splitkv(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %[[S:.*]]: memref<?x?xi32>,
// CHECK: memref.load %[[S]][%{{.*}}, %{{.*}}] : memref<?x?xi32>
// CHECK: nvgpu.device_async_copy
// CHECK: gpu.return
func.func @paged(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x16x128xbf16>,
                 %v: tensor<?x8x16x128xbf16>, %table: tensor<?x?xi32>)
    -> (tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
      queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x32x?x128xbf16>, tensor<?x8x16x128xbf16>,
        tensor<?x8x16x128xbf16>
      -> tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
  return %o, %lse : tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
}
