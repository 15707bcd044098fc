// Decode and chunked prefill against a paged KV cache (vLLM / FlashInfer
// style): k and v are pools of pages of 16 tokens, [P, Hkv, 16, D], and the
// block table [B, M] lists the pages of each sequence in order (any page of
// the pool, shared or shuffled). Sequence b holds kv_lens[b] <= 16 M
// tokens; its Nq queries are the last Nq of those positions, causal. 8
// query heads on 2 kv heads, lse returned (to merge with other partial
// results).
func.func @paged_decode(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x16x64xf32>,
                        %v: tensor<?x2x16x64xf32>, %table: tensor<?x?xi32>,
                        %lens: tensor<?xi32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
      kv_lens(%lens : tensor<?xi32>) queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x8x?x64xf32>, tensor<?x2x16x64xf32>, tensor<?x2x16x64xf32>
      -> tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x64xf32>, tensor<?x8x?xf32>
}
