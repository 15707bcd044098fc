// attnc.trace: mask_mod=generate_natten.<locals>.natten_mask_mod
func.func @flex_natten_c16x8_k5x3(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 16 : index
      %1 = arith.divui %i, %0 : index
      %2 = arith.constant 2 : index
      %3 = arith.maxsi %1, %2 : index
      %4 = arith.constant 13 : index
      %5 = arith.minsi %3, %4 : index
      %6 = arith.divui %j, %0 : index
      %7 = arith.subi %5, %6 : index
      %8 = math.absi %7 : index
      %9 = arith.cmpi sle, %8, %2 : index
      %10 = arith.remui %i, %0 : index
      %11 = arith.constant 1 : index
      %12 = arith.maxsi %10, %11 : index
      %13 = arith.constant 6 : index
      %14 = arith.minsi %12, %13 : index
      %15 = arith.remui %j, %0 : index
      %16 = arith.subi %14, %15 : index
      %17 = math.absi %16 : index
      %18 = arith.cmpi sle, %17, %11 : index
      %19 = arith.andi %9, %18 : i1
      attn.yield %19 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
