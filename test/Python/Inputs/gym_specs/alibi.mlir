// attnc.trace: score_mod=generate_alibi_bias.<locals>.alibi_mod
func.func @flex_alibi_mod(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %0 = arith.subi %j, %i : index
      %1 = arith.index_cast %0 : index to i64
      %2 = arith.sitofp %1 : i64 to f32
      %3 = arith.constant 1 : index
      %4 = arith.addi %h, %3 : index
      %5 = arith.index_cast %4 : index to i64
      %6 = arith.sitofp %5 : i64 to f32
      %7 = arith.constant 8.000000000e+00 : f32
      %8 = arith.mulf %6, %7 : f32
      %9 = arith.constant 2.000000000e+00 : f32
      %10 = arith.divf %8, %9 : f32
      %11 = arith.negf %10 : f32
      %12 = math.exp2 %11 : f32
      %13 = arith.mulf %2, %12 : f32
      %14 = arith.addf %s, %13 : f32
      attn.yield %14 : f32
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
