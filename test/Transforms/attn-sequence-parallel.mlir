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

// Per-head decays: the chunk's total is N * g_h (N read once, outside the
// generate body); a scan keeps its form.
// CHECK-LABEL: func.func @retention_lasp_state(
// CHECK-SAME: -> (tensor<2x4x16x16xf32>, tensor<2x4xf32>)
// CHECK: attn.scan causal
// CHECK: %[[N:.*]] = tensor.dim %{{.*}}, %{{.*}} : tensor<2x4x?x16xf32>
// CHECK: tensor.generate
// CHECK: %[[GH:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<4xf32>
// CHECK: arith.index_cast %[[N]]
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

// LASP-2H: softmax attention from the rank's queries against gathered keys;
// the mask sees the global query position i + offset.
// CHECK-LABEL: func.func @softmax_lasp_layout()
// CHECK: arith.constant dense<[0, 1, 2, -1, -1, 0, 0, 1, 1]> : tensor<9xi32>
// CHECK-LABEL: func.func @softmax_lasp_attention(
// CHECK-SAME: %[[OFF:[^:]*]]: tensor<1xi32>) -> tensor<?x2x?x16xf32>
// CHECK: attn.attention {{.*}} captures(%[[OFF]] : tensor<1xi32>)
// CHECK: mask(%{{.*}}: index, %{{.*}}: index, %[[I:.*]]: index, %[[J:.*]]: index)
// CHECK: %[[E:.*]] = tensor.extract %[[OFF]]
// CHECK: %[[S:.*]] = arith.index_cast %[[E]] : i32 to index
// CHECK: %[[G:.*]] = arith.addi %[[I]], %[[S]] : index
// CHECK: arith.cmpi uge, %[[G]], %[[J]] : index
func.func @softmax(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                   %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// normalize: the phases run the unnormalized op on v with a column of ones
// (Dv + 1), so the state carries the normalizer and the output is [n | z].
// A feature map reading positions reads t + the chunk's first position (an
// argument after f's). The layout: q, k, v at 0-2, no decay or initial
// state, no final state, normalize, positions.
// CHECK-LABEL: func.func @positional_lasp_layout()
// CHECK: arith.constant dense<[0, 1, 2, -1, -1, 0, 1, 1, 0]> : tensor<9xi32>
// CHECK-LABEL: func.func @positional_lasp_state(
// CHECK-SAME: %{{.*}}: tensor<?x2x?x9xf32>, %[[OFF:[^:]*]]: tensor<1xi32>)
// CHECK-SAME: -> (tensor<?x2x16x9xf32>, tensor<?x2xf32>)
// CHECK: attn.linear_attention causal {{.*}} captures(%[[OFF]] : tensor<1xi32>)
// CHECK-NOT: normalize
// CHECK: feature_map(%{{.*}}: vector<16xf32>, %[[T:.*]]: index) {
// CHECK: %[[E:.*]] = tensor.extract %[[OFF]]
// CHECK: %[[S:.*]] = arith.index_cast %[[E]] : i32 to index
// CHECK: %[[G:.*]] = arith.addi %[[T]], %[[S]] : index
// CHECK: arith.index_cast %[[G]] : index to i64
// CHECK-LABEL: func.func @positional_lasp_output(
// CHECK-SAME: -> (tensor<?x2x?x9xf32>, tensor<?x2x16x9xf32>)
func.func @positional(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                      %v: tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<16xf32>, %t: index) {
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %c = math.cos %tf : f32
      %cb = vector.broadcast %c : f32 to vector<16xf32>
      %e = math.exp %x : vector<16xf32>
      %r = arith.mulf %e, %cb : vector<16xf32>
      attn.yield %r : vector<16xf32>
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x8xf32>
      -> tensor<?x2x?x8xf32>
  return %o : tensor<?x2x?x8xf32>
}

// An initial state (argument 4) is the runtime's state before rank 0: the
// state phase starts from zero, the output phase from the prefix argument.
// CHECK-LABEL: func.func @stateful_lasp_layout()
// CHECK: arith.constant dense<[0, 1, 2, 3, 4, 1, 0, 0, 0]> : tensor<9xi32>
// CHECK-LABEL: func.func @stateful_lasp_state(
// CHECK-NOT: initial_state
// CHECK: return
// CHECK-LABEL: func.func @stateful_lasp_output(
// CHECK-SAME: %[[P:[^:]*]]: tensor<?x2x16x16xf32>) -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
// CHECK: attn.scan causal {{.*}} initial_state(%[[P]] : tensor<?x2x16x16xf32>)
func.func @stateful(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                    %v: tensor<?x2x?x16xf32>, %g: tensor<?x2x?xf32>,
                    %s0: tensor<?x2x16x16xf32>)
    -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>) {
  %o, %s = attn.scan causal %q, %k, %v decay(%g : tensor<?x2x?xf32>)
    initial_state(%s0 : tensor<?x2x16x16xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
  return %o, %s : tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
}

// A capture read at the query position (document ids) is read from a copy
// holding the rank's rows (a new argument, in the layout as (argument 3,
// dim 0)) at the local i; reads at j keep the whole capture.
// CHECK-LABEL: func.func @documents_lasp_layout()
// CHECK: arith.constant dense<[0, 1, 2, -1, -1, 0, 0, 1, 1, 3, 0]> : tensor<11xi32>
// CHECK-LABEL: func.func @documents_lasp_attention(
// CHECK-SAME: %[[DOCS:[^:]*]]: tensor<?xi32>, %[[OFF:[^:]*]]: tensor<1xi32>, %[[ROWS:[^:]*]]: tensor<?xi32>)
// CHECK: captures(%[[DOCS]], %[[OFF]], %[[ROWS]] : tensor<?xi32>, tensor<1xi32>, tensor<?xi32>)
// CHECK: mask(%{{.*}}: index, %{{.*}}: index, %[[I:.*]]: index, %[[J:.*]]: index)
// CHECK: tensor.extract %[[ROWS]][%[[I]]]
// CHECK: tensor.extract %[[DOCS]][%[[J]]]
func.func @documents(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                     %v: tensor<?x2x?x16xf32>, %docs: tensor<?xi32>)
    -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %causal = arith.cmpi uge, %i, %j : index
      %keep = arith.andi %same, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
