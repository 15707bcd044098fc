// attnc.trace: mask_mod=generate_tiled_natten.<locals>.tiled_natten_mask
func.func @flex_tiled_natten_c16x8_k5x3_t4x2(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 8 : index
      %1 = arith.divui %i, %0 : index
      %2 = arith.constant 4 : index
      %3 = arith.remui %1, %2 : index
      %4 = arith.muli %3, %2 : index
      %5 = arith.remui %i, %0 : index
      %6 = arith.remui %5, %2 : index
      %7 = arith.addi %4, %6 : index
      %8 = arith.constant 2 : index
      %9 = arith.maxsi %7, %8 : index
      %10 = arith.constant 13 : index
      %11 = arith.minsi %9, %10 : index
      %12 = arith.divui %j, %0 : index
      %13 = arith.remui %12, %2 : index
      %14 = arith.muli %13, %2 : index
      %15 = arith.remui %j, %0 : index
      %16 = arith.remui %15, %2 : index
      %17 = arith.addi %14, %16 : index
      %18 = arith.subi %11, %17 : index
      %19 = math.absi %18 : index
      %20 = arith.cmpi sle, %19, %8 : index
      %21 = arith.divui %1, %2 : index
      %22 = arith.muli %21, %8 : index
      %23 = arith.divui %5, %2 : index
      %24 = arith.addi %22, %23 : index
      %25 = arith.constant 1 : index
      %26 = arith.maxsi %24, %25 : index
      %27 = arith.constant 6 : index
      %28 = arith.minsi %26, %27 : index
      %29 = arith.divui %12, %2 : index
      %30 = arith.muli %29, %8 : index
      %31 = arith.divui %15, %2 : index
      %32 = arith.addi %30, %31 : index
      %33 = arith.subi %28, %32 : index
      %34 = math.absi %33 : index
      %35 = arith.cmpi sle, %34, %25 : index
      %36 = arith.andi %20, %35 : i1
      attn.yield %36 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
