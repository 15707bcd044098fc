// attnc.trace: mask_mod=generate_vision_cross_attention_mask_mod.<locals>.vision_cross_attention_mask_mod
func.func @flex_vision_cross_attention_mask_mod(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %intervals: tensor<2x2xi64>, %image_boundaries: tensor<?xi64>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%intervals, %image_boundaries : tensor<2x2xi64>, tensor<?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = tensor.extract %image_boundaries[%j] : tensor<?xi64>
      %1 = arith.index_cast %0 : i64 to index
      %2 = arith.constant 0 : index
      %3 = arith.maxsi %1, %2 : index
      %4 = arith.constant 1 : index
      %5 = arith.minsi %3, %4 : index
      %6 = tensor.extract %intervals[%5, %2] : tensor<2x2xi64>
      %7 = arith.index_cast %6 : i64 to index
      %8 = arith.cmpi sge, %i, %7 : index
      %9 = tensor.extract %intervals[%5, %4] : tensor<2x2xi64>
      %10 = arith.index_cast %9 : i64 to index
      %11 = arith.cmpi slt, %i, %10 : index
      %12 = arith.andi %8, %11 : i1
      attn.yield %12 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
