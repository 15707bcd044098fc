// Prefix-LM attention: the first 64 tokens (the prefix) are visible to every
// query, the rest causally: j < 64 or j <= i (UniLM, Dong et al. 2019; T5
// prefix LM, Raffel et al. 2020).
func.func @prefix_lm(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                     %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %p = arith.constant 64 : index
      %prefix = arith.cmpi ult, %j, %p : index
      %causal = arith.cmpi uge, %i, %j : index
      %keep = arith.ori %prefix, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
