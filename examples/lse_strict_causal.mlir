// Strictly causal attention returning the log-sum-exp: query i sees keys
// j < i, so row 0 sees no key at all and must give o = 0 and lse = -inf (the
// convention for fully masked rows; the lse is what FlashAttention-2 saves
// for the backward pass and what split-KV / ring attention merge on).
func.func @lse_strict_causal(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                             %v: tensor<?x4x?x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi ult, %j, %i : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}
