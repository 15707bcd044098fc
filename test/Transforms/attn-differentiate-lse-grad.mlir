// With lse-grad, the backward of a function that returns lse takes its
// gradient (dLSE) after dO and passes it to attn.attention_grad; without
// it, the backward takes dO only.
// RUN: attn-opt %s --attn-differentiate=lse-grad=true | FileCheck %s
// RUN: attn-opt %s --attn-differentiate | FileCheck %s --check-prefix=NOLSE

// CHECK-LABEL: func.func @with_lse_backward
// CHECK-SAME: %[[DO:[a-z0-9]+]]: tensor<?x4x?x64xf32>, %[[DLSE:[a-z0-9]+]]: tensor<?x4x?xf32>)
// CHECK: attn.attention_grad {{.*}}, %[[DO]], %[[DLSE]]
// NOLSE-LABEL: func.func @with_lse_backward
// NOLSE-SAME: tensor<?x4x?xf32>, %[[DO:[a-z0-9]+]]: tensor<?x4x?x64xf32>)
// NOLSE: attn.attention_grad {{.*}}, %[[DO]] :
func.func @with_lse(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                    %v: tensor<?x4x?x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}

// A function without lse has no dLSE either way.
// CHECK-LABEL: func.func @plain_backward
// CHECK-SAME: %[[DO:[a-z0-9]+]]: tensor<?x4x?x64xf32>)
// CHECK: attn.attention_grad {{.*}}, %[[DO]] :
func.func @plain(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                 %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
