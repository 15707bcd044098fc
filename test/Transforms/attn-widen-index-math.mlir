// RUN: attn-opt %s --attn-widen-index-math | FileCheck %s

// math ops on index become i64 ops between index casts; i32 ones stay.
// CHECK-LABEL: func.func @ipowi_index
// CHECK: %[[A:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[B:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[P:.*]] = math.ipowi %[[A]], %[[B]] : i64
// CHECK: arith.index_cast %[[P]] : i64 to index
// CHECK: math.ipowi %{{.*}}, %{{.*}} : i32
func.func @ipowi_index(%j: index, %e: index, %x: i32) -> (index, i32) {
  %p = math.ipowi %j, %e : index
  %q = math.ipowi %x, %x : i32
  return %p, %q : index, i32
}
