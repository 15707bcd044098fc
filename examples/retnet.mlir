// RetNet retention (Sun et al.): causal linear attention with a constant
// decay per head, gamma_h = 1 - 2^(-5 - h), given as log-gates log(gamma_h).
func.func @retnet(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %g = arith.constant dense<[-0.0317486983, -0.0157478085, -0.0078430007, -0.0039138993]> : tensor<4xf32>
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<4xf32>)
    scale = 0.125
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
