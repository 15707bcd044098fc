// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="target=sm_90a" --convert-attn-to-gpu --split-input-file | FileCheck %s

// Pages of 4 rows on sm_90a: the mma.sync kernel (cp.async gathers pages
// row by row; no tensor maps), in the main and the split-KV kernel alike.
// The block table is the kernel argument after o and lse; each copied row
// reads its page from it (table[b, j / 4]) and its row in the page
// (j mod 4).
// CHECK-LABEL: gpu.module @paged4_kernels
// CHECK: gpu.func @paged4(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %[[T:.*]]: memref<?x?xi32>,
// CHECK-NOT: llvm.ptr
// CHECK: memref.load %[[T]][%{{.*}}, %{{.*}}] : memref<?x?xi32>
// CHECK: arith.index_castui
// CHECK: nvgpu.device_async_copy
// CHECK: gpu.return
// CHECK: gpu.func @paged4_splitkv(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %[[S:.*]]: memref<?x?xi32>,
// CHECK: memref.load %[[S]][%{{.*}}, %{{.*}}] : memref<?x?xi32>
// CHECK: nvgpu.device_async_copy
// CHECK: gpu.return
func.func @paged4(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x4x128xbf16>,
                  %v: tensor<?x8x4x128xbf16>, %table: tensor<?x?xi32>)
    -> (tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
      queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x32x?x128xbf16>, tensor<?x8x4x128xbf16>,
        tensor<?x8x4x128xbf16>
      -> tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
  return %o, %lse : tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
}

// -----

// Pages of 16 rows: the TMA + wgmma main kernel gathers each 128-key tile
// as 8 boxes of 16 rows, one per page (table[b, j / 16], row j mod 16 of
// the pool [P, Hkv, 16, D]): the k and v maps' boxes are 16 rows. The
// split-KV kernel stays mma.sync.
// CHECK-LABEL: gpu.module @paged16_kernels
// CHECK: gpu.func @paged16(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %[[T:.*]]: memref<?x?xi32>,
// CHECK-SAME: \22box_rows\22: 16, \22elem\22: \22bf16\22, \22kind\22: \22tensormap\22, \22name\22: \22k\22
// CHECK: memref.load %[[T]][%{{.*}}, %{{.*}}] : memref<?x?xi32>
// CHECK: nvgpu.tma.async.load {{.*}} : <tensor = memref<1x1x16x64xbf16, #gpu.address_space<workgroup>>
// CHECK: gpu.return
// CHECK: gpu.func @paged16_splitkv(%{{.*}}: memref<?xbf16>
// CHECK: nvgpu.device_async_copy
func.func @paged16(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x16x128xbf16>,
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
