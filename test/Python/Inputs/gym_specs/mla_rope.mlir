// attnc.trace: score_mod=generate_mla_rope_score_mod.<locals>.mla_rope_score_mod
func.func @flex_mla_rope_score_mod_scale_1_0(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %key_rope: tensor<?x1x?x8xf32>, %query_rope: tensor<?x2x?x8xf32>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%key_rope, %query_rope : tensor<?x1x?x8xf32>, tensor<?x2x?x8xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 1.000000000e+00 : f32
      %1 = arith.constant 0 : index
      %2 = tensor.extract %query_rope[%b, %h, %i, %1] : tensor<?x2x?x8xf32>
      %3 = arith.constant 2 : index
      %4 = arith.divui %h, %3 : index
      %5 = tensor.extract %key_rope[%b, %4, %j, %1] : tensor<?x1x?x8xf32>
      %6 = arith.mulf %2, %5 : f32
      %7 = arith.constant 1 : index
      %8 = tensor.extract %query_rope[%b, %h, %i, %7] : tensor<?x2x?x8xf32>
      %9 = tensor.extract %key_rope[%b, %4, %j, %7] : tensor<?x1x?x8xf32>
      %10 = arith.mulf %8, %9 : f32
      %11 = arith.addf %6, %10 : f32
      %12 = tensor.extract %query_rope[%b, %h, %i, %3] : tensor<?x2x?x8xf32>
      %13 = tensor.extract %key_rope[%b, %4, %j, %3] : tensor<?x1x?x8xf32>
      %14 = arith.mulf %12, %13 : f32
      %15 = arith.addf %11, %14 : f32
      %16 = arith.constant 3 : index
      %17 = tensor.extract %query_rope[%b, %h, %i, %16] : tensor<?x2x?x8xf32>
      %18 = tensor.extract %key_rope[%b, %4, %j, %16] : tensor<?x1x?x8xf32>
      %19 = arith.mulf %17, %18 : f32
      %20 = arith.addf %15, %19 : f32
      %21 = arith.constant 4 : index
      %22 = tensor.extract %query_rope[%b, %h, %i, %21] : tensor<?x2x?x8xf32>
      %23 = tensor.extract %key_rope[%b, %4, %j, %21] : tensor<?x1x?x8xf32>
      %24 = arith.mulf %22, %23 : f32
      %25 = arith.addf %20, %24 : f32
      %26 = arith.constant 5 : index
      %27 = tensor.extract %query_rope[%b, %h, %i, %26] : tensor<?x2x?x8xf32>
      %28 = tensor.extract %key_rope[%b, %4, %j, %26] : tensor<?x1x?x8xf32>
      %29 = arith.mulf %27, %28 : f32
      %30 = arith.addf %25, %29 : f32
      %31 = arith.constant 6 : index
      %32 = tensor.extract %query_rope[%b, %h, %i, %31] : tensor<?x2x?x8xf32>
      %33 = tensor.extract %key_rope[%b, %4, %j, %31] : tensor<?x1x?x8xf32>
      %34 = arith.mulf %32, %33 : f32
      %35 = arith.addf %30, %34 : f32
      %36 = arith.constant 7 : index
      %37 = tensor.extract %query_rope[%b, %h, %i, %36] : tensor<?x2x?x8xf32>
      %38 = tensor.extract %key_rope[%b, %4, %j, %36] : tensor<?x1x?x8xf32>
      %39 = arith.mulf %37, %38 : f32
      %40 = arith.addf %35, %39 : f32
      %41 = arith.mulf %0, %40 : f32
      %42 = arith.addf %s, %41 : f32
      attn.yield %42 : f32
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
