// attnc.trace: mask_mod=generate_dilated_sliding_window.<locals>.dilated_sliding_window
func.func @flex_dilated_sliding_window_16_dilation_2(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.subi %i, %j : index
      %1 = math.absi %0 : index
      %2 = arith.constant 16 : index
      %3 = arith.cmpi sle, %1, %2 : index
      %4 = arith.constant 2 : index
      %5 = arith.remui %1, %4 : index
      %6 = arith.constant 0 : index
      %7 = arith.cmpi eq, %5, %6 : index
      %8 = arith.andi %3, %7 : i1
      attn.yield %8 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
