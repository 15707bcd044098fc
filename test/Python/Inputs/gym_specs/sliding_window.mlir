// attnc.trace: mask_mod=and_masks.<locals>.and_mask
func.func @flex_sliding_window_20(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.cmpi sge, %i, %j : index
      %1 = arith.subi %i, %j : index
      %2 = arith.constant 20 : index
      %3 = arith.cmpi sle, %1, %2 : index
      %4 = arith.andi %0, %3 : i1
      attn.yield %4 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
