// RUN: attn-opt %s --attn-sequence-parallel | FileCheck %s
// attn-sequence-parallel: LASP-2's phases next to each causal linear op.
// The state phase returns the chunk's final state (its output unused) and
// the total log-decay; the combines fold gathered states before (prefix)
// or after (suffix) the rank; the output phase starts from the prefix.

// CHECK-LABEL: func.func @gla(
// CHECK-LABEL: func.func @gla_lasp_state(
// CHECK-SAME: -> (tensor<?x2x16x8xf32>, tensor<?x2x16xf32>)
// CHECK: %{{.*}}, %[[S:.*]] = attn.linear_attention causal
// CHECK-NOT: initial_state
// CHECK: } : {{.*}} -> tensor<?x2x?x8xf32>, tensor<?x2x16x8xf32>
// CHECK: %[[T:.*]] = tensor.generate
// CHECK: scf.for
// CHECK: tensor.extract %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : tensor<?x2x?x16xf32>
// CHECK: return %[[S]], %[[T]] : tensor<?x2x16x8xf32>, tensor<?x2x16xf32>
// CHECK-LABEL: func.func @gla_lasp_combine(
// CHECK-SAME: %[[M:.*]]: tensor<?x?x2x16x8xf32>, %[[D:.*]]: tensor<?x?x2x16xf32>, %[[R:.*]]: tensor<1xi32>) -> tensor<?x2x16x8xf32>
// CHECK: %[[R32:.*]] = tensor.extract %[[R]]
// CHECK: %[[RI:.*]] = arith.index_cast %[[R32]] : i32 to index
// CHECK: attn.combine_states prefix %[[M]], %[[D]] at %[[RI]]
// CHECK-LABEL: func.func @gla_lasp_combine_grad(
// CHECK: attn.combine_states suffix
// CHECK-LABEL: func.func @gla_lasp_output(
// CHECK-SAME: %[[P:[^:]*]]: tensor<?x2x16x8xf32>) -> (tensor<?x2x?x8xf32>, tensor<?x2x16x8xf32>)
// CHECK: %[[O:.*]], %[[F:.*]] = attn.linear_attention causal {{.*}} initial_state(%[[P]] : tensor<?x2x16x8xf32>)
// CHECK: feature_map(
// CHECK: return %[[O]], %[[F]]
func.func @gla(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
               %v: tensor<?x2x?x8xf32>, %g: tensor<?x2x?x16xf32>)
    -> tensor<?x2x?x8xf32> {
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x2x?x16xf32>)
    scale = 0.25
    feature_map(%x: vector<16xf32>) {
      %e = math.exp %x : vector<16xf32>
      attn.yield %e : vector<16xf32>
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x8xf32>
      -> tensor<?x2x?x8xf32>
  return %o : tensor<?x2x?x8xf32>
}

// Per-head decays: the chunk's total is N * g_h; a scan keeps its form.
// CHECK-LABEL: func.func @retention_lasp_state(
// CHECK-SAME: -> (tensor<2x4x16x16xf32>, tensor<2x4xf32>)
// CHECK: attn.scan causal
// CHECK: tensor.generate
// CHECK: %[[N:.*]] = tensor.dim %{{.*}}, %{{.*}} : tensor<2x4x?x16xf32>
// CHECK: %[[GH:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<4xf32>
// CHECK: arith.sitofp
// CHECK: arith.mulf %{{.*}}, %[[GH]]
// CHECK-LABEL: func.func @retention_lasp_output(
// CHECK: attn.scan causal {{.*}} initial_state(
func.func @retention(%q: tensor<2x4x?x16xf32>, %k: tensor<2x4x?x16xf32>,
                     %v: tensor<2x4x?x16xf32>, %g: tensor<4xf32>)
    -> tensor<2x4x?x16xf32> {
  %o = attn.scan causal %q, %k, %v decay(%g : tensor<4xf32>)
    : tensor<2x4x?x16xf32>, tensor<2x4x?x16xf32>, tensor<2x4x?x16xf32>
      -> tensor<2x4x?x16xf32>
  return %o : tensor<2x4x?x16xf32>
}

// No decay: the totals are zeros. A final state returned by the spec keeps
// its type.
// CHECK-LABEL: func.func @plain_lasp_state(
// CHECK: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT: tensor.yield %[[Z]] : f32
func.func @plain(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                 %v: tensor<?x2x?x16xf32>)
    -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>) {
  %o, %s = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
  return %o, %s : tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
}

// Functions without a splittable op are left alone.
// CHECK-NOT: func.func @softmax_lasp
func.func @softmax(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                   %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
