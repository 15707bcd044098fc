// Varlen prefill (packed sequences, FlashAttention's varlen form): the
// sequences lie one after the other in q, k and v, [1, H, total, 128];
// cu_seqlens_q / cu_seqlens_k give where each starts. Causal within each
// sequence (queries at the end of its keys); 32 query heads on 8 kv heads.
func.func @prefill_varlen(%q: tensor<1x32x?x128xbf16>,
                          %k: tensor<1x8x?x128xbf16>,
                          %v: tensor<1x8x?x128xbf16>, %cu_q: tensor<?xi32>,
                          %cu_k: tensor<?xi32>)
    -> tensor<1x32x?x128xbf16> {
  %o = attn.attention %q, %k, %v cu_seqlens_q(%cu_q : tensor<?xi32>)
      cu_seqlens_k(%cu_k : tensor<?xi32>) queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>,
        tensor<1x8x?x128xbf16> -> tensor<1x32x?x128xbf16>
  return %o : tensor<1x32x?x128xbf16>
}
