// Prefill against a paged cache (pages of 64 tokens): the Nq queries are
// the last Nq of the Nk keys, causal; 32 query heads on 8 kv heads, d = 128.
func.func @prefill_paged64(%q: tensor<?x32x?x128xbf16>,
                           %k: tensor<?x8x64x128xbf16>,
                           %v: tensor<?x8x64x128xbf16>,
                           %table: tensor<?x?xi32>)
    -> tensor<?x32x?x128xbf16> {
  %o = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
      queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x32x?x128xbf16>, tensor<?x8x64x128xbf16>,
        tensor<?x8x64x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
