// ALiBi (Press et al. 2022, "Train Short, Test Long"): a linear distance
// penalty on the scores, s - m_h * (i - j) with the per-head slope
// m_h = 2^(-8 (h + 1) / H) (H = 4 heads here), plus the causal mask.
func.func @alibi(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                 %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c1 = arith.constant 1 : index
      %m8overH = arith.constant -2.0 : f32
      %h1 = arith.addi %h, %c1 : index
      %h1i = arith.index_cast %h1 : index to i64
      %h1f = arith.uitofp %h1i : i64 to f32
      %e = arith.mulf %h1f, %m8overH : f32
      %slope = math.exp2 %e : f32
      %d = arith.subi %i, %j : index
      %di = arith.index_cast %d : index to i64
      %df = arith.sitofp %di : i64 to f32
      %pen = arith.mulf %slope, %df : f32
      %r = arith.subf %s, %pen : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
