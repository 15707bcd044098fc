// attnc.trace: mask_mod=batchify_mask_mod.<locals>.batched_mask_mod
func.func @flex_batched_mask_mod_causal_mask_batch_size_32(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 32 : index
      %1 = arith.divui %i, %0 : index
      %2 = arith.divui %j, %0 : index
      %3 = arith.cmpi eq, %1, %2 : index
      %4 = arith.remui %i, %0 : index
      %5 = arith.remui %j, %0 : index
      %6 = arith.cmpi sge, %4, %5 : index
      %7 = arith.andi %3, %6 : i1
      attn.yield %7 : i1
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
