// RUN: attn-opt %s --pass-pipeline='builtin.module(func.func(attn-copy-aliased-results))' | FileCheck %s

// An argument returned as a result, and one result returned twice, get
// copies; the first use of a result does not.
// CHECK-LABEL: func.func @aliased
// CHECK-SAME: (%{{[^:]*}}: tensor<?x4x?x64xf32>, %[[K:[^:]*]]: tensor
// CHECK: %[[O:.*]] = attn.attention
// CHECK: %[[C1:.*]] = bufferization.alloc_tensor() copy(%[[O]])
// CHECK: %[[C2:.*]] = bufferization.alloc_tensor() copy(%[[K]])
// CHECK: return %[[O]], %[[C1]], %[[C2]]
func.func @aliased(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                   %v: tensor<?x4x?x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>) {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o, %o, %k : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
}

// CHECK-LABEL: func.func @plain
// CHECK-NOT: alloc_tensor
// CHECK: return
func.func @plain(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                 %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A returned constant would be a global after bufferization, which the
// caller frees: it gets a copy.
// CHECK-LABEL: func.func @constant
// CHECK: %[[C:.*]] = arith.constant dense<[1, 2]> : tensor<2xi32>
// CHECK: %[[COPY:.*]] = bufferization.alloc_tensor() copy(%[[C]])
// CHECK: return %[[COPY]]
func.func @constant() -> tensor<2xi32> {
  %c = arith.constant dense<[1, 2]> : tensor<2xi32>
  return %c : tensor<2xi32>
}
