// RUN: attn-opt %s --attn-differentiate | FileCheck %s
// attn-differentiate on linear attention and scans: `@f_forward` is a copy
// of `@f`; `@f_backward` takes dO (and the final state's gradient) and
// returns dq, dk, dv, then the decay's and the initial state's gradients.

// A scan with a decay, an initial state and its final state returned.
// CHECK-LABEL: func.func @scan_forward(
// CHECK: attn.scan causal
// CHECK-LABEL: func.func @scan_backward(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x2x?x16xf32>, %[[K:[^:]*]]: tensor<?x2x?x16xf32>, %[[V:[^:]*]]: tensor<?x2x?x16xf32>, %[[G:[^:]*]]: tensor<?x2x?xf32>, %[[S0:[^:]*]]: tensor<?x2x16x16xf32>, %[[DO:[^:]*]]: tensor<?x2x?x16xf32>, %[[DS:[^:]*]]: tensor<?x2x16x16xf32>)
// CHECK-SAME: -> (tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?xf32>, tensor<?x2x16x16xf32>)
// CHECK: %dq, %dk, %dv, %d_decay, %d_initial_state = attn.linear_attention_grad causal %[[Q]], %[[K]], %[[V]], %[[DO]] decay(%[[G]] : tensor<?x2x?xf32>) initial_state(%[[S0]] : tensor<?x2x16x16xf32>) final_state_grad(%[[DS]] : tensor<?x2x16x16xf32>) :
func.func @scan(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                %v: tensor<?x2x?x16xf32>, %g: tensor<?x2x?xf32>,
                %s0: tensor<?x2x16x16xf32>)
    -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>) {
  %o, %s = attn.scan causal %q, %k, %v decay(%g : tensor<?x2x?xf32>)
    initial_state(%s0 : tensor<?x2x16x16xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
  return %o, %s : tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
}

// The tangent map of elu(x) + 1: select(x > 0, dx, exp(x) dx); attributes
// (normalize, scale) carried over.
// CHECK-LABEL: func.func @elu_backward(
// CHECK: attn.linear_attention_grad bidirectional {{.*}} normalize scale = 5.000000e-01
// CHECK: feature_map(%{{.*}}: vector<16xf32>) {
// CHECK: feature_map_jvp(%[[X:.*]]: vector<16xf32>, %[[DX:.*]]: vector<16xf32>) {
// CHECK-DAG: %[[E:.*]] = math.exp %[[X]]
// CHECK-DAG: %[[POS:.*]] = arith.cmpf ogt, %[[X]]
// CHECK-DAG: %[[T:.*]] = arith.mulf %[[E]], %[[DX]]
// CHECK: %[[R:.*]] = arith.select %[[POS]], %[[DX]], %[[T]]
// CHECK: attn.yield %[[R]] : vector<16xf32>
func.func @elu(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
               %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.linear_attention bidirectional %q, %k, %v normalize scale = 0.5
    feature_map(%x: vector<16xf32>) {
      %zero = arith.constant dense<0.0> : vector<16xf32>
      %one = arith.constant dense<1.0> : vector<16xf32>
      %e = math.exp %x : vector<16xf32>
      %pos = arith.cmpf ogt, %x, %zero : vector<16xf32>
      %xp1 = arith.addf %x, %one : vector<16xf32>
      %r = arith.select %pos, %xp1, %e : vector<16xi1>, vector<16xf32>
      attn.yield %r : vector<16xf32>
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// A max reduction's tangent is the tangent at the maximum; a broadcast's is
// the broadcast tangent; a key map gets its own tangent map.
// CHECK-LABEL: func.func @keymax_backward(
// CHECK: key_feature_map_jvp(%[[X:.*]]: vector<16xf32>, %[[DX:.*]]: vector<16xf32>) {
// CHECK: %[[M:.*]] = vector.reduction <maximumf>, %[[X]]
// CHECK: %[[MB:.*]] = vector.broadcast %[[M]]
// CHECK: %[[AT:.*]] = arith.cmpf oeq, %[[X]], %[[MB]]
// CHECK: %[[PICK:.*]] = arith.select %[[AT]], %[[DX]], %{{.*}}
// CHECK: %[[DM:.*]] = vector.reduction <add>, %[[PICK]]
// CHECK: %[[DMB:.*]] = vector.broadcast %[[DM]]
// CHECK: %[[NEG:.*]] = arith.negf %[[DMB]]
// CHECK: %[[D:.*]] = arith.addf %[[DX]], %[[NEG]]
// CHECK: attn.yield %[[D]]
func.func @keymax(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                  %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<16xf32>) {
      attn.yield %x : vector<16xf32>
    }
    key_feature_map(%x: vector<16xf32>) {
      %m = vector.reduction <maximumf>, %x : vector<16xf32> into f32
      %mb = vector.broadcast %m : f32 to vector<16xf32>
      %s = arith.subf %x, %mb : vector<16xf32>
      attn.yield %s : vector<16xf32>
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
