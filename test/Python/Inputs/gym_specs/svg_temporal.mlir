// attnc.trace: mask_mod=generate_temporal_head_mask_mod.<locals>.temporal_mask_mod
func.func @flex_temporal_mask_mod(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 16 : index
      %1 = arith.cmpi slt, %j, %0 : index
      %2 = arith.cmpi slt, %i, %0 : index
      %3 = arith.ori %1, %2 : i1
      %4 = arith.subi %i, %0 : index
      %5 = arith.constant 28 : index
      %6 = arith.remsi %4, %5 : index
      %7 = arith.addi %6, %5 : index
      %8 = arith.remsi %7, %5 : index
      %9 = arith.subi %j, %0 : index
      %10 = arith.remsi %9, %5 : index
      %11 = arith.addi %10, %5 : index
      %12 = arith.remsi %11, %5 : index
      %13 = arith.subi %8, %12 : index
      %14 = math.absi %13 : index
      %15 = arith.constant 14 : index
      %16 = arith.cmpi slt, %14, %15 : index
      %17 = arith.ori %3, %16 : i1
      attn.yield %17 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
