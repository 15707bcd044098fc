// Packed variable-length batches (FlashAttention's varlen form): the
// sequences of a batch lie one after the other in q, k and v, [1, H,
// total, D], with no padding; cu_seqlens_q / cu_seqlens_k ([B + 1] i32)
// give where each starts. Sequence b is causal against its own keys
// (queries aligned to the end of its keys: prefill of new tokens against a
// cache), with a 256-token sliding window; no work crosses sequences.
// 8 query heads on 2 kv heads, lse returned.
func.func @varlen(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>,
                  %v: tensor<?x2x?x64xf32>, %cu_q: tensor<?xi32>,
                  %cu_k: tensor<?xi32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v cu_seqlens_q(%cu_q : tensor<?xi32>)
      cu_seqlens_k(%cu_k : tensor<?xi32>) queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 256 : index
      %causal = arith.cmpi uge, %i, %j : index
      %jw = arith.addi %j, %w : index
      %near = arith.cmpi ult, %i, %jw : index
      %c = arith.andi %causal, %near : i1
      attn.yield %c : i1
    } : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
      -> tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
}
