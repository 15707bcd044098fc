// The backward of a spec (attn.attention_grad, from attn-differentiate)
// becomes two mma.sync kernels: @<f>_dq (one block per q tile; it writes D
// into the workspace and adds capture gradients by atomics) and @<f>_dkdv
// (one block per kv tile, looping over the group's query heads).
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-to-gpu | FileCheck %s
// RUN: attn-opt %s --attn-select-schedule="target=sm_80 block-q=32 block-kv=128" --convert-attn-to-gpu | FileCheck %s --check-prefix=TILES

// CHECK-LABEL: gpu.module @relative_bias_backward_kernels
// CHECK: gpu.func @relative_bias_backward_dq(
// The arguments: q, k, v, o, do, lse, dq, dk, dv, the capture, its gradient,
// delta, then B, Nq, Nk and 24 strides.
// CHECK-SAME: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<4x32xf32>, %{{.*}}: memref<4x32xf32>, %{{.*}}: memref<?xf32>
// Two buffers of K (and first q, dO) and V tiles, and a shared copy of the
// bias table's gradient (static shape, fits beside the tiles).
// CHECK-SAME: workgroup(%{{.*}} : memref<2x64x72xbf16, #gpu.address_space<workgroup>>, %{{.*}} : memref<2x64x72xbf16, #gpu.address_space<workgroup>>, %[[COPY:.*]] : memref<4x32xf32, #gpu.address_space<workgroup>>)
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: nvvm.mma.sync
// Per-tile sums go to the shared copy; the block adds it to the gradient.
// CHECK: memref.atomic_rmw addf %{{.*}}, %[[COPY]]
// CHECK: memref.atomic_rmw addf %{{.*}}, %arg10
// CHECK: gpu.func @relative_bias_backward_dkdv(
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK-NOT: memref.atomic_rmw
// CHECK: gpu.return
// TILES: gpu.func @relative_bias_backward_dq(
// TILES-SAME: known_block_size = array<i32: 64, 1, 1>
// TILES: gpu.func @relative_bias_backward_dkdv(
// TILES-SAME: known_block_size = array<i32: 256, 1, 1>
func.func @relative_bias_backward(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>, %bias: tensor<4x32xf32>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<4x32xf32>) {
  %dq, %dk, %dv, %dbias = attn.attention_grad %q, %k, %v, %o, %lse, %do captures(%bias : tensor<4x32xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
    %c31 = arith.constant 31 : index
    %0 = arith.subi %i, %j : index
    %1 = math.absi %0 : index
    %2 = arith.minsi %1, %c31 : index
    %e = tensor.extract %bias[%h, %2] : tensor<4x32xf32>
    %3 = arith.addf %s, %e : f32
    attn.yield %3 : f32
  }
    score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
    %one = arith.constant 1.000000e+00 : f32
    %c31 = arith.constant 31 : index
    %0 = arith.subi %i, %j : index
    %1 = math.absi %0 : index
    %2 = arith.minsi %1, %c31 : index
    attn.yield %one, %one, %h, %2 : f32, f32, index, index
  } {capture_sites = array<i64: 0>} : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<4x32xf32>
  return %dq, %dk, %dv, %dbias : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<4x32xf32>
}
