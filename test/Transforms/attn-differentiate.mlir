// RUN: attn-opt %s --attn-differentiate | FileCheck %s
// attn-differentiate adds @f_forward (o, lse) and @f_backward
// (attn.attention_grad) next to every function of one attn.attention; the
// score region's derivative is built symbolically into `score_grad`.

// Softcap: d/ds [30 tanh(s / 30)] = (1 - tanh^2(s / 30)) * (1 / 30) * 30.
// CHECK-LABEL: func.func @softcap(
// CHECK-LABEL: func.func @softcap_forward(
// CHECK-SAME: -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>)
// CHECK: %{{.*}}, %{{.*}} = attn.attention
// CHECK-LABEL: func.func @softcap_backward(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x4x?x64xf32>, %[[K:[^:]*]]: tensor<?x4x?x64xf32>, %[[V:[^:]*]]: tensor<?x4x?x64xf32>, %[[O:[^:]*]]: tensor<?x4x?x64xf32>, %[[LSE:[^:]*]]: tensor<?x4x?xf32>, %[[DO:[^:]*]]: tensor<?x4x?x64xf32>)
// CHECK-SAME: -> (tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>)
// CHECK: attn.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %[[DO]] scale = 1.250000e-01
// CHECK: mask(
// CHECK: score_grad(%[[S:[^:]*]]: f32,
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[CAP:.*]] = arith.constant 3.000000e+01 : f32
// CHECK: %[[X:.*]] = arith.divf %[[S]], %[[CAP]] : f32
// CHECK: %[[DX:.*]] = arith.divf %[[ONE]], %[[CAP]] : f32
// CHECK: %[[T:.*]] = math.tanh %[[X]] : f32
// CHECK: %[[T2:.*]] = arith.mulf %[[T]], %[[T]] : f32
// CHECK: %[[ONE2:.*]] = arith.constant 1.000000e+00 : f32
// CHECK: %[[D:.*]] = arith.subf %[[ONE2]], %[[T2]] : f32
// CHECK: %[[DT:.*]] = arith.mulf %[[D]], %[[DX]] : f32
// CHECK: %[[R:.*]] = arith.mulf %[[DT]], %[[CAP]] : f32
// CHECK: attn.yield %[[R]] : f32
// CHECK: return
func.func @softcap(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                   %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v scale = 0.125
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %cap = arith.constant 30.0 : f32
      %x = arith.divf %s, %cap : f32
      %t = math.tanh %x : f32
      %r = arith.mulf %t, %cap : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// ALiBi: s - slope_h * (i - j); the penalty has no derivative (index math),
// so d/ds = 1 and the region keeps nothing else.
// CHECK-LABEL: func.func @alibi_backward(
// CHECK: score_grad(
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT: attn.yield %[[ONE]] : f32
func.func @alibi(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                 %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c1 = arith.constant 1 : index
      %m = arith.constant -2.0 : f32
      %h1 = arith.addi %h, %c1 : index
      %h1i = arith.index_cast %h1 : index to i64
      %h1f = arith.uitofp %h1i : i64 to f32
      %e = arith.mulf %h1f, %m : f32
      %slope = math.exp2 %e : f32
      %d = arith.subi %i, %j : index
      %di = arith.index_cast %d : index to i64
      %df = arith.sitofp %di : i64 to f32
      %pen = arith.mulf %slope, %df : f32
      %r = arith.subf %s, %pen : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A score scale: d/ds (s * 2) = 1 * 2.
// CHECK-LABEL: func.func @scaled_backward(
// CHECK: score_grad(
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: %[[D:.*]] = arith.mulf %[[ONE]], %[[TWO]] : f32
// CHECK-NEXT: attn.yield %[[D]] : f32
func.func @scaled(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %two = arith.constant 2.0 : f32
      %r = arith.mulf %s, %two : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Masking by select: the derivative selects 1 where the score is kept and
// 0 where it is -inf; the mask keeps its tile classes (same condition).
// CHECK-LABEL: func.func @select_mask_backward(
// CHECK: score_grad(%{{[^:]*}}: f32, %{{[^:]*}}: index, %{{[^:]*}}: index, %[[I:[^:]*]]: index, %[[J:[^:]*]]: index)
// CHECK: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK: %[[C:.*]] = arith.cmpi uge, %[[I]], %[[J]] : index
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[D:.*]] = arith.select %[[C]], %[[ONE]], %[[ZERO]] : f32
// CHECK-NEXT: attn.yield %[[D]] : f32
func.func @select_mask(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %ninf = arith.constant 0xFF800000 : f32
      %c = arith.cmpi uge, %i, %j : index
      %r = arith.select %c, %s, %ninf : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Captures: a bias table read at [h, bucket] (site 0, d/dbias = 1) and a
// per-head gain w[h] (site 1): score = s * w[h] + bias[h, t], so
// d/ds = w[h], d/dw = s. The integer capture %docs (a mask) gets no
// gradient. Results: dq, dk, dv, dbias, dw.
// CHECK-LABEL: func.func @captures_backward(
// CHECK-SAME: -> (tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<4x32xf32>, tensor<4xf32>)
// CHECK: attn.attention_grad {{.*}} captures(%{{.*}}, %{{.*}}, %{{.*}} : tensor<4x32xf32>, tensor<?xi32>, tensor<4xf32>)
// CHECK: score_grad(%[[S:[^:]*]]: f32, %{{[^:]*}}: index, %[[H:[^:]*]]: index, %[[I:[^:]*]]: index, %[[J:[^:]*]]: index)
// CHECK: %[[T:.*]] = arith.minsi
// CHECK: %[[W:.*]] = tensor.extract %{{.*}}[%[[H]]] : tensor<4xf32>
// CHECK: %[[DS:.*]] = arith.mulf %{{.*}}, %[[W]] : f32
// CHECK: %[[DW:.*]] = arith.mulf %[[S]], %{{.*}} : f32
// CHECK: attn.yield %[[DS]], %{{.*}}, %[[H]], %[[T]], %[[DW]], %[[H]] : f32, f32, index, index, f32, index
// CHECK: } {capture_sites = array<i64: 0, 2>}
// CHECK: return %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<4x32xf32>, tensor<4xf32>
func.func @captures(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                    %v: tensor<?x4x?x64xf32>, %bias: tensor<4x32xf32>,
                    %docs: tensor<?xi32>, %w: tensor<4xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
      captures(%bias, %docs, %w : tensor<4x32xf32>, tensor<?xi32>, tensor<4xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c31 = arith.constant 31 : index
      %d = arith.subi %i, %j : index
      %a = math.absi %d : index
      %t = arith.minsi %a, %c31 : index
      %bv = tensor.extract %bias[%h, %t] : tensor<4x32xf32>
      %wv = tensor.extract %w[%h] : tensor<4xf32>
      %x = arith.mulf %s, %wv : f32
      %r = arith.addf %x, %bv : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %c = arith.cmpi eq, %di, %dj : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A function of a linear attention gets its backward too
// (attn-differentiate-linear.mlir has the details).
// CHECK-LABEL: func.func @linear(
// CHECK-LABEL: func.func @linear_backward(
// CHECK: attn.linear_attention_grad causal
func.func @linear(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
