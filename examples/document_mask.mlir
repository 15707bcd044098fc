// Document masking for packed sequences: several documents are concatenated
// into one sequence and a token only attends, causally, to tokens of its own
// document (sequence packing, e.g. Krell et al. 2021; FlexAttention's
// document mask). The document ids are a captured, sorted tensor.
func.func @document_mask(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                         %v: tensor<?x4x?x64xf32>,
                         %docs: tensor<?xi32> {attn.run_init = "sorted:0:3"})
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %causal = arith.cmpi uge, %i, %j : index
      %keep = arith.andi %same, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
