// attnc.trace: mask_mod=generate_sta_mask_mod_2d.<locals>.sta_mask_mod_2d
func.func @flex_sta_2d_c8x8_k4x4_t2x2(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 64 : index
      %1 = arith.cmpi slt, %i, %0 : index
      %2 = arith.cmpi slt, %j, %0 : index
      %3 = arith.andi %1, %2 : i1
      %4 = arith.constant 4 : index
      %5 = arith.divui %j, %4 : index
      %6 = arith.divui %5, %4 : index
      %7 = arith.divui %i, %4 : index
      %8 = arith.divui %7, %4 : index
      %9 = arith.constant 1 : index
      %10 = arith.maxsi %8, %9 : index
      %11 = arith.constant 3 : index
      %12 = arith.minsi %10, %11 : index
      %13 = arith.subi %12, %9 : index
      %14 = arith.cmpi sge, %6, %13 : index
      %15 = arith.constant 0 : index
      %16 = arith.addi %12, %15 : index
      %17 = arith.cmpi sle, %6, %16 : index
      %18 = arith.andi %14, %17 : i1
      %19 = arith.andi %3, %18 : i1
      %20 = arith.remui %5, %4 : index
      %21 = arith.remui %7, %4 : index
      %22 = arith.maxsi %21, %9 : index
      %23 = arith.minsi %22, %11 : index
      %24 = arith.subi %23, %9 : index
      %25 = arith.cmpi sge, %20, %24 : index
      %26 = arith.addi %23, %15 : index
      %27 = arith.cmpi sle, %20, %26 : index
      %28 = arith.andi %25, %27 : i1
      %29 = arith.andi %19, %28 : i1
      %30 = arith.cmpi sge, %j, %0 : index
      %31 = arith.andi %1, %30 : i1
      %32 = arith.constant 128 : index
      %33 = arith.cmpi slt, %j, %32 : index
      %34 = arith.andi %31, %33 : i1
      %35 = arith.ori %29, %34 : i1
      %36 = arith.cmpi sge, %i, %0 : index
      %37 = arith.andi %36, %33 : i1
      %38 = arith.ori %35, %37 : i1
      attn.yield %38 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
