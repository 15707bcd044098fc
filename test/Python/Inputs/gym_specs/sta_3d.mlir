// attnc.trace: mask_mod=generate_sta_mask_mod_3d.<locals>.sta_mask_mod_3d
func.func @flex_sta_3d_c2x8x8_k2x4x4_t1x2x2(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 128 : index
      %1 = arith.cmpi slt, %i, %0 : index
      %2 = arith.cmpi slt, %j, %0 : index
      %3 = arith.andi %1, %2 : i1
      %4 = arith.constant 4 : index
      %5 = arith.divui %j, %4 : index
      %6 = arith.constant 16 : index
      %7 = arith.divui %5, %6 : index
      %8 = arith.divui %i, %4 : index
      %9 = arith.divui %8, %6 : index
      %10 = arith.constant 1 : index
      %11 = arith.maxsi %9, %10 : index
      %12 = arith.minsi %11, %10 : index
      %13 = arith.subi %12, %10 : index
      %14 = arith.cmpi sge, %7, %13 : index
      %15 = arith.constant 0 : index
      %16 = arith.addi %12, %15 : index
      %17 = arith.cmpi sle, %7, %16 : index
      %18 = arith.andi %14, %17 : i1
      %19 = arith.andi %3, %18 : i1
      %20 = arith.remui %5, %4 : index
      %21 = arith.remui %8, %4 : index
      %22 = arith.maxsi %21, %10 : index
      %23 = arith.constant 3 : index
      %24 = arith.minsi %22, %23 : index
      %25 = arith.subi %24, %10 : index
      %26 = arith.cmpi sge, %20, %25 : index
      %27 = arith.addi %24, %15 : index
      %28 = arith.cmpi sle, %20, %27 : index
      %29 = arith.andi %26, %28 : i1
      %30 = arith.andi %19, %29 : i1
      %31 = arith.remui %5, %6 : index
      %32 = arith.divui %31, %4 : index
      %33 = arith.remui %8, %6 : index
      %34 = arith.divui %33, %4 : index
      %35 = arith.maxsi %34, %10 : index
      %36 = arith.minsi %35, %23 : index
      %37 = arith.subi %36, %10 : index
      %38 = arith.cmpi sge, %32, %37 : index
      %39 = arith.addi %36, %15 : index
      %40 = arith.cmpi sle, %32, %39 : index
      %41 = arith.andi %38, %40 : i1
      %42 = arith.andi %30, %41 : i1
      %43 = arith.cmpi sge, %j, %0 : index
      %44 = arith.andi %1, %43 : i1
      %45 = arith.andi %44, %2 : i1
      %46 = arith.ori %42, %45 : i1
      %47 = arith.cmpi sge, %i, %0 : index
      %48 = arith.andi %47, %2 : i1
      %49 = arith.ori %46, %48 : i1
      attn.yield %49 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
