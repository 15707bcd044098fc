// attnc.trace: mask_mod=generate_spatial_head_mask_mod.<locals>.spatial_mask_mod
func.func @flex_spatial_mask_mod(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 16 : index
      %1 = arith.cmpi slt, %j, %0 : index
      %2 = arith.cmpi slt, %i, %0 : index
      %3 = arith.ori %1, %2 : i1
      %4 = arith.subi %i, %j : index
      %5 = math.absi %4 : index
      %6 = arith.constant 24 : index
      %7 = arith.cmpi slt, %5, %6 : index
      %8 = arith.ori %3, %7 : i1
      attn.yield %8 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
