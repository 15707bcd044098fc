// GQA 8:2, Dv != D (24 and 40), a learned per-head ALiBi slope (a captured
// float tensor), strict causal (row 0 has no key: zero gradients), and an
// lse result in the spec itself.
func.func @backward_gqa_slopes(%q: tensor<?x8x?x24xf32>, %k: tensor<?x2x?x24xf32>, %v: tensor<?x2x?x40xf32>, %slopes: tensor<8xf32>) -> (tensor<?x8x?x40xf32>, tensor<?x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v captures(%slopes : tensor<8xf32>) scale = 0.3
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %m = tensor.extract %slopes[%h] : tensor<8xf32>
      %d = arith.subi %i, %j : index
      %di = arith.index_cast %d : index to i64
      %df = arith.sitofp %di : i64 to f32
      %pen = arith.mulf %m, %df : f32
      %r = arith.subf %s, %pen : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi ugt, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x8x?x24xf32>, tensor<?x2x?x24xf32>, tensor<?x2x?x40xf32> -> tensor<?x8x?x40xf32>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x40xf32>, tensor<?x8x?xf32>
}
