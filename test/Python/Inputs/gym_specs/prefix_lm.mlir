// attnc.trace: mask_mod=or_masks.<locals>.or_mask
func.func @flex_prefix_lm_causal_mask_16(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.cmpi sge, %i, %j : index
      %1 = arith.constant 16 : index
      %2 = arith.cmpi slt, %j, %1 : index
      %3 = arith.ori %0, %2 : i1
      attn.yield %3 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
