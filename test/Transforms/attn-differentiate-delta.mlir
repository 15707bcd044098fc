// RUN: attn-opt %s --attn-differentiate | FileCheck %s
// attn-differentiate on the delta rule: `@f_forward` is a copy of `@f`;
// `@f_backward` takes dO (and the final state's gradient) and returns dq,
// dk, dv, dbeta, then the decay's and the initial state's gradients, with
// the forward's scale carried over.

// CHECK-LABEL: func.func @gated_forward(
// CHECK: attn.delta_rule
// CHECK-LABEL: func.func @gated_backward(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x2x?x16xf32>, %[[K:[^:]*]]: tensor<?x2x?x16xf32>, %[[V:[^:]*]]: tensor<?x2x?x8xf32>, %[[B:[^:]*]]: tensor<?x2x?xf32>, %[[G:[^:]*]]: tensor<?x2x?xf32>, %[[S0:[^:]*]]: tensor<?x2x16x8xf32>, %[[DO:[^:]*]]: tensor<?x2x?x8xf32>, %[[DS:[^:]*]]: tensor<?x2x16x8xf32>)
// CHECK-SAME: -> (tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?xf32>, tensor<?x2x?xf32>, tensor<?x2x16x8xf32>)
// CHECK: attn.delta_rule_grad %[[Q]], %[[K]], %[[V]], %[[B]], %[[DO]] decay(%[[G]] : tensor<?x2x?xf32>) initial_state(%[[S0]] : tensor<?x2x16x8xf32>) final_state_grad(%[[DS]] : tensor<?x2x16x8xf32>) {scale = 2.500000e-01 : f32}
func.func @gated(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                 %v: tensor<?x2x?x8xf32>, %beta: tensor<?x2x?xf32>,
                 %g: tensor<?x2x?xf32>, %s0: tensor<?x2x16x8xf32>)
    -> (tensor<?x2x?x8xf32>, tensor<?x2x16x8xf32>) {
  %o, %s = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<?x2x?xf32>)
    initial_state(%s0 : tensor<?x2x16x8xf32>) {scale = 0.25 : f32}
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x8xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x8xf32>, tensor<?x2x16x8xf32>
  return %o, %s : tensor<?x2x?x8xf32>, tensor<?x2x16x8xf32>
}

// Plain DeltaNet: dq, dk, dv, dbeta only.
// CHECK-LABEL: func.func @plain_backward(
// CHECK: attn.delta_rule_grad %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}} :
// CHECK-SAME: -> tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?xf32>{{$}}
func.func @plain(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                 %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>)
    -> tensor<?x2x?x16xf32> {
  %o = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
