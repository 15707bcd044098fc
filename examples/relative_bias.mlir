// Learned relative position bias (T5, Raffel et al. 2020; Shaw et al. 2018):
// a per-head scalar bias[h, bucket] added to the score, with the bucket
// min(|i - j|, 31) (a clipped distance). The bias table is a captured
// tensor<4x32xf32>. Bidirectional (encoder), no mask.
func.func @relative_bias(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                         %v: tensor<?x4x?x64xf32>, %bias: tensor<4x32xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%bias : tensor<4x32xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c31 = arith.constant 31 : index
      %d = arith.subi %i, %j : index
      %a = math.absi %d : index
      %bucket = arith.minsi %a, %c31 : index
      %bv = tensor.extract %bias[%h, %bucket] : tensor<4x32xf32>
      %r = arith.addf %s, %bv : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
