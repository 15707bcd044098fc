// attnc.trace: mask_mod=generate_doc_mask_mod.<locals>.doc_mask_mod
func.func @flex_doc_mask_mod(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %offsets: tensor<4xi64>, %document_id: tensor<?xi32>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%offsets, %document_id : tensor<4xi64>, tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = tensor.extract %document_id[%i] : tensor<?xi32>
      %1 = tensor.extract %document_id[%j] : tensor<?xi32>
      %2 = arith.cmpi eq, %0, %1 : i32
      %3 = arith.index_cast %0 : i32 to index
      %4 = arith.constant 0 : index
      %5 = arith.maxsi %3, %4 : index
      %6 = arith.constant 3 : index
      %7 = arith.minsi %5, %6 : index
      %8 = tensor.extract %offsets[%7] : tensor<4xi64>
      %9 = arith.index_cast %8 : i64 to index
      %10 = arith.subi %i, %9 : index
      %11 = arith.index_cast %1 : i32 to index
      %12 = arith.maxsi %11, %4 : index
      %13 = arith.minsi %12, %6 : index
      %14 = tensor.extract %offsets[%13] : tensor<4xi64>
      %15 = arith.index_cast %14 : i64 to index
      %16 = arith.subi %j, %15 : index
      %17 = arith.cmpi sge, %10, %16 : index
      %18 = arith.andi %2, %17 : i1
      attn.yield %18 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
