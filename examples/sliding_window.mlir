// Sliding-window (local) causal attention: query i sees the 64 most recent
// keys, j <= i and i - j < 64 (Longformer, Beltagy et al. 2020; Mistral 7B).
func.func @sliding_window(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                          %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 64 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi slt, %d, %w : index
      %keep = arith.andi %causal, %near : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
