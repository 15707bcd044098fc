// Decode with a sliding window of 4096 keys (queries_at_end: the queries
// are the last Nq key positions): 32 query heads on 8 kv heads, d = 128.
// Tiles before the window are skipped, so its time does not grow with Nk.
func.func @decode_window(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                         %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %o = attn.attention %q, %k, %v queries_at_end
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 4096 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi ult, %d, %w : index
      %c = arith.andi %causal, %near : i1
      attn.yield %c : i1
    } : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
