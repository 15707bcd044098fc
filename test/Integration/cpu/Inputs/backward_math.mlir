// A score region that uses every op attn-differentiate knows, with two
// captured float tensors (a per-head gain and a bias table): attn-run
// --backward checks its symbolic derivative against finite differences.
// Smooth where it matters: max/min against far constants, absf of a
// positive value (kinks make central differences meaningless).
func.func @backward_math(%q: tensor<?x2x?x32xf32>, %k: tensor<?x2x?x32xf32>,
                         %v: tensor<?x2x?x32xf32>, %w: tensor<2xf32>,
                         %bias: tensor<2x8xf32>) -> tensor<?x2x?x32xf32> {
  %o = attn.attention %q, %k, %v captures(%w, %bias : tensor<2xf32>, tensor<2x8xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1.0 : f32
      %two = arith.constant 2.0 : f32
      %lo = arith.constant -100.0 : f32
      %hi = arith.constant 100.0 : f32
      %tenth = arith.constant -0.1 : f32
      %c7 = arith.constant 7 : index
      %wv = tensor.extract %w[%h] : tensor<2xf32>
      %d = arith.subi %i, %j : index
      %ad = math.absi %d : index
      %t = arith.minsi %ad, %c7 : index
      %bv = tensor.extract %bias[%h, %t] : tensor<2x8xf32>
      %a = arith.mulf %s, %wv : f32
      %th = math.tanh %a : f32
      %a2 = arith.mulf %a, %a : f32
      %a21 = arith.addf %one, %a2 : f32
      %lg = math.log %a21 : f32
      %lg2 = math.log2 %a21 : f32
      %s2 = arith.mulf %s, %s : f32
      %s21 = arith.addf %one, %s2 : f32
      %sq = math.sqrt %s21 : f32
      %mx = arith.maximumf %s, %lo : f32
      %mn = arith.minimumf %s, %hi : f32
      %c = arith.cmpi uge, %i, %j : index
      %sel = arith.select %c, %mx, %sq : f32
      %e2a = arith.mulf %tenth, %s2 : f32
      %e2 = math.exp2 %e2a : f32
      %ex = math.exp %e2a : f32
      %sn = math.sin %s : f32
      %cs = math.cos %a : f32
      %w2 = arith.addf %two, %wv : f32
      %abs = math.absf %w2 : f32
      %rs = math.rsqrt %w2 : f32
      %dv = arith.divf %abs, %w2 : f32
      %fm = math.fma %s, %bv, %lg : f32
      %ng = arith.negf %mn : f32
      %r0 = arith.addf %th, %lg2 : f32
      %r1 = arith.addf %r0, %sel : f32
      %r2 = arith.addf %r1, %e2 : f32
      %r3 = arith.subf %r2, %ex : f32
      %r4 = arith.addf %r3, %sn : f32
      %r5 = arith.addf %r4, %cs : f32
      %r6 = arith.mulf %abs, %rs : f32
      %r7 = arith.addf %r5, %r6 : f32
      %r8 = arith.addf %r7, %dv : f32
      %r9 = arith.addf %r8, %fm : f32
      %r10 = arith.addf %r9, %ng : f32
      attn.yield %r10 : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c3 = arith.constant 3 : index
      %ip = arith.addi %i, %c3 : index
      %c = arith.cmpi uge, %ip, %j : index
      attn.yield %c : i1
    } : tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>
      -> tensor<?x2x?x32xf32>
  return %o : tensor<?x2x?x32xf32>
}
