// RUN: attn-opt %s --attn-differentiate --attn-analyze-masks --attn-select-schedule --attn-tile | FileCheck %s
// RUN: attn-opt %s --attn-differentiate --convert-attn-to-reference | FileCheck %s --check-prefix=REF
// The lowerings of attn.attention_grad: the tiled backward keeps O(N)
// memory (accumulators of q/k/v's shapes, one D per row, 32 x D tile
// buffers, never an N x N buffer), recomputes P with exp from lse, skips
// empty tiles and runs full tiles without the mask; the reference works
// in f64.

// CHECK-LABEL: func.func @causal_backward(
// CHECK-NOT: memref<?x?xf32>
// CHECK: memref.alloc({{.*}}) : memref<?x4x?x64xf32>
// CHECK: memref.alloc({{.*}}) : memref<?x4x?x64xf32>
// CHECK: memref.alloc({{.*}}) : memref<?x4x?x64xf32>
// CHECK: memref.alloc({{.*}}) : memref<?xf32>
// CHECK: memref.alloc() : memref<32x64xf32>
// CHECK: memref.alloc() : memref<32x64xf32>
// CHECK: %[[NONEMPTY:.*]] = arith.cmpi ne, %{{.*}}, %{{.*}} : i8
// CHECK: scf.if %[[NONEMPTY]] {
// CHECK: %[[FULL:.*]] = arith.cmpi eq, %{{.*}}, %{{.*}} : i8
// CHECK: scf.if %[[FULL]] {
// CHECK-NOT: arith.cmpi uge
// CHECK: math.exp
// CHECK-NOT: arith.cmpi uge
// CHECK: math.exp
// CHECK: arith.cmpi uge
// CHECK: return
// CHECK-NOT: memref<?x?xf32>

// REF-LABEL: func.func @causal_backward(
// REF: memref.alloc({{.*}}) : memref<?x4x?x64xf64>
// REF: memref.alloc({{.*}}) : memref<?x4x?x64xf64>
// REF: memref.alloc({{.*}}) : memref<?x4x?x64xf64>
// REF: arith.cmpf one, %{{.*}}, %{{.*}} : f64
// REF: math.exp %{{.*}} : f64
// REF: arith.cmpi uge
// REF: arith.cmpf ogt, %{{.*}}, %{{.*}} : f64
// REF: arith.truncf %{{.*}} : f64 to f32
func.func @causal(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
