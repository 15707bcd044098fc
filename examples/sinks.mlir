// Attention sinks (gpt-oss style): one learned logit per query head joins
// every row's softmax denominator, so a head can put weight on "nothing";
// here with a causal sliding window of 128 keys, 8 query heads on 2 kv
// heads, lse returned (it includes the sink).
func.func @sinks(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>,
                 %v: tensor<?x2x?x64xf32>, %sink: tensor<8xf32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v sinks(%sink : tensor<8xf32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c128 = arith.constant 128 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi ult, %d, %c128 : index
      %c = arith.andi %causal, %near : i1
      attn.yield %c : i1
    } : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
      -> tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
}
