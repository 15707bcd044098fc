// Prefill against a KV cache, and decode: the Nq queries are the last Nq of
// the Nk key positions (queries_at_end; query i is at position
// i + Nk - Nq), causal with a sliding window of 256 keys (Mistral-style),
// 8 query heads on 2 kv heads, lse returned (to merge with other partial
// results). With Nq = 1 this is one decode step.
func.func @cached_window(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>,
                         %v: tensor<?x2x?x64xf32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c256 = arith.constant 256 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi ult, %d, %c256 : index
      %c = arith.andi %causal, %near : i1
      attn.yield %c : i1
    } : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
      -> tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
}
